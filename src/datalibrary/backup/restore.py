"""Restore a backup into a new installation, then prove it: row counts and snapshot ids of
every table, the audit chain. Every precondition is checked before anything is written, so a
refused restore leaves the target as it was."""

from __future__ import annotations

import hashlib
import hmac
import os
import shutil
from pathlib import Path
from typing import Any

from datalibrary.audit import service as audit
from datalibrary.backup import database as dbdump
from datalibrary.backup import keys as sealed
from datalibrary.backup.service import LAKE_DIR, STATE_DIR, read_manifest
from datalibrary.config import SECRET_KEY_FILE_NAME, Settings, ensure_secret_key
from datalibrary.db import Database, upgrade
from datalibrary.errors import InvalidInput, Unavailable
from datalibrary.lake.catalog import Lake, TableName
from datalibrary.lake.storage import Storage, open_storage
from datalibrary.privacy.keys import default_key_file, load_master_key


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text + "\n")


def _resolve_keys(settings: Settings, source: Path, manifest: dict[str, Any], passphrase: str | None):  # type: ignore[no-untyped-def]
    """The master key to restore with (bytes) and the files to write; refuses a wrong key."""
    expected = manifest["keys"]["master_key_fingerprint"]
    bundle: dict[str, str] = {}
    if (source / sealed.KEYS_FILE).exists() and passphrase is not None:
        bundle = sealed.unseal(source / sealed.KEYS_FILE, passphrase)
    key_file = default_key_file(settings)
    if settings.master_key is not None or key_file.exists():
        master = load_master_key(settings)
    elif bundle:
        master = bytes.fromhex(bundle["master_key"])
    else:
        hint = (
            "give the passphrase the backup was sealed with (--passphrase-file)"
            if (source / sealed.KEYS_FILE).exists()
            else "this backup does not contain keys"
        )
        raise Unavailable(
            f"no master key to restore with: {hint}, or put the installation's master key at {key_file} "
            "(mode 0600) or in DATALIBRARY_MASTER_KEY"
        )
    if not hmac.compare_digest(sealed.fingerprint(master), expected):
        raise InvalidInput(
            f"the master key given is not the one this backup was taken with (fingerprint {expected}): "
            "pseudonyms would not match; use the original master key"
        )
    writes = {}
    if settings.master_key is None and not key_file.exists():
        writes[key_file] = master.hex()
    secret_file = settings.home / SECRET_KEY_FILE_NAME
    if "secret_key" in bundle and not secret_file.exists():
        writes[secret_file] = bundle["secret_key"]
    return writes


def _check_lake_target(settings: Settings, storage: Storage, manifest: dict[str, Any]) -> None:
    lake = manifest["lake"]
    if lake["warehouse"].rstrip("/") != settings.warehouse.rstrip("/"):
        raise InvalidInput(
            f"the backup's warehouse is {lake['warehouse']} but this installation's is {settings.warehouse}: "
            "Iceberg metadata records absolute file locations, so set lake.warehouse to the backup's"
        )
    if lake["mode"] == "copy":
        if storage.list(storage.root):
            raise InvalidInput(
                f"the warehouse {settings.warehouse} is not empty: restore into an empty warehouse"
            )
        return
    missing = [
        t["metadata_location"]
        for t in manifest["tables"]
        if storage.fs.get_file_info(storage.path(t["metadata_location"])).size is None
    ]
    if missing:
        raise Unavailable(
            f"the object store no longer holds {len(missing)} metadata file(s) this backup refers to "
            f"(first: {missing[0]}): restore those object versions from the bucket's versioning first"
        )


def _copy_lake_in(storage: Storage, source: Path, files: list[dict[str, Any]]) -> None:
    root = storage.path(storage.root).rstrip("/")
    for entry in files:
        local = source / LAKE_DIR / entry["path"]
        digest = hashlib.sha256()
        with local.open("rb") as handle, storage.open_output(storage.uri(f"{root}/{entry['path']}")) as out:
            while chunk := handle.read(4 * 1024 * 1024):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != entry["sha256"]:
            raise InvalidInput(f"backup file lake/{entry['path']} is damaged (checksum mismatch)")


def verify_restored(settings: Settings, db: Database, manifest: dict[str, Any]) -> dict[str, Any]:
    """Compare every table with the manifest and verify the audit chain."""
    lake = Lake(settings)
    problems, checked = [], []
    try:
        for expected in manifest["tables"]:
            table = lake.load(TableName(expected["namespace"], expected["name"]))
            snapshot = table.current_snapshot()
            summary = snapshot.summary.additional_properties if snapshot and snapshot.summary else {}
            rows = int(summary.get("total-records", 0))
            snapshot_id = snapshot.snapshot_id if snapshot else None
            name = f"{expected['namespace']}.{expected['name']}"
            checked.append({"table": name, "rows": rows})
            if rows != expected["rows"] or snapshot_id != expected["snapshot_id"]:
                problems.append(f"{name}: {rows} rows at snapshot {snapshot_id}, expected {expected['rows']}")
            # reading the newest metadata proves the files it names were restored
            table.scan().plan_files()
    finally:
        lake.close()
    with db.session() as session:
        chain = audit.verify(session).as_dict()
    if not chain["ok"]:
        problems.append(f"audit chain broken at entry {chain['first_broken']['id']}")
    return {"ok": not problems, "tables": checked, "audit": chain, "problems": problems}


def restore_backup(settings: Settings, source: Path, *, passphrase: str | None = None) -> dict[str, Any]:
    """Restore ``source`` into the configured (new, empty) installation."""
    source = source.expanduser().absolute()
    manifest = read_manifest(source)
    storage = open_storage(settings)
    key_writes = _resolve_keys(settings, source, manifest, passphrase)
    _check_lake_target(settings, storage, manifest)
    for folder in manifest.get("folders", {}):
        target = settings.home / folder
        if target.exists() and any(target.iterdir()):
            raise InvalidInput(f"{target} is not empty: restore into a new installation")
    db = Database(settings.connect_url())
    try:
        if not dbdump.is_empty(db.engine):
            raise InvalidInput(
                "the target database is not empty: restore into a new, empty database "
                "(create it, point DATALIBRARY_DATABASE_URL at it, and run 'datalibrary restore' again)"
            )
        settings.home.mkdir(parents=True, exist_ok=True)
        settings.home.chmod(0o700)
        for path, text in key_writes.items():
            _write_private(path, text)
        ensure_secret_key(settings.home)
        if manifest["lake"]["mode"] == "copy":
            _copy_lake_in(storage, source, manifest["lake"]["files"])
        dbdump.restore(db.engine, str(db.url), source, manifest["database"]["file"])
        for folder in manifest.get("folders", {}):
            target = settings.home / folder
            if target.exists():
                target.rmdir()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(source / STATE_DIR / folder, target, symlinks=True)
        upgrade(db.engine)
        report = verify_restored(settings, db, manifest)
        with db.session() as session:
            audit.record(
                session,
                actor="operator",
                action="backup.restore",
                target=f"backup:{manifest['id']}",
                outcome="success" if report["ok"] else "failure",
                details={"tables": len(manifest["tables"]), "problems": len(report["problems"])},
                client="cli",
            )
    finally:
        db.dispose()
    return {"backup": manifest["id"], "restored_to": str(settings.home), **report}
