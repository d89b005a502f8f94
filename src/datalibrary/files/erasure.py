"""Erasure of a subject from file collections (a copy scanner registered with the lake).

Erasure rewrites every table of the namespace without the subject's rows — the collections'
index tables included (their dataset row declares ``subject`` as the subject column). This
scanner then removes the objects no index row references any more (and what was derived from
them: attribute-action records, thumbnails), checks every object left
for the subject (its pseudonym is the files' PatientID), deletes any that still holds it, and
lists each object checked in the proof.

Quarantined files (their raw bytes sealed at rest) hold the patient's original identifiers,
not the pseudonym being erased: each is decrypted, its subject resolved as ingestion would
(the collection's template, policy and study key) and deleted when it is the erased subject's
or mentions the pseudonym; every quarantined file of the namespace is listed in the proof."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from datalibrary.files import objects
from datalibrary.files.models import FileCollection, QuarantinedFile
from datalibrary.files.service import _resolver, derived_root, objects_root
from datalibrary.ingest.sealed import iter_plain
from datalibrary.lake import copies
from datalibrary.lake.catalog import TableName, open_lake
from datalibrary.lake.scan_planning import plan_table
from datalibrary.privacy.service import study_key_for
from datalibrary.privacy.store import load_policy

LOCATION = "file collections"
QUARANTINE = "file collections quarantine"


def _referenced(lake: Any, name: TableName) -> set[str]:
    import pyarrow.dataset as pads

    plan = plan_table(lake, str(name))
    if not plan.files:
        return set()
    data = pads.dataset(
        [f.path for f in plan.files], format="parquet", filesystem=lake.storage.fs, schema=plan.schema
    ).to_table(columns=["sha256"])
    return set(data.column("sha256").to_pylist())


def scan_objects(scope: copies.ErasureScope) -> list[dict[str, Any]]:
    lake = open_lake(scope.settings)
    results = []
    collections = scope.session.scalars(
        select(FileCollection).where(FileCollection.namespace == scope.namespace)
    )
    for collection in collections:
        name = TableName(collection.namespace, collection.name)
        referenced = _referenced(lake, name) if lake.exists(name) else set()
        stored = [*lake.storage.list(objects_root(lake, name)), *lake.storage.list(derived_root(lake, name))]
        for item in stored:  # objects, and what is derived from them (attribute actions, thumbnails)
            digest = item.uri.rsplit("/", 1)[-1].split(".", 1)[0]
            found = copies.bytes_mention(lake.storage.read_bytes(item.uri), item.uri, scope.subject)
            if digest not in referenced:
                found = found or ["no index row references it any more"]
            action = "kept"
            if found:
                lake.storage.delete(item.uri)
                action = "deleted"
            result = copies.entry(LOCATION, item.uri, found, action, item.size)
            result["contains_subject"] = bool(found) and objects.exists(lake.storage, item.uri)
            results.append(result)
    return results


def _quarantined_subject(scope: copies.ErasureScope, collection: FileCollection, data: bytes) -> str | None:
    """The pseudonym ingestion would give this raw file (None: no subject can be read)."""
    import io

    import pydicom

    try:
        ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True, force=True)
        policy = load_policy(scope.session, collection.policy_name)
        key = study_key_for(scope.settings, scope.session, collection.namespace, record=False)
        return _resolver(collection, policy, key)(ds).pseudonym
    except Exception:  # noqa: BLE001 - not DICOM, no PatientID (Rejected): the byte scan stands
        return None


def scan_quarantine(scope: copies.ErasureScope) -> list[dict[str, Any]]:
    from pathlib import Path

    results = []
    collections = scope.session.scalars(
        select(FileCollection).where(FileCollection.namespace == scope.namespace)
    )
    for collection in collections:
        rows = scope.session.scalars(
            select(QuarantinedFile).where(QuarantinedFile.collection_id == collection.id)
        )
        for row in rows:
            path = Path(row.sealed_path) if row.sealed_path else None
            if path is None or not path.is_file():
                continue
            data = b"".join(iter_plain(scope.settings, path))
            found = copies.bytes_mention(data, path.name, scope.subject)
            if _quarantined_subject(scope, collection, data) == scope.subject:
                found.append("its PatientID resolves to the subject")
            action = "kept"
            if found:
                path.unlink()
                row.sealed_path = None
                action = "deleted"
            item = copies.entry(QUARANTINE, path, found, action, len(data))
            item["contains_subject"] = bool(found) and path.exists()
            results.append(item)
    return results


def register() -> None:
    copies.register(LOCATION, scan_objects)
    copies.register(QUARANTINE, scan_quarantine)
