"""Platform facts: version, effective configuration (secrets redacted), the caller."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel

from datalibrary import __version__
from datalibrary.auth.permissions import Permission
from datalibrary.auth.schemas import Me
from datalibrary.db import leases
from datalibrary.db.schemas import Replicas, TaskLeaseOut
from datalibrary.http.deps import CurrentPrincipal, DatabaseDep, Requires, SettingsDep

router = APIRouter(tags=["system"])


class Version(BaseModel):  # `datalibrary version --json` prints the same one field
    version: str


@router.get("/version", summary="Server version")
def version(_: CurrentPrincipal) -> Version:
    return Version(version=__version__)


@router.get("/me", summary="The authenticated caller, its roles and permissions")
def me(principal: CurrentPrincipal) -> Me:
    return Me.of(principal)


@router.get(
    "/config",
    summary="Effective configuration with secrets redacted",
    dependencies=[Requires(Permission.CONFIG_READ)],
)
def config(settings: SettingsDep) -> dict[str, Any]:
    return settings.redacted()


@router.get(
    "/replicas",
    summary="Background tasks and the replica that runs each (task leases)",
    dependencies=[Requires(Permission.CONFIG_READ)],
)
def replicas(request: Request, settings: SettingsDep, db: DatabaseDep) -> Replicas:
    keeper = getattr(request.app.state, "leases", None)
    return Replicas(
        this_replica=keeper.holder if keeper else None,
        lease_seconds=settings.ha.lease_seconds,
        leases=[TaskLeaseOut(**row) for row in leases.holders(db)],  # type: ignore[arg-type]
    )
