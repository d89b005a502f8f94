"""What the front ends show of backups: one shape for the API and the CLI's ``--json``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class BackupIn(BaseModel):
    lake: str | None = Field(None, pattern="^(copy|reference)$", description="Lake mode; default by store.")


class BackupOut(BaseModel):
    id: str
    path: str
    created_at: str
    database: str
    lake: str
    tables: int
    rows: int
    keys: str
    size_bytes: int

    @classmethod
    def of(cls, summary: dict[str, Any]) -> BackupOut:
        """From ``backup.service.summary`` (what ``list_backups`` returns for each backup)."""
        return cls(**summary)
