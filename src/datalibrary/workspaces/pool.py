"""The warm pool: sandboxes started ahead of demand, so that a launch takes one over instead of
starting JupyterLab cold (as Coder's prebuilds and SageMaker's warm pools do).

A pool member is an ordinary workspace row owned by the platform's pool account
(``ACCOUNT``, disabled, cannot sign in), in state ``pooled``: its sandbox runs JupyterLab with
an empty placeholder home, no API token and no kernel, so it holds nothing of anyone and runs
no user code. Its usage intervals are the pool account's: platform cost, never a user's.

A launch (``service.request_create``) takes a matching member - same environment, instance
type and provisioner - with a compare-and-swap on the row: the owner becomes the user, the
pool's usage interval closes and the user's opens (usage starts at assignment). Executing
``starting`` then binds it (``SandboxProvisioner._assign``): the workspace's home is mounted
inside, the token is handed over once. A member that was taken is an ordinary workspace from
then on and never returns to the pool; terminating a member discards it.

``refill`` keeps each target's count (``targets``), discards dead, failed and surplus members,
and starts no member when the host lacks the memory. It runs in the background on one replica
(lease ``workspaces.pool``), every ``warm_pool_interval_seconds`` and right after a launch
took a member (``wake``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from datalibrary.audit import service as audit_service
from datalibrary.auth.permissions import Permission, Principal, require
from datalibrary.config import Settings
from datalibrary.db import Database
from datalibrary.db.base import utcnow
from datalibrary.workspaces import environments, jupyter, paths, service
from datalibrary.workspaces.models import Workspace
from datalibrary.workspaces.pool_members import ACCOUNT, STATE, account_id
from datalibrary.workspaces.provisioners import provisioner_class, resolve_name

log = logging.getLogger(__name__)
ACTOR = "system:warm-pool"
BACKENDS = {"sandbox"}  # where a running sandbox can be assigned (a home mounted into it)
# (environment, instance type) -> (monotonic time before which no member starts, last delay):
# a member that fails to start must not make the loop start (and audit) one every round
_backoff: dict[tuple[str, str], tuple[float, float]] = {}
BACKOFF_SECONDS = (30.0, 600.0)


@dataclass(frozen=True)
class Target:
    environment: str
    instance_type: str
    size: int
    product: str  # a product offering this pair (its idle timeout until a launch sets its own)


def disabled_because(settings: Settings) -> str | None:
    backend = resolve_name(settings.workspaces.provisioner)
    if backend not in BACKENDS:
        return f"the '{backend}' provisioner cannot take over a running sandbox; the pool needs 'sandbox'"
    if settings.workspaces.warm_pool_size == 0 and not any(settings.workspaces.warm_pool.values()):
        return "workspaces.warm_pool_size is 0"
    return None


def targets(settings: Settings) -> list[Target]:
    """(environment, instance type) -> size: ``warm_pool_size`` for the first instance type
    of every product, then the explicit ``warm_pool`` sizes ("environment/instance_type")."""
    if disabled_because(settings):
        return []
    catalog = service.catalog_of(settings)
    capabilities = provisioner_class(resolve_name(settings.workspaces.provisioner)).capabilities
    sizes: dict[tuple[str, str], int] = {}
    products: dict[tuple[str, str], str] = {}
    for product in catalog.products:
        for type_name in product.instance_types:
            itype = catalog.instance_type(type_name)
            required = list(product.requires) + (["gpu"] if itype.gpu else [])
            if capabilities.missing(required):
                continue
            products.setdefault((product.environment, type_name), product.name)
        first = (product.environment, product.instance_types[0])
        if first in products:
            sizes.setdefault(first, settings.workspaces.warm_pool_size)
    for key, size in settings.workspaces.warm_pool.items():
        environment, _, type_name = key.partition("/")
        if (environment, type_name) not in products:
            log.warning("warm pool: no product offers '%s' on this provisioner; ignored", key)
            continue
        sizes[(environment, type_name)] = size
    return [Target(e, t, size, products[(e, t)]) for (e, t), size in sorted(sizes.items()) if size > 0]


def _memory_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _members(session: Session, account: int | None) -> list[Workspace]:
    """The pool's live members, oldest first (none before the account exists)."""
    if account is None:
        return []
    query = select(Workspace).where(Workspace.owner_id == account, Workspace.state != "terminated")
    return list(session.scalars(query.order_by(Workspace.id)))


