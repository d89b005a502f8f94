"""``audit``: verify the hash chain, list and export events."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from datalibrary.audit import service
from datalibrary.audit.schemas import AuditEventOut
from datalibrary.cli.output import JsonOption, console, db_session, emit, table

app = typer.Typer(help="Inspect, export and verify the audit log.", no_args_is_help=True)


@app.command("verify")
def verify(as_json: JsonOption = False) -> None:
    """Verify every entry of the audit chain; exit 1 at the first broken entry."""
    with db_session() as session:
        result = service.verify(session).as_dict()

    def human(data: dict) -> None:  # type: ignore[type-arg]
        anchors = data.get("anchors") or {}
        if anchors.get("last_anchor"):
            last = anchors["last_anchor"]
            console.print(f"last anchor {last['at']}: {last['count']} entries, head {last['hash']}")
        if data["ok"]:
            console.print(f"[green]audit chain intact[/green]: {data['entries']} entries")
        else:
            broken = data["first_broken"]
            console.print(f"[red]audit chain broken[/red] at entry {broken['id']}: {broken['reason']}")

    emit(result, as_json, human)
    if not result["ok"]:
        raise typer.Exit(1)


@app.command("anchor")
def anchor(as_json: JsonOption = False) -> None:
    """Write an anchor (entry count and head hash) outside the database, for later verifies."""
    with db_session() as session:
        line = service.anchor(session)
    emit(
        line or {},
        as_json,
        lambda d: console.print(
            f"anchored {d['count']} entries, head {d['hash']}" if d else "nothing to anchor"
        ),
    )


def _search(session, actor, action, target, since, limit, on_behalf_of=None):  # type: ignore[no-untyped-def]
    from datalibrary.cli.users import OPERATOR

    return service.search(
        session, OPERATOR, actor=actor, action=action, target=target, since=since, limit=limit,
        on_behalf_of=on_behalf_of,
    )  # fmt: skip


ActorOption = Annotated[str | None, typer.Option(help="Only events by this actor.")]
ActionOption = Annotated[str | None, typer.Option(help="Action prefix, e.g. 'auth.' or 'user.disable'.")]
TargetOption = Annotated[str | None, typer.Option(help="Target prefix, e.g. 'user:ada'.")]
SinceOption = Annotated[datetime | None, typer.Option(help="Only events at or after this time (UTC).")]
BehalfOption = Annotated[
    str | None, typer.Option(help="Only what was done with this user's rights by someone else (--as).")
]


@app.command("events")
def events(
    actor: ActorOption = None,
    action: ActionOption = None,
    target: TargetOption = None,
    since: SinceOption = None,
    on_behalf_of: BehalfOption = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="At most this many, newest first.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """List audit events, newest first, filtered."""
    with db_session() as session:
        rows = [
            AuditEventOut.of(e).model_dump(mode="json")
            for e in _search(session, actor, action, target, _utc(since), limit, on_behalf_of)
        ]
    emit(rows, as_json, lambda r: table(r, ["id", "at", "actor", "action", "target", "outcome"]))


@app.command("export")
def export_csv(
    output: Annotated[Path, typer.Argument(help="CSV file to write ('-' for standard output).")],
    actor: ActorOption = None,
    action: ActionOption = None,
    target: TargetOption = None,
    since: SinceOption = None,
    on_behalf_of: BehalfOption = None,
    limit: Annotated[
        int, typer.Option(min=1, max=1_000_000, help="At most this many, newest first.")
    ] = 100_000,
    as_json: JsonOption = False,
) -> None:
    """Export audit events as spreadsheet-safe CSV (formula cells are neutralized)."""
    from datalibrary.audit.export import csv_lines

    with db_session() as session:
        rows = _search(session, actor, action, target, _utc(since), limit, on_behalf_of)
        text = "".join(csv_lines(rows))
        service.record(
            session, actor="cli", action="audit.export", target="audit:events", details={"rows": len(rows)}
        )
    if str(output) == "-":
        sys.stdout.write(text)
        return
    output.write_text(text)
    emit(
        {"file": str(output), "rows": len(rows)},
        as_json,
        lambda d: console.print(f"wrote {d['rows']} events to {d['file']}"),
    )


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value
