"""Shared CLI plumbing: settings, database, JSON or Rich output, errors as exit codes.

Imports stay light (SQLAlchemy, pydantic-settings and Rich tables load when a command uses
them): every command module imports this one, and ``datalibrary version`` should not pay for
an ORM. ``tests/test_cli_speed.py`` keeps it that way.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from datalibrary.errors import DataLibraryError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from datalibrary.auth.permissions import Principal
    from datalibrary.config import Settings

JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
console = Console()
err_console = Console(stderr=True)


def settings() -> Settings:
    from datalibrary.config import load_settings

    try:
        return load_settings()
    except ValueError as exc:
        fail(f"invalid configuration: {exc}")
        raise  # unreachable


OPERATOR_NAME = "cli"  # the operator as the audit log names it (docs/reference/cli.md)


def os_user() -> str | None:
    """The operating-system account running the CLI: the operator's trace in audit details."""
    import getpass

    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (some containers)
        return None


def operator() -> Principal:
    """The CLI's own identity for operator commands: the platform, audited as ``cli``."""
    from datalibrary.auth.permissions import Principal

    return Principal.system(OPERATOR_NAME, client="cli", os_user=os_user())


def acting_as(session: Session, name: str) -> Principal:
    """USER's identity for a command run ``--as USER``: USER's permissions and grants, nothing
    more (the operator borrows no rights), audited as ``cli`` acting on USER's behalf."""
    from datalibrary.auth import service as auth_service

    if not name.strip():
        fail("--as needs a user name (an empty one names nobody, not the operator)", code=2)
    user = auth_service.principal_for(auth_service.get_user(session, name))
    return user.operated_by(OPERATOR_NAME, client="cli", os_user=os_user())


@contextmanager
def db_session() -> Iterator[Session]:
    """A session on the configured database; domain errors become clean exits."""
    from datalibrary.db import Database

    database = Database(settings().connect_url())
    try:
        with handle_errors(), database.session() as session:
            yield session
    finally:
        database.dispose()


@contextmanager
def handle_errors() -> Iterator[None]:
    try:
        yield
    except DataLibraryError as exc:
        fail(exc.detail, code=2 if exc.status < 500 else 1)


def fail(message: str, code: int = 1) -> None:
    err_console.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(code)


def emit(data: Any, as_json: bool, human: Callable[[Any], None] | None = None) -> None:
    if as_json or human is None:
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    else:
        human(data)


def emit_change(
    change: Callable[[Session], Any], shown: Callable[[Any], dict[str, Any]], as_json: bool, message: str
) -> None:
    """Run ``change`` in one transaction, then print the record it returns: JSON, or ``message``
    filled from it (``"{name}: members {members}"``)."""
    with db_session() as session:
        data = shown(change(session))
    emit(data, as_json, lambda d: console.print(message.format(**d), highlight=False))


def emit_rows(load: Callable[[Session], list[dict[str, Any]]], as_json: bool, columns: list[str]) -> None:
    """Print the rows ``load`` reads: JSON, or a table of ``columns``."""
    with db_session() as session:
        rows = load(session)
    emit(rows, as_json, lambda r: table(r, columns))


def table(rows: list[dict[str, Any]], columns: list[str], title: str | None = None) -> None:
    from rich.table import Table

    grid = Table(title=title)
    for column in columns:
        grid.add_column(column)
    for row in rows:
        grid.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
    console.print(grid)
