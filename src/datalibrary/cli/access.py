"""``grants`` and ``access``: who may read which table, and requests for access."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from datalibrary.access.schemas import GrantOut, RequestOut
from datalibrary.cli.lazy import LazyModule
from datalibrary.cli.output import JsonOption, acting_as, console, db_session, emit, fail, settings, table
from datalibrary.cli.users import OPERATOR

service = LazyModule("datalibrary.access.service")  # loads the lake: only when a command runs

grants_app = typer.Typer(help="Manage data grants (table, column, row).", no_args_is_help=True)
access_app = typer.Typer(help="Request and review access to datasets.", no_args_is_help=True)


def grant_dict(grant) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """The API's shape of a grant (``access.schemas.GrantOut``), as JSON."""
    return GrantOut.of(grant).model_dump(mode="json")


def request_dict(request) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """The API's shape of an access request (``access.schemas.RequestOut``), as JSON."""
    return RequestOut.of(request).model_dump(mode="json")


def with_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with a ``table`` column for the human view: NS.TABLE, or NS.* for a namespace."""
    return [r | {"table": f"{r['namespace']}.{r['table_name'] or '*'}"} for r in rows]


def parse_date(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        fail(f"--expires must be an ISO date like 2027-01-31, not {value!r}", code=2)
        raise
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def split(name: str) -> tuple[str, str | None]:
    namespace, _, table_name = name.partition(".")
    return namespace, (table_name or None) if table_name != "*" else None


@grants_app.command("add")
def add(
    principal: Annotated[str, typer.Option(help="user:NAME or group:NAME.")],
    table_name: Annotated[str, typer.Option("--table", help="NS.TABLE, or NS.* for a whole namespace.")],
    columns: Annotated[str | None, typer.Option(help="Visible columns, comma separated.")] = None,
    mask: Annotated[
        list[str] | None, typer.Option(help="COLUMN (shown as NULL) or COLUMN=const:TEXT.")
    ] = None,
    row_filter: Annotated[str | None, typer.Option(help="SQL predicate, e.g. \"SITEID IN ('701')\".")] = None,
    expires: Annotated[str | None, typer.Option(help="Expiry date (ISO 8601).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Grant SELECT on a table or namespace."""
    namespace, name = split(table_name)
    masks = {}
    for item in mask or []:
        column, _, spec = item.partition("=")
        masks[column] = spec or "null"
    with db_session() as session:
        grant = service.add_grant(
            session,
            OPERATOR,
            principal=principal,
            namespace=namespace,
            table=name,
            columns=[c.strip() for c in columns.split(",")] if columns else None,
            masks=masks,
            row_filter=row_filter,
            expires_at=parse_date(expires),
            columns_of=service.lake_columns(settings()),
        )
        data = grant_dict(grant)
    emit(data, as_json, lambda d: console.print(f"grant {d['id']} added", highlight=False))


@grants_app.command("list")
def list_(
    principal: Annotated[str | None, typer.Option(help="Only this user:NAME or group:NAME.")] = None,
    table_name: Annotated[str | None, typer.Option("--table", help="Only grants covering NS.TABLE.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Include revoked and expired grants.")] = False,
    as_json: JsonOption = False,
) -> None:
    """List grants."""
    namespace, name = split(table_name) if table_name else (None, None)
    with db_session() as session:
        rows = [
            grant_dict(g)
            for g in service.list_grants(
                session, OPERATOR, principal=principal, namespace=namespace, table=name, include_inactive=all_
            )
        ]
    columns = ["id", "principal", "table", "columns", "row_filter", "expires_at"]
    emit(rows, as_json, lambda r: table(with_table(r), columns))


@grants_app.command("revoke")
def revoke(grant_id: int, as_json: JsonOption = False) -> None:
    """Revoke a grant; the next query of its holder no longer sees the data."""
    with db_session() as session:
        data = grant_dict(service.revoke_grant(session, OPERATOR, grant_id))
    emit(data, as_json, lambda d: console.print(f"grant {d['id']} revoked", highlight=False))


@access_app.command("request")
def request(
    table_name: Annotated[str, typer.Option("--table", help="NS.TABLE or NS.*")],
    justification: Annotated[str, typer.Option(help="Why the data is needed.")],
    as_user: Annotated[str, typer.Option("--as", help="The requesting user.")],
    project: Annotated[str | None, typer.Option(help="The project the work is for.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Request access to a dataset for a user."""
    namespace, name = split(table_name)
    with db_session() as session:
        principal = acting_as(session, as_user)
        data = request_dict(
            service.request_access(
                session,
                principal,
                namespace=namespace,
                table=name,
                justification=justification,
                project=project,
            )
        )
    emit(data, as_json, lambda d: console.print(f"request {d['id']} is pending", highlight=False))


@access_app.command("list")
def list_requests(
    state: Annotated[str | None, typer.Option(help="pending, approved or denied.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List access requests."""
    with db_session() as session:
        rows = [request_dict(r) for r in service.list_requests(session, OPERATOR, state=state)]
    columns = ["id", "requester", "table", "project", "state", "reviewer"]
    emit(rows, as_json, lambda r: table(with_table(r), columns))


@access_app.command("decide")
def decide(
    request_id: int,
    approve: Annotated[bool, typer.Option("--approve/--deny", help="Approve or deny.")],
    note: Annotated[str | None, typer.Option(help="A note for the requester.")] = None,
    row_filter: Annotated[
        str | None, typer.Option(help="Restrict the resulting grant to these rows.")
    ] = None,
    expires: Annotated[str | None, typer.Option(help="Expiry of the resulting grant (ISO date).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Approve or deny an access request."""
    with db_session() as session:
        data = request_dict(
            service.decide_request(
                session,
                OPERATOR,
                request_id,
                approve=approve,
                note=note,
                row_filter=row_filter,
                expires_at=parse_date(expires),
                columns_of=service.lake_columns(settings()),
            )
        )
    emit(data, as_json, lambda d: console.print(f"request {d['id']} {d['state']}", highlight=False))
