"""Lake maintenance and subject erasure."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from datalibrary.api.fields import Namespace, TableRef
from datalibrary.auth.permissions import Permission
from datalibrary.bounds import MAX_HOURS
from datalibrary.http.deps import CurrentPrincipal, DbSession, Requires, SettingsDep
from datalibrary.lake.catalog import open_lake
from datalibrary.lake.erasure import erase_subject
from datalibrary.lake.maintenance import maintain

router = APIRouter(prefix="/lake", tags=["lake"], dependencies=[Requires(Permission.LAKE_MAINTAIN)])


class MaintainIn(BaseModel):
    table: TableRef | None = Field(None, description="Only this NAMESPACE.TABLE.")
    retention_hours: float | None = Field(None, ge=0, le=MAX_HOURS)
    grace_minutes: float | None = Field(None, ge=0, le=MAX_HOURS * 60)


class EraseIn(BaseModel):
    namespace: Namespace
    subject: str = Field(min_length=1, max_length=200)


@router.post("/maintain", summary="Compact, expire snapshots (deleting files), remove orphans")
def run_maintenance(
    body: MaintainIn, principal: CurrentPrincipal, session: DbSession, settings: SettingsDep
) -> dict[str, Any]:
    return maintain(
        session,
        principal,
        open_lake(settings),
        table=body.table,
        retention_hours=body.retention_hours,
        grace_minutes=body.grace_minutes,
    )


@router.post("/erase", summary="Erase a subject from a namespace, with a proof report")
def erase(
    body: EraseIn, principal: CurrentPrincipal, session: DbSession, settings: SettingsDep
) -> dict[str, Any]:
    return erase_subject(
        session, principal, open_lake(settings), namespace=body.namespace, subject=body.subject
    )
