"""Startup wiring of reactions that flow upward: the lower layers offer registries, the
front ends (API app, CLI commands) call :func:`register_handlers` once at start."""

from __future__ import annotations


def register_handlers() -> None:
    """Erasure's copy scanners of the other layers (exports, workspaces, file collections,
    the query engine's column cache); idempotent."""
    from datalibrary.files import erasure as files_erasure
    from datalibrary.lineage import export_erasure
    from datalibrary.query import column_cache
    from datalibrary.workspaces import erasure_copies

    export_erasure.register()
    erasure_copies.register()
    files_erasure.register()
    column_cache.register()
