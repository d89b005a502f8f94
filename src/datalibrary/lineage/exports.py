"""The exports airlock: the only way data leaves the platform.

A scientist names a result (a query, run with their own grants, or a file of their
workspace home), a purpose and a destination; a steward sees a content summary and a
re-identification risk report and approves or denies; an approved export is prepared as
one file that the requester can download ONCE before it expires (the file is then deleted).
Every step is audited; lineage records START at the request, COMPLETE when the data left
(the download), FAIL when denied and ABORT when it expired unused.
"""

from __future__ import annotations

import hashlib
import io
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from datalibrary.audit import service as audit
from datalibrary.auth import service as auth_service
from datalibrary.auth.permissions import Permission, Principal, require
from datalibrary.config import Settings
from datalibrary.db.base import utcnow
from datalibrary.errors import Conflict, InvalidInput, NotFound, PermissionDenied, TooLarge
from datalibrary.lineage import facets, risk
from datalibrary.lineage.models import ExportRequest
from datalibrary.lineage.service import DatasetRef, RunState, emit, new_run_id

FORMATS = ("csv", "parquet")
JOB_NAME = "export"


@dataclass(frozen=True)
class QueryRunner:
    """How the airlock runs a query export with the requester's grants (the query service)."""

    planner: Any
    limits: Any


def workspace_home(settings: Settings, user: str) -> Path:
    return settings.home / "workspaces" / "homes" / user


def resolve_workspace_file(settings: Settings, user: str, relative: str) -> Path:
    """``relative`` inside the user's workspace home; refuses traversal, absolute paths, links out."""
    text = (relative or "").strip()
    if not text or len(text) > 1000 or "\x00" in text:
        raise InvalidInput("give the file's path relative to your workspace home", field="path")
    candidate = Path(text)
    if candidate.is_absolute() or ".." in candidate.parts:
        raise InvalidInput(
            "the path must stay inside your workspace home (no '..', not absolute)", field="path"
        )
    home = workspace_home(settings, user).resolve()
    target = (home / candidate).resolve()
    if not target.is_relative_to(home):
        raise InvalidInput("the path leaves your workspace home", field="path")
    if not target.is_file():
        raise NotFound(f"no file '{text}' in your workspace home")
    return target


def _datasets_of(sql: str) -> list[str]:
    from datalibrary.query import guard

    return sorted({ref.name for ref in guard.check(sql).refs})


def _inputs(export: ExportRequest) -> list[DatasetRef]:
    if export.kind == "file":
        return [DatasetRef(f"workspace:{export.requester}/{export.path}", namespace="workspace")]
    return [DatasetRef(name) for name in export.datasets]


def _emit(session: Session, export: ExportRequest, state: RunState, **extra: Any) -> None:
    emit(
        session,
        event_type=state,
        run_id=export.run_id,
        job_name=JOB_NAME,
        user=export.requester,
        project=export.project,
        purpose=export.purpose[:500],
        via="airlock",
        inputs=_inputs(export),
        **extra,
    )


def request_export(
    session: Session,
    principal: Principal,
    settings: Settings,
    *,
    purpose: str,
    destination: str,
    sql: str | None = None,
    path: str | None = None,
    format: str = "csv",
    project: str | None = None,
) -> ExportRequest:
    require(principal, Permission.EXPORTS_REQUEST)
    purpose, destination = (purpose or "").strip(), (destination or "").strip()
    if len(purpose) < 10 or len(purpose) > 2000:
        raise InvalidInput("say why the data must leave (10-2000 characters)", field="purpose")
    if len(destination) < 3 or len(destination) > 500:
        raise InvalidInput("say where the data goes (3-500 characters)", field="destination")
    if bool(sql) == bool(path):
        raise InvalidInput("name exactly one result: a query (sql) or a workspace file (path)")
    if format not in FORMATS:
        raise InvalidInput(f"format must be one of {', '.join(FORMATS)}", field="format")
    if project is not None and principal.via != "system" and project not in principal.projects:
        raise PermissionDenied(f"you are not a member of project '{project}'", field="project")
    export = ExportRequest(
        run_id=new_run_id(),
        requester=principal.name,
        project=project or principal.default_project,
        purpose=purpose,
        destination=destination,
        format=format,
        state="pending",
        created_at=utcnow(),
    )
    if sql:
        export.kind, export.sql, export.datasets = "query", sql[:100_000], _datasets_of(sql)
    else:
        resolve_workspace_file(settings, principal.name, path or "")
        export.kind, export.path, export.datasets = "file", str(Path((path or "").strip())), []
    session.add(export)
    session.flush()
    _emit(session, export, RunState.START)
    audit.record(
        session,
        actor=principal.name,
        action="export.request",
        target=f"export:{export.id}",
        details={"kind": export.kind, "datasets": export.datasets, "project": export.project},
    )
    return export


