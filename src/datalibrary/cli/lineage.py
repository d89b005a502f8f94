"""``lineage`` (graph per dataset and per user, compliance reports, forwarding) and
``exports`` (the airlock: request, list, review, download)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from datalibrary.cli.output import JsonOption, acting_as, console, db_session, emit, fail, settings, table
from datalibrary.cli.users import OPERATOR

lineage_app = typer.Typer(
    help="Trace data from source files to the people who read it.", no_args_is_help=True
)
exports_app = typer.Typer(
    help="The exports airlock: request, review and download exports.", no_args_is_help=True
)
AsUser = Annotated[str, typer.Option("--as", help="The user acting (their grants and permissions apply).")]


def _when(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        fail(f"{option} must be an ISO 8601 date or time, not {value!r}", code=2)
        raise
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _principal(session, name: str | None):  # type: ignore[no-untyped-def]
    """The operator only when no ``--as`` was given: ``--as ""`` names nobody, not the operator."""
    return acting_as(session, name) if name is not None else OPERATOR


@lineage_app.command("show")
def show(
    dataset: Annotated[str, typer.Argument(help="NAMESPACE.TABLE")],
    limit: Annotated[int, typer.Option(help="Most recent events per direction.")] = 100,
    as_json: JsonOption = False,
) -> None:
    """Upstream (source files, ingestion jobs, policies) and downstream (accesses, users) of a dataset."""
    from datalibrary.lineage.graph import dataset_lineage
    from datalibrary.lineage.schemas import DatasetLineageOut

    with db_session() as session:
        found = dataset_lineage(session, OPERATOR, dataset, limit=limit)
    data = DatasetLineageOut(**found).model_dump(mode="json")

    def human(d: dict) -> None:  # type: ignore[type-arg]
        table(
            d["upstream"]["ingestions"],
            ["at", "file_name", "sha256", "policy", "snapshot_id", "rows"],
            title=f"{dataset}: ingestions",
        )
        table(d["downstream"]["users"], ["user", "total", "rows", "last"], title="who read it")
        table(
            d["downstream"]["accesses"][:20],
            ["at", "kind", "user", "project", "via", "rows"],
            title="recent accesses",
        )

    emit(data, as_json, human)


@lineage_app.command("user")
def user(
    name: Annotated[str, typer.Argument(help="User name")],
    limit: Annotated[int, typer.Option(help="Most recent events.")] = 100,
    as_json: JsonOption = False,
) -> None:
    """Which datasets a user touched, how, when and how much."""
    from datalibrary.lineage.graph import user_lineage
    from datalibrary.lineage.schemas import UserLineageOut

    with db_session() as session:
        found = user_lineage(session, OPERATOR, name, limit=limit)
    data = UserLineageOut(**found).model_dump(mode="json")
    emit(
        data,
        as_json,
        lambda d: table(d["datasets"], ["dataset", "by_kind", "first", "last", "rows", "bytes"]),
    )


@lineage_app.command("report")
def report(
    scope: Annotated[str, typer.Argument(help="NAMESPACE.TABLE or NAMESPACE")],
    start: Annotated[
        str | None, typer.Option(help="Period start (ISO 8601); default: the beginning.")
    ] = None,
    end: Annotated[str | None, typer.Option(help="Period end (ISO 8601); default: now.")] = None,
    csv: Annotated[bool, typer.Option("--csv", help="Print CSV instead of a summary.")] = False,
    output: Annotated[Path | None, typer.Option(help="Write the report (CSV or JSON) to this file.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Compliance report: accesses, exports, erasures, policy versions, audit chain verification."""
    import json

    from datalibrary.db.base import utcnow
    from datalibrary.lineage.compliance import compliance_report, to_csv
    from datalibrary.lineage.schemas import ReportOut

    begin = _when(start, "--start") or datetime(1970, 1, 1, tzinfo=UTC)
    finish = _when(end, "--end") or utcnow()
    with db_session() as session:
        found = compliance_report(session, OPERATOR, scope, begin, finish)
    data = ReportOut(**found).model_dump(mode="json")
    text = to_csv(found) if csv else json.dumps(data, indent=2) + "\n"
    if output:
        output.write_text(text)
        if not as_json:
            console.print(f"wrote {output}")
            return
    if csv:
        sys.stdout.write(text)
        return

    def human(d: dict) -> None:  # type: ignore[type-arg]
        chain = d["audit_chain"]
        console.print(
            f"{d['scope']}: {len(d['accesses'])} accesses, {len(d['exports'])} exports, "
            f"{len(d['erasures'])} erasures; audit chain "
            f"{'verified' if chain['ok'] else 'BROKEN'} ({chain['entries']} entries)"
        )
        table(
            d["policies"],
            ["dataset", "policy", "version", "first_used", "last_used"],
            title="policies in force",
        )

    emit(data, as_json, human)


@lineage_app.command("forward")
def forward_once(as_json: JsonOption = False) -> None:
    """Send pending events to the configured OpenLineage endpoint once; print the forwarding state."""
    from datalibrary.config import reveal
    from datalibrary.db import Database
    from datalibrary.lineage import forward

    config = settings()
    if not config.lineage.forward_url:
        fail("no endpoint configured: set lineage.forward_url (DATALIBRARY_LINEAGE__FORWARD_URL)", code=2)
    database = Database(config.connect_url())
    try:
        result = forward.forward_once(database, config.lineage)
        with database.session() as session:
            result |= forward.status(session, reveal(config.lineage.forward_url))
    finally:
        database.dispose()
    emit(result, as_json, lambda d: console.print(d))


