"""``tokens``: personal API tokens for the CLI, the SDK and scripts."""

from __future__ import annotations

from typing import Annotated

import typer

from datalibrary.auth import service
from datalibrary.auth.models import ApiToken
from datalibrary.auth.schemas import IssuedTokenOut, TokenOut
from datalibrary.cli.output import JsonOption, console, db_session, emit, table
from datalibrary.cli.users import OPERATOR

app = typer.Typer(help="Manage API tokens.", no_args_is_help=True)


def token_dict(token: ApiToken) -> dict[str, object]:
    """The token as the API shows it (``auth.schemas.TokenOut``; never its secret)."""
    return TokenOut.of(token).model_dump(mode="json")


@app.command("create")
def create(
    user: Annotated[str, typer.Option(help="The token's owner.")],
    name: Annotated[str, typer.Option(help="A label to recognise the token by.")] = "cli",
    expires: Annotated[int, typer.Option(help="Days until the token expires.")] = 90,
    as_json: JsonOption = False,
) -> None:
    """Create a token; its secret is printed once."""
    with db_session() as session:
        issued = service.create_token(session, OPERATOR, user, name=name, expires_days=expires)
        data = IssuedTokenOut.issued(issued.token, issued.secret).model_dump(mode="json")
    emit(data, as_json, lambda d: console.print(f"token (shown once): {d['token']}", highlight=False))


@app.command("list")
def list_(user: Annotated[str, typer.Option(help="Whose tokens.")], as_json: JsonOption = False) -> None:
    """List a user's tokens (never their secrets)."""
    with db_session() as session:
        rows = [token_dict(t) for t in service.list_tokens(session, OPERATOR, user)]
    emit(rows, as_json, lambda r: table(r, ["id", "name", "prefix", "expires_at", "revoked_at"]))


@app.command("revoke")
def revoke(token_id: int, as_json: JsonOption = False) -> None:
    """Revoke a token by id."""
    with db_session() as session:
        data = token_dict(service.revoke_token(session, OPERATOR, token_id))
    emit(data, as_json, lambda d: console.print(f"revoked token {d['id']}"))
