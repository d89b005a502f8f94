"""The ``datalibrary`` command: one Typer group per domain, each in its own module."""

from __future__ import annotations

import typer

from datalibrary.cli import (
    access,
    audit,
    backup,
    core,
    costs,
    datasets,
    groups,
    ingest,
    keys,
    lake,
    lineage,
    policies,
    projects,
    query,
    repos,
    tokens,
    users,
    workspaces,
)

app = typer.Typer(
    name="datalibrary",
    help="DataLibrary: data science as a service for sensitive clinical data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
core.register(app)
core.register_replicas(app)
query.register(app)
app.add_typer(core.config_app, name="config")
app.add_typer(users.app, name="users")
app.add_typer(groups.app, name="groups")
app.add_typer(projects.app, name="projects")
app.add_typer(repos.repos_app, name="repos")
app.add_typer(repos.packages_app, name="packages")
app.add_typer(tokens.app, name="tokens")
app.add_typer(audit.app, name="audit")
app.add_typer(access.grants_app, name="grants")
app.add_typer(access.access_app, name="access")
ingest.register(app)
app.add_typer(ingest.jobs_app, name="jobs")
app.add_typer(datasets.app, name="datasets")
app.add_typer(lake.app, name="lake")
app.add_typer(policies.app, name="policies")
app.add_typer(workspaces.app, name="workspaces")
app.add_typer(lineage.lineage_app, name="lineage")
app.add_typer(lineage.exports_app, name="exports")
app.add_typer(keys.app, name="keys")
app.add_typer(costs.app, name="costs")
backup.register(app)


def main() -> None:
    app()
