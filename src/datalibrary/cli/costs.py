"""``costs``: reports, the price book, budgets, storage measurement and the enforcer (as the operator)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from pydantic import BaseModel

from datalibrary.cli.output import JsonOption, console, db_session, emit, fail, settings, table
from datalibrary.cli.users import OPERATOR
from datalibrary.costs.schemas import BudgetOut, PriceVersionOut, ReportOut

app = typer.Typer(help="Cost reports, the price book and budgets.", no_args_is_help=True)


def shown(record: BaseModel) -> dict[str, Any]:
    """A record as the API sends it (aliases such as ``from``), for ``--json`` and the tables."""
    return record.model_dump(mode="json", by_alias=True)


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        fail(f"{option} takes a date such as 2026-03-01", code=2)
        raise


@app.command("report")
def report(
    by: Annotated[str, typer.Option(help="user, project, category, product, day or resource.")] = "category",
    start: Annotated[str | None, typer.Option("--from", help="First day (UTC); default: this month.")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Last day, included; default: today.")] = None,
    user: Annotated[str | None, typer.Option(help="Only this user.")] = None,
    project: Annotated[str | None, typer.Option(help="Only this project.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Costs of a period grouped by user, project, category, product, day or resource."""
    from datalibrary.costs import service

    config = settings()
    with db_session() as session:
        found = service.report(
            session, OPERATOR, config, by=by, start=_day(start, "--from"), end=_day(end, "--to"),
            user=user, project=project,
        )  # fmt: skip
    data = shown(ReportOut.model_validate(found.as_json()))

    def human(data: dict[str, Any]) -> None:
        rows = [{by: r["key"], "amount": r["amount"]} for r in data["rows"]]
        table(rows, [by, "amount"], title=f"Costs {data['from']} to {data['to']} ({data['currency']})")
        console.print(f"total: {data['total']} {data['currency']}")

    emit(data, as_json, human)


@app.command("prices")
def prices(as_json: JsonOption = False) -> None:
    """List the price book's versions with the date each applies from."""
    from datalibrary.costs import pricebook

    config = settings()
    with db_session() as session:
        rows = [shown(PriceVersionOut.of(v)) for v in pricebook.versions(session, OPERATOR, config)]

    def human(found: list[dict[str, Any]]) -> None:
        flat = [r | {"currency": r["prices"].get("currency"), "query_per_tb": r["prices"].get("query_per_tb")}
                for r in found]  # fmt: skip
        table(flat, ["id", "effective_from", "currency", "query_per_tb", "note"])

    emit(rows, as_json, human)


@app.command("prices-set")
def prices_set(
    path: Annotated[Path, typer.Argument(help="A price book YAML file (see the default for its keys).")],
    effective_from: Annotated[
        datetime | None, typer.Option("--from", help="When it applies (UTC); default now, never the past.")
    ] = None,
    note: Annotated[str, typer.Option(help="Why the prices change.")] = "",
    as_json: JsonOption = False,
) -> None:
    """Add a price version from a YAML file, applying from now or a future date."""
    from datalibrary.costs import pricebook

    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        fail(f"cannot read {path}: {exc}", code=2)
    config = settings()
    with db_session() as session:
        version = pricebook.add_version(
            session, OPERATOR, config, data, effective_from=effective_from, note=note
        )
        found = shown(PriceVersionOut.of(version))
    emit(
        found, as_json, lambda d: console.print(f"price version {d['id']} applies from {d['effective_from']}")
    )


@app.command("budgets")
def list_budgets(as_json: JsonOption = False) -> None:
    """List budgets with this month's spend and what remains."""
    from datalibrary.costs import budgets

    config = settings()
    with db_session() as session:
        rows = [
            shown(BudgetOut.model_validate(s.as_json())) for s in budgets.visible(session, OPERATOR, config)
        ]
    emit(
        rows,
        as_json,
        lambda r: table(r, ["scope", "name", "budget", "spent", "remaining", "percent", "state"]),
    )


@app.command("budget-set")
def budget_set(
    amount: Annotated[str, typer.Argument(help="Monthly amount in the price book's currency, e.g. 250.00.")],
    user: Annotated[str | None, typer.Option(help="The user whose budget it is.")] = None,
    project: Annotated[str | None, typer.Option(help="The project whose budget it is.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Set or raise the monthly budget of a user or a project (audited)."""
    from datalibrary.costs import budgets

    if (user is None) == (project is None):
        fail("name exactly one of --user or --project", code=2)
    try:
        value = Decimal(amount)
    except InvalidOperation:
        fail(f"'{amount}' is not an amount", code=2)
        raise
    config = settings()
    with db_session() as session:
        budget = budgets.set_budget(
            session, OPERATOR, config, scope="user" if user else "project", name=user or project or "",
            amount=value,
        )  # fmt: skip
    found = shown(BudgetOut.model_validate(budget.as_json()))
    emit(
        found,
        as_json,
        lambda d: console.print(f"budget of {d['scope']} '{d['name']}': {d['budget']} {d['currency']}"),
    )  # noqa: E501


@app.command("measure")
def measure(as_json: JsonOption = False) -> None:
    """Measure lake and workspace home storage for today now (the server does it daily)."""
    config = settings()
    with db_session() as session:
        from datalibrary.costs import storage  # reads the lake: pyiceberg loads only here

        count = storage.measure(session, config)
    emit({"measured": count}, as_json, lambda d: console.print(f"measured {d['measured']} resources"))


@app.command("enforce")
def enforce(as_json: JsonOption = False) -> None:
    """Check every budget now: warn, and stop workspaces of spent budgets past their grace."""
    from datalibrary.costs import enforcer
    from datalibrary.db import Database
    from datalibrary.workspaces.sync import run_sync

    config = settings()
    db = Database(config.connect_url())
    try:
        stopped = run_sync(enforcer.enforce(db, config))
    finally:
        db.dispose()
    emit(
        {"stopped": stopped},
        as_json,
        lambda d: console.print(f"stopped workspaces: {d['stopped'] or 'none'}"),
    )
