"""The daily storage measurement: bytes per dataset (current snapshot) and per workspace home.

A dataset is attributed to its owner and the owner's default project; a home to the
workspace's owner and project. One row per resource and UTC day (measuring again replaces it).
"""

from __future__ import annotations

import logging
import os
from datetime import date
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from datalibrary.auth.models import Project, ProjectMember, User
from datalibrary.config import Settings
from datalibrary.costs.models import StorageMeasurement
from datalibrary.db.base import utcnow
from datalibrary.lake.catalog import TableName, open_lake
from datalibrary.lake.models import Dataset
from datalibrary.lake.tables import summary_of
from datalibrary.workspaces import paths
from datalibrary.workspaces.models import Workspace

log = logging.getLogger(__name__)


def directory_bytes(root: Path) -> int:
    """Bytes of the regular files under ``root``; symlinks are not followed."""
    total = 0
    for folder, _dirs, files in os.walk(root, followlinks=False):
        for name in files:
            try:
                stat = os.lstat(os.path.join(folder, name))
            except OSError:
                continue
            if not os.path.islink(os.path.join(folder, name)):
                total += stat.st_size
    return total


def _default_projects(session: Session, names: set[str]) -> dict[str, str]:
    rows = session.execute(
        select(User.name, Project.name)
        .join(ProjectMember, ProjectMember.user_id == User.id)
        .join(Project, Project.id == ProjectMember.project_id)
        .where(User.name.in_(names), ProjectMember.is_default.is_(True))
    ).all()
    return {user: project for user, project in rows}


def _dataset_sizes(session: Session, settings: Settings) -> list[tuple[Dataset, int]]:
    rows = list(session.scalars(select(Dataset)))
    if not rows:
        return []
    lake = open_lake(settings)
    found = []
    for dataset in rows:
        try:
            snapshot = lake.load(TableName(dataset.namespace, dataset.name)).current_snapshot()
        except Exception as exc:  # a dropped table has no storage left to charge
            log.info("storage measurement skips %s: %s", dataset.full_name, type(exc).__name__)
            continue
        size = int(summary_of(snapshot).get("total-files-size", 0)) if snapshot else 0
        found.append((dataset, size))
    return found


def record(
    session: Session, kind: str, resource: str, day: date, user: str, project: str | None, size: int
) -> None:
    row = session.scalar(
        select(StorageMeasurement).where(
            StorageMeasurement.kind == kind,
            StorageMeasurement.resource == resource,
            StorageMeasurement.day == day,
        )
    )
    if row is None:
        row = StorageMeasurement(kind=kind, resource=resource, day=day)
        session.add(row)
    row.user, row.project, row.bytes, row.measured_at = user, project, int(size), utcnow()


def measure(session: Session, settings: Settings, day: date | None = None) -> int:
    """Measure every dataset and every kept workspace home for ``day`` (default today)."""
    day = day or utcnow().date()
    datasets = _dataset_sizes(session, settings)
    projects = _default_projects(session, {d.owner for d, _ in datasets if d.owner})
    count = 0
    for dataset, size in datasets:
        owner = dataset.owner or "(no owner)"
        record(session, "dataset", dataset.full_name, day, owner, projects.get(owner), size)
        count += 1
    workspaces = list(session.scalars(select(Workspace).where(Workspace.state != "terminated")))
    names = dict(session.execute(select(User.id, User.name)).all())  # type: ignore[arg-type]
    for workspace in workspaces:
        home = paths.home_dir(settings, workspace.id)
        size = directory_bytes(home) if home.is_dir() else 0
        owner = names.get(workspace.owner_id, f"user:{workspace.owner_id}")
        record(session, "home", f"workspace:{workspace.id}", day, owner, workspace.project, size)
        count += 1
    session.flush()
    return count


def measured(session: Session, day: date) -> bool:
    return (
        session.scalar(select(StorageMeasurement.id).where(StorageMeasurement.day == day).limit(1))
        is not None
    )
