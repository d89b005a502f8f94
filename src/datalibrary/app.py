"""The app factory: settings in, a FastAPI app out. The composition layer: it owns the state
and the background tasks, and mounts the two HTTP front ends (the REST API and the web
console), which never import each other. The CLI's ``up`` command (``register`` below) runs it."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Annotated

import typer
from fastapi import FastAPI

from datalibrary import __version__
from datalibrary.config import Settings, SettingsError, load_settings
from datalibrary.db import Database


def create_app(settings: Settings | None = None, database: Database | None = None) -> FastAPI:
    # imported here, not above: ``datalibrary up --help`` loads this module and must stay light
    from datalibrary.api import app as api
    from datalibrary.auth.authenticators import chain
    from datalibrary.costs import background as cost_background
    from datalibrary.packages import server as packages_server
    from datalibrary.query.lake_planner import LakePlanner
    from datalibrary.web import routers as web
    from datalibrary.workspaces import background as workspace_background

    settings = settings or load_settings()
    chain(settings)  # a sign-in backend that cannot be loaded refuses the start, not the first sign-in
    db = database or Database(settings.connect_url())
    from datalibrary.wiring import register_handlers

    register_handlers()

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # type: ignore[no-untyped-def]
        from datalibrary.db.leases import LeaseKeeper
        from datalibrary.ingest.background import Background
        from datalibrary.lineage.forward import LineageWorker

        # each background task runs on exactly one replica: the one holding its lease
        keeper = LeaseKeeper(db, settings.ha.lease_seconds).start()
        app.state.leases = keeper
        background = Background(settings, db, keeper.owns)
        background.start()
        lineage_worker = LineageWorker(db, settings.lineage, keeper.owns)
        lineage_worker.start()
        packages_server.start_in_background(settings)
        async with (
            workspace_background.running(db, settings, keeper.owns),
            cost_background.running(db, settings, keeper.owns),
        ):
            yield
        lineage_worker.stop()
        background.stop()
        keeper.stop()
        if database is None:
            db.dispose()

    app = FastAPI(
        title="DataLibrary",
        version=__version__,
        description="Data science as a service for sensitive clinical data.",
        openapi_url="/api/openapi.json",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.db = db
    app.state.planner = LakePlanner(settings)
    api.install(app)
    web.install(app)
    return app


def register(app: typer.Typer) -> None:
    """The CLI's ``up`` command. It lives here, above the front ends, because it runs the app
    that composes them; the CLI names it in its lazy command table (``cli/__init__.py``)."""
    from datalibrary.cli.core import ready_block
    from datalibrary.cli.output import console, fail, handle_errors
    from datalibrary.cli.output import settings as cli_settings

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

        config = cli_settings()
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
                from datalibrary.demo import load_demo_study

                users += create_demo_users(config)
                for line in load_demo_study(config):
                    console.print(f"[dim]{line}[/dim]", highlight=False)
        from datalibrary.http.serve import serve
        from datalibrary.workspaces.paths import api_socket

        host = host or config.server.host
        port = port or config.server.port
        try:
            app_ = create_app(config)
        except SettingsError as exc:  # e.g. a sign-in backend that cannot be loaded
            fail(f"invalid configuration: {exc}")
        console.print(ready_block(f"http://{host}:{port}", users), highlight=False)
        try:
            serve(app_, host, port, api_socket(config))
        finally:
            if server_lock is not None:
                server_lock.release()
