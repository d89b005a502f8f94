"""``init``, ``version`` and ``config show`` (``up`` runs the composed app: ``datalibrary.app``)."""

from __future__ import annotations

from dataclasses import asdict

import typer

from datalibrary import __version__
from datalibrary.cli.output import JsonOption, console, emit, handle_errors, settings

config_app = typer.Typer(help="Inspect the effective configuration.", no_args_is_help=True)


def _print_admin(result) -> None:  # type: ignore[no-untyped-def]
    if result.admin_password:
        console.print(
            "\n[bold]First administrator created[/bold] (shown once, keep it safe):\n"
            f"  user:     {result.admin_name}\n  password: {result.admin_password}\n",
            highlight=False,
        )


def ready_block(url: str, users: list[tuple[str, str, str]]) -> str:
    """What ``up`` prints once ready: the address, then the users created by this start with
    their one-time passwords (a table with headings), set apart from the log lines."""
    from datalibrary.demo import users_table

    rule = "=" * 72
    lines = [rule, f"  DataLibrary {__version__} is running at {url}   (Ctrl+C to stop)"]
    if users:
        heading = "Users created now (one-time passwords, shown once; change them on the Account page):"
        lines += ["", f"  {heading}"]
        lines += ["  " + line for line in users_table(users)]
    else:
        lines += ["", "  Sign in with your account (passwords were shown on the first start)."]
    lines.append(rule)
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    @app.command()
    def version(as_json: JsonOption = False) -> None:
        """Print the DataLibrary version."""
        emit({"version": __version__}, as_json, lambda d: console.print(d["version"]))

    @app.command()
    def init(as_json: JsonOption = False) -> None:
        """Create the state directory, keys, database schema and first admin (idempotent)."""
        from datalibrary.bootstrap import initialize

        with handle_errors():
            result = initialize(settings())

        def human(_: object) -> None:
            console.print(f"State directory: {result.home}\nDatabase: {result.database_url}")
            _print_admin(result)

        emit(asdict(result), as_json, human)

    @config_app.command("show")
    def config_show(as_json: JsonOption = False) -> None:
        """Print the effective configuration with secrets redacted."""
        data = settings().redacted()

        def human(values: dict) -> None:  # type: ignore[type-arg]
            for key, value in values.items():
                console.print(f"[bold]{key}[/bold] = {value}", highlight=False)

        emit(data, as_json, human)


def register_replicas(app: typer.Typer) -> None:
    @app.command("replicas")
    def replicas(as_json: JsonOption = False) -> None:
        """Background tasks and the replica that runs each (from the task leases)."""
        from datalibrary.cli.output import table
        from datalibrary.db import Database, leases
        from datalibrary.db.schemas import TaskLeaseOut

        database = Database(settings().connect_url())
        try:
            rows = [TaskLeaseOut(**row).model_dump(mode="json") for row in leases.holders(database)]  # type: ignore[arg-type]
        finally:
            database.dispose()
        emit(rows, as_json, lambda r: table(r, ["task", "holder", "acquired_at", "expires_at", "live"]))
