"""Emit OpenLineage RunEvents (built with openlineage-python's types) and store them.

DataLibrary datasets are named ``datalibrary://<host>`` / ``NS.TABLE``; source files are
``file`` / ``sha256:<hash>``. The acting user and project travel in a custom run facet.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import attr
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import RunFacet
from openlineage.client.serde import Serde
from sqlalchemy.orm import Session

from datalibrary import __version__
from datalibrary.db.base import utcnow
from datalibrary.lineage.models import LineageEdge, LineageEvent

PRODUCER = f"https://datalibrary.dev/releases/{__version__}"
JOB_NAMESPACE = "datalibrary"
DATASET_NAMESPACE = "datalibrary"
ACTOR_FACET_SCHEMA = "https://datalibrary.dev/spec/facets/1-0-0/DataLibraryActorRunFacet.json"


@attr.define
class DataLibraryActorRunFacet(RunFacet):
    """Who ran the job and which project pays for it."""

    user: str
    project: str | None = None

    @staticmethod
    def _get_schema() -> str:
        return ACTOR_FACET_SCHEMA + "#/$defs/DataLibraryActorRunFacet"


@dataclass(frozen=True)
class DatasetRef:
    name: str  # NS.TABLE or sha256:...
    namespace: str = DATASET_NAMESPACE
    facets: dict[str, Any] = field(default_factory=dict)


def new_run_id() -> str:
    return str(uuid.uuid4())


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
) -> LineageEvent:
    """Build one RunEvent, store it and index the datasets it touches."""
    at = event_time or utcnow()
    event = RunEvent(
        eventType=event_type,
        eventTime=at.isoformat(),
        run=Run(
            runId=run_id, facets={"datalibrary_actor": DataLibraryActorRunFacet(user=user, project=project)}
        ),
        job=Job(namespace=JOB_NAMESPACE, name=job_name),
        producer=PRODUCER,
        inputs=[InputDataset(namespace=d.namespace, name=d.name, facets=d.facets) for d in inputs],
        outputs=[OutputDataset(namespace=d.namespace, name=d.name, facets=d.facets) for d in outputs],
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
            event_id=stored.id, direction=direction, dataset_namespace=d.namespace, dataset_name=d.name
        )
        for direction, datasets in (("input", inputs), ("output", outputs))
        for d in datasets
    )
    return stored
