"""``projects``: cost centers that workspaces and queries are charged to."""

from __future__ import annotations

from typing import Annotated

import typer

from datalibrary.auth import projects
from datalibrary.auth.models import Project
from datalibrary.cli.output import JsonOption, emit_change, emit_rows
from datalibrary.cli.users import OPERATOR

app = typer.Typer(help="Manage projects (cost centers) and their members.", no_args_is_help=True)


def project_dict(project: Project) -> dict[str, object]:
    members = sorted(project.members, key=lambda m: m.user.name)
    return {
        "name": project.name,
        "description": project.description,
        "active": project.is_active,
        "members": [m.user.name for m in members],
        "default_for": [m.user.name for m in members if m.is_default],
    }


def _show(change, as_json: bool, message: str) -> None:  # type: ignore[no-untyped-def]
    emit_change(change, project_dict, as_json, message)


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
    """List projects and their members."""
    rows = lambda s: [project_dict(x) for x in projects.list_projects(s, OPERATOR)]  # noqa: E731
    emit_rows(rows, as_json, ["name", "members", "default_for", "description"])


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
