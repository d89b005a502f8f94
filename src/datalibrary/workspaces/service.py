"""Workspace lifecycle: requests (checked, persisted) and their execution by a provisioner.

A verb is two steps. ``request_*`` runs in the caller's transaction: it checks permissions,
quotas and the catalog, and moves the workspace into a transitional state (``starting``,
``stopping``, ...). ``execute`` then does the work with the provisioner and writes the final
state. The API runs ``execute`` in the background, the CLI waits for it, and the reconciler
runs it again for a transitional state that nobody finished (a crash, a restart). Every write
is a compare-and-swap on the row's version, so replicas never overwrite each other.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tarfile
from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from datalibrary.audit import service as audit_service
from datalibrary.auth import service as auth_service
from datalibrary.auth.models import ApiToken, Project, User
from datalibrary.auth.permissions import Permission, Principal, require
from datalibrary.config import Settings, reveal
from datalibrary.costs import checks as costs_checks
from datalibrary.db import Database
from datalibrary.db.base import utcnow
from datalibrary.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from datalibrary.workspaces import environments, paths, pool_members
from datalibrary.workspaces.models import Workspace, WorkspaceAdminAccess, WorkspaceUsage
from datalibrary.workspaces.products import Catalog, InstanceType, Product, load_catalog
from datalibrary.workspaces.provisioners import (
    Pausable,
    Provisioner,
    WorkspaceSpec,
    provisioner_class,
    resolve_name,
)

log = logging.getLogger(__name__)

TRANSITIONAL = {"starting", "stopping", "pausing", "resuming", "terminating"}
# verb -> (states it may start from, transitional state)
VERBS: dict[str, tuple[set[str], str]] = {
    "start": ({"stopped", "failed"}, "starting"),
    "stop": ({"running", "paused", "starting", "resuming", "pausing", "failed"}, "stopping"),
    "pause": ({"running"}, "pausing"),
    "resume": ({"paused"}, "resuming"),
    "terminate": (
        {"starting", "running", "stopping", "stopped", "paused", "pausing", "resuming", "failed", "pooled"},
        "terminating",
    ),
}
TOKEN_SCOPE_PREFIX = "workspace:"  # noqa: S105 - a scope name, not a secret
_in_flight: set[int] = set()  # executions running in this process (the reconciler skips them)


def catalog_of(settings: Settings) -> Catalog:
    return load_catalog(settings.workspaces.catalog)


def _refuse_workspace_tokens(principal: Principal) -> None:
    """A notebook's own token must not launch or control workspaces."""
    if principal.token_scope is not None:
        raise PermissionDenied(
            "a workspace's token cannot manage workspaces; use the console or your own token"
        )


# --- reading --------------------------------------------------------------------------


def get(session: Session, principal: Principal, workspace_id: int) -> Workspace:
    """A workspace its owner (or a workspaces admin) may see; others get 'not found'."""
    require(principal, Permission.WORKSPACES_OWN)
    workspace = session.get(Workspace, workspace_id)
    scope = principal.workspace_scope
    if (
        workspace is None
        or (scope is not None and scope != workspace_id)  # a notebook's token sees its own only
        or (workspace.owner_id != principal.user_id and not principal.can(Permission.WORKSPACES_ADMIN))
    ):
        raise NotFound(f"no workspace with id {workspace_id}")
    return workspace


def list_workspaces(
    session: Session, principal: Principal, *, everyone: bool = False, include_terminated: bool = False
) -> list[Workspace]:
    require(principal, Permission.WORKSPACES_OWN)
    query = select(Workspace).order_by(Workspace.id)
    if principal.workspace_scope is not None:
        query = query.where(Workspace.id == principal.workspace_scope)
    if everyone:
        require(principal, Permission.WORKSPACES_ADMIN)
    else:
        query = query.where(Workspace.owner_id == principal.user_id)
    if not include_terminated:
        query = query.where(Workspace.state != "terminated")
    return list(session.scalars(query))


def owner_names(session: Session, workspaces: Iterable[Workspace]) -> dict[int, str]:
    ids = {w.owner_id for w in workspaces}
    if not ids:
        return {}
    return dict(session.execute(select(User.id, User.name).where(User.id.in_(ids))).all())  # type: ignore[arg-type]


# --- requests ---------------------------------------------------------------------------


