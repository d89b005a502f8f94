"""The console's page routers. A domain adds its page router to ``PAGE_ROUTERS``;
placeholders for unbuilt sections come last so real pages take precedence."""

from datalibrary.web import pages, placeholders, workspaces

PAGE_ROUTERS = [pages.router, workspaces.router]
FALLBACK_ROUTERS = [placeholders.router]
