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
