"""Re-scrub a study's earlier tables when a new identifier arrives (order-independence).

When a delivery brings a name the study did not know (an investigator in SUPPDM after AE
was ingested), every other table of the namespace whose snapshot records scrubbed text
columns is read, scrubbed of the NEW digests, and - only if a value changes - rewritten in
one snapshot that replaces every data file. Then every older snapshot is expired and every
file no longer referenced (data, manifests, metadata) is deleted: time travel to a version
that held the name is gone, by design.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime, timedelta

import pyarrow.parquet as pq

from datalibrary.db import Database
from datalibrary.lake import locks
from datalibrary.lake.catalog import Lake, TableName
from datalibrary.lake.files import metadata_files
from datalibrary.lake.maintenance import expire_and_delete, remove_orphans
from datalibrary.lake.tables import FileWriter, commit_files, current_data_files, file_schema, summary_of
from datalibrary.privacy.identifiers import scrub_column

log = logging.getLogger(__name__)


def _scrubbed_columns(lake: Lake, name: TableName) -> tuple[list[str], dict[str, str]]:
    snapshot = lake.load(name).current_snapshot()
    if snapshot is None:
        return [], {}
    summary = summary_of(snapshot)
    try:
        return list(json.loads(summary.get("datalibrary.scrubbed-columns") or "[]")), summary
    except ValueError:
        return [], summary


def rescrub_table(
    lake: Lake, db: Database, name: TableName, secret: bytes, digests: set[str], actor: str
) -> bool:
    """Rewrite ``name`` without the words of ``digests`` in its scrubbed columns; True if changed."""
    columns, summary = _scrubbed_columns(lake, name)
    if not columns:
        return False
    request = uuid.uuid4().hex[:12]
    settings = lake.settings.lake
    with locks.lease(
        lake.catalog.engine,
        f"table:{name}",
        locks.EXCLUSIVE,
        holder=locks.holder_name(f"rescrub:{request}"),
        ttl=max(settings.lock_timeout_seconds * 4, 600),
        timeout=settings.lock_timeout_seconds,
    ):
        table = lake.load(name)
        schema = file_schema(table)
        present = [c for c in columns if c in schema.names]
        if not _needs_rewrite(lake, table, present, secret, digests):
            return False  # the common case: only the text columns were read
        writer = FileWriter(lake, table, f"rescrub-{request}", schema, settings.target_file_mb << 20)
        changed = False
        try:
            for data_file in current_data_files(table):
                with lake.storage.fs.open_input_file(lake.storage.path(data_file.file_path)) as handle:
                    data = pq.read_table(handle, schema=schema)
                for column in present:
                    index = data.schema.get_field_index(column)
                    before = data.column(index).combine_chunks()
                    after = scrub_column(before, secret, digests).cast(before.type)
                    if not after.equals(before):
                        changed = True
                        data = data.set_column(index, data.schema.field(index), after)
                for batch in data.to_batches(max_chunksize=65_536):
                    writer.write(batch)
            if not changed:
                writer.abort()
                return False
            written = writer.close()
            keep = {k: v for k, v in summary.items() if k.startswith("datalibrary.") and "job-id" not in k}
            commit_files(
                lake,
                name,
                add=written,
                remove=current_data_files,
                properties={**keep, "operation": "rescrub", "actor": actor, "rescrub-request": request},
                exclusive_held=True,
                replace_all=True,
            )
        except BaseException:
            writer.abort()
            raise
        expire_and_delete(lake, name, datetime.now(UTC) + timedelta(seconds=1))
        with db.session() as session:
            remove_orphans(lake, name, session, timedelta(0))
        table = lake.load(name)
        for uri in metadata_files(table) - {table.metadata_location}:
            lake.storage.delete(uri)
        for item in lake.storage.list(f"{table.location()}/metadata"):
            if item.uri.endswith(".metadata.json") and item.uri != table.metadata_location:
                lake.storage.delete(item.uri)
    return True


def _needs_rewrite(lake: Lake, table, columns: list[str], secret: bytes, digests: set[str]) -> bool:  # type: ignore[no-untyped-def]
    for data_file in current_data_files(table):
        with lake.storage.fs.open_input_file(lake.storage.path(data_file.file_path)) as handle:
            data = pq.read_table(handle, columns=columns)
        for column in columns:
            before = data.column(column).combine_chunks()
            if not scrub_column(before, secret, digests).cast(before.type).equals(before):
                return True
    return False


def rescrub_namespace(
    lake: Lake, db: Database, namespace: str, secret: bytes, digests: set[str], *, skip: str, actor: str
) -> list[str]:
    """Re-scrub every other table of the namespace; the names of those rewritten."""
    rewritten = []
    for name in lake.tables(namespace):
        if name.name == skip:
            continue
        if rescrub_table(lake, db, name, secret, digests, actor):
            rewritten.append(str(name))
    return rewritten
