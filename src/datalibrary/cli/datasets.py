"""``datasets``: the catalog from the command line (same facts as the API and console)."""

from __future__ import annotations

from typing import Annotated

import typer

from datalibrary.cli.ingest import OPERATOR
from datalibrary.cli.output import JsonOption, console, db_session, emit, fail, settings, table

app = typer.Typer(help="Browse and describe the datasets of the lake.", no_args_is_help=True)


@app.command("list")
def list_(
    search: Annotated[str | None, typer.Option(help="Text in name, title, description or tags.")] = None,
    tag: Annotated[str | None, typer.Option(help="Only datasets with this tag.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List datasets with row counts, sizes and tags."""
    from datalibrary.lake.catalog import open_lake
    from datalibrary.lake.datasets import list_datasets
    from datalibrary.lake.schemas import DatasetSummary

    config = settings()
    with db_session() as session:
        found = list_datasets(session, OPERATOR, open_lake(config), search=search, tag=tag)
    rows = [DatasetSummary.model_validate(row).model_dump(mode="json") for row in found]
    emit(rows, as_json, lambda d: table(d, ["name", "title", "row_count", "size_bytes", "tags", "policy"]))


@app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="NAMESPACE.TABLE")],
    profile: Annotated[
        bool, typer.Option("--profile/--no-profile", help="Compute the column profile.")
    ] = True,
    as_json: JsonOption = False,
) -> None:
    """Show a dataset: schema with labels, sizes, snapshots, profile, recent jobs."""
    from datalibrary.lake.catalog import open_lake
    from datalibrary.lake.datasets import show_dataset
    from datalibrary.lake.schemas import DatasetDetail

    config = settings()
    with db_session() as session:
        found = show_dataset(session, OPERATOR, open_lake(config), name, profile=profile)
    data = DatasetDetail.model_validate(found).model_dump(mode="json")

    def human(d: dict) -> None:  # type: ignore[type-arg]
        console.print(
            f"[bold]{d['name']}[/bold] {d['title']}  rows={d['row_count']} size={d['size_bytes']} B"
        )
        table(d["columns"], ["name", "type", "label"], title="Columns")
        table(
            d["snapshots"],
            ["snapshot_id", "committed_at", "operation", "actor", "source_file", "policy"],
            title="Snapshots",
        )
        if d["profile"]:
            table(d["profile"], ["name", "null_share", "distinct", "min", "max"], title="Profile")

    emit(data, as_json, human)


@app.command("set")
def set_(
    name: Annotated[str, typer.Argument(help="NAMESPACE.TABLE")],
    title: Annotated[str | None, typer.Option()] = None,
    description: Annotated[str | None, typer.Option()] = None,
    owner: Annotated[str | None, typer.Option()] = None,
    tag: Annotated[list[str] | None, typer.Option(help="Tags (repeat; replaces the list).")] = None,
    sensitivity: Annotated[
        str | None, typer.Option(help="public, internal, confidential or restricted.")
    ] = None,
    subject_column: Annotated[
        str | None, typer.Option(help="The column naming the subject (for erasure).")
    ] = None,
    label: Annotated[list[str] | None, typer.Option(help="COLUMN=label (repeat).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Edit a dataset's catalog metadata."""
    from datalibrary.lake.catalog import open_lake
    from datalibrary.lake.datasets import update_dataset
    from datalibrary.lake.schemas import DatasetDetail

    changes: dict = {}  # type: ignore[type-arg]
    for key, value in (
        ("title", title),
        ("description", description),
        ("owner", owner),
        ("sensitivity", sensitivity),
        ("subject_column", subject_column),
    ):
        if value is not None:
            changes[key] = value
    if tag is not None:
        changes["tags"] = tag
    if label:
        labels = {}
        for item in label:
            column, sep, text = item.partition("=")
            if not sep:
                fail(f"--label takes COLUMN=text, not {item!r}", code=2)
            labels[column] = text
        changes["column_labels"] = labels
    config = settings()
    with db_session() as session:
        found = update_dataset(session, OPERATOR, open_lake(config), name, changes)
    data = DatasetDetail.model_validate(found).model_dump(mode="json")
    emit(data, as_json, lambda d: console.print(f"updated {d['name']}"))
