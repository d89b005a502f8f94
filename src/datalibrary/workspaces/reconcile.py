"""The reconciler: make the database and the machine agree, at start-up and periodically.

- A transitional state (starting, stopping, ...) that nobody is executing and that is older
  than ``workspaces.stuck_after_seconds`` is executed again (every step is idempotent), so no
  workspace stays "starting" forever.
- A stable state is compared with what the provisioner finds (``load_state`` + ``poll``): a
  running sandbox found after a platform restart is re-adopted as it is; one that died is
  marked stopped; processes left behind by a stopped or failed workspace are stopped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import select

from datalibrary.audit import service as audit_service
from datalibrary.config import Settings
from datalibrary.db import Database
from datalibrary.db.base import utcnow
from datalibrary.workspaces import service
from datalibrary.workspaces.models import Workspace
from datalibrary.workspaces.provisioners import Status

log = logging.getLogger(__name__)
ACTOR = "system:reconciler"


@dataclass
class Report:
    checked: int = 0
    adopted: list[int] = field(default_factory=list)
    repaired: dict[int, str] = field(default_factory=dict)  # id -> new state

    def as_dict(self) -> dict[str, object]:
        return {"checked": self.checked, "adopted": self.adopted, "repaired": self.repaired}


async def reconcile(db: Database, settings: Settings, *, stuck_after_seconds: int | None = None) -> Report:
    report = Report()
    limit = (
        stuck_after_seconds if stuck_after_seconds is not None else settings.workspaces.stuck_after_seconds
    )
    with db.session() as session:
        disabled = service.stop_disabled_owners(session)
    for workspace_id in disabled:
        report.repaired[workspace_id] = await service.execute(db, settings, workspace_id)
    with db.session() as session:
        rows = list(session.scalars(select(Workspace).where(Workspace.state != "terminated")))
    now = utcnow()
    for workspace in rows:
        report.checked += 1
        if workspace.id in service._in_flight:
            continue
        try:
            if workspace.state in service.TRANSITIONAL:
                if (now - workspace.state_changed_at).total_seconds() >= limit:
                    log.info(
                        "reconciler: workspace %s stuck in %s; executing again", workspace.id, workspace.state
                    )
                    report.repaired[workspace.id] = await service.execute(db, settings, workspace.id)
                continue
            provisioner = service.build_provisioner(settings, workspace)
            actual = await provisioner.poll()
            expected = {"running": Status.RUNNING, "paused": Status.PAUSED, "pooled": Status.RUNNING}.get(
                workspace.state, Status.STOPPED
            )
            if actual == expected:
                if actual != Status.STOPPED:
                    report.adopted.append(workspace.id)
                continue
            if workspace.state == "pooled":  # a dead pool member is discarded, never anyone's
                if _record(db, workspace.id, workspace.version, "terminating", "pool member died"):
                    report.repaired[workspace.id] = await service.execute(db, settings, workspace.id)
                continue
            if workspace.state in ("stopped", "failed"):
                await provisioner.stop()  # leftovers of an interrupted stop or start
                report.repaired[workspace.id] = workspace.state
                continue
            new_state = {Status.RUNNING: "running", Status.PAUSED: "paused", Status.STOPPED: "stopped"}[
                actual
            ]
            if _record(
                db, workspace.id, workspace.version, new_state, f"found {actual.value} by the reconciler"
            ):
                report.repaired[workspace.id] = new_state
        except Exception as exc:  # one broken workspace must not stop the others
            log.warning("reconciler: workspace %s: %s", workspace.id, exc)
    return report


def _record(db: Database, workspace_id: int, version: int, state: str, reason: str) -> bool:
    with db.session() as session:
        workspace = session.get(Workspace, workspace_id)
        if workspace is None or workspace.version != version:
            return False
        if state in ("stopped", "terminating"):
            service._revoke_token(session, workspace)
        service._transition(session, workspace, state, reason)
        audit_service.record(
            session, actor=ACTOR, action=f"workspace.{state}", target=f"workspace:{workspace_id}"
        )
        return True
