"""The catalog: dataset metadata, schema with labels, sizes, snapshot history, column profile."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.dataset as pads
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from datalibrary.audit.service import record
from datalibrary.auth.permissions import Permission, Principal, require
from datalibrary.db.base import utcnow
from datalibrary.errors import InvalidInput, NotFound
from datalibrary.hooks import Hook
from datalibrary.lake.catalog import Lake, TableName, parse_table_name
from datalibrary.lake.models import Dataset
from datalibrary.lake.scan_planning import plan_table
from datalibrary.lake.tables import actions_from_summary, risk_from_summary, summary_of

# (session, namespace, table, limit): the table's latest ingestion jobs, newest first (the
# ingestion layer's, registered by ``wiring``).
RECENT_JOBS: Hook[[Session, str, str, int], list[dict[str, Any]]] = Hook("lake.recent_jobs")

SENSITIVITY = ("public", "internal", "confidential", "restricted")
EDITABLE = (
    "title",
    "description",
    "owner",
    "tags",
    "sensitivity",
    "source",
    "subject_column",
    "column_labels",
)
DEFAULT_SUBJECT_COLUMNS = ("USUBJID",)
EXACT_DISTINCT_ROWS = 10_000_000
PROFILE_METHOD = 2  # bump when the profile's definition changes: cached profiles are recomputed


@dataclass(frozen=True)
class CatalogView:
    """What one caller may see of one table in the catalog (from their grants)."""

    columns: frozenset[str] | None  # lower-case; None: every column
    masked: frozenset[str] = frozenset()

    def shows(self, column: str) -> bool:
        return self.columns is None or column.lower() in self.columns

    def profiles(self, column: str) -> bool:
        """Statistics (null share, distinct count, min/max) only of visible, unmasked columns."""
        return self.shows(column) and column.lower() not in self.masked


# The grants' answer for (namespace, table): None means the caller has no grant on it.
Visibility = Callable[[str, str], CatalogView | None]
EVERYTHING = CatalogView(columns=None)


def catalog_view(principal: Principal, visible: Visibility | None, name: TableName) -> CatalogView | None:
    """Stewards and dataset managers see the whole catalog (they grant it); anyone else sees a
    table only through a grant, and nothing without one (deny by default)."""
    if principal.can(Permission.DATASETS_MANAGE) or principal.can(Permission.GRANTS_MANAGE):
        return EVERYTHING
    return visible(name.namespace, name.name) if visible is not None else None


def record_ingestion(
    session: Session,
    name: TableName,
    *,
    owner: str,
    source: str,
    policy: tuple[str | None, str | None, str | None],
    labels: dict[str, str],
    source_bytes: int,
    overwrite: bool,
    columns: list[str],
    subject_columns: tuple[str, ...] = (),
) -> Dataset:
    """Create or update the dataset row after a successful ingestion (inside its transaction).

    The subject column (what erasure looks for) is the first of the policy's ``subject``
    columns the table has, else a standard one (USUBJID); a steward may change it."""
    dataset = session.scalar(
        select(Dataset).where(Dataset.namespace == name.namespace, Dataset.name == name.name)
    )
    subject = next((c for c in (*subject_columns, *DEFAULT_SUBJECT_COLUMNS) if c in columns), None)
    if dataset is not None and not dataset.subject_column:
        dataset.subject_column = subject
    if dataset is None:
        dataset = Dataset(
            namespace=name.namespace,
            name=name.name,
            title=name.name,
            owner=owner,
            tags=[],
            source=source,
            subject_column=subject,
            column_labels={},
            source_bytes=0,
        )
        try:
            with session.begin_nested():
                session.add(dataset)
        except IntegrityError:  # two first ingestions into one new table: the other created it
            dataset = _dataset(session, name)
            if dataset is None:
                raise
            dataset.subject_column = dataset.subject_column or subject
    dataset.policy_name, dataset.policy_version, dataset.policy_hash = policy
    dataset.column_labels = {**(dataset.column_labels or {}), **labels}
    dataset.source_bytes = source_bytes if overwrite else (dataset.source_bytes or 0) + source_bytes
    dataset.updated_at = utcnow()
    session.flush()
    return dataset


def _dataset(session: Session, name: TableName) -> Dataset | None:
    return session.scalar(
        select(Dataset).where(Dataset.namespace == name.namespace, Dataset.name == name.name)
    )


def list_datasets(
    session: Session,
    principal: Principal,
    lake: Lake,
    *,
    search: str | None = None,
    tag: str | None = None,
    visible: Visibility | None = None,
) -> list[dict[str, Any]]:
    """The tables the caller may see, with their catalog facts, filtered by text and tag."""
    require(principal, Permission.CATALOG_READ)
    rows = {d.full_name: d for d in session.scalars(select(Dataset))}
    found = []
    for namespace in lake.namespaces():
        for name in lake.tables(namespace):
            if catalog_view(principal, visible, name) is None:
                continue
            dataset = rows.get(str(name))
            entry = _summary(lake, name, dataset)
            text = " ".join(
                [str(name), entry["title"], entry["description"], " ".join(entry["tags"])]
            ).lower()
            if search and search.lower() not in text:
                continue
            if tag and tag not in entry["tags"]:
                continue
            found.append(entry)
    return sorted(found, key=lambda e: e["name"])


def _summary(lake: Lake, name: TableName, dataset: Dataset | None) -> dict[str, Any]:
    table = lake.load(name)
    snapshot = table.current_snapshot()
    summary = summary_of(snapshot) if snapshot else {}
    rows = int(summary.get("total-records", 0))
    size = int(summary.get("total-files-size", 0))
    return {
        "name": str(name),
        "namespace": name.namespace,
        "table": name.name,
        "title": dataset.title if dataset else name.name,
        "description": dataset.description if dataset else "",
        "owner": dataset.owner if dataset else "",
        "tags": list(dataset.tags or []) if dataset else [],
        "sensitivity": dataset.sensitivity if dataset else "confidential",
        "source": dataset.source if dataset else "",
        "subject_column": dataset.subject_column if dataset else None,
        "policy": (
            {"name": dataset.policy_name, "version": dataset.policy_version, "sha256": dataset.policy_hash}
            if dataset and dataset.policy_name
            else None
        ),
        "row_count": rows,
        "data_files": int(summary.get("total-data-files", 0)),
        "size_bytes": size,
        "source_bytes": dataset.source_bytes if dataset else 0,
        "compression_ratio": round(dataset.source_bytes / size, 2) if dataset and size else None,
        "compression": compression_text(dataset.source_bytes if dataset else 0, size),
        "snapshot_id": snapshot.snapshot_id if snapshot else None,
        "updated_at": datetime.fromtimestamp(snapshot.timestamp_ms / 1000, UTC) if snapshot else None,
    }


def compression_text(source_bytes: int, stored_bytes: int) -> str | None:
    """How the stored size compares with the delivered files', in the right direction."""
    if not source_bytes or not stored_bytes:
        return None
    if stored_bytes <= source_bytes:
        return f"{source_bytes / stored_bytes:.2f}× smaller than the source"
    return (
        f"{stored_bytes / source_bytes:.2f}× larger than the source "
        "(small tables: Parquet's per-file metadata outweighs the compression)"
    )


