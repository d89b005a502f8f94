"""Fingerprints of the lake's identifying values, for the push guard.

For every dataset, the values of its subject column and of every column its policy
pseudonymizes or replaces with surrogates are reduced to 8-byte keyed BLAKE2b digests
(key derived from the platform's secret), sorted into one file the guard loads. The file
is rebuilt only when a table's snapshot changed; the values themselves are never stored.
A file that carries several of these values is, with near certainty, an extract of the
lake (row-level data about subjects), whatever its format.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
from sqlalchemy import select
from sqlalchemy.orm import Session

from datalibrary.config import Settings
from datalibrary.errors import NotFound
from datalibrary.lake.catalog import TableName, open_lake
from datalibrary.lake.models import Dataset
from datalibrary.lake.scan_planning import plan_table
from datalibrary.privacy.store import load_policy
from datalibrary.repos.guard import fingerprint
from datalibrary.repos.hooks import fingerprint_key, fingerprints_path

IDENTIFYING_ACTIONS = {"pseudonymize", "surrogate"}
_lock = threading.Lock()


def identifying_columns(session: Session, dataset: Dataset, columns: list[str]) -> list[str]:
    found = {dataset.subject_column} & set(columns) if dataset.subject_column else set()
    if dataset.policy_name:
        try:
            policy = load_policy(session, dataset.policy_name, dataset.policy_version)
        except Exception:  # noqa: BLE001 - a policy row gone: the subject column still counts
            policy = None
        if policy is not None:
            for column in columns:
                rule = policy.rule_for(column)
                if rule is not None and rule.action in IDENTIFYING_ACTIONS:
                    found.add(column)
    return sorted(found)


def _plans(settings: Settings, session: Session) -> list[tuple[object, list[str]]]:
    lake = open_lake(settings)
    plans = []
    for dataset in session.scalars(select(Dataset).order_by(Dataset.namespace, Dataset.name)):
        try:
            plan = plan_table(lake, TableName(dataset.namespace, dataset.name))
        except NotFound:  # a dataset row without a table: nothing to fingerprint
            continue
        columns = identifying_columns(session, dataset, plan.schema.names)
        if columns and plan.files:
            plans.append((plan, columns))
    return plans


def refresh(settings: Settings, session: Session) -> Path:
    """Rebuild the fingerprint file if any table changed since the last build; its path."""
    target = fingerprints_path(settings)
    stamp_file = target.with_suffix(".stamp")
    with _lock:
        # cheap first: ingestion bumps a dataset's updated_at, so an unchanged catalog means
        # unchanged fingerprints (an erasure only removes values: stale digests over-protect)
        rows = session.execute(
            select(Dataset.namespace, Dataset.name, Dataset.updated_at, Dataset.policy_hash)
        ).all()
        stamp = hashlib.sha256(json.dumps(sorted(map(str, rows))).encode()).hexdigest()
        if target.exists() and stamp_file.exists() and stamp_file.read_text() == stamp:
            return target
        plans = _plans(settings, session)
        key = fingerprint_key(settings).encode()
        digests: set[bytes] = set()
        lake = open_lake(settings)
        for plan, columns in plans:
            dataset = pads.dataset(
                [f.path for f in plan.files],  # type: ignore[attr-defined]
                format="parquet",
                filesystem=lake.storage.fs,
                schema=plan.schema,  # type: ignore[attr-defined]
            )
            for batch in dataset.to_batches(columns=columns, batch_size=65_536):
                for column in batch.columns:
                    values = pc.unique(column.cast(pa.string())).drop_null()
                    digests.update(
                        fingerprint(key, v) for v in values.to_pylist() if v and len(v.strip()) > 2
                    )
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_suffix(".tmp")
        temporary.write_bytes(b"".join(sorted(digests)))
        os.replace(temporary, target)
        stamp_file.write_text(stamp)
        return target
