"""Request field patterns state exactly what the services accept (differential, generated).

Each pattern in the OpenAPI document is a promise to generated clients: whatever matches it is
accepted by the domain rule it mirrors. Hypothesis generates values from the pattern (the way
schemathesis does) and the domain's own check must accept every one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, get_args

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from datalibrary.api import fields
from datalibrary.ingest.jobs import list_jobs
from datalibrary.repos.browse import _path, _ref
from datalibrary.repos.storage import check_repo_name


def _pattern(annotated: Any) -> str:
    found = next(a.pattern for a in get_args(annotated) if getattr(a, "pattern", None) is not None)
    return getattr(found, "pattern", found)


def _file(path: str) -> None:
    assert _path(path), "a file path names a file"


def _package(name: str) -> None:
    assert all(c.isalnum() or c in "-._" for c in canonicalize_name(name.strip()))


CASES: dict[str, Callable[[str], Any]] = {
    "RepoName": check_repo_name,
    "GitRef": _ref,
    "RepoPath": _path,
    "RepoFilePath": _file,
    "PackageName": _package,
    "VersionRange": lambda text: SpecifierSet(text.strip()),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_value_the_pattern_allows_is_accepted_by_the_service(name: str) -> None:
    check = CASES[name]

    @settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
    @given(st.from_regex(_pattern(getattr(fields, name)), fullmatch=True))
    def accepted(value: str) -> None:
        check(value)

    accepted()


@pytest.mark.parametrize(
    ("name", "value"),
    [("RepoName", "a..b"), ("GitRef", "-x"), ("GitRef", "a..b"), ("RepoPath", "a/../b"), ("RepoPath", "a//b"),
     ("RepoFilePath", ""), ("RepoPath", "a\x00b"), ("VersionRange", ">=1.*"), ("VersionRange", "~=1")],
)  # fmt: skip
def test_what_the_service_refuses_the_pattern_refuses(name: str, value: str) -> None:
    import re

    assert not re.fullmatch(_pattern(getattr(fields, name)), value)


def test_the_jobs_filter_takes_a_namespace_wildcard_as_documented(platform) -> None:  # type: ignore[no-untyped-def]
    from datalibrary.auth.permissions import Principal

    with platform.db.session() as session:
        assert list_jobs(session, Principal.system("test"), table="ye.*") == []
