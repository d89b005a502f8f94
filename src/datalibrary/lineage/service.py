"""Emit OpenLineage RunEvents (built with openlineage-python's types) and store them.

Names follow the OpenLineage naming spec (``lineage.naming``): catalog tables are
``<installation namespace>`` / ``NS.TABLE`` with ``symlinks`` to their storage location
and a ``dataSource``; source files ``file`` / path. The acting user and project travel in a
custom run facet; FAIL events carry the standard ``errorMessage``. Every facet names
DataLibrary as its producer, and custom facets point their ``_schemaURL`` at the schemas
this installation serves. Stored events are the outbox of the optional forwarding to an
external endpoint (``lineage.forward``).

Events stored before this naming (namespace ``datalibrary``, files ``sha256:<hex>``) stay
readable: the graph and reports key catalog tables by ``NS.TABLE`` alone.
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
from datalibrary.lineage import facets as std
from datalibrary.lineage.facets import FACETS_URL, DataLibraryActorRunFacet
from datalibrary.lineage.models import LineageEdge, LineageEvent
from datalibrary.lineage.naming import Naming, naming_for

PRODUCER = f"https://datalibrary.dev/releases/{__version__}"
JOB_NAMESPACE = "datalibrary"
TERMINAL = ("COMPLETE", "FAIL", "ABORT")

__all__ = ["DataLibraryActorRunFacet", "DatasetRef", "RunState", "emit", "new_run_id"]


@dataclass(frozen=True)
class DatasetRef:
    """One dataset of an event. ``namespace=None``: a catalog table (``NS.TABLE``) of this
    installation, which ``emit`` names and links to its storage location."""

    name: str
    namespace: str | None = None
    facets: dict[str, Any] = field(default_factory=dict)
    io_facets: dict[str, Any] = field(default_factory=dict)  # inputFacets / outputFacets

    def named(self, naming: Naming) -> DatasetRef:
        if self.namespace is not None:
            return self
        extra: dict[str, Any] = {"dataSource": std.datasource_facet(naming.namespace, naming.namespace)}
        storage = naming.storage(self.name)
        if storage is not None:
            extra["symlinks"] = std.symlinks_facet([(*storage, "LOCATION")])
        return DatasetRef(self.name, naming.namespace, {**extra, **self.facets}, self.io_facets)


def table_ref(name: str, snapshot_id: int | None = None, **facets: Any) -> DatasetRef:
    """A catalog table, at the snapshot read or written when known."""
    if snapshot_id is not None:
        facets["version"] = std.version_facet(snapshot_id)
    return DatasetRef(name, facets=facets)


def existing(session: Session, names: list[str]) -> list[str]:
    """The catalog tables among ``names`` (lineage never invents a node for a table that
    does not exist, e.g. one a refused query named)."""
    from sqlalchemy import select

    from datalibrary.lake.models import Dataset

    known = {f"{ns}.{n}" for ns, n in session.execute(select(Dataset.namespace, Dataset.name))}
    return [name for name in names if name in known]


def _stamp(payload: dict[str, Any], naming: Naming) -> dict[str, Any]:
    """Every facet is produced by DataLibrary; custom ones point at the schemas served here."""
    maps = [payload["run"].get("facets"), payload["job"].get("facets")]
    for dataset in [*payload.get("inputs", []), *payload.get("outputs", [])]:
        maps += [dataset.get("facets"), dataset.get("inputFacets"), dataset.get("outputFacets")]
    for facet_map in maps:
        for facet in (facet_map or {}).values():
            facet["_producer"] = PRODUCER
            url = facet.get("_schemaURL", "")
            if url.startswith(FACETS_URL + "/"):
                facet["_schemaURL"] = naming.schema_url(
                    url.removeprefix(FACETS_URL + "/").removesuffix(".json")
                )
    return payload


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
    operator: str | None = None,
    rows: int | None = None,
    size: int | None = None,
    error: str | None = None,
    job_facets: dict[str, Any] | None = None,
) -> LineageEvent:
    """Build one RunEvent, store it and index the datasets it touches.

    A FAIL event always carries ``errorMessage`` (``error``, else a generic message).
    ``operator`` names who acted for ``user`` when that was someone else (the CLI's ``--as``)."""
    at = event_time or utcnow()
    naming = naming_for(session.get_bind())
    inputs = [d.named(naming) for d in inputs]
    outputs = [d.named(naming) for d in outputs]
    actor = DataLibraryActorRunFacet(user=user, project=project, via=via, purpose=purpose, operator=operator)
    run_facets: dict[str, Any] = {"datalibrary_actor": actor}
    if event_type == RunState.FAIL:
        run_facets["errorMessage"] = std.error_facet((error or f"the {job_name} run failed")[:2000])
    event = RunEvent(
        eventType=event_type,
        eventTime=at.isoformat(),
        run=Run(runId=run_id, facets=run_facets),
        job=Job(namespace=JOB_NAMESPACE, name=job_name, facets=job_facets or {}),
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
        payload=_stamp(Serde.to_dict(event), naming),
    )
    session.add(stored)
    session.flush()
    session.add_all(
        LineageEdge(
            event_id=stored.id,
            direction=direction,
            dataset_namespace=(d.namespace or "")[:255],
            dataset_name=d.name[:255],
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
