"""Metering of file reads: every de-identified file served (download, SDK, DICOMweb, thumbnail)
is one ``FileRead`` row with its bytes, charged to the reader's project. The costs package
prices these rows like query bytes (``costs.engine.file_read_lines``)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from datalibrary.auth.permissions import Principal
from datalibrary.files.models import FileRead

VIAS = ("download", "dicomweb", "thumbnail", "cli")


def meter(
    session: Session, principal: Principal, collection: str, path: str, *, size: int, via: str, files: int = 1
) -> FileRead:
    """Record ``size`` bytes served from ``collection`` to ``principal`` (in the caller's
    transaction: a read that fails after this line is rolled back with its record)."""
    if via not in VIAS:
        raise ValueError(f"unknown read channel {via!r}")
    row = FileRead(
        user=principal.name,
        project=principal.default_project,
        collection=collection,
        path=path[:500],
        files=files,
        bytes=size,
        via=via,
    )
    session.add(row)
    session.flush()
    return row
