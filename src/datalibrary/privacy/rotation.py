"""Key rotation: move a study to a new key generation and re-pseudonymize its tables.

Pseudonyms chain through generations (token_g = HMAC(key_g, token_g-1)), so a stored table
is re-keyed from its own tokens: no raw value is needed. Date offsets come from the
stored-form subject token, so every date moves by (new offset - old offset). Each table gets
one new snapshot (all files replaced); the older snapshots are then expired and their files
deleted through the lake's maintenance functions, so the old tokens are gone from the lake.
Full dates keep their exact intervals; partial dates (``2014-03``) are re-shifted through
their mid-point and may land one month / year away from a fresh ingestion.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import select

from datalibrary.audit.service import record
from datalibrary.auth.permissions import Permission, Principal, require
from datalibrary.config import Settings
from datalibrary.db import Database
from datalibrary.db.base import utcnow
from datalibrary.errors import Conflict, InvalidInput
from datalibrary.ingest.models import IngestJob
from datalibrary.lake.catalog import Lake, TableName, open_lake
from datalibrary.lake.maintenance import expire_and_delete
from datalibrary.lake.tables import FileWriter, commit_files, current_data_files, file_schema, summary_of
from datalibrary.privacy.actions import offset_for_tokens, rekey_tokens, shift_column
from datalibrary.privacy.columns import as_strings
from datalibrary.privacy.keys import StudyKey, derive_study_key, load_master_key
from datalibrary.privacy.models import StudyKeyRecord
from datalibrary.privacy.policy import Policy, Rule
from datalibrary.privacy.service import current_generation
from datalibrary.privacy.store import load_policy


class TableRekey:
    """The column plan of one table: which columns get new tokens, which dates move."""

    def __init__(self, policy: Policy, columns: list[str], old: StudyKey, new: StudyKey) -> None:
        self.old, self.new = old, new
        self.tokens: dict[str, Rule] = {}
        self.dates: dict[str, tuple[str | None, int, int]] = {}
        for column in columns:
            rule = policy.rule_for(column)
            if rule is None:
                continue
            if rule.action == "pseudonymize":
                self.tokens[column] = rule
            elif rule.action == "date_shift":
                wanted = rule.params.get("subject") or policy.subject
                wanted = [wanted] if isinstance(wanted, str) else list(wanted)
                subject = next((c for c in wanted if c in columns), None)
                if subject is not None:
                    subject_rule = policy.rule_for(subject)
                    if (
                        subject_rule is None
                        or subject_rule.action != "pseudonymize"
                        or any(
                            subject_rule.params.get(p) not in (None, d)
                            for p, d in (("scope", ""), ("length", 16), ("normalize", "upper"))
                        )
                    ):
                        raise InvalidInput(
                            f"column {column}: its subject column {subject} is not a default pseudonym "
                            "(scope '', length 16), so its dates cannot be re-keyed"
                        )
                self.dates[column] = (
                    subject,
                    int(rule.params.get("min_days", 1)),
                    int(rule.params.get("max_days", 365)),
                )

    def _retoken(self, column: pa.Array, rule: Rule) -> pa.Array:
        prefix = str(rule.params.get("prefix", ""))
        length = int(rule.params.get("length", 16))
        scope = str(rule.params.get("scope", ""))
        encoded = pc.dictionary_encode(as_strings(column))
        values = encoded.dictionary.to_pylist()
        present = [v for v in values if v]
        mapped = dict(
            zip(
                present,
                rekey_tokens(self.new, [v[len(prefix) :] for v in present], scope=scope, length=length),
                strict=True,
            )
        )
        out = [prefix + mapped[v] if v else v for v in values]
        return pa.array(out, pa.string()).take(encoded.indices)

    def _deltas(self, batch: pa.RecordBatch, subject: str | None, low: int, high: int) -> pa.Array:
        if subject is None:
            old = offset_for_tokens(self.old.secret, [""], low, high)[0]
            new = offset_for_tokens(self.new.secret, [""], low, high)[0]
            return pa.array([new - old] * batch.num_rows, pa.int32())
        tokens = pc.fill_null(as_strings(batch.column(batch.schema.get_field_index(subject))), "")
        encoded = pc.dictionary_encode(tokens)
        olds = encoded.dictionary.to_pylist()
        news = [t and rekey_tokens(self.new, [t])[0] for t in olds]
        before = offset_for_tokens(self.old.secret, olds, low, high)
        after = offset_for_tokens(self.new.secret, news, low, high)
        deltas = pa.array([a - b for a, b in zip(after, before, strict=True)], pa.int32())
        return deltas.take(encoded.indices)

    def apply(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        arrays = []
        for index, field in enumerate(batch.schema):
            column = batch.column(index)
            if field.name in self.dates:
                subject, low, high = self.dates[field.name]
                column = shift_column(column, self._deltas(batch, subject, low, high))
            elif field.name in self.tokens:
                column = self._retoken(column, self.tokens[field.name])
            arrays.append(column.cast(field.type) if column.type != field.type else column)
        return pa.RecordBatch.from_arrays(arrays, schema=batch.schema)


def _policy_of(lake: Lake, name: TableName, new: StudyKey) -> tuple[str, str | None] | None:
    """The policy that produced the table's current snapshot (None: nothing to re-key)."""
    snapshot = lake.load(name).current_snapshot()
    if snapshot is None:
        return None
    summary = summary_of(snapshot)
    if summary.get("datalibrary.study-key-id") == new.key_id:
        return None  # re-keyed by an interrupted earlier run
    policy_name = summary.get("datalibrary.policy")
    if not policy_name:
        raise InvalidInput(f"table {name}: its snapshot names no policy, so it cannot be re-keyed")
    return policy_name, summary.get("datalibrary.policy-version")


