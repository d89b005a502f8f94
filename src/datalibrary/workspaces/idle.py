"""Idle stop. A workspace is idle only when all of these hold for its product's idle timeout:
no kernel executing, no open connection (kernel or terminal websockets), no terminal or
server activity newer than the last check, and CPU below ``workspaces.idle_cpu_threshold``
(a fraction of one core). A busy kernel with no browser attached is therefore *not* idle, and
neither is a process crunching numbers with no kernel at all (CPU).

The owner is warned (``idle_warning_at``, shown in the console) ``idle_warning_minutes``
before the stop. All of it is kept in the workspace's row, so any replica can run the check.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from datalibrary.audit import service as audit_service
from datalibrary.config import Settings
from datalibrary.db import Database
from datalibrary.db.base import utcnow
from datalibrary.workspaces import jupyter, paths, service, upstream
from datalibrary.workspaces.models import Workspace

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Verdict:
    workspace_id: int
    active: bool
    signals: dict[str, object]
    action: str  # none | warned | stopped


def is_active(
    activity: jupyter.Activity | None, cpu_fraction: float | None, since: datetime, threshold: float
) -> tuple[bool, dict[str, object]]:
    """Combine the signals; any one of them means the workspace is in use."""
    signals: dict[str, object] = {"cpu_fraction": cpu_fraction}
    busy = False
    if activity is not None:
        signals |= activity.as_dict()
        busy = (
            activity.busy_kernels > 0
            or activity.connections > 0
            or (activity.last_activity is not None and activity.last_activity > since)
        )
    if cpu_fraction is not None and cpu_fraction >= threshold:
        busy = True
    return busy, signals


async def check(db: Database, settings: Settings, now: datetime | None = None) -> list[Verdict]:
    """Check every running workspace once; warn or stop the idle ones."""
    now = now or utcnow()
    verdicts: list[Verdict] = []
    with db.session() as session:
        rows = list(session.scalars(select(Workspace).where(Workspace.state == "running")))
    for workspace in rows:
        try:
            verdicts.append(await _check_one(db, settings, workspace, now))
        except Exception as exc:
            log.warning("idle check of workspace %s failed: %s", workspace.id, exc)
    return verdicts


async def _check_one(db: Database, settings: Settings, workspace: Workspace, now: datetime) -> Verdict:
    provisioner = service.build_provisioner(settings, workspace)
    cpu = provisioner.cpu_seconds()
    cpu_fraction = None
    if cpu is not None and workspace.cpu_seconds is not None and workspace.cpu_sampled_at is not None:
        elapsed = (now - workspace.cpu_sampled_at).total_seconds()
        if elapsed > 0:
            cpu_fraction = max(0.0, cpu - workspace.cpu_seconds) / elapsed
    activity = await jupyter.activity(
        lambda: upstream.for_workspace(settings, workspace.id, workspace.provisioner_state),
        paths.base_url(workspace.id),
        paths.jupyter_token(settings, workspace),
    )
    active, signals = is_active(
        activity, cpu_fraction, workspace.last_activity_at, settings.workspaces.idle_cpu_threshold
    )
    timeout = timedelta(minutes=workspace.idle_timeout_minutes)
    warning = timedelta(minutes=settings.workspaces.idle_warning_minutes)
    action = "none"
    with db.session() as session:
        row = session.get(Workspace, workspace.id)
        if row is None or row.state != "running":
            return Verdict(workspace.id, active, signals, "none")
        row.cpu_seconds = cpu
        row.cpu_sampled_at = now
        if active:
            row.last_activity_at = now
            row.idle_warning_at = None
        else:
            idle_for = now - row.last_activity_at
            if idle_for >= timeout:
                service._transition(
                    session, row, "stopping", f"idle for {int(idle_for.total_seconds() // 60)} min"
                )
                audit_service.record(
                    session,
                    actor="system:idle",
                    action="workspace.stop",
                    target=f"workspace:{row.id}",
                    details={"reason": "idle", "signals": signals},
                )
                action = "stopped"
            elif idle_for >= timeout - warning and row.idle_warning_at is None:
                row.idle_warning_at = now
                action = "warned"
    if action == "stopped":
        await service.execute(db, settings, workspace.id)
    return Verdict(workspace.id, active, signals, action)


def stop_due_at(workspace: Workspace) -> datetime:
    return workspace.last_activity_at + timedelta(minutes=workspace.idle_timeout_minutes)
