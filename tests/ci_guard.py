"""In CI a skipped test fails the run (a pytest hook, registered by tests/conftest.py).

Every test has what it needs in CI (services, browsers, ../shared/data), so a skip there means
something that should have run did not. ``-ra`` (pytest addopts) lists each skip with its
reason in the short test summary. A module of its own, light to import, so that
tests/test_suite_guards.py can load it into a child pytest without the whole platform."""

from __future__ import annotations

import os

import pytest


def in_ci() -> bool:
    """CI sets CI=true (most CI systems do); CI=false or CI=0 is a developer's machine."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if in_ci() and skipped and session.exitstatus == 0:
        if reporter:
            reporter.write_line(
                f"CI allows no skipped tests; {skipped} skipped (reasons in the short test summary)", red=True
            )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
