"""``policies``: store and read dataset policies."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from datalibrary.cli.ingest import OPERATOR
from datalibrary.cli.output import JsonOption, console, db_session, emit, table

app = typer.Typer(help="Store and inspect dataset policies (YAML).", no_args_is_help=True)


@app.command("add")
def add(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Policy YAML file.")],
    as_json: JsonOption = False,
) -> None:
    """Store a policy version (the same document again is a no-op)."""
    from datalibrary.privacy.schemas import PolicyOut
    from datalibrary.privacy.store import save_policy, stored_policy

    with db_session() as session:
        policy, created = save_policy(session, OPERATOR, file.read_text())
        data = PolicyOut.of(stored_policy(session, policy.name, policy.version)).model_dump(mode="json")
    emit(
        data,
        as_json,
        lambda d: console.print(f"policy {d['name']}@{d['version']} {'stored' if created else 'unchanged'}"),
    )


@app.command("list")
def list_(as_json: JsonOption = False) -> None:
    """List stored policies and their versions."""
    from datalibrary.privacy.schemas import PolicyOut
    from datalibrary.privacy.store import list_policies

    with db_session() as session:
        rows = [PolicyOut.of(p).model_dump(mode="json") for p in list_policies(session, OPERATOR)]
    emit(rows, as_json, lambda d: table(d, ["name", "version", "sha256", "created_by"]))


@app.command("show")
def show(
    name: str, version: Annotated[str | None, typer.Option()] = None, as_json: JsonOption = False
) -> None:
    """Print a policy document (latest version unless --version)."""
    from datalibrary.privacy.schemas import PolicyText
    from datalibrary.privacy.store import load_policy

    with db_session() as session:
        data = PolicyText.of(load_policy(session, name, version)).model_dump(mode="json")
    emit(data, as_json, lambda d: console.print(d["document"], highlight=False))


@app.command("validate")
def validate(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Policy YAML file.")],
    as_json: JsonOption = False,
) -> None:
    """Check a policy document (syntax, actions, parameters) without storing it."""
    from datalibrary.cli.output import handle_errors
    from datalibrary.privacy.policy import parse_policy
    from datalibrary.privacy.schemas import PolicyDescription

    with handle_errors():
        data = PolicyDescription.of(parse_policy(file.read_text())).model_dump(mode="json")
    emit(
        data,
        as_json,
        lambda d: console.print(f"policy {d['name']}@{d['version']} is valid: {len(d['rules'])} rule(s)"),
    )


@app.command("preview")
def preview(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Policy YAML file.")],
    sample: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A data file to try it on.")],
    namespace: Annotated[str, typer.Option(help="Study whose key the preview uses.")] = "preview",
    rows: Annotated[int, typer.Option(min=1, max=1000, help="Rows to show.")] = 10,
    as_json: JsonOption = False,
) -> None:
    """Apply a policy to the first rows of a data file and print the result (nothing is stored)."""
    from datalibrary.cli.output import handle_errors, settings
    from datalibrary.db import Database
    from datalibrary.privacy.preview import preview_file
    from datalibrary.privacy.schemas import PreviewOut

    config = settings()
    database = Database(config.connect_url())
    try:
        with handle_errors():
            found = preview_file(
                config, database, OPERATOR, file.read_text(), sample, namespace=namespace, rows=rows
            )
            data = PreviewOut.model_validate(found).model_dump(mode="json")
    finally:
        database.dispose()

    def human(d: dict) -> None:
        table(d["rows"], d["columns"])
        if d["risk"]:
            r = d["risk"]
            console.print(f"risk on {', '.join(r['quasi_identifiers'])}: k={r['k']} max={r['max_risk']:.3f}")

    emit(data, as_json, human)


@app.command("override-risk")
def override_risk(
    table_name: Annotated[str, typer.Option("--table", help="namespace.table")],
    reason: Annotated[str, typer.Option(help="Why the risk is acceptable (audited).")],
    as_json: JsonOption = False,
) -> None:
    """Let a 'shared'-tier table be stored above the risk threshold (audited); then submit the file again."""
    from datalibrary.privacy.overrides import grant_override

    with db_session() as session:
        found = grant_override(session, OPERATOR, table_name, reason)
        data = {"id": found.id, "table": table_name, "granted_by": found.granted_by}
    emit(data, as_json, lambda d: console.print(f"override {d['id']} recorded for {d['table']}"))