def request_create(
    session: Session,
    principal: Principal,
    settings: Settings,
    *,
    product: str,
    instance_type: str,
    user: str | None = None,
    project: str | None = None,
) -> Workspace:
    """Validate a launch and persist it as ``starting``; ``execute`` provisions it."""
    require(principal, Permission.WORKSPACES_OWN)
    _refuse_workspace_tokens(principal)
    if user and user != principal.name:
        require(principal, Permission.WORKSPACES_ADMIN)
        owner = auth_service.get_user(session, user)
        owner_principal = auth_service.principal_for(owner)
    else:
        if principal.user_id is None:
            raise InvalidInput("name the workspace's owner (--user)", field="user")
        owner = session.get(User, principal.user_id)
        if owner is None:
            raise NotFound("the calling user no longer exists")
        owner_principal = principal
    catalog = catalog_of(settings)
    chosen, itype = catalog.choose(owner_principal, product, instance_type)
    if project is not None:
        project = project.strip()
        if not project or len(project) > 64:
            raise InvalidInput("a project name has 1-64 characters", field="project")
        # for everyone, administrators included: usage is billed to the project
        if session.scalar(select(Project.id).where(Project.name == project)) is None:
            raise InvalidInput(f"no project named '{project}'", field="project")
        if project not in owner_principal.projects:
            raise PermissionDenied(f"'{owner.name}' is not a member of project '{project}'")
    costs_checks.check_launch(session, settings, owner.name, project)
    backend = resolve_name(settings.workspaces.provisioner)
    required = list(chosen.requires) + (["gpu"] if itype.gpu else [])
    missing = provisioner_class(backend).capabilities.missing(required)
    if missing:
        raise InvalidInput(
            f"product '{chosen.name}' on '{itype.name}' requires {missing}, which the '{backend}' "
            "provisioner cannot enforce; ask an administrator for a provisioner that can",
            field="product",
        )
    count = session.scalar(
        select(func.count())
        .select_from(Workspace)
        .where(Workspace.owner_id == owner.id, Workspace.state != "terminated")
    )
    if (count or 0) >= settings.workspaces.max_per_user:
        raise Conflict(
            f"'{owner.name}' already has {count} workspaces (the quota is {settings.workspaces.max_per_user}); "  # noqa: E501
            "terminate one first"
        )
    taken = _take_from_pool(session, owner, chosen, itype, backend, project, principal)
    if taken is not None:
        return taken
    now = utcnow()
    workspace = Workspace(
        owner_id=owner.id,
        project=project,
        product=chosen.name,
        instance_type=itype.name,
        environment=chosen.environment,
        provisioner=backend,
        state="starting",
        state_reason=f"created by {principal.name}",
        state_changed_at=now,
        created_at=now,
        last_activity_at=now,
        idle_timeout_minutes=chosen.idle_timeout_minutes,
        provisioner_state={},
    )
    session.add(workspace)
    session.flush()
    _open_usage(session, workspace, now)
    audit_service.record(
        session,
        actor=principal,
        action="workspace.create",
        target=f"workspace:{workspace.id}",
        details={
            "product": chosen.name,
            "instance_type": itype.name,
            "owner": owner.name,
            "project": project,
        },
    )
    return workspace


def _take_from_pool(
    session: Session,
    owner: User,
    product: Product,
    itype: InstanceType,
    backend: str,
    project: str | None,
    principal: Principal,
) -> Workspace | None:
    """A warm-pool member for this launch, now the owner's (``pool``); None if none is ready.
    Each candidate is taken with a compare-and-swap in a savepoint: two launches (or replicas)
    racing for one member never both get it."""
    account = pool_members.account_id(session, create=False)
    if account is None:
        return None
    candidates = session.scalars(
        select(Workspace)
        .where(
            Workspace.owner_id == account,
            Workspace.state == pool_members.STATE,
            Workspace.environment == product.environment,
            Workspace.instance_type == itype.name,
            Workspace.provisioner == backend,
        )
        .order_by(Workspace.id)
        .limit(3)
    ).all()
    for workspace in candidates:
        try:
            with session.begin_nested():
                workspace.owner_id = owner.id  # before the transition: the new interval is the owner's
                workspace.project = project
                workspace.product = product.name
                workspace.idle_timeout_minutes = product.idle_timeout_minutes
                _transition(session, workspace, "starting", f"created by {principal.name} (warm pool)")
        except Conflict:
            continue
        # whatever was granted on the member while it was nobody's never opens the user's workspace
        session.execute(delete(WorkspaceAdminAccess).where(WorkspaceAdminAccess.workspace_id == workspace.id))
        audit_service.record(
            session,
            actor=principal,
            action="workspace.create",
            target=f"workspace:{workspace.id}",
            details={
                "product": product.name, "instance_type": itype.name, "owner": owner.name,
                "project": project, "warm_pool": True,
            },
        )  # fmt: skip
        pool_members.wake()
        return workspace
    return None


