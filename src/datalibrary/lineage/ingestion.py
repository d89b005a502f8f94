"""Lineage of ingestion jobs: START when a job starts, COMPLETE or FAIL when it ends.

Input: the delivered file (``file`` / ``sha256:<hash>``) with its delivery time and size;
output: the table with the snapshot the job committed, its schema, the column lineage
(columns the policy transformed are marked ``masking = true``), the policy and the
row/byte counts. The pipeline calls these two functions and nothing else.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from sqlalchemy.orm import Session

from datalibrary.db import Database
from datalibrary.ingest.models import IngestJob
from datalibrary.lineage import facets
from datalibrary.lineage.service import DatasetRef, RunState, emit, run_id_for
from datalibrary.privacy.store import load_policy

JOB_NAME = "ingest"


def _source(job: IngestJob, rows: int | None = None) -> DatasetRef:
    return DatasetRef(
        name=f"sha256:{job.sha256 or 'unknown'}",
        namespace=facets.FILE_NAMESPACE,
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
            outputs=[DatasetRef(f"{job.namespace}.{job.table_name}")],
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
    """COMPLETE (with the committed snapshot) or FAIL (with the reason code) of one job."""
    table = f"{job.namespace}.{job.table_name}"
    output_facets: dict[str, Any] = {
        "dataSource": facets.datasource_facet("datalibrary-lake", f"datalibrary://lake/{job.namespace}"),
        "datalibrary_policy": facets.DataLibraryPolicyDatasetFacet(
            name=job.policy_name, version=job.policy_version, sha256=job.policy_hash
        ),
    }
    if state == "COMPLETE":
        output_facets["version"] = facets.version_facet(snapshot_id)
    if schema is not None:
        output_facets["schema"] = facets.schema_facet([(f.name, str(f.type)) for f in schema])
        label = f"{job.policy_name}@{job.policy_version}"
        output_facets["columnLineage"] = facets.column_lineage_facet(
            f"sha256:{job.sha256}", _column_actions(session, job, schema.names), label
        )
    emit(
        session,
        event_type=RunState.COMPLETE if state == "COMPLETE" else RunState.FAIL,
        run_id=run_id_for(JOB_NAME, job.id),
        job_name=JOB_NAME,
        user=job.created_by,
        via=job.source_via,
        purpose=reason,
        rows=rows,
        size=bytes_written,
        inputs=[_source(job, rows)],
        outputs=[
            DatasetRef(
                table,
                facets=output_facets,
                io_facets={"outputStatistics": facets.output_stats(rows, bytes_written)}
                if rows is not None
                else {},
            )
        ],
    )
