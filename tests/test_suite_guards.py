"""The suite's own guards work: in CI a skipped test fails the run (tests/conftest.py), and
the list of skips is printed with their reasons. Each case runs pytest in a child process on
a two-test file with the suite's guard (tests/ci_guard.py, which tests/conftest.py registers)
loaded as a plugin."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIPPING = """
import pytest

def test_runs():
    assert True

def test_needs_something_missing():
    pytest.skip("the thing this test needs is not installed")
"""
PASSING = "def test_runs():\n    assert True\n"


def run_pytest(tmp_path: Path, source: str, ci: str | None) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_sample.py").write_text(source)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    command = [sys.executable, "-m", "pytest", "-ra", "-p", "tests.ci_guard", "-p", "no:cacheprovider"]
    return subprocess.run(  # the child imports ``tests`` from the repository (cwd on sys.path)
        [*command, str(tmp_path / "test_sample.py")], cwd=ROOT, env=env, capture_output=True, text=True
    )


def test_a_skip_fails_a_ci_run_and_is_listed(tmp_path: Path) -> None:
    result = run_pytest(tmp_path, SKIPPING, "true")
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, result.stdout
    assert "CI allows no skipped tests; 1 skipped" in result.stdout
    assert "SKIPPED [1]" in result.stdout and "is not installed" in result.stdout
    assert "1 passed, 1 skipped" in result.stdout


def test_a_skip_is_allowed_outside_ci(tmp_path: Path) -> None:
    result = run_pytest(tmp_path, SKIPPING, "false")
    assert result.returncode == pytest.ExitCode.OK, result.stdout
    assert "SKIPPED [1]" in result.stdout and "CI allows" not in result.stdout


def test_a_ci_run_without_skips_passes(tmp_path: Path) -> None:
    result = run_pytest(tmp_path, PASSING, "true")
    assert result.returncode == pytest.ExitCode.OK, result.stdout


def test_the_suite_registers_the_guard() -> None:
    import tests.conftest
    from tests import ci_guard

    assert tests.conftest.pytest_sessionfinish is ci_guard.pytest_sessionfinish