def request(
    session: Session, principal: Principal, workspace_id: int, verb: str, *, reason: str = ""
) -> Workspace:
    """Move a workspace into the transitional state of ``verb`` (start, stop, pause, ...)."""
    if verb not in VERBS:
        raise InvalidInput(f"unknown action '{verb}'; one of {sorted(VERBS)}")
    _refuse_workspace_tokens(principal)
    workspace = get(session, principal, workspace_id)
    allowed, transitional = VERBS[verb]
    if workspace.state == transitional:
        return workspace  # already on its way: idempotent
    if workspace.state not in allowed:
        raise Conflict(f"workspace {workspace.id} is {workspace.state}; it cannot {verb} now")
    if verb in ("start", "resume"):  # a spent budget refuses new running time
        owner = session.get(User, workspace.owner_id)
        costs_checks.check_launch(session, None, owner.name if owner else None, workspace.project)
    if verb in ("pause", "resume") and not issubclass(_provisioner_type(workspace), Pausable):
        raise Conflict(f"the '{workspace.provisioner}' provisioner cannot {verb}")
    _transition(session, workspace, transitional, reason or f"{verb} by {principal.name}")
    audit_service.record(
        session, actor=principal, action=f"workspace.{verb}", target=f"workspace:{workspace.id}"
    )
    return workspace


def usage(session: Session, principal: Principal, workspace_id: int) -> list[dict[str, object]]:
    """The state intervals of a workspace the caller may see (an open one runs until now)."""
    get(session, principal, workspace_id)
    rows = session.scalars(
        select(WorkspaceUsage).where(WorkspaceUsage.workspace_id == workspace_id).order_by(WorkspaceUsage.id)
    )
    now = utcnow()
    return [
        {
            "state": r.state,
            "instance_type": r.instance_type,
            "project": r.project,
            "started_at": r.started_at,
            "ended_at": r.ended_at,
            "seconds": int(((r.ended_at or now) - r.started_at).total_seconds()),
        }  # fmt: skip
        for r in rows
    ]


def stop_disabled_owners(session: Session) -> list[int]:
    """Workspaces of disabled users stop (homes kept): they must not keep running and billing.
    Called right after a user is disabled and by every reconciler pass (the catch-all)."""
    rows = session.scalars(
        select(Workspace)
        .join(User, User.id == Workspace.owner_id)
        .where(User.is_active.is_(False), Workspace.state.in_(VERBS["stop"][0]))
        .where(User.name != pool_members.ACCOUNT)  # the warm pool's account is disabled by design
    ).all()
    stopped = []
    for workspace in rows:
        _transition(session, workspace, "stopping", "owner disabled")
        audit_service.record(
            session, actor="system:workspaces", action="workspace.stop", target=f"workspace:{workspace.id}",
            details={"reason": "owner disabled"},
        )  # fmt: skip
        stopped.append(workspace.id)
    return stopped


def _provisioner_type(workspace: Workspace) -> type[Provisioner]:
    return provisioner_class(workspace.provisioner)


# --- state and usage ----------------------------------------------------------------------


def _open_usage(session: Session, workspace: Workspace, at) -> None:  # type: ignore[no-untyped-def]
    if workspace.state == "terminated":
        return
    session.add(
        WorkspaceUsage(
            workspace_id=workspace.id,
            user_id=workspace.owner_id,
            project=workspace.project,
            instance_type=workspace.instance_type,
            state=workspace.state,
            started_at=at.replace(microsecond=0),
        )
    )


def _transition(session: Session, workspace: Workspace, state: str, reason: str) -> None:
    """Change state (compare-and-swap on flush) and close/open the usage interval."""
    now = utcnow()
    for usage in session.scalars(
        select(WorkspaceUsage).where(
            WorkspaceUsage.workspace_id == workspace.id, WorkspaceUsage.ended_at.is_(None)
        )
    ):
        usage.ended_at = now.replace(microsecond=0)
    workspace.state = state
    workspace.state_reason = reason[:500]
    workspace.state_changed_at = now
    if state == "running":
        workspace.last_activity_at = now
        workspace.idle_warning_at = None
    try:
        session.flush()
    except StaleDataError as exc:
        raise Conflict(f"workspace {workspace.id} changed meanwhile; reload and retry") from exc
    _open_usage(session, workspace, now)


