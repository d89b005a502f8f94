"""``workspaces``: launch and drive workspaces from the shell (as the operator).

Each verb waits until the workspace has left its transitional state, then prints it."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from datalibrary.cli.output import JsonOption, console, emit, handle_errors, settings, table
from datalibrary.cli.users import OPERATOR
from datalibrary.db import Database
from datalibrary.workspaces import history, reconcile, service
from datalibrary.workspaces.models import Workspace
from datalibrary.workspaces.sync import run_sync

app = typer.Typer(help="Launch and manage workspaces.", no_args_is_help=True)
COLUMNS = ["id", "owner", "product", "instance_type", "state", "provisioner", "project"]


def _dict(workspace: Workspace, owner: str) -> dict[str, Any]:
    return {
        "id": workspace.id,
        "owner": owner,
        "project": workspace.project,
        "product": workspace.product,
        "instance_type": workspace.instance_type,
        "provisioner": workspace.provisioner,
        "state": workspace.state,
        "state_reason": workspace.state_reason,
        "url": f"/workspaces/{workspace.id}/open",
    }


def _show(db: Database, workspace_id: int) -> dict[str, Any]:
    with db.session() as session:
        workspace = service.get(session, OPERATOR, workspace_id)
        return _dict(workspace, service.owner_names(session, [workspace]).get(workspace.owner_id, "?"))


def _run_verb(workspace_id: int, verb: str, as_json: bool) -> None:
    config = settings()
    db = Database(config.connect_url())
    try:
        with handle_errors():
            with db.session() as session:
                service.request(session, OPERATOR, workspace_id, verb, reason=f"{verb} by cli")
            run_sync(service.execute(db, config, workspace_id))
            data = _show(db, workspace_id)
    finally:
        db.dispose()
    emit(data, as_json, lambda d: console.print(f"workspace {d['id']}: {d['state']} {d['state_reason']}"))


@app.command("create")
def create(
    product: Annotated[str, typer.Option(help="Product name from the catalog.")],
    instance_type: Annotated[str, typer.Option("--type", help="Instance type name.")],
    user: Annotated[
        str | None, typer.Option(help="The owner (required: the CLI acts as the operator).")
    ] = None,
    project: Annotated[str | None, typer.Option(help="Project the usage is charged to.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Launch a workspace and wait until it is ready (or failed)."""
    config = settings()
    db = Database(config.connect_url())
    try:
        with handle_errors():
            with db.session() as session:
                workspace = service.request_create(
                    session,
                    OPERATOR,
                    config,
                    product=product,
                    instance_type=instance_type,
                    user=user,
                    project=project,
                )
                workspace_id = workspace.id
            run_sync(service.execute(db, config, workspace_id))
            data = _show(db, workspace_id)
    finally:
        db.dispose()
    emit(data, as_json, lambda d: console.print(f"workspace {d['id']}: {d['state']} {d['state_reason']}"))


@app.command("list")
def list_(
    user: Annotated[str | None, typer.Option(help="Only this owner's workspaces.")] = None,
    terminated: Annotated[bool, typer.Option(help="Include terminated workspaces.")] = False,
    as_json: JsonOption = False,
) -> None:
    """List workspaces with their state."""
    config = settings()
    db = Database(config.connect_url())
    try:
        with handle_errors(), db.session() as session:
            rows = service.list_workspaces(session, OPERATOR, everyone=True, include_terminated=terminated)
            owners = service.owner_names(session, rows)
            data = [_dict(w, owners.get(w.owner_id, "?")) for w in rows]
    finally:
        db.dispose()
    if user:
        data = [d for d in data if d["owner"] == user]
    emit(data, as_json, lambda r: table(r, COLUMNS))


def _verb_command(verb: str, doc: str) -> None:
    def command(
        workspace_id: Annotated[int, typer.Argument(help="Workspace id.")], as_json: JsonOption = False
    ) -> None:
        _run_verb(workspace_id, verb, as_json)

    command.__doc__ = doc
    app.command(verb)(command)


_verb_command("start", "Start (wake) a stopped workspace.")
_verb_command("stop", "Stop a workspace: free CPU and memory, keep the home.")
_verb_command("pause", "Pause a workspace (freeze its processes; memory kept).")
_verb_command("resume", "Resume a paused workspace.")
_verb_command("terminate", "Terminate a workspace: archive (if configured) and delete its home.")


@app.command("catalog")
def catalog(as_json: JsonOption = False) -> None:
    """Print the catalog: instance types, environments and products."""
    with handle_errors():
        data = service.catalog_of(settings()).model_dump()
    emit(
        data,
        as_json,
        lambda d: table(d["instance_types"], ["name", "vcpu", "memory_gib", "gpu", "price_per_hour"]),
    )


@app.command("reconcile")
def reconcile_now(as_json: JsonOption = False) -> None:
    """Reconcile workspace states with what is running (re-adopt, repair stuck states)."""
    config = settings()
    db = Database(config.connect_url())
    try:
        with handle_errors():
            report = run_sync(reconcile.reconcile(db, config))
    finally:
        db.dispose()
    emit(report.as_dict(), as_json)


@app.command("history")
def history_(
    user: Annotated[str | None, typer.Option(help="Only this owner's workspaces.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, most recently terminated first.")] = 100,
    as_json: JsonOption = False,
) -> None:
    """Terminated workspaces with their running time and cost."""
    config = settings()
    db = Database(config.connect_url())
    try:
        with handle_errors(), db.session() as session:
            found = history.history(session, OPERATOR, config, everyone=True, limit=limit)
            data = [
                {
                    "id": e.workspace.id,
                    "owner": e.owner,
                    "project": e.workspace.project,
                    "product": e.workspace.product,
                    "instance_type": e.workspace.instance_type,
                    "created_at": e.workspace.created_at.isoformat(),
                    "terminated_at": e.terminated_at.isoformat(),
                    "running_seconds": e.running_seconds,
                    "cost": str(e.cost),
                    "currency": e.currency,
                }
                for e in found
            ]
    finally:
        db.dispose()
    if user:
        data = [d for d in data if d["owner"] == user]
    emit(
        data,
        as_json,
        lambda r: table(
            r, ["id", "owner", "product", "instance_type", "terminated_at", "running_seconds", "cost"]
        ),
    )


@app.command("pool")
def pool_(
    refill: Annotated[bool, typer.Option("--refill", help="Run one refill round first.")] = False,
    as_json: JsonOption = False,
) -> None:
    """The warm pool: targets per environment/instance type and the pre-started members."""
    from datalibrary.workspaces import pool

    config = settings()
    db = Database(config.connect_url())
    try:
        with handle_errors():
            if refill:
                run_sync(pool.refill(db, config))
            with db.session() as session:
                data = pool.status(session, OPERATOR, config)
    finally:
        db.dispose()
    for member in data["members"]:  # type: ignore[attr-defined]
        member["since"] = member["since"].isoformat()

    def human(d: dict[str, Any]) -> None:
        if not d["enabled"]:
            console.print(f"warm pool disabled: {d['disabled_because']}")
        table(d["targets"], ["environment", "instance_type", "size", "ready", "starting"])
        table(d["members"], ["id", "environment", "instance_type", "state", "since"])

    emit(data, as_json, human)
