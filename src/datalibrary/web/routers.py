"""The console's page routers. A domain adds its page router to ``PAGE_ROUTERS``."""

from datalibrary.web import (
    access,
    account,
    admin,
    backups,
    catalog,
    costs,
    files,
    ingest,
    jobs,
    lineage,
    packages,
    pages,
    policies,
    query,
    repos,
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
    catalog.router,
    files.router,
    access.router,
    query.router,
    workspaces.router,
    repos.router,
    packages.router,
    lineage.router,
    costs.router,
]
