"""The package mirror's policy, internal uploads, R packages and install log (pip itself uses
/pypi/, R's install.packages() /cran/)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Query, UploadFile

from datalibrary.auth.permissions import Permission
from datalibrary.bounds import RecordId
from datalibrary.errors import TooLarge
from datalibrary.http.deps import CurrentPrincipal, DbSession, Requires, SettingsDep
from datalibrary.packages import cran, policy, service
from datalibrary.packages.schemas import (
    ModeIn,
    PolicyOut,
    RPackageOut,
    RuleIn,
    RuleOut,
    UploadedOut,
    UploadOut,
)

router = APIRouter(prefix="/packages", tags=["packages"])
INSTALL = [Requires(Permission.PACKAGES_INSTALL)]
MANAGE = [Requires(Permission.PACKAGES_MANAGE)]
MAX_UPLOAD = service.MAX_UPLOAD


def _policy(session: DbSession, principal: CurrentPrincipal) -> PolicyOut:
    return PolicyOut.of(policy.mode(session), policy.list_rules(session, principal))


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
