"""What the front ends show of the package mirror: its policy and rules, uploads, R packages;
one shape for the API and the CLI's ``--json``, and the request bodies the API accepts.

Light on purpose (no service imports): ``packages uploads --json`` imports it."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from datalibrary.packages.models import PackageRule

# A PEP 508 name and a PEP 440 version range (packages.policy.add_rule checks both; the range
# pattern states the common forms, each accepted by packaging's SpecifierSet).
PackageName = Annotated[
    str,
    StringConstraints(pattern=r"^\s*[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?\s*$", max_length=200),
    Field(examples=["pandas"]),
]
_VERSION = r"[0-9]+(\.[0-9]+)*"
_CLAUSE = rf"\s*((==|!=)\s*{_VERSION}(\.\*)?|(<=|>=|<|>)\s*{_VERSION}|~=\s*[0-9]+(\.[0-9]+)+)\s*"
VersionRange = Annotated[
    str,
    StringConstraints(pattern=rf"^(\s*|{_CLAUSE}(,{_CLAUSE})*)$", max_length=200),
    Field(description="a version range, e.g. '>=2,<3'; empty = every version", examples=[">=2,<3"]),
]
INDEX_URL = "/pypi/simple/"  # for pip/uv: append to the platform's URL (workspaces: preconfigured)


class RuleIn(BaseModel):
    kind: str = Field(pattern="^(allow|deny)$")
    ecosystem: str = Field(
        "python", pattern="^(python|r)$", description="python: pip and uv; r: install.packages()"
    )
    name: PackageName
    specifier: VersionRange = ""
    note: str = Field("", max_length=500)


class RuleOut(BaseModel):
    id: int
    ecosystem: str
    kind: str
    name: str
    specifier: str
    note: str
    created_by: str
    created_at: datetime

    @classmethod
    def of(cls, rule: PackageRule) -> RuleOut:
        return cls(**{k: getattr(rule, k) for k in cls.model_fields})


class PolicyOut(BaseModel):
    mode: str
    index_url: str  # for pip/uv: append to the platform's URL (workspaces: preconfigured)
    rules: list[RuleOut]

    @classmethod
    def of(cls, mode: str, rules: Iterable[PackageRule]) -> PolicyOut:
        return cls(mode=mode, index_url=INDEX_URL, rules=[RuleOut.of(r) for r in rules])


class ModeIn(BaseModel):
    mode: str = Field(pattern="^(open|allowlist)$")


class UploadOut(BaseModel):
    name: str
    version: str
    file: str


class RPackageOut(BaseModel):
    name: str
    version: str
    depends: str
    imports: str
    license: str


class UploadedOut(BaseModel):
    at: str
    user: str
    package: str
    version: str | None
    file: str | None
    bytes: int | None
