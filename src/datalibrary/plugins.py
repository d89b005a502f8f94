"""Backends other packages can install (entry points): looked up once per ``sys.path``, since
reading every installed distribution's metadata costs milliseconds and workspace views ask
for their provisioner once per row. A package installed later is seen after a restart."""

from __future__ import annotations

import sys
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import TypeVar

T = TypeVar("T")
# The groups: pyproject.toml lists the package's own entry points; another package adds its own.
PROVISIONERS = "datalibrary.provisioners"  # workspace backends (workspaces.provisioner)
AUTHENTICATORS = "datalibrary.authenticators"  # password backends (auth.authenticators)


@cache
def _scan(group: str, path: tuple[str, ...]) -> dict[str, EntryPoint]:
    return {point.name: point for point in entry_points(group=group)}


def installed(group: str) -> dict[str, EntryPoint]:
    """The entry points of ``group`` by name."""
    return _scan(group, tuple(sys.path))


def load(group: str, name: str, base: type[T]) -> type[T]:
    """The class entry point ``name`` of ``group`` names, refused (``LookupError`` for an
    unknown name, ``TypeError`` for something that is not a subclass of ``base``) rather than
    run. ``ImportError`` of a broken plugin passes through for the caller to word."""
    found = installed(group)
    if name not in found:
        raise LookupError(f"choose one of {sorted(found)}")
    loaded = found[name].load()
    if not (isinstance(loaded, type) and issubclass(loaded, base)):
        raise TypeError(f"'{name}' ({found[name].value}) is not a {base.__name__} class")
    return loaded