async def refill(db: Database, settings: Settings) -> dict[str, int]:
    """One round: discard what must go, start at most one member per short target."""
    wanted = targets(settings)
    with db.session() as session:
        account = account_id(session, create=bool(wanted))
        members = _members(session, account)
    discard: list[int] = [m.id for m in members if m.state in ("failed", "stopped", "paused")]
    counts: dict[tuple[str, str], list[Workspace]] = {}
    for member in members:
        if member.state in (STATE, "starting"):
            counts.setdefault((member.environment, member.instance_type), []).append(member)
    sizes = {(t.environment, t.instance_type): t for t in wanted}
    for key, group in counts.items():
        keep = sizes[key].size if key in sizes else 0
        surplus = [m for m in group if m.state == STATE][::-1][: max(0, len(group) - keep)]
        discard += [m.id for m in surplus]
    for workspace_id in discard:
        await _discard(db, settings, workspace_id, "discarded by the warm pool")
    started = 0
    catalog = service.catalog_of(settings)
    for target in wanted:
        key = (target.environment, target.instance_type)
        if len(counts.get(key, [])) >= target.size:
            continue
        if time.monotonic() < _backoff.get(key, (0.0, 0.0))[0]:
            continue
        environment = catalog.environment(target.environment)
        if not environments.is_built(paths.environments_dir(settings), environment):
            continue  # the first launch builds it; the pool never does
        itype = catalog.instance_type(target.instance_type)
        available = _memory_available()
        if available is not None and available < 2 * itype.memory_bytes:
            log.info("warm pool: not starting a %s member, the host is short of memory", target.instance_type)
            continue
        workspace_id = _create_member(db, settings, target)
        state = await service.execute(db, settings, workspace_id)
        if state == STATE:
            _backoff.pop(key, None)
            await _warm_up(db, settings, workspace_id)
        else:
            delay = min(_backoff.get(key, (0.0, BACKOFF_SECONDS[0] / 2))[1] * 2, BACKOFF_SECONDS[1])
            _backoff[key] = (time.monotonic() + delay, delay)
            log.warning("warm pool: member %s ended %s; next try in %.0f s", workspace_id, state, delay)
        started += 1
    return {"started": started, "discarded": len(discard)}


# What JupyterLab's front end asks first: answering each once makes the server import and
# cache what they need (templates, settings schemas, kernel specs, language packs) before a
# person waits for it. Read-only calls, no kernel, no user data.
WARM_UP = ("lab", "lab/api/settings", "api/kernelspecs", "lab/api/translations", "api/contents")


async def _warm_up(db: Database, settings: Settings, workspace_id: int) -> None:
    with db.session() as session:
        workspace = session.get(Workspace, workspace_id)
        if workspace is None:
            return
        secret = paths.jupyter_token(settings, workspace)
    base = paths.base_url(workspace_id)
    try:
        async with jupyter.client(paths.socket_path(settings, workspace_id), secret, timeout=30) as http:
            for path in WARM_UP:
                await http.get(f"{base}{path}")
    except Exception as exc:  # a member that does not answer is discarded by the next round
        log.warning("warm pool: member %s did not answer its warm-up: %s", workspace_id, exc)


def _create_member(db: Database, settings: Settings, target: Target) -> int:
    catalog = service.catalog_of(settings)
    with db.session() as session:
        now = utcnow()
        workspace = Workspace(
            owner_id=account_id(session),
            project=None,
            product=target.product,
            instance_type=target.instance_type,
            environment=target.environment,
            provisioner=resolve_name(settings.workspaces.provisioner),
            state="starting",
            state_reason="warm pool",
            state_changed_at=now,
            created_at=now,
            last_activity_at=now,
            idle_timeout_minutes=catalog.product(target.product).idle_timeout_minutes,
            provisioner_state={},
        )
        session.add(workspace)
        session.flush()
        service._open_usage(session, workspace, now)
        audit_service.record(
            session, actor=ACTOR, action="workspace.pool.start", target=f"workspace:{workspace.id}",
            details={"environment": target.environment, "instance_type": target.instance_type},
        )  # fmt: skip
        return workspace.id


async def _discard(db: Database, settings: Settings, workspace_id: int, reason: str) -> None:
    with db.session() as session:
        workspace = session.get(Workspace, workspace_id)
        if workspace is None or workspace.state in ("terminated", "terminating"):
            return
        service._transition(session, workspace, "terminating", reason)
        audit_service.record(
            session, actor=ACTOR, action="workspace.pool.discard", target=f"workspace:{workspace_id}"
        )
    await service.execute(db, settings, workspace_id)


# --- what administrators see ------------------------------------------------------------------


def status(session: Session, principal: Principal, settings: Settings) -> dict[str, object]:
    """The pool's configuration, its members and, per target, how many are ready."""
    require(principal, Permission.WORKSPACES_ADMIN)
    account = account_id(session, create=False)
    members = _members(session, account)
    rows = []
    for target in targets(settings):
        pair = (target.environment, target.instance_type)
        mine = [m for m in members if (m.environment, m.instance_type) == pair]
        rows.append(
            {
                "environment": target.environment,
                "instance_type": target.instance_type,
                "size": target.size,
                "ready": sum(1 for m in mine if m.state == STATE),
                "starting": sum(1 for m in mine if m.state == "starting"),
            }
        )
    return {
        "enabled": disabled_because(settings) is None,
        "disabled_because": disabled_because(settings),
        "account": ACCOUNT,
        "interval_seconds": settings.workspaces.warm_pool_interval_seconds,
        "targets": rows,
        "members": [
            {
                "id": m.id,
                "environment": m.environment,
                "instance_type": m.instance_type,
                "state": m.state,
                "state_reason": m.state_reason,
                "since": m.state_changed_at,
            }
            for m in members
        ],
    }
