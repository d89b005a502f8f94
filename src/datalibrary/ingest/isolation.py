"""Each ingestion job parses in a child process with memory and CPU limits.

A hostile file (a reader that preallocates, a decompressor that expands, a parser that loops)
can then only exhaust its own job: the kernel stops the child (``RLIMIT_AS`` beyond what the
child holds after its imports, ``RLIMIT_CPU``), the job ends ``quarantined`` with the reason,
and the server's memory stays flat. The parent keeps the job's lease alive while the child
runs (a heartbeat fenced on this worker's claim), watches for a cancel request and ends the
child when one arrives.

In the threaded server, children come from a ``forkserver`` (a clean single-threaded process
with the pipeline imported once), never from a fork of the server itself; a single-threaded
caller (the CLI, ``datalibrary worker --once``) forks directly, which costs no second import.
A child dies with its worker (``PR_SET_PDEATHSIG``), so a killed worker leaves no orphan that
goes on writing.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import multiprocessing
import resource
import signal
import threading
from typing import Any

from datalibrary.config import Settings
from datalibrary.db import Database

log = logging.getLogger(__name__)
_PRELOAD = ["datalibrary.ingest.pipeline", "pyarrow.csv", "pyarrow.json", "pyreadstat"]
_context_lock = threading.Lock()
_context: Any = None
PR_SET_PDEATHSIG = 1


def _starter() -> Any:
    """``fork`` for a single-threaded caller, else the shared forkserver."""
    if threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    return _forkserver()


def _forkserver() -> Any:
    global _context
    with _context_lock:
        if _context is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(_PRELOAD)
            _context = context
        return _context


def _vm_bytes() -> int:
    """The child's virtual size now (imports, thread stacks, allocator reservations)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def apply_limits(memory_mb: int, cpu_seconds: int) -> None:
    """Limit this process: address space = what it holds now + ``memory_mb``; CPU seconds."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if memory_mb > 0:
        limit = _vm_bytes() + (memory_mb << 20)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    if cpu_seconds > 0:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))


def _child(settings: Settings, job_id: str) -> None:  # pragma: no cover - runs in the child
    from datalibrary.audit.anchors import register
    from datalibrary.ingest.pipeline import run_job
    from datalibrary.lake.catalog import forget_inherited_lakes

    forget_inherited_lakes()  # a forked child must not share the parent's connections
    register(settings.connect_url(), settings.home)
    settings.register_lineage_naming()  # unpickled settings skipped their validators
    apply_limits(settings.ingest.job_memory_mb, settings.ingest.job_cpu_seconds)
    db = Database(settings.connect_url())
    try:
        run_job(settings, db, job_id)
    finally:
        db.dispose()


def _explain(exitcode: int | None, settings: Settings) -> dict[str, Any]:
    """The quarantine reason for a child that did not come back on its own."""
    limits = settings.ingest
    if exitcode is not None and exitcode < 0:
        number = -exitcode
        name = signal.Signals(number).name if number in signal.valid_signals() else str(number)
        if number == signal.SIGXCPU:
            return {
                "code": "resource-limit",
                "message": f"parsing the file used more than {limits.job_cpu_seconds} s of CPU: "
                "the job was stopped (a file this slow to read is refused; split it or raise "
                "ingest.job_cpu_seconds)",
                "signal": name,
            }
        return {
            "code": "resource-limit",
            "message": f"the reader was stopped by signal {name} while parsing the file (memory "
            f"limit {limits.job_memory_mb} MB): the file is refused",
            "signal": name,
        }
    return {
        "code": "resource-limit",
        "message": f"the reader exited with status {exitcode} while parsing the file: the file is refused",
    }


def run_isolated(settings: Settings, db: Database, job_id: str, worker: str, on_progress: Any = None) -> str:
    """Run a claimed job in a limited child; return its final state."""
    from datalibrary.ingest import jobs
    from datalibrary.ingest.models import FINAL_STATES, IngestJob
    from datalibrary.ingest.pipeline import finish_abandoned

    starter = _starter()
    process = starter.Process(target=_child, args=(settings, job_id), name=f"ingest-{job_id[:8]}")
    if starter.get_start_method() == "fork":
        # Objects the parent no longer uses but has not collected yet (an old engine and its
        # SQLite connections) must not be collected, and so closed, in the child: frozen
        # objects are never collected there.
        gc.freeze()
        try:
            process.start()
        finally:
            gc.unfreeze()
    else:
        process.start()
    lease = settings.ingest.job_lease_seconds
    beat = max(min(lease / 3, 5.0), 0.2)
    cancelled = False
    while True:
        process.join(0.25 if on_progress else beat)
        if not process.is_alive():
            break
        try:
            verdict = jobs.renew_lease(db.engine, job_id, worker, lease)
        except Exception:  # a busy database: the next beat tries again
            log.warning("lease renewal of job %s failed", job_id, exc_info=True)
            verdict = "ok"
        if verdict == "done":  # the child finished between two beats
            process.join()
            break
        if verdict != "ok":  # cancelled, or (after a long stall) taken over: stop parsing now
            process.kill()
            process.join()
            if verdict == "lost":
                return "running"
            cancelled = True
            break
        if on_progress:
            with db.session() as session:
                row = session.get(IngestJob, job_id)
                if row is not None:
                    on_progress({"progress_bytes": row.progress_bytes, "rows_read": row.rows_read})
    with db.session() as session:
        row = session.get(IngestJob, job_id)
        state = row.state if row is not None else "failed"
    if state in FINAL_STATES:
        return state
    if cancelled or state == "cancelling":
        return finish_abandoned(settings, db, job_id, "cancelled", None)
    if process.exitcode is not None and process.exitcode > 0:  # a Python error outside the job's
        # own handling (e.g. the database went away): a platform fault, kept for a retry
        reason = {"code": "internal", "message": f"the job's process exited with status {process.exitcode}"}
        return finish_abandoned(settings, db, job_id, "failed", reason)
    return finish_abandoned(settings, db, job_id, "quarantined", _explain(process.exitcode, settings))
