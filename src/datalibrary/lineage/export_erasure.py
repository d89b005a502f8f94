"""Erasure of a subject from export snapshots (a copy scanner registered with the lake).

Snapshots pinned for review are copies of lake data: those holding the subject are deleted,
and the requests that pinned them can no longer be downloaded (state ``erased``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from datalibrary.audit import service as audit
from datalibrary.lake import copies
from datalibrary.lineage.models import ExportRequest

LOCATION = "export files"


def scan_exports(scope: copies.ErasureScope) -> list[dict[str, Any]]:
    root = scope.settings.home / "exports"
    if not root.is_dir():
        return []
    paths = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.endswith(".part"))
    results = copies.scan_and_delete(LOCATION, paths, scope.subject)
    deleted = [r["uri"] for r in results if r["action"] == "deleted"]
    if deleted:
        pinned = scope.session.scalars(
            select(ExportRequest).where(
                ExportRequest.file_path.in_(deleted), ExportRequest.state.in_(("pending", "approved"))
            )
        )
        for export in pinned:
            export.state = "erased"
            audit.record(
                scope.session,
                actor="system",
                action="export.erased",
                target=f"export:{export.id}",
                details={"requester": export.requester, "file": Path(export.file_path or "").name[:16]},
            )
    return results


def register() -> None:
    copies.register(LOCATION, scan_exports)
