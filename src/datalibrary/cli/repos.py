"""``repos`` and ``packages``: project Git repositories and the package mirror's policy."""

from __future__ import annotations

from typing import Annotated

import typer

from datalibrary.cli.output import JsonOption, console, db_session, emit, settings, table
from datalibrary.cli.users import OPERATOR
from datalibrary.packages import policy
from datalibrary.packages import service as packages
from datalibrary.repos import service
from datalibrary.repos.schemas import RepoOut

repos_app = typer.Typer(help="Project Git repositories.", no_args_is_help=True)
packages_app = typer.Typer(help="The package mirror's policy and install log.", no_args_is_help=True)


@repos_app.command("list")
def list_(project: str, as_json: JsonOption = False) -> None:
    """List a project's repositories."""
    with db_session() as session:
        rows = [
            RepoOut.of(r).model_dump() for r in service.list_repos(session, settings(), OPERATOR, project)
        ]
    emit(rows, as_json, lambda r: table(r, ["name", "archived", "clone_path", "description"]))


@repos_app.command("create")
def create(
    project: str,
    name: str,
    description: Annotated[str, typer.Option(help="What the repository holds.")] = "",
    as_json: JsonOption = False,
) -> None:
    """Create a repository in a project."""
    with db_session() as session:
        data = RepoOut.of(
            service.create_repo(session, settings(), OPERATOR, project, name, description)
        ).model_dump()
    emit(data, as_json, lambda d: console.print(f"created {d['project']}/{d['name']}: {d['clone_path']}"))


@repos_app.command("archive")
def archive(
    project: str,
    name: str,
    undo: Annotated[bool, typer.Option("--undo", help="Make it writable again.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Archive a repository (read-only), or undo it."""
    with db_session() as session:
        data = RepoOut.of(
            service.set_archived(session, settings(), OPERATOR, project, name, not undo)
        ).model_dump()
    emit(data, as_json, lambda d: console.print(f"{d['project']}/{d['name']} archived={d['archived']}"))


@packages_app.command("mode")
def mode(
    new_mode: Annotated[str, typer.Argument(help="open | allowlist")], as_json: JsonOption = False
) -> None:
    """Switch the mirror between 'open' and 'allowlist'."""
    with db_session() as session:
        policy.set_mode(session, OPERATOR, new_mode)
    emit({"mode": new_mode}, as_json, lambda d: console.print(f"mode: {d['mode']}"))


@packages_app.command("rule")
def rule(
    kind: Annotated[str, typer.Argument(help="allow | deny")],
    name: str,
    specifier: Annotated[str, typer.Option(help="Version range, e.g. '>=2,<3'; empty = all.")] = "",
    note: Annotated[str, typer.Option(help="Why (shown in refusals).")] = "",
    as_json: JsonOption = False,
) -> None:
    """Add an allow or deny rule."""
    with db_session() as session:
        created = policy.add_rule(session, OPERATOR, kind, name, specifier, note)
        data = {"id": created.id, "kind": created.kind, "name": created.name, "specifier": created.specifier}
    emit(data, as_json, lambda d: console.print(f"{d['kind']} {d['name']} {d['specifier']}".strip()))


@packages_app.command("installs")
def installs(limit: int = 100, as_json: JsonOption = False) -> None:
    """Installs and refusals: user, workspace, package, version."""
    with db_session() as session:
        rows = packages.install_log(session, OPERATOR, limit)
    emit(rows, as_json, lambda r: table(r, ["at", "user", "workspace", "action", "package", "version"]))


@packages_app.command("uploads")
def uploads(limit: int = 100, as_json: JsonOption = False) -> None:
    """Wheels uploaded to the internal index: who, when, which file."""
    with db_session() as session:
        rows = packages.uploads_log(session, OPERATOR, limit)
    emit(rows, as_json, lambda r: table(r, ["at", "user", "package", "version", "file", "bytes"]))
