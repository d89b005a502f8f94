"""One router per domain. A new domain adds its router to ``API_ROUTERS`` (served under /api/v1)."""

from datalibrary.api.routers import (
    access,
    audit,
    auth,
    backups,
    costs,
    datasets,
    files,
    git_http,
    health,
    identity,
    ingest,
    lake,
    lineage,
    packages,
    privacy,
    pypi,
    query,
    repos,
    system,
    workspace_proxy,
    workspaces,
)

ROOT_ROUTERS = [health.router, git_http.router, pypi.router]
assert workspace_proxy  # served on the workspace origins (installed by the app factory)
API_ROUTERS = [
    system.router,
    auth.router,
    identity.router,
    audit.router,
    datasets.router,
    ingest.router,
    ingest.policies_router,
    privacy.router,
    lake.router,
    access.router,
    query.router,
    workspaces.router,
    lineage.router,
    lineage.exports_router,
    costs.router,
    backups.router,
    repos.router,
    packages.router,
    files.router,
]
