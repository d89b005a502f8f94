"""The ``datalibrary`` command: one Typer group per domain, each in its own module.

Modules load lazily (see ``cli/lazy.py``): a new group is one line in ``COMMANDS``.
"""

from __future__ import annotations

import typer

from datalibrary.cli.lazy import Lazy, lazy_group
from datalibrary.wiring import register_handlers

COMMANDS: dict[str, Lazy] = {
    "version": Lazy("datalibrary.cli.core:register", "Print the DataLibrary version."),
    "init": Lazy(
        "datalibrary.cli.core:register",
        "Create the state directory, keys, database schema and first admin (idempotent).",
    ),
    "up": Lazy(
        "datalibrary.app:register",
        "Initialize if needed, load demo data the first time, and run the server.",
    ),
    "query": Lazy("datalibrary.cli.query:register", "Run a query; prints rows and the bytes scanned."),
    "ingest": Lazy(
        "datalibrary.cli.ingest:register",
        "Ingest files into a lake table through the full pipeline (one snapshot per file).",
    ),
    "worker": Lazy(
        "datalibrary.cli.ingest:register",
        "Run ingestion jobs claimed from the database (scale-out worker process).",
    ),
    "config": Lazy("datalibrary.cli.core:config_app", "Inspect the effective configuration."),
    "users": Lazy("datalibrary.cli.users:app", "Manage user accounts."),
    "groups": Lazy("datalibrary.cli.groups:app", "Manage groups and the roles they grant."),
    "projects": Lazy("datalibrary.cli.projects:app", "Manage projects (cost centers) and their members."),
    "tokens": Lazy("datalibrary.cli.tokens:app", "Manage API tokens."),
    "audit": Lazy("datalibrary.cli.audit:app", "Inspect, export and verify the audit log."),
    "grants": Lazy("datalibrary.cli.access:grants_app", "Manage data grants (table, column, row)."),
    "access": Lazy("datalibrary.cli.access:access_app", "Request and review access to datasets."),
    "jobs": Lazy("datalibrary.cli.ingest:jobs_app", "Follow ingestion jobs: list, show, retry, cancel."),
    "datasets": Lazy("datalibrary.cli.datasets:app", "Browse and describe the datasets of the lake."),
    "lake": Lazy("datalibrary.cli.lake:app", "Maintain the lake and erase subjects."),
    "policies": Lazy("datalibrary.cli.policies:app", "Store and inspect dataset policies (YAML)."),
    "workspaces": Lazy("datalibrary.cli.workspaces:app", "Launch and manage workspaces."),
    "lineage": Lazy(
        "datalibrary.cli.lineage:lineage_app", "Trace data from source files to the people who read it."
    ),
    "exports": Lazy(
        "datalibrary.cli.lineage:exports_app", "The exports airlock: request, review and download exports."
    ),
    "keys": Lazy("datalibrary.cli.keys:app", "Anonymization keys: study key ids and generations."),
    "costs": Lazy("datalibrary.cli.costs:app", "Cost reports, the price book and budgets."),
    "replicas": Lazy(
        "datalibrary.cli.core:register_replicas",
        "Background tasks and the replica that runs each (from the task leases).",
    ),
    "backup": Lazy(
        "datalibrary.cli.backup:register",
        "Back up the database, the lake, Git repositories and workspace homes (keys only sealed).",
    ),
    "backups": Lazy(
        "datalibrary.cli.backup:register", "List the complete backups in the backup directory, newest first."
    ),
    "restore": Lazy(
        "datalibrary.cli.backup:register",
        "Restore a backup into a new, empty installation and verify it (tables, audit chain).",
    ),
    "files": Lazy(
        "datalibrary.cli.files:app",
        "File collections: DICOM (PS3.15 Annex E), HL7 aECG, VCF (restricted tier) and documents"
        " (classified collections), de-identified or checked, stored and indexed.",
    ),
    "repos": Lazy("datalibrary.cli.repos:repos_app", "Project Git repositories."),
    "packages": Lazy(
        "datalibrary.cli.repos:packages_app",
        "The package mirror's policy, internal uploads, R packages and install log.",
    ),
}

app = typer.Typer(
    name="datalibrary",
    cls=lazy_group(COMMANDS),
    rich_markup_mode=None,  # plain help text: Rich and its Markdown renderer load only when needed
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def root() -> None:
    """DataLibrary: data science as a service for sensitive clinical data."""
    register_handlers()  # the domain hooks (cheap: nothing is imported until one is called)


def main() -> None:
    app()
