"""Lineage of ingestion jobs: START when a job starts, COMPLETE or FAIL when it ends.

Input: the delivered file (``file`` / its path in the raw store, hash, delivery time and
size in a facet); output: the table with the snapshot the job committed, its schema, the
column lineage (columns the policy transformed are marked ``masking = true``), the policy
and the row/byte counts. A table that does not exist (a new table whose job failed or was
quarantined) is named by no event: START names it only when it exists already, FAIL only
when it exists. The pipeline calls these two functions and nothing else.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from sqlalchemy import select
from sqlalchemy.orm import Session

from datalibrary.db import Database
from datalibrary.ingest.models import IngestJob
from datalibrary.lake.models import Dataset
from datalibrary.lineage import facets
from datalibrary.lineage.naming import FILE_NAMESPACE
from datalibrary.lineage.service import DatasetRef, RunState, emit, run_id_for, table_ref
from datalibrary.privacy.store import load_policy

JOB_NAME = "ingest"


def source_path(job: IngestJob) -> str:
    """The delivered file's path (where it was landed), else its name as delivered."""
    return job.raw_path or job.source_name


def _exists(session: Session, job: IngestJob) -> bool:
    found = select(Dataset.id).where(Dataset.namespace == job.namespace, Dataset.name == job.table_name)
    return session.scalar(found) is not None


def _source(job: IngestJob, rows: int | None = None) -> DatasetRef:
    return DatasetRef(
        name=source_path(job),
        namespace=FILE_NAMESPACE,
        facets={
            "datalibrary_sourceFile": facets.DataLibrarySourceFileDatasetFacet(
                sha256=job.sha256 or "",
                size=job.size_bytes or 0,
                fileName=job.source_name,
                deliveredAt=job.created_at.isoformat() if job.created_at else None,
                deliveredVia=job.source_via,
            )
        },
        io_facets={"inputStatistics": facets.input_stats(rows, job.size_bytes)} if rows is not None else {},
    )


def ingestion_started(db: Database, job: IngestJob) -> None:
    with db.session() as session:
        emit(
            session,
            event_type=RunState.START,
            run_id=run_id_for(JOB_NAME, job.id),
            job_name=JOB_NAME,
            user=job.created_by,
            via=job.source_via,
            inputs=[_source(job)],
            outputs=[DatasetRef(f"{job.namespace}.{job.table_name}")] if _exists(session, job) else [],
        )


def _column_actions(session: Session, job: IngestJob, columns: list[str]) -> dict[str, str]:
    try:
        policy = load_policy(session, job.policy_name, job.policy_version)
    except Exception:  # the policy row is gone: lineage still names every column
        return dict.fromkeys(columns, "unknown")
    return {c: (rule.action if (rule := policy.rule_for(c)) else "unknown") for c in columns}


def ingestion_finished(
    session: Session,
    job: IngestJob,
    state: str,
    *,
    snapshot_id: int | None = None,
    rows: int | None = None,
    bytes_written: int | None = None,
    schema: pa.Schema | None = None,
    reason: str | None = None,
) -> None:
    """COMPLETE (with the committed snapshot) or FAIL (with the reason) of one job."""
    table = f"{job.namespace}.{job.table_name}"
    output_facets: dict[str, Any] = {
        "datalibrary_policy": facets.DataLibraryPolicyDatasetFacet(
            name=job.policy_name, version=job.policy_version, sha256=job.policy_hash
        ),
    }
    if schema is not None:
        output_facets["schema"] = facets.schema_facet([(f.name, str(f.type)) for f in schema])
        label = f"{job.policy_name}@{job.policy_version}"
        output_facets["columnLineage"] = facets.column_lineage_facet(
            source_path(job), _column_actions(session, job, schema.names), label
        )
    ok = state == "COMPLETE"
    # The reason code only: quarantine messages quote offending values (a subject's id),
    # which erasure scrubs from the job but could never reach in an append-only,
    # forwarded event.
    error = None if ok else f"ingestion failed: {reason or 'unknown reason'}"
    output = table_ref(table, snapshot_id if ok else None, **output_facets)
    emit(
        session,
        event_type=RunState.COMPLETE if ok else RunState.FAIL,
        run_id=run_id_for(JOB_NAME, job.id),
        job_name=JOB_NAME,
        user=job.created_by,
        via=job.source_via,
        purpose=reason,
        error=error,
        rows=rows,
        size=bytes_written,
        inputs=[_source(job, rows)],
        outputs=[
            DatasetRef(
                output.name,
                facets=output.facets,
                io_facets={"outputStatistics": facets.output_stats(rows, bytes_written)}
                if rows is not None
                else {},
            )
        ]
        if ok or _exists(session, job)
        else [],
    )