def show_dataset(
    session: Session,
    principal: Principal,
    lake: Lake,
    table: str,
    *,
    profile: bool = True,
    visible: Visibility | None = None,
) -> dict[str, Any]:
    """Everything the dataset page shows: summary, schema with labels, history, profile, jobs.

    A table the caller has no grant on answers exactly like a table that does not exist;
    hidden columns are left out and masked ones get no statistics."""
    require(principal, Permission.CATALOG_READ)
    name = parse_table_name(table)
    view = catalog_view(principal, visible, name)
    if view is None:
        raise NotFound(f"no table {name} in the lake")
    dataset = _dataset(session, name)
    iceberg = lake.load(name)
    entry = _summary(lake, name, dataset)
    labels = dataset.column_labels if dataset else {}
    snapshot = iceberg.current_snapshot()
    actions = actions_from_summary(summary_of(snapshot)) if snapshot else {}
    entry["columns"] = [
        {
            "name": f.name,
            "type": str(f.field_type),
            "label": labels.get(f.name, ""),
            "required": f.required,
            "policy_action": actions.get(f.name)
            or (actions.get(f.name.removesuffix("_TOPCODED")) if f.name.endswith("_TOPCODED") else None),
        }
        for f in iceberg.schema().fields
        if view.shows(f.name)
    ]
    names = {f.name for f in iceberg.schema().fields}
    entry["dropped_columns"] = sorted(c for c, a in actions.items() if a == "dropped" and c not in names)
    entry["snapshots"] = history(iceberg)
    current = iceberg.metadata.current_snapshot_id
    entry["risk"] = next(
        (s["risk"] for s in entry["snapshots"] if s["snapshot_id"] == current and s["risk"]), None
    )
    profiled = column_profile(session, lake, name, dataset) if profile else None
    entry["profile"] = [c for c in profiled if view.profiles(c["name"])] if profiled is not None else None
    entry["jobs"] = (
        RECENT_JOBS(session, name.namespace, name.name, 20) if principal.can(Permission.INGEST_RUN) else []
    )
    return entry


