"""``lake``: maintenance and erasure."""

from __future__ import annotations

from typing import Annotated

import typer

from datalibrary.cli.ingest import OPERATOR
from datalibrary.cli.output import JsonOption, console, db_session, emit, settings, table

app = typer.Typer(help="Maintain the lake and erase subjects.", no_args_is_help=True)


@app.command("maintain")
def maintain(
    table_name: Annotated[str | None, typer.Option("--table", help="Only this NAMESPACE.TABLE.")] = None,
    retention_hours: Annotated[
        float | None, typer.Option(help="Keep snapshots this recent (default: setting).")
    ] = None,
    grace_minutes: Annotated[
        float | None, typer.Option(help="Orphans younger than this stay (default: setting).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Compact small files, expire old snapshots deleting their files, remove orphan files."""
    from datalibrary.lake.catalog import open_lake
    from datalibrary.lake.maintenance import maintain as run

    config = settings()
    with db_session() as session:
        report = run(
            session,
            OPERATOR,
            open_lake(config),
            table=table_name,
            retention_hours=retention_hours,
            grace_minutes=grace_minutes,
        )

    def human(data: dict) -> None:  # type: ignore[type-arg]
        table(
            data["tables"],
            ["table", "files_compacted", "snapshots_expired", "files_deleted", "orphans_deleted", "error"],
        )

    emit(report, as_json, human)
    if report["errors"]:
        raise typer.Exit(1)


@app.command("erase")
def erase(
    namespace: Annotated[str, typer.Option(help="The namespace (study) to erase the subject from.")],
    subject: Annotated[
        str, typer.Option(help="The subject's identifier (value of each table's subject column).")
    ],
    as_json: JsonOption = False,
) -> None:
    """Remove every row of a subject from a namespace and prove no file keeps it."""
    from datalibrary.lake.catalog import open_lake
    from datalibrary.lake.erasure import erase_subject
    from datalibrary.wiring import register_handlers

    register_handlers()
    config = settings()
    with db_session() as session:
        report = erase_subject(session, OPERATOR, open_lake(config), namespace=namespace, subject=subject)

    def human(data: dict) -> None:  # type: ignore[type-arg]
        table(
            data["tables"], ["table", "subject_column", "rows_removed", "snapshots_expired", "files_deleted"]
        )
        verdict = (
            "[green]no remaining file contains the subject[/green]"
            if data["ok"]
            else "[red]subject still found[/red]"
        )
        console.print(f"{verdict} ({data['files_checked']} files checked)")
        for uri in data["files_containing_subject"]:
            console.print(f"  {uri}", highlight=False)

    emit(report, as_json, human)
    if not report["ok"]:
        raise typer.Exit(1)