# --- execution ----------------------------------------------------------------------------


def build_provisioner(
    settings: Settings, workspace: Workspace, token: str | None = None, pooled: bool = False
) -> Provisioner:
    catalog = catalog_of(settings)
    itype = catalog.instance_type(workspace.instance_type)
    environment = catalog.environment(workspace.environment)
    env = {
        "DATALIBRARY_WORKSPACE_ID": str(workspace.id),
        "DATALIBRARY_URL": f"unix://{paths.api_socket(settings)}",
    }
    if token:
        env["DATALIBRARY_TOKEN"] = token
    spec = WorkspaceSpec(
        workspace_id=workspace.id,
        owner=str(workspace.owner_id),
        cpus=itype.vcpu,
        memory_bytes=itype.memory_bytes,
        environment_dir=environments.environment_path(paths.environments_dir(settings), environment),
        home_dir=paths.home_dir(settings, workspace.id),
        run_dir=paths.run_dir(settings, workspace.id),
        sdk_dir=paths.staged_sdk(settings),
        api_socket_dir=paths.api_socket_dir(settings),
        base_url=paths.base_url(workspace.id),
        # needed to start and to talk to JupyterLab; stopping works without (no key, no token)
        jupyter_token=paths.jupyter_token(settings, workspace) if settings.secret_key else "",
        env=env,
        installation=paths.installation_id(settings),
        backend=settings.workspaces.backend_options(),
        max_processes=itype.max_processes,
        host_uid=settings.workspaces.sandbox_uid_base + workspace.id,
        pooled=pooled,
    )
    provisioner = provisioner_class(workspace.provisioner)(spec)
    provisioner.load_state(dict(workspace.provisioner_state or {}))
    return provisioner


def _issue_token(session: Session, workspace: Workspace) -> str:
    """A fresh workspace-scoped token for this run; the previous one is revoked."""
    _revoke_token(session, workspace)
    owner = session.get(User, workspace.owner_id)
    assert owner is not None
    issued = auth_service.create_token(
        session,
        Principal.system("workspaces"),
        owner.name,
        name=f"workspace {workspace.id}",
        expires_days=30,
        scope=f"{TOKEN_SCOPE_PREFIX}{workspace.id}",
    )
    workspace.token_id = issued.token.id
    return issued.secret


def _revoke_token(session: Session, workspace: Workspace) -> None:
    if workspace.token_id:
        token = session.get(ApiToken, workspace.token_id)
        if token is not None and token.revoked_at is None:
            token.revoked_at = utcnow()
        workspace.token_id = None


async def execute(db: Database, settings: Settings, workspace_id: int) -> str:
    """Carry out the transitional state the workspace is in; return the resulting state."""
    if workspace_id in _in_flight:
        return "in-flight"
    _in_flight.add(workspace_id)
    try:
        result = await _execute(db, settings, workspace_id)
        for _ in range(3):  # moved meanwhile (a stop requested while starting): carry that out too
            if result not in TRANSITIONAL:
                break
            result = await _execute(db, settings, workspace_id)
        return result
    finally:
        _in_flight.discard(workspace_id)


