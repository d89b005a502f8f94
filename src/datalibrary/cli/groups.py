"""``groups``: groups of users that grant roles."""

from __future__ import annotations

from typing import Annotated

import typer

from datalibrary.auth import groups
from datalibrary.auth.models import Group
from datalibrary.auth.schemas import GroupOut
from datalibrary.cli.output import JsonOption, emit_change, emit_rows
from datalibrary.cli.users import OPERATOR, RoleOption

app = typer.Typer(help="Manage groups and the roles they grant.", no_args_is_help=True)


def group_dict(group: Group) -> dict[str, object]:
    """The group as the API shows it (``auth.schemas.GroupOut``)."""
    return GroupOut.of(group).model_dump(mode="json")


def _show(change, as_json: bool, message: str) -> None:  # type: ignore[no-untyped-def]
    emit_change(change, group_dict, as_json, message)


@app.command("add")
def add(
    name: str,
    role: Annotated[list[str] | None, typer.Option("--role", help="Role the group grants; repeat.")] = None,
    description: Annotated[str, typer.Option(help="What the group is for.")] = "",
    as_json: JsonOption = False,
) -> None:
    """Create a group."""
    create = lambda s: groups.create_group(s, OPERATOR, name, roles=set(role or []), description=description)  # noqa: E731
    _show(create, as_json, "created group {name} (roles: {roles})")


@app.command("list")
def list_(as_json: JsonOption = False) -> None:
    """List groups with their roles and members."""
    rows = lambda s: [group_dict(x) for x in groups.list_groups(s, OPERATOR)]  # noqa: E731
    emit_rows(rows, as_json, ["name", "roles", "members", "source", "description"])


@app.command("add-member")
def add_member(group: str, user: str, as_json: JsonOption = False) -> None:
    """Add a user to a group."""
    _show(lambda s: groups.add_member(s, OPERATOR, group, user), as_json, "{name}: members {members}")


@app.command("remove-member")
def remove_member(group: str, user: str, as_json: JsonOption = False) -> None:
    """Remove a user from a group."""
    _show(lambda s: groups.remove_member(s, OPERATOR, group, user), as_json, "{name}: members {members}")


@app.command("set-roles")
def set_roles(name: str, role: RoleOption, as_json: JsonOption = False) -> None:
    """Replace the roles a group grants."""
    _show(lambda s: groups.set_group_roles(s, OPERATOR, name, set(role)), as_json, "{name}: roles {roles}")
