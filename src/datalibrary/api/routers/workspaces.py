"""Workspaces: the catalog, launching and the lifecycle verbs, usage, admin access.

Verbs answer 202 with the workspace in its transitional state; the work runs in the
background and the state changes in the database (poll ``GET /workspaces/{id}``)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, BackgroundTasks, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import select

from datalibrary.api.deps import CurrentPrincipal, DbSession, Requires, SettingsDep
from datalibrary.api.fields import AccountName
from datalibrary.auth.permissions import Permission
from datalibrary.bounds import RecordId
from datalibrary.costs import service as cost_service
from datalibrary.workspaces import access, history, idle, paths, pool, reconcile, service
from datalibrary.workspaces.catalog import Environment, InstanceType, Product
from datalibrary.workspaces.models import Workspace, WorkspaceUsage
from datalibrary.workspaces.provisioners import provisioner_class, resolve_name

router = APIRouter(prefix="/workspaces", tags=["workspaces"])


class ProductOut(Product):
    launchable: bool = True
    refused_because: str | None = None


class InstanceTypeOut(InstanceType):
    available: bool = True
    # why you cannot launch it now: over your quota or budget, not allowed for your roles,
    # GPU not available on this host
    unavailable_because: str | None = None


class CatalogOut(BaseModel):
    currency: str
    provisioner: str
    isolated: bool
    enforces: list[str]
    instance_types: list[InstanceTypeOut]
    environments: list[Environment]
    products: list[ProductOut]
    # per instance type: price_per_hour and working_day (decimal strings) from the price book
    launch_prices: dict[str, dict[str, str]] = {}


class CreateIn(BaseModel):
    product: str = Field(min_length=1, max_length=64)
    instance_type: str = Field(min_length=1, max_length=64)
    user: str | None = Field(
        None, max_length=64, description="Owner; others than yourself need workspaces.admin"
    )
    project: AccountName | None = None


class WorkspaceOut(BaseModel):
    id: int
    owner: str
    project: str | None
    product: str
    instance_type: str
    environment: str
    provisioner: str
    isolated: bool
    state: str
    state_reason: str
    state_changed_at: datetime
    created_at: datetime
    price_per_hour: float
    currency: str
    url: str
    idle_timeout_minutes: int
    last_activity_at: datetime
    idle_warning_at: datetime | None
    idle_stop_at: datetime | None


class HistoryOut(BaseModel):
    id: int
    owner: str
    project: str | None
    product: str
    instance_type: str
    created_at: datetime
    terminated_at: datetime
    state_reason: str
    running_seconds: int
    cost: str  # decimal, in currency: compute while running + home storage while stopped
    currency: str


class UsageOut(BaseModel):
    state: str
    instance_type: str
    project: str | None
    started_at: datetime
    ended_at: datetime | None
    seconds: int


class AdminAccessIn(BaseModel):
    reason: str = Field(min_length=10, max_length=1000)


class AdminAccessOut(BaseModel):
    workspace_id: int
    expires_at: datetime
    url: str


def workspace_out(workspace: Workspace, owner: str, settings) -> WorkspaceOut:  # type: ignore[no-untyped-def]
    catalog = service.catalog_of(settings)
    try:
        price = catalog.instance_type(workspace.instance_type).price_per_hour
    except Exception:
        price = 0.0
    try:
        isolated = provisioner_class(workspace.provisioner).isolated
    except Exception:
        isolated = False
    return WorkspaceOut(
        id=workspace.id,
        owner=owner,
        project=workspace.project,
        product=workspace.product,
        instance_type=workspace.instance_type,
        environment=workspace.environment,
        provisioner=workspace.provisioner,
        isolated=isolated,
        state=workspace.state,
        state_reason=workspace.state_reason,
        state_changed_at=workspace.state_changed_at,
        created_at=workspace.created_at,
        price_per_hour=price,
        currency=catalog.currency,
        url=f"{paths.base_url(workspace.id)}open",
        idle_timeout_minutes=workspace.idle_timeout_minutes,
        last_activity_at=workspace.last_activity_at,
        idle_warning_at=workspace.idle_warning_at,
        idle_stop_at=idle.stop_due_at(workspace) if workspace.idle_warning_at else None,
    )


def _out(session, workspace: Workspace, settings) -> WorkspaceOut:  # type: ignore[no-untyped-def]
    return workspace_out(
        workspace, service.owner_names(session, [workspace]).get(workspace.owner_id, "?"), settings
    )


@router.get("/catalog", summary="Instance types, environments and the products you may launch",
            dependencies=[Requires(Permission.WORKSPACES_OWN)])  # fmt: skip
def catalog(principal: CurrentPrincipal, settings: SettingsDep, session: DbSession) -> CatalogOut:
    data = service.catalog_of(settings)
    backend = resolve_name(settings.workspaces.provisioner)
    cls = provisioner_class(backend)
    products = []
    for product in data.visible_to(principal):
        needs = set(product.requires)
        if all(data.instance_type(t).gpu for t in product.instance_types):
            needs.add("gpu")
        missing = cls.capabilities.missing(sorted(needs))
        products.append(
            ProductOut(
                **product.model_dump(),
                launchable=not missing,
                refused_because=f"the '{backend}' provisioner cannot enforce {missing}" if missing else None,
            )
        )
    reasons = history.unavailable_types(session, principal, settings)
    return CatalogOut(
        currency=data.currency,
        provisioner=backend,
        isolated=cls.isolated,
        enforces=sorted(cls.capabilities.enforced()),
        instance_types=[
            InstanceTypeOut(
                **t.model_dump(),
                available=reasons.get(t.name) is None,
                unavailable_because=reasons.get(t.name),
            )
            for t in data.instance_types
        ],
        environments=data.environments,
        products=products,
        launch_prices=cost_service.launch_prices(session, settings),
    )


@router.get("", summary="Your workspaces (all=true: everyone's, for workspaces admins)",
            dependencies=[Requires(Permission.WORKSPACES_OWN)])  # fmt: skip
def list_workspaces(
    principal: CurrentPrincipal, session: DbSession, settings: SettingsDep, all: bool = False
) -> list[WorkspaceOut]:
    rows = service.list_workspaces(session, principal, everyone=all)
    owners = service.owner_names(session, rows)
    return [workspace_out(w, owners.get(w.owner_id, "?"), settings) for w in rows]


@router.get("/history", summary="Terminated workspaces: running time and cost (all=true: everyone's)",
            dependencies=[Requires(Permission.WORKSPACES_OWN)])  # fmt: skip
def workspace_history(
    principal: CurrentPrincipal,
    session: DbSession,
    settings: SettingsDep,
    all: bool = False,
    limit: int = Query(100, ge=1, le=history.MAX_HISTORY),
) -> list[HistoryOut]:
    return [history_out(e) for e in history.history(session, principal, settings, everyone=all, limit=limit)]


def history_out(ended: history.Ended) -> HistoryOut:
    w = ended.workspace
    return HistoryOut(
        id=w.id, owner=ended.owner, project=w.project, product=w.product, instance_type=w.instance_type,
        created_at=w.created_at, terminated_at=ended.terminated_at, state_reason=w.state_reason,
        running_seconds=ended.running_seconds, cost=str(ended.cost), currency=ended.currency,
    )  # fmt: skip


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
    service.get(session, principal, workspace_id)
    rows = session.scalars(
        select(WorkspaceUsage).where(WorkspaceUsage.workspace_id == workspace_id).order_by(WorkspaceUsage.id)
    )
    now = datetime.now().astimezone()
    return [
        UsageOut(
            state=r.state,
            instance_type=r.instance_type,
            project=r.project,
            started_at=r.started_at,
            ended_at=r.ended_at,
            seconds=int(((r.ended_at or now) - r.started_at).total_seconds()),
        )  # fmt: skip
        for r in rows
    ]


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