def rotate_namespace(
    settings: Settings, db: Database, principal: Principal, namespace: str
) -> dict[str, Any]:
    """Advance the study key of ``namespace`` and re-pseudonymize every table in it."""
    require(principal, Permission.LAKE_MAINTAIN)
    require(principal, Permission.POLICIES_MANAGE)
    lake = open_lake(settings)
    with db.session() as session:
        busy = session.scalar(
            select(IngestJob.id)
            .where(IngestJob.namespace == namespace, IngestJob.state.in_(("queued", "running")))
            .limit(1)
        )
        if busy is not None:
            raise Conflict(f"ingestion jobs of {namespace} are queued or running: rotate when they are done")
        old, new = _keys(settings, namespace, current_generation(session, namespace))
        policies: dict[TableName, Policy] = {}
        for name in lake.tables(namespace):
            found = _policy_of(lake, name, new)
            if found is not None:
                policies[name] = load_policy(session, *found)
    results = []
    for name, policy in policies.items():
        results.append(_rewrite(lake, name, policy, old, new, principal.name))
    with db.session() as session:
        session.add(
            StudyKeyRecord(
                namespace=namespace, generation=new.generation, key_id=new.key_id, created_by=principal.name
            )
        )
        record(
            session,
            actor=principal,
            action="keys.rotate",
            target=f"namespace:{namespace}",
            details={"generation": new.generation, "key_id": new.key_id, "tables": len(results)},
        )
    for name in policies:
        # the rekey snapshot's manifests still list the removed files with their column bounds
        # (old tokens): a copy snapshot makes the manifests name only re-keyed files, then expiry
        # deletes everything older (the erasure procedure of the lake)
        _fresh_manifests(lake, name, new)
        expire_and_delete(lake, name, utcnow() + timedelta(seconds=1))
    return {"namespace": namespace, "generation": new.generation, "key_id": new.key_id, "tables": results}


def _fresh_manifests(lake: Lake, name: TableName, new: StudyKey) -> None:
    """Replace every live file by a copy in one snapshot that carries the rekey properties."""
    table = lake.load(name)
    live = current_data_files(table)
    summary = summary_of(table.current_snapshot())
    directory = f"{table.location()}/data/rekey-{new.key_id}-copy"
    copies = []
    try:
        for index, data_file in enumerate(live):
            copy = f"{directory}/part-{index:05d}-{data_file.file_path.rsplit('/', 1)[-1]}"
            lake.storage.copy(data_file.file_path, copy)
            copies.append(copy)
        commit_files(
            lake,
            name,
            add=copies,
            remove=current_data_files,
            properties={k: v for k, v in summary.items() if k.startswith("datalibrary.")},
            replace_all=True,
        )
    except BaseException:
        for copy in copies:
            lake.storage.delete(copy)
        raise


def _keys(settings: Settings, namespace: str, generation: int) -> tuple[StudyKey, StudyKey]:
    master = load_master_key(settings)
    return derive_study_key(master, namespace, generation), derive_study_key(
        master, namespace, generation + 1
    )


def _rewrite(lake: Lake, name: TableName, policy: Policy, old: StudyKey, new: StudyKey, actor: str) -> dict:
    table = lake.load(name)
    schema = file_schema(table)
    summary = summary_of(table.current_snapshot())
    plan = TableRekey(policy, schema.names, old, new)
    writer = FileWriter(lake, table, f"rekey-{new.key_id}", schema, lake.settings.lake.target_file_mb << 20)
    rows = 0
    try:
        for data_file in current_data_files(table):
            with lake.storage.fs.open_input_file(lake.storage.path(data_file.file_path)) as handle:
                parquet = pq.ParquetFile(handle)
                for batch in parquet.iter_batches(batch_size=65_536):
                    batch = pa.RecordBatch.from_arrays(batch.columns, schema=schema)
                    writer.write(plan.apply(batch))
                    rows += batch.num_rows
        files = writer.close()
        keep = ("policy", "policy-version", "policy-sha256", "policy-tier", "risk")
        commit_files(
            lake,
            name,
            add=files,
            remove=current_data_files,
            properties={
                **{k: summary[f"datalibrary.{k}"] for k in keep if f"datalibrary.{k}" in summary},
                "operation": "rekey",
                "actor": actor,
                "study-key-id": new.key_id,
            },
            replace_all=True,
        )
    except BaseException:
        writer.abort()
        raise
    return {"table": str(name), "rows": rows, "pseudonyms": sorted(plan.tokens), "dates": sorted(plan.dates)}
