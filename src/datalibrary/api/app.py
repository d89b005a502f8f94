"""The app factory: settings in, a FastAPI app out (API, web console, health, metrics)."""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from openapi_ui_bundles import swagger_ui

from datalibrary import __version__
from datalibrary.api import middleware, openapi, problems
from datalibrary.api.domain_metrics import DomainCollector
from datalibrary.api.routers import API_ROUTERS, ROOT_ROUTERS, workspace_proxy
from datalibrary.config import Settings, load_settings
from datalibrary.costs import background as cost_background
from datalibrary.db import Database
from datalibrary.packages import server as packages_server
from datalibrary.query.lake_planner import LakePlanner
from datalibrary.web.routers import PAGE_ROUTERS
from datalibrary.workspaces import background as workspace_background

API_PREFIX = "/api/v1"
WEB_STATIC = Path(__file__).parent.parent / "web" / "static"


def create_app(settings: Settings | None = None, database: Database | None = None) -> FastAPI:
    settings = settings or load_settings()
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
    app.state.metrics = middleware.Metrics()
    app.state.metrics.registry.register(DomainCollector(db))
    problems.install(app)
    openapi.install(app)
    workspace_proxy.install(app)  # workspace origins: dispatched on the Host header
    middleware.install(app, app.state.metrics)
    for router in ROOT_ROUTERS:
        app.include_router(router)
    for router in API_ROUTERS:
        app.include_router(router, prefix=API_PREFIX)
    for router in PAGE_ROUTERS:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=WEB_STATIC), name="static")
    app.mount(
        "/api/docs-static",
        StaticFiles(directory=Path(swagger_ui.static_path)),  # Swagger UI 5: OpenAPI 3.1
        name="docs-static",
    )
    return app
