"""Validate a policy document and preview it on sample rows, without storing anything."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pyarrow as pa

from datalibrary.auth.permissions import Permission, Principal, require
from datalibrary.config import Settings
from datalibrary.db import Database
from datalibrary.ingest.readers import open_reader
from datalibrary.privacy.policy import Policy, PolicyContext, PolicyStep, parse_policy
from datalibrary.privacy.service import LazyKey


def preview_batch(
    settings: Settings, db: Database, policy: Policy, batch: pa.RecordBatch, namespace: str
) -> dict[str, Any]:
    """The policy applied to ``batch`` with the namespace's real study key (tokens as stored).

    Surrogates are random and not recorded; suppression counts within the sample only."""
    context = PolicyContext(namespace, "preview", "", {"key_provider": LazyKey(settings, db, namespace)})
    step = PolicyStep(policy, context)
    step.plan(batch)
    if step.needs_prepass:
        step.observe(batch)
    out = step.apply(batch)
    risk = step.risk()
    return {
        "actions": step.actions(),
        "columns": out.schema.names,
        "rows": out.to_pylist(),
        "risk": risk.as_dict() if risk else None,
    }


def preview_file(
    settings: Settings,
    db: Database,
    principal: Principal,
    yaml_text: str,
    sample: Path,
    *,
    namespace: str,
    rows: int = 20,
) -> dict[str, Any]:
    """Preview on the first ``rows`` rows of a data file in any supported format."""
    require(principal, Permission.POLICIES_MANAGE)
    policy = parse_policy(yaml_text)
    reader = open_reader(sample)
    taken = []
    count = 0
    for batch in itertools.islice(reader.batches(), 0, 1000):
        taken.append(batch.slice(0, rows - count))
        count += taken[-1].num_rows
        if count >= rows:
            break
    if not taken:
        return {"actions": {}, "columns": [], "rows": [], "risk": None}
    table = pa.Table.from_batches(taken).combine_chunks()
    batch = table.to_batches()[0] if table.num_rows else taken[0]
    return preview_batch(settings, db, policy, batch, namespace)
