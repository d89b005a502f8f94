"""The ``datalibrary`` command: one Typer group per domain, each in its own module."""

from __future__ import annotations

import typer

from datalibrary.cli import audit, core, tokens, users, workspaces

app = typer.Typer(
    name="datalibrary",
    help="DataLibrary: data science as a service for sensitive clinical data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
core.register(app)
app.add_typer(core.config_app, name="config")
app.add_typer(users.app, name="users")
app.add_typer(tokens.app, name="tokens")
app.add_typer(audit.app, name="audit")
app.add_typer(workspaces.app, name="workspaces")


def main() -> None:
    app()
