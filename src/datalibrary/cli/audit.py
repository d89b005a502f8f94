"""``audit``: verify the hash chain."""

from __future__ import annotations

import typer

from datalibrary.audit import service
from datalibrary.cli.output import JsonOption, console, db_session, emit

app = typer.Typer(help="Inspect and verify the audit log.", no_args_is_help=True)


@app.command("verify")
def verify(as_json: JsonOption = False) -> None:
    """Verify every entry of the audit chain; exit 1 at the first broken entry."""
    with db_session() as session:
        result = service.verify(session).as_dict()

    def human(data: dict) -> None:  # type: ignore[type-arg]
        if data["ok"]:
            console.print(f"[green]audit chain intact[/green]: {data['entries']} entries")
        else:
            broken = data["first_broken"]
            console.print(f"[red]audit chain broken[/red] at entry {broken['id']}: {broken['reason']}")

    emit(result, as_json, human)
    if not result["ok"]:
        raise typer.Exit(1)
