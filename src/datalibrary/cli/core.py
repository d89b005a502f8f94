"""``init``, ``up``, ``version`` and ``config show``."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

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

    @app.command()
    def up(
        host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
        port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
        demo: Annotated[bool, typer.Option("--demo/--no-demo", help="Load demo data on first start.")] = True,
    ) -> None:
        """Initialize if needed, load demo data the first time, and run the server."""
        from datalibrary.bootstrap import initialize
        from datalibrary.db.leases import SqliteServerLock
        from datalibrary.demo import create_demo_users
        from datalibrary.logs import configure_logging

        config = settings()
        configure_logging(config.log.level, config.log.format)
        server_lock = SqliteServerLock(config.connect_url()) if config.is_sqlite else None
        users: list[tuple[str, str, str]] = []
        with handle_errors():
            if server_lock is not None:
                server_lock.acquire()  # refuses a second replica on SQLite
            result = initialize(config)
            if result.admin_password:
                users.append((result.admin_name, "admin", result.admin_password))
            if demo:
                from datalibrary.lake.demo import load_demo_study

                users += create_demo_users(config)
                for line in load_demo_study(config):
                    console.print(f"[dim]{line}[/dim]", highlight=False)
        from datalibrary.api import create_app
        from datalibrary.api.serve import serve
        from datalibrary.workspaces.paths import api_socket

        host = host or config.server.host
        port = port or config.server.port
        app_ = create_app(config)
        console.print(ready_block(f"http://{host}:{port}", users), highlight=False)
        try:
            serve(app_, host, port, api_socket(config))
        finally:
            if server_lock is not None:
                server_lock.release()

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

        database = Database(settings().connect_url())
        try:
            rows = leases.holders(database)
        finally:
            database.dispose()
        emit(rows, as_json, lambda r: table(r, ["task", "holder", "acquired_at", "expires_at", "live"]))
