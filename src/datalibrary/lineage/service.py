"""Emit OpenLineage RunEvents (built with openlineage-python's types) and store them.

DataLibrary datasets are named ``datalibrary`` / ``NS.TABLE``; source files are
``file`` / ``sha256:<hash>``; exports leave as ``export`` / ``export:<id>``. The acting
user and project travel in a custom run facet. Stored events are the outbox of the
optional forwarding to an external endpoint (``lineage.forward``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.serde import Serde
from sqlalchemy.orm import Session

from datalibrary import __version__
from datalibrary.db.base import utcnow
from datalibrary.lineage.facets import (
    DATASET_NAMESPACE,
    FACETS_URL,
    DataLibraryActorRunFacet,
)
from datalibrary.lineage.models import LineageEdge, LineageEvent

PRODUCER = f"https://datalibrary.dev/releases/{__version__}"
JOB_NAMESPACE = "datalibrary"
ACTOR_FACET_SCHEMA = f"{FACETS_URL}/DataLibraryActorRunFacet.json"
TERMINAL = ("COMPLETE", "FAIL", "ABORT")

__all__ = ["DATASET_NAMESPACE", "DataLibraryActorRunFacet", "DatasetRef", "RunState", "emit", "new_run_id"]


@dataclass(frozen=True)
class DatasetRef:
    name: str  # NS.TABLE or sha256:...
    namespace: str = DATASET_NAMESPACE
    facets: dict[str, Any] = field(default_factory=dict)
    io_facets: dict[str, Any] = field(default_factory=dict)  # inputFacets / outputFacets


def new_run_id() -> str:
    return str(uuid.uuid4())


def run_id_for(kind: str, key: str) -> str:
    """A stable run id for a job whose START and COMPLETE may come from different processes."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"datalibrary:{kind}:{key}"))


def emit(
    session: Session,
    *,
    event_type: RunState,
    run_id: str,
    job_name: str,
    user: str,
    project: str | None = None,
    inputs: list[DatasetRef] = (),  # type: ignore[assignment]
    outputs: list[DatasetRef] = (),  # type: ignore[assignment]
    event_time: datetime | None = None,
    via: str | None = None,
    purpose: str | None = None,
    rows: int | None = None,
    size: int | None = None,
) -> LineageEvent:
    """Build one RunEvent, store it and index the datasets it touches."""
    at = event_time or utcnow()
    actor = DataLibraryActorRunFacet(user=user, project=project, via=via, purpose=purpose)
    event = RunEvent(
        eventType=event_type,
        eventTime=at.isoformat(),
        run=Run(runId=run_id, facets={"datalibrary_actor": actor}),
        job=Job(namespace=JOB_NAMESPACE, name=job_name),
        producer=PRODUCER,
        inputs=[
            InputDataset(namespace=d.namespace, name=d.name, facets=d.facets, inputFacets=d.io_facets)
            for d in inputs
        ],
        outputs=[
            OutputDataset(namespace=d.namespace, name=d.name, facets=d.facets, outputFacets=d.io_facets)
            for d in outputs
        ],
    )
    stored = LineageEvent(
        event_time=at,
        event_type=event_type.value,
        run_id=run_id,
        job_namespace=JOB_NAMESPACE,
        job_name=job_name,
        user=user,
        project=project,
        payload=Serde.to_dict(event),
    )
    session.add(stored)
    session.flush()
    session.add_all(
        LineageEdge(
            event_id=stored.id,
            direction=direction,
            dataset_namespace=d.namespace,
            dataset_name=d.name,
            event_time=at,
            event_type=event_type.value,
            job_name=job_name,
            user=user,
            rows=rows,
            bytes=size,
        )
        for direction, datasets in (("input", inputs), ("output", outputs))
        for d in datasets
    )
    return stored
