"""Reactions a lower layer needs from an upper one, registered at startup (issue #19).

A lower layer declares a :class:`Hook` where it needs the reaction (the query service needs a
budget check and lineage; ingestion and erasure need lineage); the composition layer
(``wiring.register_handlers``) registers the upper layer's function by dotted path, so
registering imports nothing (the CLI starts light) and the function is imported on its first
call. A hook nobody registered raises :class:`NotWired`: a query never runs unmetered or
untraced, an erasure never skips a copy, because a front end forgot the wiring.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from typing import Any, Generic, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")
Target = str | Callable[..., Any]
_targets: dict[str, Target] = {}
_resolved: dict[str, Callable[..., Any]] = {}
_declared: set[str] = set()
_lock = threading.Lock()


class NotWired(RuntimeError):
    """A hook was called before the composition layer registered it (a deployment error)."""


class Hook(Generic[P, R]):
    """One named reaction; the registered target is ``"package.module:function"`` or a callable."""

    def __init__(self, name: str) -> None:
        self.name = name
        _declared.add(name)

    def register(self, target: Target) -> None:
        register(self.name, target)

    @property
    def registered(self) -> bool:
        return self.name in _targets

    def resolve(self) -> Callable[P, R]:
        """The registered function (imported on first use); :class:`NotWired` without one."""
        found = _resolved.get(self.name)
        if found is not None:
            return found  # type: ignore[return-value]
        target = _targets.get(self.name)
        if target is None:
            raise NotWired(
                f"hook {self.name!r} is not registered: call datalibrary.wiring.register_handlers() "
                "at start (the API app, the CLI and the workers do)"
            )
        if isinstance(target, str):
            module, _, attribute = target.partition(":")
            target = getattr(importlib.import_module(module), attribute)
        with _lock:
            _resolved[self.name] = target
        return target  # type: ignore[return-value]

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.resolve()(*args, **kwargs)


def register(name: str, target: Target) -> None:
    """Register (or replace) the target of the hook ``name``; idempotent."""
    with _lock:
        _targets[name] = target
        _resolved.pop(name, None)


def unregister(name: str) -> None:
    """Forget the target of ``name`` (its callers then refuse); for tests of that refusal."""
    with _lock:
        _targets.pop(name, None)
        _resolved.pop(name, None)


def declared() -> set[str]:
    """The names of the hooks the imported modules declare (a test matches them to wiring)."""
    return set(_declared)


def snapshot() -> dict[str, Target]:
    """Every registration as registered (dotted paths), for a child process that does not
    inherit them (a forkserver child)."""
    with _lock:
        return dict(_targets)


def restore(registrations: dict[str, Target]) -> None:
    with _lock:
        _targets.update(registrations)
        for name in registrations:
            _resolved.pop(name, None)
