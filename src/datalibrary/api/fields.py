"""Request field types that state the domain's real rules in the OpenAPI document.

A schema looser than the service misleads generated clients (they send what the document
allows and get 422); each type here reuses the domain's own pattern, so the two cannot
drift apart. Account names and roles (``auth.schemas``), package names and version ranges
(``packages.schemas``) live with their domain's public schemas and are re-exported here.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from datalibrary.access.service import PRINCIPAL
from datalibrary.auth.schemas import AccountName as AccountName
from datalibrary.auth.schemas import Role as Role
from datalibrary.ingest.jobs import MODES
from datalibrary.ingest.models import JOB_STATES
from datalibrary.ingest.readers import READERS
from datalibrary.lake.catalog import NAME_RE
from datalibrary.packages.schemas import PackageName as PackageName
from datalibrary.packages.schemas import VersionRange as VersionRange
from datalibrary.privacy.policy import POLICY_NAME_RE
from datalibrary.repos.storage import REPO_NAME_PATTERN

_LAKE_NAME = NAME_RE.pattern.strip("^$")

Namespace = Annotated[str, StringConstraints(pattern=NAME_RE.pattern)]
TableRef = Annotated[
    str, StringConstraints(pattern=rf"^{_LAKE_NAME}\.{_LAKE_NAME}$"), Field(examples=["cdisc.lb"])
]
TableOrNamespace = Annotated[
    str, StringConstraints(pattern=rf"^{_LAKE_NAME}(\.{_LAKE_NAME})?$"), Field(examples=["cdisc.lb", "cdisc"])
]
IngestTarget = Annotated[
    str,
    StringConstraints(pattern=rf"^{_LAKE_NAME}\.({_LAKE_NAME}|\*)$"),
    Field(description="NAMESPACE.TABLE, or NAMESPACE.* for a table per file / FHIR type"),
]
FileFormat = Literal[tuple(sorted(READERS))]  # type: ignore[valid-type]
IngestMode = Literal[MODES]  # type: ignore[valid-type]
JobState = Literal[JOB_STATES]  # type: ignore[valid-type]
PolicyName = Annotated[str, StringConstraints(pattern=POLICY_NAME_RE.pattern)]
Grantee = Annotated[str, StringConstraints(pattern=PRINCIPAL.pattern), Field(examples=["user:ada"])]


def _reason(minimum: int, maximum: int) -> StringConstraints:
    """Free text that must say something: at least ``minimum`` characters once trimmed."""
    return StringConstraints(pattern=rf"^\s*\S[\s\S]{{{minimum - 2},}}\S\s*$", max_length=maximum)


Justification = Annotated[str, _reason(10, 4000)]
Destination = Annotated[str, _reason(3, 500)]
Purpose = Annotated[str, _reason(10, 2000)]

# Project repositories (repos.storage.check_repo_name, repos.browse._ref/_path): the same rules,
# written with look-aheads where the service tests "does not contain".
RepoName = Annotated[str, StringConstraints(pattern=REPO_NAME_PATTERN), Field(examples=["analysis"])]
GitRef = Annotated[
    str,
    StringConstraints(pattern=re.compile(r"^(?!-)(?!.*\.\.)[A-Za-z0-9._/-]{1,200}$")),
    Field(description="a branch, a tag or a commit id", examples=["main"]),
]
_SEGMENT = r"(?!\.\.?(/|$))[^/\x00-\x1f\x7f]+"
RepoPath = Annotated[
    str,
    StringConstraints(pattern=re.compile(rf"^/*({_SEGMENT}(/{_SEGMENT})*)?/*$"), max_length=4096),
    Field(description="a path from the repository's root, without '.' or '..' segments"),
]
RepoFilePath = Annotated[
    str,
    StringConstraints(pattern=re.compile(rf"^/*{_SEGMENT}(/{_SEGMENT})*/*$"), max_length=4096),
    Field(description="a file's path from the repository's root, without '.' or '..' segments"),
]