def history(iceberg) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """Snapshots newest first: who, when, which file, which policy."""
    items = []
    for snapshot in sorted(iceberg.metadata.snapshots, key=lambda s: s.timestamp_ms, reverse=True):
        summary = summary_of(snapshot)
        items.append(
            {
                "snapshot_id": snapshot.snapshot_id,
                "parent_id": snapshot.parent_snapshot_id,
                "committed_at": datetime.fromtimestamp(snapshot.timestamp_ms / 1000, UTC),
                "operation": summary.get("datalibrary.operation", summary.get("operation")),
                "mode": summary.get("datalibrary.mode"),
                "actor": summary.get("datalibrary.actor"),
                "job_id": summary.get("datalibrary.job-id"),
                "source_file": summary.get("datalibrary.source-file"),
                "source_sha256": summary.get("datalibrary.source-sha256"),
                "policy": summary.get("datalibrary.policy"),
                "policy_version": summary.get("datalibrary.policy-version"),
                "policy_sha256": summary.get("datalibrary.policy-sha256"),
                "study_key_id": summary.get("datalibrary.study-key-id"),
                "tier": summary.get("datalibrary.policy-tier"),
                "risk": risk_from_summary(summary),
                "added_rows": int(summary.get("added-records", 0)),
                "total_rows": int(summary.get("total-records", 0)),
            }
        )
    return items


