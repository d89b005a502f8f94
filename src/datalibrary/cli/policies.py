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
    from datalibrary.privacy.store import save_policy

    with db_session() as session:
        policy, created = save_policy(session, OPERATOR, file.read_text())
    data = {"name": policy.name, "version": policy.version, "sha256": policy.sha256, "created": created}
    emit(
        data,
        as_json,
        lambda d: console.print(f"policy {d['name']}@{d['version']} {'stored' if created else 'unchanged'}"),
    )


@app.command("list")
def list_(as_json: JsonOption = False) -> None:
    """List stored policies and their versions."""
    from datalibrary.privacy.store import list_policies

    with db_session() as session:
        rows = [
            {
                "name": p.name,
                "version": p.version,
                "sha256": p.sha256,
                "created_by": p.created_by,
                "created_at": p.created_at,
            }
            for p in list_policies(session, OPERATOR)
        ]
    emit(rows, as_json, lambda d: table(d, ["name", "version", "sha256", "created_by"]))


@app.command("show")
def show(
    name: str, version: Annotated[str | None, typer.Option()] = None, as_json: JsonOption = False
) -> None:
    """Print a policy document (latest version unless --version)."""
    from datalibrary.privacy.store import load_policy

    with db_session() as session:
        policy = load_policy(session, name, version)
    data = {
        "name": policy.name,
        "version": policy.version,
        "sha256": policy.sha256,
        "document": policy.document,
    }
    emit(data, as_json, lambda d: console.print(d["document"], highlight=False))
