"""Fan-out: a delivery that holds several tables becomes one child job per table.

- An archive (.zip, .gz, nested up to three levels) is extracted with the limits of
  ``readers.archive``; every contained data file becomes a child job of its own (its own
  hash, all-or-nothing commit, quarantine). A hostile archive (zip bomb, traversal, links,
  too deep) quarantines the delivery and stores nothing.
- A FHIR Bundle or bulk NDJSON file becomes one child job per resource type present, each
  reading the same bytes (hard links, no copy) into its own table.

Table names: a job submitted to ``NS.TABLE`` sends every archive member to ``NS.TABLE`` and
FHIR resources to ``NS.TABLE_<resource_type>``; a job submitted to ``NS.*`` sends each member
to ``NS.<file stem>`` and FHIR resources to ``NS.<resource_type>`` (snake case, e.g.
``medication_request``). The children and the parent's final state are written in ONE
transaction, so a worker killed while fanning out leaves no half set of children.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from datalibrary.audit.service import record
from datalibrary.auth.permissions import Actor
from datalibrary.config import Settings
from datalibrary.db.base import utcnow
from datalibrary.ingest import landing
from datalibrary.ingest.models import IngestJob
from datalibrary.ingest.readers import open_reader
from datalibrary.ingest.readers.base import ReadError
from datalibrary.ingest.readers.define_xml import define_labels
from datalibrary.ingest.readers.detect import detect_format
from datalibrary.ingest.targets import ARCHIVES, WILDCARD, new_job_id
from datalibrary.privacy.metadata import looks_identifying

# Refusals of readers.archive that mean a hostile (or absurd) archive, not a damaged one.
_HOSTILE = (
    "zip bomb",
    "escapes",
    "absolute",
    "symbolic link",
    "nested more",
    "more than",
    "size limit",
    "same entry twice",
    "collides",
)


def table_for_file(name: str) -> str:
    """``NS.*`` members: ``DM.xpt`` -> ``dm``, ``lab-results.csv.gz`` -> ``lab_results``."""
    stem = re.sub(r"[^a-z0-9_]", "_", Path(name).name.split(".")[0].lower()).strip("_")[:60] or "data"
    return stem if stem[0].isalpha() else f"t_{stem}"


def declared_table(path: Path, display: str) -> str:
    """The table a ``NS.*`` delivery goes to: the dataset name declared inside the file (XPT
    member name, e.g. ``DM``), never the file name when the format declares one. Formats that
    declare none (CSV, JSON, Parquet) use the file's stem only if it carries nothing that
    looks identifying (``MRN1234567_SMITH_JOHN.csv`` is refused: give the table)."""
    kind = sniff(path)
    if kind in ("xpt", "sas7bdat"):
        try:
            member = getattr(open_reader(path, format=kind, display_name=display), "table_name", None)
        except (ReadError, OSError, ValueError):
            member = None  # unreadable: the job's run quarantines it with the reason
        if member:
            return table_for_file(str(member))
    stem = Path(display).name.split(".")[0]
    if looks_identifying(stem.replace("_", " ").replace("-", " ")):
        raise ReadError(
            display,
            "the file's name looks identifying and the file declares no table name: "
            "deliver it to NAMESPACE.TABLE (a table name of your choice)",
        )
    return table_for_file(display)


def table_for_resource(table: str, resource_type: str) -> str:
    """``Observation`` -> ``<table>_observation`` (or ``observation`` for ``NS.*``)."""
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", resource_type).lower()
    name = snake if table == WILDCARD else f"{table}_{snake}"
    return name[:63]


def sniff(path: Path) -> str | None:
    """The content's format, or None when it cannot be told (the job's run will quarantine it)."""
    try:
        return detect_format(path)
    except (ReadError, OSError):
        return None


def is_hostile(error: ReadError) -> bool:
    return any(marker in error.reason for marker in _HOSTILE)


def extraction_dir(raw: Path) -> Path:
    """Scratch space next to the parent's raw file (private, same file system as the children)."""
    return raw.parent / "extract"


def _child(parent: IngestJob, **values: Any) -> IngestJob:
    return IngestJob(
        namespace=parent.namespace,
        mode=parent.mode,
        policy_name=parent.policy_name,
        policy_version=parent.policy_version,
        policy_hash=parent.policy_hash,
        source_via=parent.source_via,
        state="queued",
        step="landed",
        created_by=parent.created_by,
        **values,
    )


