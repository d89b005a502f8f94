"""The console's page routers. A domain adds its page router to ``PAGE_ROUTERS``;
``install`` adds the console to the app that ``datalibrary.app`` composes."""

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from datalibrary.web import (
    access,
    account,
    admin,
    backups,
    costs,
    datasets,
    files,
    guards,
    ingest,
    jobs,
    lineage,
    packages,
    pages,
    policies,
    query,
    rendering,
    repos,
    workspace_pool,
    workspaces,
)

PAGE_ROUTERS = [
    pages.router,
    account.router,
    admin.router,
    backups.router,
    policies.router,
    ingest.router,
    jobs.router,
    datasets.router,
    files.router,
    access.router,
    query.router,
    workspaces.router,
    workspace_pool.router,
    repos.router,
    packages.router,
    lineage.router,
    costs.router,
]

STATIC = Path(__file__).parent / "static"


def error_page(request: Request, status: int, title: str, detail: str) -> Response:
    """The page a browser sees for an HTTP error (the API answers a problem document)."""
    page = rendering.PageContext(title=title, data={"detail": detail})
    return rendering.render(request, "error.html", page, status_code=status)


def install(app: FastAPI) -> None:
    """Add the console: its pages, static assets, error page and page guards."""
    for router in PAGE_ROUTERS:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.state.html_error_page = error_page
    guards.install(app)
