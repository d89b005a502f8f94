"""The package mirror's policy, internal uploads, R packages and install log (pip itself uses
/pypi/, R's install.packages() /cran/)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, UploadFile
from pydantic import BaseModel, Field

from datalibrary.api.fields import PackageName, VersionRange
from datalibrary.auth.permissions import Permission
from datalibrary.bounds import RecordId
from datalibrary.errors import TooLarge
from datalibrary.http.deps import CurrentPrincipal, DbSession, Requires, SettingsDep
from datalibrary.packages import cran, policy, service
from datalibrary.packages.models import PackageRule

router = APIRouter(prefix="/packages", tags=["packages"])
INSTALL = [Requires(Permission.PACKAGES_INSTALL)]
MANAGE = [Requires(Permission.PACKAGES_MANAGE)]
MAX_UPLOAD = service.MAX_UPLOAD


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


def _policy(session: DbSession, principal: CurrentPrincipal) -> PolicyOut:
    return PolicyOut(
        mode=policy.mode(session),
        index_url="/pypi/simple/",
        rules=[RuleOut.of(r) for r in policy.list_rules(session, principal)],
    )


@router.get("/policy", summary="The mirror's mode and allow/deny rules", dependencies=INSTALL)
def read_policy(principal: CurrentPrincipal, session: DbSession) -> PolicyOut:
    return _policy(session, principal)


@router.put("/policy", summary="Switch between 'open' and 'allowlist' mode", dependencies=MANAGE)
def set_mode(body: ModeIn, principal: CurrentPrincipal, session: DbSession) -> PolicyOut:
    policy.set_mode(session, principal, body.mode)
    return _policy(session, principal)


@router.post("/rules", summary="Add an allow or deny rule", status_code=201, dependencies=MANAGE)
def add_rule(body: RuleIn, principal: CurrentPrincipal, session: DbSession) -> RuleOut:
    return RuleOut.of(
        policy.add_rule(session, principal, body.kind, body.name, body.specifier, body.note, body.ecosystem)
    )


@router.delete("/rules/{rule_id}", summary="Delete a rule", status_code=204, dependencies=MANAGE)
def delete_rule(rule_id: RecordId, principal: CurrentPrincipal, session: DbSession) -> None:
    policy.delete_rule(session, principal, rule_id)


@router.post(
    "/internal", summary="Upload a wheel to the internal index", status_code=201, dependencies=MANAGE
)
async def upload(
    file: UploadFile, principal: CurrentPrincipal, session: DbSession, settings: SettingsDep
) -> UploadOut:
    content = await _read(file)
    result = await asyncio.to_thread(
        service.upload, settings, session, principal, file.filename or "", content
    )
    return UploadOut(**result)


async def _read(file: UploadFile) -> bytes:
    content = await file.read(MAX_UPLOAD + 1)
    if len(content) > MAX_UPLOAD:
        raise TooLarge(f"uploads are limited to {MAX_UPLOAD} bytes")
    return content


@router.get("/r", summary="R packages published for install.packages()", dependencies=INSTALL)
def r_packages(principal: CurrentPrincipal, settings: SettingsDep) -> list[RPackageOut]:
    return [RPackageOut(**p) for p in cran.list_packages(settings, principal)]


@router.post(
    "/r",
    summary="Publish an R source package (NAME_VERSION.tar.gz from R CMD build)",
    status_code=201,
    dependencies=MANAGE,
)
async def r_upload(
    file: UploadFile, principal: CurrentPrincipal, session: DbSession, settings: SettingsDep
) -> UploadOut:
    content = await _read(file)
    result = await asyncio.to_thread(cran.upload, settings, session, principal, file.filename or "", content)
    return UploadOut(**result)


class UploadedOut(BaseModel):
    at: str
    user: str
    package: str
    version: str | None
    file: str | None
    bytes: int | None


@router.get("/internal", summary="Wheels uploaded to the internal index, newest first", dependencies=MANAGE)
def list_uploads(
    principal: CurrentPrincipal, session: DbSession, limit: int = Query(200, ge=1, le=5000)
) -> list[UploadedOut]:
    return [UploadedOut(**row) for row in service.uploads_log(session, principal, limit)]


@router.get(
    "/installs", summary="Installs and refusals (user, workspace, package, version)", dependencies=MANAGE
)
def installs(
    principal: CurrentPrincipal, session: DbSession, limit: int = Query(200, ge=1, le=5000)
) -> list[dict[str, Any]]:
    return service.install_log(session, principal, limit)
