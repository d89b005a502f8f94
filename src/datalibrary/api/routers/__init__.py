"""One router per domain. A new domain adds its router to ``API_ROUTERS`` (served under /api/v1)."""

from datalibrary.api.routers import audit, auth, health, system, workspace_proxy, workspaces

ROOT_ROUTERS = [health.router, workspace_proxy.router]
API_ROUTERS = [system.router, auth.router, audit.router, workspaces.router]
