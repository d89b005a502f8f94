"""Platform facts: version, effective configuration (secrets redacted), the caller."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from datalibrary import __version__
from datalibrary.api.deps import CurrentPrincipal, Requires, SettingsDep
from datalibrary.auth.permissions import Permission

router = APIRouter(tags=["system"])


class Me(BaseModel):
    name: str
    roles: list[str]
    permissions: list[str]
    via: str
    groups: list[str]
    projects: list[str]
    default_project: str | None


class Version(BaseModel):
    version: str


@router.get("/version", summary="Server version")
def version(_: CurrentPrincipal) -> Version:
    return Version(version=__version__)


@router.get("/me", summary="The authenticated caller, its roles and permissions")
def me(principal: CurrentPrincipal) -> Me:
    return Me(
        name=principal.name,
        roles=sorted(principal.roles),
        permissions=sorted(p.value for p in principal.permissions),
        via=principal.via,
        groups=sorted(principal.groups),
        projects=sorted(principal.projects),
        default_project=principal.default_project,
    )


@router.get(
    "/config",
    summary="Effective configuration with secrets redacted",
    dependencies=[Requires(Permission.CONFIG_READ)],
)
def config(settings: SettingsDep) -> dict[str, Any]:
    return settings.redacted()