def get_export(session: Session, export_id: int) -> ExportRequest:
    export = session.get(ExportRequest, export_id)
    if export is None:
        raise NotFound(f"export request {export_id} does not exist")
    return export


def list_exports(
    session: Session, principal: Principal, *, everyone: bool = False, state: str | None = None
) -> list[ExportRequest]:
    """Your own requests; reviewers list everyone's with ``everyone``."""
    if everyone:
        require(principal, Permission.EXPORTS_REVIEW)
    else:
        require(principal, Permission.EXPORTS_REQUEST)
    query = select(ExportRequest).order_by(ExportRequest.id.desc()).limit(500)
    if not everyone:
        query = query.where(ExportRequest.requester == principal.name)
    if state:
        query = query.where(ExportRequest.state == state)
    return list(session.scalars(query))


def _requester(session: Session, export: ExportRequest) -> Principal:
    return auth_service.principal_for(auth_service.get_user(session, export.requester))


def _content(
    session: Session, settings: Settings, export: ExportRequest, runner: QueryRunner
) -> pa.Table | None:
    """The rows that would leave, computed now with the requester's grants (None: not tabular)."""
    if export.kind == "query":
        from datalibrary.query.service import run_query

        result = run_query(
            session,
            _requester(session, export),
            export.sql or "",
            planner=runner.planner,
            limits=runner.limits,
            project=export.project,
            via="airlock",
        )
        if result.truncated:
            raise TooLarge("the query result hit the server's row cap: an export must be complete; narrow it")
        return result.table
    target = resolve_workspace_file(settings, export.requester, export.path or "")
    if target.stat().st_size > settings.lineage.export_max_mb << 20:
        raise TooLarge(f"the file is larger than {settings.lineage.export_max_mb} MB")
    suffix = target.suffix.lower()
    try:
        if suffix == ".parquet":
            return pq.read_table(target)
        if suffix in (".csv", ".tsv"):
            options = pacsv.ParseOptions(delimiter="\t" if suffix == ".tsv" else ",")
            return pacsv.read_csv(target, parse_options=options)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InvalidInput(f"the file cannot be read as a table: {str(exc)[:200]}") from None
    return None


def summarize(
    session: Session,
    principal: Principal,
    settings: Settings,
    export_id: int,
    runner: QueryRunner,
    quasi_identifiers: list[str] | None = None,
) -> dict[str, Any]:
    """What the steward reviews: columns, rows, size and the re-identification risk."""
    require(principal, Permission.EXPORTS_REVIEW)
    export = get_export(session, export_id)
    table = _content(session, settings, export, runner)
    return _summary(settings, export, table, quasi_identifiers)


def _summary(
    settings: Settings, export: ExportRequest, table: pa.Table | None, quasi_identifiers: list[str] | None
) -> dict[str, Any]:
    if table is None:
        target = resolve_workspace_file(settings, export.requester, export.path or "")
        return {
            "tabular": False,
            "bytes": target.stat().st_size,
            "note": "not a table (CSV, TSV or Parquet): review the file's nature by its name and purpose",
            "risk": None,
        }
    qis = [q.strip() for q in (quasi_identifiers or []) if q.strip()]
    named = bool(qis)
    if not named:
        qis = risk.suggest_quasi_identifiers(table.column_names)
    report = risk.k_anonymity(table, qis)
    report["named_by"] = "steward" if named else "suggested from column names"
    return {
        "tabular": True,
        "columns": [{"name": f.name, "type": str(f.type)} for f in table.schema],
        "rows": table.num_rows,
        "bytes": table.nbytes,
        "risk": report,
    }


