"""The console's page routers. A domain adds its page router to ``PAGE_ROUTERS``;
placeholders for unbuilt sections come last so real pages take precedence."""

from datalibrary.web import (
    access,
    account,
    admin,
    backups,
    catalog,
    costs,
    lineage,
    pages,
    placeholders,
    policies,
    query,
    workspaces,
)

PAGE_ROUTERS = [
    pages.router,
    account.router,
    admin.router,
    backups.router,
    policies.router,
    catalog.router,
    access.router,
    query.router,
    workspaces.router,
    lineage.router,
    costs.router,
]
FALLBACK_ROUTERS = [placeholders.router]
