"""A command group that imports a command's module only when that command runs.

``datalibrary --help`` lists every command from the short help written here, so it loads
no domain code at all; ``datalibrary users list`` imports the users module and nothing
else. ``tests/test_cli_speed.py`` checks that each short help here matches the command's
own help, and that ``--help`` imports none of the heavy libraries.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any

import click
import typer
import typer.main
from typer.core import TyperGroup


@dataclass(frozen=True)
class Lazy:
    """Where a command lives: ``module:attribute`` of a Typer app (a group), or of a
    ``register(app)`` function that adds top-level commands; and its one-line help."""

    target: str
    help: str

    def load(self, name: str) -> click.Command:
        module_name, attribute = self.target.split(":")
        module = importlib.import_module(module_name)
        found = getattr(module, attribute)
        if isinstance(found, typer.Typer):
            if not found.registered_commands and hasattr(module, "register"):
                module.register(typer.Typer())  # its commands are defined inside register()
            command = typer.main.get_group(found)
            command.name = name
            return command
        holder = typer.Typer()
        found(holder)  # a register(app) function
        return typer.main.get_group(holder).commands[name]


class LazyCommands(MutableMapping[str, click.Command]):
    """The group's commands: names known up front, each command built on first access."""

    def __init__(self, lazy: dict[str, Lazy], loaded: MutableMapping[str, click.Command]) -> None:
        self.lazy = dict(lazy)
        self.loaded: dict[str, click.Command] = dict(loaded)

    def __getitem__(self, name: str) -> click.Command:
        if name not in self.loaded:
            if name not in self.lazy:
                raise KeyError(name)
            self.loaded[name] = self.lazy[name].load(name)
        return self.loaded[name]

    def __setitem__(self, name: str, command: click.Command) -> None:
        self.loaded[name] = command

    def __delitem__(self, name: str) -> None:
        self.lazy.pop(name, None)
        self.loaded.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        yield from self.lazy
        yield from (n for n in self.loaded if n not in self.lazy)

    def __len__(self) -> int:
        return len(set(self.lazy) | set(self.loaded))

    def stub(self, name: str) -> click.Command | None:
        """A help-only stand-in (name and one-line help) that imports nothing."""
        if name in self.loaded or name not in self.lazy:
            return self.loaded.get(name)
        return click.Command(name, help=self.lazy[name].help, short_help=self.lazy[name].help)


def lazy_group(commands: dict[str, Lazy]) -> type[TyperGroup]:
    """A TyperGroup class whose commands are ``commands`` (plus any added eagerly)."""

    class LazyGroup(TyperGroup):
        listing = False

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.commands = LazyCommands(commands, self.commands)

        def list_commands(self, ctx: click.Context) -> list[str]:
            return list(self.commands)

        def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
            table = self.commands
            assert isinstance(table, LazyCommands)
            if self.listing:
                return table.stub(cmd_name)
            return table.get(cmd_name)

        def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
            self.listing = True
            try:
                super().format_help(ctx, formatter)
            finally:
                self.listing = False

    return LazyGroup


class LazyModule:
    """A module imported on first attribute access: a command module can name a service that
    pulls in the lake (pyarrow, pyiceberg, duckdb) without ``--help`` paying for it."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(importlib.import_module(self._name), attribute)
