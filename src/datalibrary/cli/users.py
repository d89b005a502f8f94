"""``users``: local accounts and their roles."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import select

from datalibrary.auth import service
from datalibrary.auth.models import User
from datalibrary.auth.permissions import ROLES, Principal
from datalibrary.cli.output import JsonOption, console, db_session, emit, fail, table

app = typer.Typer(help="Manage user accounts.", no_args_is_help=True)
OPERATOR = Principal.system("cli")


def user_dict(user: User) -> dict[str, object]:
    return {
        "name": user.name,
        "display_name": user.display_name,
        "roles": sorted(user.role_names),
        "source": user.source,
        "active": user.is_active,
        "created_at": user.created_at.isoformat(),
    }


@app.command("add")
def add(
    name: str,
    role: Annotated[list[str], typer.Option(help=f"Role ({', '.join(ROLES)}); repeat for several.")],
    password_file: Annotated[
        Path | None, typer.Option(help="File holding the password (else a random one is printed once).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a local user."""
    from datalibrary.auth.passwords import generate_password

    generated = password_file is None
    if password_file is not None:
        if not password_file.is_file():
            fail(f"password file {password_file} does not exist")
        password = password_file.read_text().strip()
    else:
        password = generate_password()
    with db_session() as session:
        user = service.create_user(session, OPERATOR, name, roles=set(role), password=password)
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
    """List users."""
    with db_session() as session:
        rows = [user_dict(u) for u in session.scalars(select(User).order_by(User.name))]
    emit(rows, as_json, lambda r: table(r, ["name", "roles", "source", "active", "created_at"]))
