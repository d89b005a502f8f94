"""Backups of one installation and their restore.

A backup is a directory ``<backups>/<id>/`` with ``manifest.json`` and:

- the database (SQLite online backup or a ``pg_dump`` custom-format file);
- the lake: a copy of every warehouse file (``lake/``) or, for object stores with
  versioning, only a *reference*: each table's metadata location and snapshot id, which the
  restore checks still exist;
- the state folders that hold people's work (``repos/`` Git repositories, workspace homes);
- the keys (master key, session-signing key) only sealed with the operator's passphrase
  (``keys.enc``); without a passphrase they are left out and the manifest records the master
  key's fingerprint so the restore can refuse a wrong key.

Consistency: every lake table is held with a *shared* lease for the whole backup. Commits
hold the same shared lease and go on; maintenance and erasure (the only deleters of files)
need it exclusive and wait. The Iceberg catalog rows are read from the dumped database
state itself, so the manifest describes exactly what was dumped, and every file those rows
reach exists when it is copied. The backup is written under a temporary name and renamed
when complete: a crash never leaves something that looks like a backup.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from datalibrary import __version__
from datalibrary.audit import service as audit
from datalibrary.auth.permissions import Permission, Principal, require
from datalibrary.backup import database as dbdump
from datalibrary.backup import keys as sealed
from datalibrary.config import SECRET_KEY_FILE_NAME, Settings
from datalibrary.db import Database, current_revisions
from datalibrary.errors import Conflict, InvalidInput, NotFound, Unavailable
from datalibrary.lake import locks
from datalibrary.lake.storage import Storage, fileio_properties, open_storage
from datalibrary.privacy.keys import load_master_key

FORMAT = 1
MANIFEST = "manifest.json"
LAKE_DIR = "lake"
STATE_DIR = "state"
# Folders of the state directory that hold people's work (Git repositories, workspace homes).
STATE_FOLDERS = ("repos", "workspaces/homes")
LEASE_TTL = 120.0
CHUNK = 4 * 1024 * 1024


def backups_dir(settings: Settings) -> Path:
    return Path(settings.backup.directory or settings.home / "backups").expanduser().absolute()


def _now_id() -> str:
    return "backup-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")


# --- consistency: hold every table while the database and the files are copied ---------


@contextlib.contextmanager
def _hold_tables(engine: Engine, names: list[str], timeout: float) -> Iterator[None]:
    """Shared leases on every table, renewed by a thread until the block ends."""
    stack = contextlib.ExitStack()
    ids: list[int] = []
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(LEASE_TTL / 3):
            for lock_id in ids:
                with contextlib.suppress(Exception):
                    locks.renew(engine, lock_id, LEASE_TTL)

    with stack:
        for name in sorted(names):
            ids.append(
                stack.enter_context(
                    locks.lease(
                        engine,
                        f"table:{name}",
                        locks.SHARED,
                        holder=locks.holder_name("backup"),
                        ttl=LEASE_TTL,
                        timeout=timeout,
                    )
                )
            )
        thread = threading.Thread(target=renew, name="backup-lease", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(5)


def _table_names(engine: Engine) -> list[str]:
    from sqlalchemy import inspect, text

    with engine.connect() as connection:
        if not inspect(connection).has_table("iceberg_tables"):
            return []
        rows = connection.execute(text("SELECT table_namespace, table_name FROM iceberg_tables")).all()
    return [f"{ns}.{name}" for ns, name in rows]


def _table_facts(settings: Settings, rows: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Snapshot id and row count of each table, read from the metadata the catalog rows name."""
    from pyiceberg.table import StaticTable

    facts = []
    for row in rows:
        table = StaticTable.from_metadata(row["metadata_location"], properties=fileio_properties(settings))
        snapshot = table.current_snapshot()
        summary = snapshot.summary.additional_properties if snapshot and snapshot.summary else {}
        facts.append(
            {
                **row,
                "snapshot_id": snapshot.snapshot_id if snapshot else None,
                "rows": int(summary.get("total-records", 0)),
            }
        )
    return facts


# --- copying files ------------------------------------------------------------------------


def _copy_stream(read, target: Path) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    target.parent.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    with target.open("wb") as out:
        while chunk := read(CHUNK):
            out.write(chunk)
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _copy_lake_out(storage: Storage, target: Path) -> list[dict[str, Any]]:
    root = storage.path(storage.root).rstrip("/")
    files = []
    for item in storage.list(storage.root):
        relative = storage.path(item.uri)[len(root) + 1 :]
        with storage.fs.open_input_stream(storage.path(item.uri)) as stream:
            size, sha = _copy_stream(stream.read, target / relative)
        files.append({"path": relative, "size": size, "sha256": sha})
    return files


def _copy_tree(source: Path, target: Path) -> int:
    shutil.copytree(source, target, symlinks=True)
    return sum(1 for p in target.rglob("*") if p.is_file())


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


# --- backup -------------------------------------------------------------------------------


