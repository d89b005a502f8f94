"""Erasure of a subject from file collections (a copy scanner registered with the lake).

Erasure rewrites every table of the namespace without the subject's rows — the collections'
index tables included (their dataset row declares ``subject`` as the subject column). This
scanner then removes the objects no index row references any more, checks every object left
for the subject (its pseudonym is the files' PatientID), deletes any that still holds it, and
lists each object checked in the proof."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from datalibrary.files import objects
from datalibrary.files.models import FileCollection
from datalibrary.lake import copies
from datalibrary.lake.catalog import TableName, open_lake
from datalibrary.lake.planning import plan_table

LOCATION = "file collections"


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
    from datalibrary.files.service import objects_root

    lake = open_lake(scope.settings)
    results = []
    collections = scope.session.scalars(
        select(FileCollection).where(FileCollection.namespace == scope.namespace)
    )
    for collection in collections:
        name = TableName(collection.namespace, collection.name)
        referenced = _referenced(lake, name) if lake.exists(name) else set()
        for item in lake.storage.list(objects_root(lake, name)):
            digest = item.uri.rsplit("/", 1)[-1]
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


def register() -> None:
    copies.register(LOCATION, scan_objects)
