"""``keys``: study key ids (never the keys themselves)."""

from __future__ import annotations

from typing import Annotated

import typer

from datalibrary.cli.output import JsonOption, console, db_session, emit, settings

app = typer.Typer(help="Anonymization keys: study key ids and generations.", no_args_is_help=True)


@app.command("show")
def show(
    namespace: Annotated[str, typer.Option(help="The study (namespace).")],
    as_json: JsonOption = False,
) -> None:
    """Print the id and generation of a study's current key (the key itself is never shown)."""
    from datalibrary.privacy.service import study_key_for

    with db_session() as session:
        key = study_key_for(settings(), session, namespace)
    data = {"namespace": namespace, "generation": key.generation, "key_id": key.key_id}
    emit(
        data,
        as_json,
        lambda d: console.print(f"{d['namespace']}: key {d['key_id']} (generation {d['generation']})"),
    )


@app.command("rotate")
def rotate(
    namespace: Annotated[
        str, typer.Option(help="The study (namespace) whose key moves to a new generation.")
    ],
    as_json: JsonOption = False,
) -> None:
    """Re-key a study: new key generation, every table re-pseudonymized, old snapshots deleted."""
    from datalibrary.cli.ingest import OPERATOR
    from datalibrary.cli.output import handle_errors, table
    from datalibrary.db import Database
    from datalibrary.privacy.rotation import rotate_namespace

    config = settings()
    database = Database(config.connect_url())
    try:
        with handle_errors():
            data = rotate_namespace(config, database, OPERATOR, namespace)
    finally:
        database.dispose()

    def human(d: dict) -> None:
        console.print(f"{d['namespace']}: key {d['key_id']} (generation {d['generation']})")
        table(d["tables"], ["table", "rows", "pseudonyms", "dates"])

    emit(data, as_json, human)