def create_backup(
    settings: Settings,
    db: Database,
    principal: Principal,
    *,
    passphrase: str | None = None,
    directory: Path | None = None,
    lake_mode: str | None = None,
) -> dict[str, Any]:
    """Take a backup; return its manifest. ``lake_mode`` is ``copy`` (default for a local
    warehouse) or ``reference`` (default for S3: the bucket's versioning keeps the files)."""
    require(principal, Permission.BACKUPS_MANAGE)
    storage = open_storage(settings)
    mode = lake_mode or ("reference" if storage.is_s3 else "copy")
    if mode not in ("copy", "reference"):
        raise InvalidInput(f"lake mode must be 'copy' or 'reference', not {mode!r}")
    if mode == "reference" and not storage.is_s3:
        raise Conflict(
            "this installation's warehouse is local: it has no versioning to refer to; use lake mode 'copy'"
        )
    passphrase = passphrase if passphrase is not None else _configured_passphrase(settings)
    if passphrase is not None:
        sealed.check_passphrase(passphrase)
    master = load_master_key(settings)
    base = (directory or backups_dir(settings)).expanduser().absolute()
    base.mkdir(parents=True, exist_ok=True, mode=0o700)
    backup_id = _now_id()
    work = base / f".partial-{backup_id}"
    work.mkdir(mode=0o700)
    started = datetime.now(UTC)
    try:
        with _hold_tables(db.engine, _table_names(db.engine), settings.lake.lock_timeout_seconds):
            db_file, catalog = dbdump.dump(db.engine, str(db.url), work)
            tables = _table_facts(settings, catalog)
            lake: dict[str, Any] = {"mode": mode, "warehouse": settings.warehouse}
            if mode == "copy":
                lake["files"] = _copy_lake_out(storage, work / LAKE_DIR)
        folders = {}
        for folder in STATE_FOLDERS:
            source = settings.home / folder
            if source.is_dir():
                folders[folder] = _copy_tree(source, work / STATE_DIR / folder)
        keys: dict[str, Any] = {
            "master_key_fingerprint": sealed.fingerprint(master),
            "sealed": passphrase is not None,
        }
        if passphrase is not None:
            secret_file = settings.home / SECRET_KEY_FILE_NAME
            bundle = {"master_key": master.hex()}
            if secret_file.exists():
                bundle["secret_key"] = secret_file.read_text().strip()
            sealed.seal(work / sealed.KEYS_FILE, bundle, passphrase)
            keys["included"] = "sealed with the operator's passphrase (keys.enc)"
        else:
            keys["included"] = "no: keep the master key safe separately; restore needs it"
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "id": backup_id,
            "created_at": started.isoformat(),
            "finished_at": datetime.now(UTC).isoformat(),
            "version": __version__,
            "database": {
                "kind": dbdump.kind_of(str(db.url)),
                "file": db_file,
                "revisions": sorted(current_revisions(db.engine)),
            },
            "lake": lake,
            "tables": tables,
            "folders": folders,
            "keys": keys,
            "not_included": [
                "the configuration file and environment (datalibrary.toml, DATALIBRARY_*)",
                "shared workspace environments (rebuilt from the catalog)",
                "raw files waiting in ingest/ and landing/ (resubmit them from their source)",
            ],
        }
        manifest["size_bytes"] = _dir_size(work)
        (work / MANIFEST).write_text(json.dumps(manifest, indent=2))
        work.rename(base / backup_id)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    with db.session() as session:
        audit.record(
            session,
            actor=principal,
            action="backup.create",
            target=f"backup:{backup_id}",
            details={"tables": len(tables), "lake": mode, "keys": "sealed" if passphrase else "excluded"},
            client=principal.via,
        )
    return {**manifest, "path": str(base / backup_id)}


def _configured_passphrase(settings: Settings) -> str | None:
    path = settings.backup.passphrase_file
    if path is None:
        return None
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        raise Unavailable(f"cannot read backup.passphrase_file {path}: {exc.strerror}") from None


def summary(manifest: dict[str, Any], path: Path | str) -> dict[str, Any]:
    return {
        "id": manifest["id"],
        "path": str(path),
        "created_at": manifest["created_at"],
        "database": manifest["database"]["kind"],
        "lake": manifest["lake"]["mode"],
        "tables": len(manifest["tables"]),
        "rows": sum(t["rows"] for t in manifest["tables"]),
        "keys": "sealed" if manifest["keys"].get("sealed") else "excluded",
        "size_bytes": manifest.get("size_bytes", 0),
    }


def list_backups(
    settings: Settings, principal: Principal, directory: Path | None = None
) -> list[dict[str, Any]]:
    """Complete backups in the backup directory, newest first."""
    require(principal, Permission.BACKUPS_MANAGE)
    base = (directory or backups_dir(settings)).expanduser().absolute()
    found = []
    if base.is_dir():
        for path in base.iterdir():
            manifest_file = path / MANIFEST
            if path.name.startswith(".") or not manifest_file.is_file():
                continue
            with contextlib.suppress(ValueError, KeyError):
                found.append(summary(json.loads(manifest_file.read_text()), path))
    return sorted(found, key=lambda b: b["created_at"], reverse=True)


def read_manifest(path: Path) -> dict[str, Any]:
    manifest_file = path / MANIFEST
    if not manifest_file.is_file():
        raise NotFound(f"{path} is not a DataLibrary backup (no {MANIFEST})")
    manifest = json.loads(manifest_file.read_text())
    if manifest.get("format") != FORMAT:
        raise InvalidInput(
            f"{path}: backup format {manifest.get('format')} is not supported (expected {FORMAT})"
        )
    return manifest
