"""The console's sections: navigation, and what unbuilt sections will do."""

from __future__ import annotations

from dataclasses import dataclass

from datalibrary.auth.permissions import Permission


@dataclass(frozen=True)
class Section:
    slug: str
    title: str
    permission: Permission
    summary: str
    coming: tuple[str, ...] = ()
    also: tuple[Permission, ...] = ()  # other permissions that also show the section

    def visible_to(self, principal) -> bool:  # type: ignore[no-untyped-def]
        return any(principal.can(p) for p in (self.permission, *self.also))


SECTIONS: tuple[Section, ...] = (
    Section(
        "catalog",
        "Catalog",
        Permission.CATALOG_READ,
        "Browse the datasets of the lake: schemas with labels, snapshots, profiles and jobs.",
        # built: the catalog pages live in web/datasets.py (access requests come with their issue)
    ),
    Section(
        "jobs",
        "Jobs",
        Permission.INGEST_RUN,
        "Follow ingestion jobs: state, progress and reason; cancel a running one, retry one that ended.",
        # built: web/jobs.py
    ),
    Section(
        "access",
        "Access",
        Permission.CATALOG_READ,
        "Request access to datasets; stewards review requests and manage grants.",
    ),
    Section(
        "query",
        "Query",
        Permission.QUERY_RUN,
        "Query the lake with SQL, seeing only what you were granted.",
        (
            "SQL editor with a table browser of what you may read",
            "Results grid, downloads as CSV or Parquet",
            "Bytes scanned and price shown with every result",
            "Your query history",
        ),
    ),
    Section(
        "workspaces",
        "Workspaces",
        Permission.WORKSPACES_OWN,
        "Launch JupyterLab (Python or R) next to the data, sized like cloud instances.",
        (
            "Pick a product and an instance type, see the price per hour",
            "Start, stop, pause, resume and terminate in seconds",
            "Idle workspaces stop themselves; busy kernels keep running",
        ),
    ),
    Section(
        "repos",
        "Repositories",
        Permission.REPOS_USE,
        "Your projects' Git repositories: browse commits and files, clone from a workspace or a laptop.",
        # built: web/repos.py (stewards and admins create and archive)
        also=(Permission.REPOS_MANAGE,),
    ),
    Section(
        "costs",
        "Costs",
        Permission.COSTS_READ_OWN,
        "What you and your projects spend, live, in real money.",
        (
            "Spend this month by category and by day",
            "Budgets per user and project that act at 100%",
            "Dashboards by user, project and product; CSV export",
        ),
    ),
    Section(
        "lineage",
        "Lineage",
        Permission.LINEAGE_READ,
        "Trace data from the source file to the person who read it.",
        # built: web/lineage.py (everyone sees their own page; lineage readers see every graph)
        also=(Permission.CONSOLE_VIEW,),
    ),
    Section(
        "exports",
        "Exports",
        Permission.EXPORTS_REQUEST,
        "The airlock: take a result out of the platform after a steward's review.",
        also=(Permission.EXPORTS_REVIEW,),
    ),
    Section(
        "packages",
        "Packages",
        Permission.PACKAGES_MANAGE,
        "The package mirror: allow and deny rules, allow-list mode, internal wheels and the install log.",
        # built: web/packages.py
    ),
    Section(
        "admin",
        "Admin",
        Permission.USERS_READ,
        "Users, groups, roles, projects, API tokens and the audit log.",
        (
            "Manage users, groups and projects",
            "Read and export the tamper-evident audit log",
        ),
    ),
)

BY_SLUG = {section.slug: section for section in SECTIONS}
