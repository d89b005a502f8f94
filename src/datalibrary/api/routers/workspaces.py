"""Workspaces: the catalog, launching and the lifecycle verbs, usage, admin access.

Verbs answer 202 with the workspace in its transitional state; the work runs in the
background and the state changes in the database (poll ``GET /workspaces/{id}``)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, BackgroundTasks, Query, Request
from pydantic import BaseModel, Field

from datalibrary.api.fields import AccountName
from datalibrary.auth.permissions import Permission
from datalibrary.bounds import RecordId
from datalibrary.http.deps import CurrentPrincipal, DbSession, Requires, SettingsDep
from datalibrary.workspaces import access, history, paths, pool, reconcile, schemas, service
from datalibrary.workspaces.models import Workspace
from datalibrary.workspaces.schemas import CatalogOut, HistoryOut, UsageOut, WorkspaceOut

router = APIRouter(prefix="/workspaces", tags=["workspaces"])


class CreateIn(BaseModel):
    product: str = Field(min_length=1, max_length=64)
    instance_type: str = Field(min_length=1, max_length=64)
    user: str | None = Field(
        None, max_length=64, description="Owner; others than yourself need workspaces.admin"
    )
    project: AccountName | None = None


class AdminAccessIn(BaseModel):
    reason: str = Field(min_length=10, max_length=1000)


class AdminAccessOut(BaseModel):
    workspace_id: int
    expires_at: datetime
    url: str


def _out(session, workspace: Workspace, settings) -> WorkspaceOut:  # type: ignore[no-untyped-def]
    return schemas.workspace_view(
        workspace, service.owner_names(session, [workspace]).get(workspace.owner_id, "?"), settings
    )


@router.get("/catalog", summary="Instance types, environments and the products you may launch",
            dependencies=[Requires(Permission.WORKSPACES_OWN)])  # fmt: skip
def catalog(principal: CurrentPrincipal, settings: SettingsDep, session: DbSession) -> CatalogOut:
    return schemas.catalog_view(principal, settings, session)


@router.get("", summary="Your workspaces (all=true: everyone's, for workspaces admins)",
            dependencies=[Requires(Permission.WORKSPACES_OWN)])  # fmt: skip
def list_workspaces(
    principal: CurrentPrincipal, session: DbSession, settings: SettingsDep, all: bool = False
) -> list[WorkspaceOut]:
    rows = service.list_workspaces(session, principal, everyone=all)
    owners = service.owner_names(session, rows)
    return [schemas.workspace_view(w, owners.get(w.owner_id, "?"), settings) for w in rows]


@router.get("/history", summary="Terminated workspaces: running time and cost (all=true: everyone's)",
            dependencies=[Requires(Permission.WORKSPACES_OWN)])  # fmt: skip
def workspace_history(
    principal: CurrentPrincipal,
    session: DbSession,
    settings: SettingsDep,
    all: bool = False,
    limit: int = Query(100, ge=1, le=history.MAX_HISTORY),
) -> list[HistoryOut]:
    return [
        schemas.history_view(e)
        for e in history.history(session, principal, settings, everyone=all, limit=limit)
    ]


@router.post("", summary="Launch a workspace (answers 202 while it starts)", status_code=202,
             dependencies=[Requires(Permission.WORKSPACES_OWN)])  # fmt: skip
def create(
    body: CreateIn,
    principal: CurrentPrincipal,
    session: DbSession,
    settings: SettingsDep,
    request: Request,
    background: BackgroundTasks,
) -> WorkspaceOut:
    workspace = service.request_create(
        session, principal, settings, product=body.product, instance_type=body.instance_type,
        user=body.user, project=body.project,
    )  # fmt: skip
    out = _out(session, workspace, settings)
    session.commit()
    background.add_task(service.execute, request.app.state.db, settings, workspace.id)
    return out


@router.get(
    "/{workspace_id:int}",
    summary="One workspace and its state",
    dependencies=[Requires(Permission.WORKSPACES_OWN)],
)
def get_workspace(
    workspace_id: RecordId, principal: CurrentPrincipal, session: DbSession, settings: SettingsDep
) -> WorkspaceOut:
    return _out(session, service.get(session, principal, workspace_id), settings)


def _verb_route(verb: str, summary: str) -> None:
    def act(
        workspace_id: RecordId,
        principal: CurrentPrincipal,
        session: DbSession,
        settings: SettingsDep,
        request: Request,
        background: BackgroundTasks,
    ) -> WorkspaceOut:
        workspace = service.request(session, principal, workspace_id, verb)
        out = _out(session, workspace, settings)
        session.commit()
        background.add_task(service.execute, request.app.state.db, settings, workspace.id)
        return out

    act.__name__ = f"{verb}_workspace"
    router.add_api_route(
        f"/{{workspace_id}}/{verb}", act, methods=["POST"], status_code=202, summary=summary,
        dependencies=[Requires(Permission.WORKSPACES_OWN)],
    )  # fmt: skip


_verb_route("start", "Start (wake) a stopped workspace")
_verb_route("stop", "Stop a workspace: frees CPU and memory, keeps the home")
_verb_route("pause", "Pause a workspace: freezes its processes, memory is kept")
_verb_route("resume", "Resume a paused workspace")
_verb_route("terminate", "Terminate a workspace: its home is archived (if configured) and deleted")


@router.get("/{workspace_id}/usage", summary="State intervals of a workspace, for cost tracking",
            dependencies=[Requires(Permission.WORKSPACES_OWN)])  # fmt: skip
def usage(workspace_id: RecordId, principal: CurrentPrincipal, session: DbSession) -> list[UsageOut]:
    return [UsageOut(**interval) for interval in service.usage(session, principal, workspace_id)]


@router.post("/{workspace_id}/admin-access", summary="Administrators: state why you open someone's workspace",
             dependencies=[Requires(Permission.WORKSPACES_ADMIN)])  # fmt: skip
def admin_access(
    workspace_id: RecordId, body: AdminAccessIn, principal: CurrentPrincipal, session: DbSession
) -> AdminAccessOut:
    grant = access.grant_admin_access(session, principal, workspace_id, body.reason)
    return AdminAccessOut(
        workspace_id=workspace_id, expires_at=grant.expires_at, url=f"{paths.base_url(workspace_id)}open"
    )


@router.post(
    "/reconcile", summary="Run the reconciler now", dependencies=[Requires(Permission.WORKSPACES_ADMIN)]
)
async def run_reconciler(request: Request, settings: SettingsDep) -> dict[str, object]:
    return (await reconcile.reconcile(request.app.state.db, settings)).as_dict()


class PoolTargetOut(BaseModel):
    environment: str
    instance_type: str
    size: int
    ready: int
    starting: int


class PoolMemberOut(BaseModel):
    id: int
    environment: str
    instance_type: str
    state: str
    state_reason: str
    since: datetime


class PoolOut(BaseModel):
    enabled: bool
    disabled_because: str | None
    account: str = Field(description="The platform account pool members belong to (platform cost)")
    interval_seconds: float
    targets: list[PoolTargetOut]
    members: list[PoolMemberOut]


@router.get("/pool", summary="Administrators: the warm pool (targets and pre-started members)",
            dependencies=[Requires(Permission.WORKSPACES_ADMIN)])  # fmt: skip
def warm_pool(principal: CurrentPrincipal, session: DbSession, settings: SettingsDep) -> PoolOut:
    return PoolOut.model_validate(pool.status(session, principal, settings))


@router.post("/pool/refill", summary="Administrators: refill the warm pool now (one round)",
             dependencies=[Requires(Permission.WORKSPACES_ADMIN)])  # fmt: skip
async def refill_pool(request: Request, settings: SettingsDep) -> dict[str, int]:
    return await pool.refill(request.app.state.db, settings)
