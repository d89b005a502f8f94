"""One router per domain. A new domain adds its router to ``API_ROUTERS`` (served under /api/v1)."""

from datalibrary.api.routers import audit, auth, datasets, health, ingest, lake, system

ROOT_ROUTERS = [health.router]
API_ROUTERS = [
    system.router,
    auth.router,
    audit.router,
    datasets.router,
    ingest.router,
    ingest.policies_router,
    lake.router,
]
