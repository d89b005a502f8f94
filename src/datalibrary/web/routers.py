"""The console's page routers. A domain adds its page router to ``PAGE_ROUTERS``;
placeholders for unbuilt sections come last so real pages take precedence."""

from datalibrary.web import access, account, admin, catalog, pages, placeholders, policies, query

PAGE_ROUTERS = [
    pages.router,
    account.router,
    admin.router,
    policies.router,
    catalog.router,
    access.router,
    query.router,
]
FALLBACK_ROUTERS = [placeholders.router]