async def _execute(db: Database, settings: Settings, workspace_id: int) -> str:
    with db.session() as session:
        workspace = session.get(Workspace, workspace_id)
        if workspace is None or workspace.state not in TRANSITIONAL:
            return workspace.state if workspace else "missing"
        state = workspace.state
        pooled = state == "starting" and pool_members.is_member(session, workspace)  # no one's: no token
        token = _issue_token(session, workspace) if state == "starting" and not pooled else None
    try:
        provisioner = build_provisioner(settings, workspace, token, pooled=pooled)
    except Exception as exc:  # a broken catalog or configuration: say so, never stay transitional
        detail = getattr(exc, "detail", None) or str(exc) or type(exc).__name__
        log.warning("workspace %s: %s failed: %s", workspace_id, state, detail)
        return _finish(db, workspace_id, state, "failed", f"{state} failed: {detail}", None)
    catalog = catalog_of(settings)
    try:
        if state == "starting":
            paths.jupyter_token(settings, workspace)  # no secret key: a clear reason, at once
            environment = catalog.environment(workspace.environment)
            await asyncio.to_thread(
                environments.build,
                paths.environments_dir(settings),
                environment,
                python=settings.workspaces.python,
                index_url=reveal(settings.workspaces.index_url),
            )
            await asyncio.wait_for(provisioner.start(), settings.workspaces.start_timeout_seconds)
            final, reason = ("pooled", "warm pool: ready") if pooled else ("running", "ready")
        elif state == "stopping":
            await provisioner.stop()
            final, reason = "stopped", workspace.state_reason
        elif state in ("pausing", "resuming"):
            assert isinstance(provisioner, Pausable)
            await (provisioner.pause() if state == "pausing" else provisioner.resume())
            final, reason = ("paused", "paused") if state == "pausing" else ("running", "resumed")
        else:  # terminating
            await provisioner.stop()
            await asyncio.to_thread(_remove_home, settings, workspace)
            final, reason = "terminated", workspace.state_reason
    except Exception as exc:  # the workspace shows the error; nothing stays half-started
        log.warning("workspace %s: %s failed: %s", workspace_id, state, exc)
        detail = getattr(exc, "detail", None) or str(exc) or type(exc).__name__
        try:  # noqa: SIM105
            await provisioner.stop()
        except Exception:  # noqa: S110 - best effort cleanup, the failure is reported below
            pass
        final, reason = "failed", f"{state} failed: {detail}"
    return _finish(db, workspace_id, state, final, reason, provisioner)


def _finish(
    db: Database, workspace_id: int, state: str, final: str, reason: str, provisioner: Provisioner | None
) -> str:
    with db.session() as session:
        workspace = session.get(Workspace, workspace_id)
        if workspace is None:
            return "missing"
        if workspace.state != state:  # someone else moved it meanwhile; theirs wins
            return workspace.state
        if provisioner is not None:
            workspace.provisioner_state = provisioner.get_state()
        if final in ("stopped", "terminated", "failed"):
            _revoke_token(session, workspace)
        _transition(session, workspace, final, reason)
        _align_usage(session, workspace, provisioner, final)
        audit_service.record(
            session,
            actor="system:workspaces",
            action=f"workspace.{final}",
            target=f"workspace:{workspace.id}",
            outcome="failure" if final == "failed" else "success",
        )
        return final


def _align_usage(session: Session, workspace: Workspace, provisioner: Provisioner, final: str) -> None:
    """Backends that know when the work really ran (a batch job's StartTime/EndTime) move the
    boundary between the transitional interval and the new one to that time."""
    times = getattr(provisioner, "run_times", None)
    if times is None or final not in ("running", "stopped"):
        return
    started, ended = times()
    at = started if final == "running" else ended
    if at is None:
        return
    at = at.replace(microsecond=0)
    rows = session.scalars(
        select(WorkspaceUsage)
        .where(WorkspaceUsage.workspace_id == workspace.id)
        .order_by(WorkspaceUsage.id.desc())
        .limit(2)
    ).all()
    session.flush()
    if len(rows) == 2 and rows[0].state == final and rows[0].ended_at is None and rows[1].started_at <= at:
        rows[1].ended_at = at
        rows[0].started_at = at


def _inert(member: tarfile.TarInfo) -> tarfile.TarInfo:
    """No setuid/setgid bit made inside a sandbox survives into the archive."""
    member.mode &= ~0o6000
    return member


def _remove_home(settings: Settings, workspace: Workspace) -> None:
    home = paths.home_dir(settings, workspace.id)
    if settings.workspaces.archive_on_terminate and home.exists():
        target = paths.archive_path(settings, workspace.id)
        target.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(target, "w:gz") as archive:
            archive.add(home, arcname=f"workspace-{workspace.id}", filter=_inert)
        target.chmod(0o600)
    shutil.rmtree(home, ignore_errors=True)
    shutil.rmtree(paths.run_dir(settings, workspace.id), ignore_errors=True)


async def run_to_completion(db: Database, settings: Settings, workspace_id: int) -> str:
    """What the CLI does: execute until the workspace leaves its transitional state."""
    return await execute(db, settings, workspace_id)


def stuck_since(settings: Settings) -> timedelta:
    return timedelta(seconds=settings.workspaces.stuck_after_seconds)
