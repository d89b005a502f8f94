"""``users``: accounts, their roles, projects and status."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from datalibrary.auth import accounts, projects, service
from datalibrary.auth.models import User
from datalibrary.auth.permissions import ROLES
from datalibrary.auth.schemas import UserOut
from datalibrary.cli.lazy import LazyModule
from datalibrary.cli.output import JsonOption, console, db_session, emit, fail, operator, settings, table
from datalibrary.db import Database

workspace_service = LazyModule("datalibrary.workspaces.service")  # only 'disable' stops workspaces

app = typer.Typer(help="Manage user accounts.", no_args_is_help=True)
OPERATOR = operator()
RoleOption = Annotated[
    list[str], typer.Option("--role", help=f"Role ({', '.join(ROLES)}); repeat for several.")
]


def user_dict(user: User) -> dict[str, object]:
    """The account as the API shows it (``auth.schemas.UserOut``)."""
    return UserOut.of(user).model_dump(mode="json")


def read_password(path: Path) -> str:
    if not path.is_file():
        fail(f"password file {path} does not exist")
    return path.read_text().strip()


@app.command("add")
def add(
    name: str,
    role: RoleOption,
    password_file: Annotated[
        Path | None, typer.Option(help="File holding the password (else a random one is printed once).")
    ] = None,
    project: Annotated[
        list[str] | None, typer.Option(help="Project to join (repeat; the first is the default).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a local user."""
    from datalibrary.auth.passwords import generate_password

    generated = password_file is None
    password = read_password(password_file) if password_file is not None else generate_password(name)
    with db_session() as session:
        user = service.create_user(session, OPERATOR, name, roles=set(role), password=password)
        for index, project_name in enumerate(project or []):
            projects.add_member(session, OPERATOR, project_name, name, default=index == 0)
        session.refresh(user)
        data = user_dict(user)
    if generated:
        data["password"] = password
    emit(
        data,
        as_json,
        lambda d: console.print(
            f"created {d['name']} ({', '.join(d['roles'])})"
            + (f"\npassword (shown once): {password}" if generated else ""),
            highlight=False,
        ),
    )


@app.command("list")
def list_(as_json: JsonOption = False) -> None:
    """List users with their effective roles, groups and projects."""
    with db_session() as session:
        rows = [user_dict(u) for u in accounts.list_users(session, OPERATOR)]
    emit(
        rows,
        as_json,
        lambda r: table(r, ["name", "effective_roles", "groups", "projects", "source", "active"]),
    )


def _change(data_of, as_json: bool, message: str) -> None:  # type: ignore[no-untyped-def]
    with db_session() as session:
        data = user_dict(data_of(session))
    emit(data, as_json, lambda d: console.print(message.format(**d), highlight=False))


@app.command("disable")
def disable(name: str, as_json: JsonOption = False) -> None:
    """Disable a user: their sessions and API tokens stop working at once."""
    stopping: list[int] = []

    def disable_and_stop(session):  # type: ignore[no-untyped-def]
        user = accounts.set_active(session, OPERATOR, name, False)
        stopping.extend(workspace_service.stop_disabled_owners(session))  # homes are kept
        return user

    _change(disable_and_stop, as_json, "disabled {name}")
    if stopping:
        config = settings()
        database = Database(config.connect_url())
        try:
            for workspace_id in stopping:
                from datalibrary.workspaces.sync import run_sync

                run_sync(workspace_service.execute(database, config, workspace_id))
        finally:
            database.dispose()


@app.command("enable")
def enable(name: str, as_json: JsonOption = False) -> None:
    """Enable a disabled user (and lift a sign-in lockout)."""
    _change(lambda s: accounts.set_active(s, OPERATOR, name, True), as_json, "enabled {name}")


@app.command("set-roles")
def set_roles(name: str, role: RoleOption, as_json: JsonOption = False) -> None:
    """Replace the roles a user holds directly (group roles are unchanged)."""
    _change(lambda s: accounts.set_roles(s, OPERATOR, name, set(role)), as_json, "{name}: roles {roles}")


@app.command("set-password")
def set_password(
    name: str,
    password_file: Annotated[Path, typer.Option(help="File holding the new password.")],
    as_json: JsonOption = False,
) -> None:
    """Set a local user's password (checked against the policy); their sessions end."""
    password = read_password(password_file)
    _change(lambda s: accounts.set_password(s, OPERATOR, name, password), as_json, "password of {name} set")


@app.command("sync-ldap")
def sync_ldap(as_json: JsonOption = False) -> None:
    """Disable LDAP accounts that left the directory and re-sync everyone's LDAP groups (cron it)."""
    from datalibrary.auth.ldap_sync import reconcile
    from datalibrary.cli.output import settings

    config = settings()
    with db_session() as session:
        report = reconcile(session, OPERATOR, config.auth.ldap)
    emit(
        report,
        as_json,
        lambda r: table([{"user": k, "result": v} for k, v in r.items()], ["user", "result"]),
    )
