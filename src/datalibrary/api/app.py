"""The REST API's part of the app: problems, OpenAPI, the workspace proxy, middleware, metrics,
the routers under /api/v1 and the API docs' assets. ``datalibrary.app`` composes it with the
web console; the API does not know the console exists."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from openapi_ui_bundles import swagger_ui

from datalibrary.api import middleware, openapi, problems
from datalibrary.api.routers import API_ROUTERS, ROOT_ROUTERS, workspace_proxy
from datalibrary.domain_metrics import DomainCollector

API_PREFIX = "/api/v1"


def install(app: FastAPI) -> None:
    """Add the API to ``app`` (whose state already holds ``settings`` and ``db``)."""
    app.state.metrics = middleware.Metrics()
    app.state.metrics.registry.register(DomainCollector(app.state.db))
    problems.install(app)
    openapi.install(app)
    workspace_proxy.install(app)  # workspace origins: dispatched on the Host header
    middleware.install(app, app.state.metrics)
    for router in ROOT_ROUTERS:
        app.include_router(router)
    for router in API_ROUTERS:
        app.include_router(router, prefix=API_PREFIX)
    app.mount(
        "/api/docs-static",
        StaticFiles(directory=Path(swagger_ui.static_path)),  # Swagger UI 5: OpenAPI 3.1
        name="docs-static",
    )