def column_profile(
    session: Session, lake: Lake, name: TableName, dataset: Dataset | None
) -> list[dict[str, Any]]:
    """Null share, distinct count, and min/max of numeric and temporal columns, computed by
    DuckDB over the current snapshot's Parquet files and cached per snapshot.

    Distinct counts are exact (``count(DISTINCT)``) for tables up to ``EXACT_DISTINCT_ROWS``
    rows and always for the subject column; beyond that other columns get DuckDB's
    HyperLogLog estimate, flagged ``distinct_exact: false`` and shown as approximate."""
    plan = plan_table(lake, name)
    if (
        dataset is not None
        and dataset.profile_snapshot_id == plan.snapshot_id
        and dataset.profile is not None
        and dataset.profile.get("method") == PROFILE_METHOD
    ):
        return dataset.profile.get("columns", [])
    subject = dataset.subject_column if dataset else None
    exact_all = plan.row_count <= EXACT_DISTINCT_ROWS
    columns: list[dict[str, Any]] = []
    if plan.files:
        data = pads.dataset(
            [f.path for f in plan.files], format="parquet", filesystem=lake.storage.fs, schema=plan.schema
        )
        con = duckdb.connect(config={"threads": 2, "memory_limit": "512MB"})
        try:
            con.register("profiled", data)
            for field in plan.schema:
                quoted = '"' + field.name.replace('"', '""') + '"'
                comparable = not str(field.type).startswith(
                    ("list", "struct", "map", "binary", "large_binary")
                )
                # min/max of text would show values (identifiers, names) to every catalog reader:
                # only numbers, dates and times get them.
                text = pa.types.is_string(field.type) or pa.types.is_large_string(field.type)
                ranged = comparable and not text and not pa.types.is_boolean(field.type)
                minmax = f"min({quoted})::VARCHAR, max({quoted})::VARCHAR" if ranged else "NULL, NULL"
                exact = exact_all or field.name == subject
                counter = "count(DISTINCT {})" if exact else "approx_count_distinct({})"
                distinct = counter.format(quoted) if comparable else "NULL"
                total, nulls, count_distinct, low, high = con.execute(
                    f"SELECT count(*), count(*) - count({quoted}), {distinct}, {minmax} FROM profiled"
                ).fetchone()
                columns.append(
                    {
                        "name": field.name,
                        "null_share": round(nulls / total, 4) if total else None,
                        "distinct": count_distinct,
                        "distinct_exact": exact if comparable else None,
                        "min": None if low is None else str(low)[:64],
                        "max": None if high is None else str(high)[:64],
                    }
                )
        finally:
            con.close()
    if dataset is not None:
        dataset.profile = {"columns": columns, "method": PROFILE_METHOD}
        dataset.profile_snapshot_id = plan.snapshot_id
    return columns


def update_dataset(
    session: Session, principal: Principal, lake: Lake, table: str, changes: dict[str, Any]
) -> dict[str, Any]:
    """Edit catalog metadata (title, description, owner, tags, sensitivity, subject column, labels)."""
    require(principal, Permission.DATASETS_MANAGE)
    name = parse_table_name(table)
    iceberg = lake.load(name)
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise InvalidInput(f"cannot change {', '.join(sorted(unknown))}; editable: {', '.join(EDITABLE)}")
    columns = [f.name for f in iceberg.schema().fields]
    if "sensitivity" in changes and changes["sensitivity"] not in SENSITIVITY:
        raise InvalidInput(f"sensitivity must be one of {', '.join(SENSITIVITY)}")
    if changes.get("subject_column") and changes["subject_column"] not in columns:
        raise InvalidInput(f"table {name} has no column {changes['subject_column']!r}")
    if "tags" in changes:
        tags = [] if changes["tags"] is None else changes["tags"]  # null clears them
        if not isinstance(tags, list) or not all(isinstance(t, str) and 0 < len(t) <= 40 for t in tags):
            raise InvalidInput("tags are a list of short strings (1-40 characters)")
        changes["tags"] = sorted(set(tags))
    if "column_labels" in changes:
        labels = changes["column_labels"] or {}
        stray = [c for c in labels if c not in columns]
        if stray:
            raise InvalidInput(f"labels name unknown column(s): {', '.join(stray)}")
    # null clears a text field (a title falls back to the table's name); sensitivity was checked
    cleared = {"title": name.name, "description": "", "owner": "", "source": ""}
    changes = {k: cleared[k] if v is None and k in cleared else v for k, v in changes.items()}
    dataset = _dataset(session, name)
    if dataset is None:
        dataset = Dataset(
            namespace=name.namespace, name=name.name, title=name.name, tags=[], column_labels={}
        )
        session.add(dataset)
    for key, value in changes.items():
        if key == "column_labels":
            value = {**(dataset.column_labels or {}), **(value or {})}
        setattr(dataset, key, value)
    dataset.updated_at = utcnow()
    record(
        session,
        actor=principal,
        action="dataset.update",
        target=f"table:{name}",
        details={"fields": sorted(changes)},
    )
    session.flush()
    return show_dataset(session, principal, lake, str(name), profile=False)


def get_dataset_row(session: Session, name: TableName) -> Dataset:
    dataset = _dataset(session, name)
    if dataset is None:
        raise NotFound(f"no catalog entry for {name}")
    return dataset
