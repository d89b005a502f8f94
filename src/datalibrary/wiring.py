"""Startup wiring of reactions that flow upward (issue #19): the lower layers declare hooks
(``datalibrary.hooks``), the entry points (API app, CLI, workers, the tests' platform) call
:func:`register_handlers` once at start.

Registering imports nothing: each hook names its function by dotted path, imported on the
first call, so the CLI starts light. A hook left unregistered refuses (``hooks.NotWired``):
no query runs unmetered or untraced, no job runs untraced, no erasure skips a copy.
"""

from __future__ import annotations

from datalibrary import hooks

# hook name -> the upper layer's function (see the declaring module for the contract)
HANDLERS = {
    # query.service: budgets refuse large queries; every run leaves lineage events
    "query.budget_check": "datalibrary.costs.checks:check_query",
    "query.trace": "datalibrary.lineage.events:record_query",
    # ingest.pipeline: every job leaves lineage events
    "ingest.trace_started": "datalibrary.lineage.ingestion:ingestion_started",
    "ingest.trace_finished": "datalibrary.lineage.ingestion:ingestion_finished",
    # lake.erasure: the running-job guard, the lineage event, every place copies live
    "lake.erasure_guard": "datalibrary.ingest.erasure:refuse_while_running",
    "lake.erasure_trace": "datalibrary.lineage.events:record_erasure",
    "lake.copy_scanners": "datalibrary.wiring:register_copy_scanners",
    # lake.maintenance: the files of running jobs are no orphans; killed landings' leftovers
    "lake.active_writes": "datalibrary.ingest.housekeeping:active_writes",
    "lake.stale_raw_files": "datalibrary.ingest.housekeeping:remove_stale_raw_files",
    # lake.datasets: the dataset page's latest jobs
    "lake.recent_jobs": "datalibrary.ingest.jobs:recent_jobs",
}


def register_handlers() -> None:
    """Register every hook; idempotent and cheap (nothing is imported until a hook is called)."""
    for name, target in HANDLERS.items():
        hooks.register(name, target)


def register_copy_scanners() -> None:
    """Erasure's copy scanners of the layers above the lake (deliveries and quarantine, exports,
    workspaces, file collections, the query engine's column cache); idempotent."""
    from datalibrary.files import erasure as files_erasure
    from datalibrary.ingest import erasure as ingest_erasure
    from datalibrary.lineage import export_erasure
    from datalibrary.query import column_cache
    from datalibrary.workspaces import erasure_copies

    ingest_erasure.register()
    export_erasure.register()
    erasure_copies.register()
    files_erasure.register()
    column_cache.register()
