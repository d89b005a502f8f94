"""The app factory: settings in, a FastAPI app out (API, web console, health, metrics)."""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path

import swagger_ui_bundle
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from datalibrary import __version__
from datalibrary.api import middleware, problems
from datalibrary.api.routers import API_ROUTERS, ROOT_ROUTERS, workspace_proxy
from datalibrary.config import Settings, load_settings
from datalibrary.costs import background as cost_background
from datalibrary.db import Database
from datalibrary.query.lake_planner import LakePlanner
from datalibrary.web.routers import FALLBACK_ROUTERS, PAGE_ROUTERS
from datalibrary.workspaces import background as workspace_background

API_PREFIX = "/api/v1"
WEB_STATIC = Path(__file__).parent.parent / "web" / "static"


def create_app(settings: Settings | None = None, database: Database | None = None) -> FastAPI:
    settings = settings or load_settings()
    db = database or Database(str(settings.database_url))

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # type: ignore[no-untyped-def]
        from datalibrary.ingest.background import Background
        from datalibrary.lineage.forward import LineageWorker

        background = Background(settings, db)
        background.start()
        lineage_worker = LineageWorker(db, settings.lineage)
        lineage_worker.start()
        async with workspace_background.running(db, settings), cost_background.running(db, settings):
            yield
        lineage_worker.stop()
        background.stop()
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
    problems.install(app)
    workspace_proxy.install(app)  # workspace origins: dispatched on the Host header
    middleware.install(app, app.state.metrics)
    for router in ROOT_ROUTERS:
        app.include_router(router)
    for router in API_ROUTERS:
        app.include_router(router, prefix=API_PREFIX)
    for router in [*PAGE_ROUTERS, *FALLBACK_ROUTERS]:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=WEB_STATIC), name="static")
    app.mount(
        "/api/docs-static",
        StaticFiles(directory=Path(swagger_ui_bundle.swagger_ui_path)),
        name="docs-static",
    )
    return app
