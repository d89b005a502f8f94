"""Backups: take one, list them (admins). Restoring is an operator's CLI command, run
against a new installation, never through a running server."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from datalibrary.auth.permissions import Permission
from datalibrary.backup import service
from datalibrary.backup.schemas import BackupIn, BackupOut
from datalibrary.http.deps import CurrentPrincipal, DatabaseDep, Requires, SettingsDep

router = APIRouter(prefix="/backups", tags=["backups"], dependencies=[Requires(Permission.BACKUPS_MANAGE)])


@router.get("", summary="Complete backups, newest first")
def list_backups(principal: CurrentPrincipal, settings: SettingsDep) -> list[BackupOut]:
    return [BackupOut.of(b) for b in service.list_backups(settings, principal)]


@router.post(
    "", status_code=201, summary="Take a backup now (keys sealed with backup.passphrase_file, or left out)"
)
def create_backup(
    body: BackupIn, principal: CurrentPrincipal, settings: SettingsDep, db: DatabaseDep
) -> BackupOut:
    manifest: dict[str, Any] = service.create_backup(settings, db, principal, lake_mode=body.lake)
    return BackupOut.of(service.summary(manifest, manifest["path"]))