def split_define(outputs: list[Path], parent: IngestJob) -> tuple[list[Path], dict[str, dict[str, str]]]:
    """A define.xml inside an archive is metadata, not a table: its labels go to the members
    (unless the delivery came with a define.xml of its own, which wins)."""
    defines = [p for p in outputs if p.name.lower() == "define.xml"]
    data = [p for p in outputs if p not in defines]
    labels = dict((parent.options or {}).get("define_labels") or {})
    if defines and not labels:
        try:
            labels = define_labels(defines[0])
        except ReadError as exc:
            raise ReadError(f"{parent.source_name}/{defines[0].name}", exc.reason) from exc
    return data, labels


def plan_members(parent: IngestJob, members: list[tuple[Path, str]]) -> list[tuple[Path, str, str]]:
    """(extracted file, its path in the archive, target table) for each member."""
    planned = []
    for path, relative in members:
        kind = sniff(path)
        if parent.table_name == WILDCARD and kind != "fhir" and kind not in ARCHIVES:
            table = declared_table(path, relative)
        else:
            table = parent.table_name
        planned.append((path, relative, table))
    return planned


def archive_children(
    settings: Settings,
    parent: IngestJob,
    planned: list[tuple[Path, str, str]],
    define: dict[str, dict[str, str]] | None = None,
    expected: dict[str, dict[str, Any]] | None = None,
) -> list[IngestJob]:
    """Land each extracted member (moved, hashed) as a queued child job; not yet in the database."""
    inherited = {"define_labels": define} if define else {}
    children = []
    for path, relative, table in planned:
        job_id = new_job_id()
        display = f"{parent.source_name}/{relative}"[-255:]
        raw, sha, size = landing.land(settings, job_id, path, landing.safe_filename(relative), move=True)
        children.append(
            _child(
                parent,
                id=job_id,
                table_name=table,
                format=None,
                options={
                    **inherited,
                    "parent": parent.id,
                    **({"manifest": expected[relative]} if expected and relative in expected else {}),
                },
                source_name=display,
                raw_path=str(raw),
                sha256=sha,
                size_bytes=size,
            )
        )
    return children


def fhir_children(settings: Settings, parent: IngestJob, raw: Path, types: dict[str, int]) -> list[IngestJob]:
    """One child per resource type, each with a hard link to the same raw bytes."""
    children = []
    for resource_type in sorted(types):
        job_id = new_job_id()
        directory = landing.ingest_dir(settings, "raw") / job_id
        directory.mkdir(mode=0o700)
        target = directory / raw.name
        try:
            os.link(raw, target)
        except OSError:
            shutil.copyfile(raw, target)
        children.append(
            _child(
                parent,
                id=job_id,
                table_name=table_for_resource(parent.table_name, resource_type),
                format="fhir",
                options={"parent": parent.id, "resource_type": resource_type},
                source_name=parent.source_name,
                raw_path=str(target),
                sha256=parent.sha256,
                size_bytes=parent.size_bytes,
            )
        )
    return children


def commit_fan_out(session: Session, parent_id: str, children: list[IngestJob], kind: str) -> IngestJob:
    """Add the children and end the parent ``succeeded`` (step ``fanned-out``) in one transaction."""
    parent = session.get(IngestJob, parent_id)
    assert parent is not None
    for child in children:
        session.add(child)
        record(
            session,
            actor=Actor(parent.created_by, "worker"),
            action="ingest.submit",
            target=f"table:{child.table}",
            details={
                "job": child.id,
                "parent": parent.id,
                "file": child.source_name,
                "sha256": child.sha256,
                "bytes": child.size_bytes,
                "mode": child.mode,
                "via": child.source_via,
            },
        )
    parent.state, parent.step, parent.finished_at, parent.lease_expires_at = (
        "succeeded",
        "fanned-out",
        utcnow(),
        None,
    )
    parent.format = kind
    parent.progress_bytes = parent.size_bytes
    parent.options = {**(parent.options or {}), "children": [c.id for c in children]}
    record(
        session,
        actor=Actor(parent.created_by, "worker"),
        action="ingest.fan-out",
        target=f"table:{parent.table}",
        details={"job": parent.id, "file": parent.source_name, "kind": kind, "children": len(children)},
    )
    return parent