def _encode(table: pa.Table, fmt: str) -> bytes:
    sink = io.BytesIO()
    if fmt == "csv":
        pacsv.write_csv(table, sink)
    else:
        pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def exports_dir(settings: Settings) -> Path:
    path = settings.home / "exports"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def decide(
    session: Session,
    principal: Principal,
    settings: Settings,
    export_id: int,
    *,
    approve: bool,
    runner: QueryRunner,
    note: str = "",
    quasi_identifiers: list[str] | None = None,
) -> ExportRequest:
    """Approve (prepare the file, start the download window) or deny a pending request."""
    require(principal, Permission.EXPORTS_REVIEW)
    export = get_export(session, export_id)
    if export.state != "pending":
        raise Conflict(f"export request {export_id} is {export.state}, not pending")
    if export.requester == principal.name:
        raise PermissionDenied("a steward cannot review their own export request")
    export.reviewer, export.decided_at, export.decision_note = principal.name, utcnow(), (note or "")[:2000]
    if not approve:
        export.state = "denied"
        _emit(session, export, RunState.FAIL)
        audit.record(
            session,
            actor=principal.name,
            action="export.deny",
            target=f"export:{export.id}",
            details={"requester": export.requester},
        )
        return export
    table = _content(session, settings, export, runner)
    export.summary = _summary(settings, export, table, quasi_identifiers)
    if table is not None:
        content = _encode(table, export.format)
        suffix = export.format
    else:
        target = resolve_workspace_file(settings, export.requester, export.path or "")
        content, suffix = target.read_bytes(), (target.suffix.lstrip(".") or "bin")
    if len(content) > settings.lineage.export_max_mb << 20:
        raise TooLarge(f"the export is larger than {settings.lineage.export_max_mb} MB")
    stored = exports_dir(settings) / f"export-{export.id}-{secrets.token_hex(8)}.{suffix}"
    stored.write_bytes(content)
    stored.chmod(0o600)
    export.state = "approved"
    export.file_path, export.file_bytes = str(stored), len(content)
    export.file_sha256 = hashlib.sha256(content).hexdigest()
    export.expires_at = utcnow() + timedelta(hours=settings.lineage.export_ttl_hours)
    audit.record(
        session,
        actor=principal.name,
        action="export.approve",
        target=f"export:{export.id}",
        details={
            "requester": export.requester,
            "bytes": len(content),
            "sha256": export.file_sha256,
            "k": (export.summary.get("risk") or {}).get("k"),
        },
    )
    return export


def download(session: Session, principal: Principal, export_id: int) -> tuple[bytes, str]:
    """The approved file, once: it is deleted as it is handed over."""
    require(principal, Permission.EXPORTS_REQUEST)
    export = get_export(session, export_id)
    if export.requester != principal.name:
        raise NotFound(f"export request {export_id} does not exist")  # others' exports are not revealed
    if export.state != "approved":
        raise Conflict(f"export request {export_id} is {export.state}: nothing to download")
    if export.expires_at and export.expires_at <= utcnow():
        _expire(session, export)
        raise Conflict(f"export request {export_id} expired unused; request it again")
    path = Path(export.file_path or "")
    content = path.read_bytes()
    claimed = session.execute(
        update(ExportRequest)
        .where(ExportRequest.id == export.id, ExportRequest.state == "approved")
        .values(state="downloaded", downloaded_at=utcnow())
    )
    if claimed.rowcount != 1:  # a concurrent download won
        raise Conflict(f"export request {export_id} was already downloaded")
    session.refresh(export)
    path.unlink(missing_ok=True)
    _emit(
        session,
        export,
        RunState.COMPLETE,
        outputs=[
            DatasetRef(
                f"export:{export.id}",
                namespace="export",
                facets={"dataSource": facets.datasource_facet("export destination", "datalibrary://exports")},
                io_facets={
                    "outputStatistics": facets.output_stats(
                        (export.summary or {}).get("rows"), export.file_bytes, 1
                    )
                },
            )
        ],
        rows=(export.summary or {}).get("rows"),
        size=export.file_bytes,
    )
    audit.record(
        session,
        actor=principal.name,
        action="export.download",
        target=f"export:{export.id}",
        details={"bytes": export.file_bytes, "sha256": export.file_sha256},
    )
    return content, f"export-{export.id}.{path.suffix.lstrip('.') or 'bin'}"


def _expire(session: Session, export: ExportRequest) -> None:
    Path(export.file_path or "").unlink(missing_ok=True)
    export.state = "expired"
    _emit(session, export, RunState.ABORT)
    audit.record(
        session,
        actor="system",
        action="export.expire",
        target=f"export:{export.id}",
        details={"requester": export.requester},
    )


def expire_exports(session: Session) -> int:
    """Delete the files of approved exports whose download window closed (maintenance)."""
    due = session.scalars(
        select(ExportRequest).where(ExportRequest.state == "approved", ExportRequest.expires_at <= utcnow())
    ).all()
    for export in due:
        _expire(session, export)
    return len(due)


def export_dict(export: ExportRequest) -> dict[str, Any]:
    return {
        "id": export.id,
        "run_id": export.run_id,
        "requester": export.requester,
        "project": export.project,
        "kind": export.kind,
        "sql": export.sql,
        "path": export.path,
        "format": export.format,
        "purpose": export.purpose,
        "destination": export.destination,
        "state": export.state,
        "datasets": export.datasets,
        "summary": export.summary,
        "created_at": export.created_at,
        "reviewer": export.reviewer,
        "decided_at": export.decided_at,
        "decision_note": export.decision_note,
        "file_bytes": export.file_bytes,
        "file_sha256": export.file_sha256,
        "expires_at": export.expires_at,
        "downloaded_at": export.downloaded_at,
    }
