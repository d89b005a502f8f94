"""``projects``: cost centers that workspaces and queries are charged to."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from datalibrary.auth import projects
from datalibrary.auth.models import Project
from datalibrary.auth.schemas import ProjectOut
from datalibrary.cli.output import JsonOption, console, db_session, emit, table
from datalibrary.cli.users import OPERATOR

app = typer.Typer(help="Manage projects (cost centers) and their members.", no_args_is_help=True)


def project_dict(project: Project) -> dict[str, object]:
    """The project as the API shows it (``auth.schemas.ProjectOut``)."""
    return ProjectOut.of(project).model_dump(mode="json")


def _members(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with its members as names (the default ones marked ``*``), for the terminal."""
    names = [m["user"] + ("*" if m["default"] else "") for m in data["members"]]
    return {**data, "members": ", ".join(names)}


def _show(change, as_json: bool, message: str) -> None:  # type: ignore[no-untyped-def]
    with db_session() as session:
        data = project_dict(change(session))
    emit(data, as_json, lambda d: console.print(message.format(**_members(d)), highlight=False))


@app.command("add")
def add(
    name: str,
    description: Annotated[str, typer.Option(help="What the project is for.")] = "",
    as_json: JsonOption = False,
) -> None:
    """Create a project."""
    _show(
        lambda s: projects.create_project(s, OPERATOR, name, description=description),
        as_json,
        "created {name}",
    )


@app.command("list")
def list_(as_json: JsonOption = False) -> None:
    """List projects and their members (* marks a member's default project)."""
    with db_session() as session:
        rows = [project_dict(x) for x in projects.list_projects(session, OPERATOR)]
    emit(rows, as_json, lambda r: table([_members(d) for d in r], ["name", "members", "description"]))


@app.command("add-member")
def add_member(
    project: str,
    user: str,
    default: Annotated[bool, typer.Option("--default", help="Make it the user's default project.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Add a user to a project."""
    _show(
        lambda s: projects.add_member(s, OPERATOR, project, user, default=default),
        as_json,
        "{name}: members {members}",
    )


@app.command("remove-member")
def remove_member(project: str, user: str, as_json: JsonOption = False) -> None:
    """Remove a user from a project."""
    _show(lambda s: projects.remove_member(s, OPERATOR, project, user), as_json, "{name}: members {members}")