# exports -----------------------------------------------------------------------------------


def _runner():  # type: ignore[no-untyped-def]
    from datalibrary.lineage.exports import QueryRunner
    from datalibrary.query.lake_planner import LakePlanner

    config = settings()
    return QueryRunner(LakePlanner(config), config.query.limits())


EXPORT_COLUMNS = ["id", "requester", "kind", "state", "datasets", "destination", "expires_at"]


@exports_app.command("request")
def request(
    as_user: AsUser,
    purpose: Annotated[str, typer.Option(help="Why the data must leave.")],
    destination: Annotated[str, typer.Option(help="Where it goes.")],
    sql: Annotated[str | None, typer.Option(help="A query, run with the user's grants.")] = None,
    path: Annotated[str | None, typer.Option(help="A file relative to the user's workspace home.")] = None,
    workspace: Annotated[
        int | None, typer.Option(help="The workspace whose home holds --path (default: the one that has it).")
    ] = None,
    format: Annotated[str, typer.Option(help="csv, parquet or arrow (query exports).")] = "csv",
    project: Annotated[str | None, typer.Option(help="The project the export serves.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Request an export for a steward to review (its content is pinned now)."""
    from datalibrary.lineage.exports import request_export
    from datalibrary.lineage.schemas import ExportOut

    with db_session() as session:
        export = request_export(
            session,
            _principal(session, as_user),
            settings(),
            purpose=purpose,
            destination=destination,
            sql=sql,
            path=path,
            workspace=workspace,
            format=format,
            project=project,
            runner=_runner() if sql else None,
        )
        data = ExportOut.of(export).model_dump(mode="json")
    emit(data, as_json, lambda d: console.print(f"export request #{d['id']} is pending review"))


@exports_app.command("list")
def list_(
    as_user: Annotated[str | None, typer.Option("--as", help="Only this user's requests.")] = None,
    state: Annotated[str | None, typer.Option(help="pending, approved, denied, downloaded, expired.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Export requests (everyone's, or one user's)."""
    from datalibrary.lineage.exports import list_exports
    from datalibrary.lineage.schemas import ExportOut

    with db_session() as session:  # one user's: as /exports/mine; everyone's: as /exports/review
        if as_user is not None:
            found = [
                x
                for x in list_exports(session, _principal(session, as_user))
                if not state or x.state == state
            ]
            rows = [ExportOut.of(x).model_dump(mode="json") for x in found]
        else:
            found = list_exports(session, OPERATOR, everyone=True, state=state)
            rows = [ExportOut.of(x, reviewer=True).model_dump(mode="json") for x in found]
    emit(rows, as_json, lambda r: table(r, EXPORT_COLUMNS))


@exports_app.command("review")
def review(
    export_id: Annotated[int, typer.Argument(help="Export request id")],
    as_user: AsUser,
    approve: Annotated[
        bool | None, typer.Option("--approve/--deny", help="Decide; omit to only see the summary.")
    ] = None,
    qi: Annotated[list[str] | None, typer.Option("--qi", help="A quasi-identifier column (repeat).")] = None,
    count_column: Annotated[
        str | None, typer.Option(help="An aggregate table's count column (smallest-cell check).")
    ] = None,
    note: Annotated[str, typer.Option(help="Note to the requester.")] = "",
    override_reason: Annotated[
        str | None, typer.Option(help="Required to approve content that fails the risk check (audited).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Show an export's content summary and risk report; with --approve/--deny, decide."""
    from datalibrary.lineage.exports import decide, summarize
    from datalibrary.lineage.schemas import ExportOut

    config = settings()
    with db_session() as session:
        principal = _principal(session, as_user)
        if approve is None:
            data = summarize(session, principal, config, export_id, qi or [], count_column)
        else:
            export = decide(
                session,
                principal,
                config,
                export_id,
                approve=approve,
                note=note,
                quasi_identifiers=qi or [],
                count_column=count_column,
                override_reason=override_reason,
            )
            data = ExportOut.of(export, reviewer=True).model_dump(mode="json")
    emit(data, as_json, lambda d: console.print(d))


@exports_app.command("download")
def download(
    export_id: Annotated[int, typer.Argument(help="Export request id")],
    as_user: AsUser,
    output: Annotated[Path, typer.Option(help="Where to write the file (once: it is then deleted).")],
    as_json: JsonOption = False,
) -> None:
    """Download an approved export, once."""
    import hashlib

    from datalibrary.lineage.exports import download as take

    with db_session() as session:
        content, name = take(session, _principal(session, as_user), export_id)
    output.write_bytes(content)
    data = {
        "id": export_id,
        "file": str(output),
        "name": name,
        "bytes": len(content),
        "sha256": hashlib.sha256(content).hexdigest(),
    }
    emit(data, as_json, lambda d: console.print(f"wrote {d['file']} ({d['bytes']} bytes)"))
