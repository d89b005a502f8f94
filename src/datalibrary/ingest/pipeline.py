"""The ingestion pipeline of one job: detect -> read -> validate -> policy -> normalize ->
write Parquet -> commit ONE snapshot -> delete the raw copy.

Atomic: rows become visible only through the final compare-and-swap commit, whose snapshot
summary names the job; a rerun of a job that was killed after committing finds its own
snapshot and finishes without writing again. Exactly once: a file whose SHA-256 the table
already holds is a ``duplicate``. Bad input (unreadable, uncovered column, value that does
not fit) moves the raw file to quarantine with a machine-readable reason.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
from pyiceberg.io.pyarrow import pyarrow_to_schema
from pyiceberg.table import Table
from pyiceberg.table.name_mapping import NameMapping
from sqlalchemy import select
from sqlalchemy.orm import Session

from datalibrary.audit.service import record, record_now
from datalibrary.auth.permissions import Actor
from datalibrary.config import Settings
from datalibrary.db import Database
from datalibrary.db.base import utcnow
from datalibrary.errors import InvalidInput
from datalibrary.hooks import Hook
from datalibrary.ingest import fanout, faults, jobs, landing, manifest, quarantine
from datalibrary.ingest.models import IngestJob
from datalibrary.ingest.normalize import check_columns, conform, lake_schema
from datalibrary.ingest.outcomes import (
    Duplicate,
    Failed,
    FannedOut,
    Outcome,
    PriorCommit,
    Quarantined,
    Succeeded,
)
from datalibrary.ingest.prefetch import prefetch
from datalibrary.ingest.readers import Reader, ReadError, ReadLimits, ReportsProgress, open_reader
from datalibrary.ingest.readers.archive import ArchiveLimits, extract
from datalibrary.ingest.readers.detect import detect_format
from datalibrary.ingest.readers.fhir import resource_types
from datalibrary.ingest.targets import ARCHIVES, WILDCARD
from datalibrary.lake import datasets
from datalibrary.lake.catalog import Lake, TableName, open_lake
from datalibrary.lake.scan_planning import plan_table
from datalibrary.lake.tables import (
    CommitResult,
    FileWriter,
    commit_files,
    current_data_files,
    file_schema,
    lineage,
    summary_of,
)
from datalibrary.privacy.metadata import forget_profiles, scrub_label, source_pseudonym
from datalibrary.privacy.overrides import override_for
from datalibrary.privacy.policy import PolicyStep
from datalibrary.privacy.rescrub import rescrub_namespace
from datalibrary.privacy.service import policy_context, remember_digests
from datalibrary.privacy.snapshot_record import privacy_properties
from datalibrary.privacy.store import load_policy

log = logging.getLogger(__name__)
# The lineage of every job (START; COMPLETE / FAIL with the snapshot or the reason code) is
# the lineage layer's: registered by ``wiring``; without it no job runs (``hooks.NotWired``).
TRACE_STARTED: Hook[[Database, IngestJob], None] = Hook("ingest.trace_started")
TRACE_FINISHED: Hook[..., None] = Hook("ingest.trace_finished")


def require_tracing() -> None:
    """Refuse to touch a job that would leave no lineage (before it is claimed or run)."""
    TRACE_STARTED.resolve()
    TRACE_FINISHED.resolve()


Progress = Callable[[dict[str, Any]], None]


class InputFault(Exception):
    """A reader failed on the file's content with an error that is not a ``ReadError`` (deep
    recursion, undecodable text, an integer too long to convert...): bad input, not a fault
    of the platform, so the job is quarantined (the traceback goes to the log)."""

    def __init__(self, file: str, exc: BaseException) -> None:
        detail = f"{type(exc).__name__}: {str(exc)[:200]}"
        super().__init__(detail)
        self.reason = {
            "code": "unreadable",
            "message": f"file '{file}' could not be parsed ({detail})",
            "file": file,
        }


_CONTENT_ERRORS = (RecursionError, UnicodeError, OverflowError, ValueError, TypeError, KeyError, IndexError)


def guarded(file: str, batches: Iterator[Any]) -> Iterator[Any]:
    """The reader's batches; content-caused exceptions become ``InputFault``."""
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except InvalidInput:
            raise
        except _CONTENT_ERRORS as exc:
            raise InputFault(file, exc) from exc
        yield batch


class Quarantine(Exception):
    """Bad input: the job ends ``quarantined`` with this machine-readable reason."""

    def __init__(self, code: str, message: str, **where: Any) -> None:
        super().__init__(message)
        self.reason = {"code": code, "message": message, **{k: v for k, v in where.items() if v is not None}}


def _reason_for(exc: InvalidInput) -> Quarantine:
    if isinstance(exc, ReadError):
        return Quarantine(
            "invalid-data"
            if "does not fit" in exc.reason or "columns differ" in exc.reason
            else "unreadable",
            exc.detail,
            file=exc.file,
            row=exc.row,
            column=exc.column,
        )
    code = exc.extra.get("code") or (
        "policy-uncovered-columns" if exc.extra.get("columns") else "invalid-input"
    )
    named = ("columns", "evidence", "row", "column", "options")  # "options": unknown reader options
    where = {key: exc.extra[key] for key in named if key in exc.extra}
    return Quarantine(code, exc.detail, **where)


def _iceberg_schema(schema: pa.Schema):  # type: ignore[no-untyped-def]
    mapping = NameMapping.model_validate(
        [{"field-id": i + 1, "names": [f.name]} for i, f in enumerate(schema)]
    )
    return pyarrow_to_schema(schema, name_mapping=mapping)


def prior_commit(table: Table, job: IngestJob) -> PriorCommit | None:
    """What the table already holds of this job: its own snapshot (a run killed after it
    committed), or a snapshot of the same bytes since the last overwrite (a duplicate)."""
    for snapshot in table.metadata.snapshots:
        if summary_of(snapshot).get("datalibrary.job-id") == job.id:
            return Succeeded(snapshot.snapshot_id, resumed=True)
    for snapshot in lineage(table):
        if summary_of(snapshot).get("datalibrary.source-sha256") == job.sha256:
            return Duplicate(snapshot.snapshot_id)
    return None


class CommitGuard:
    """The commit's guard: the lake asks it before every attempt and wants a reason (a string,
    for its logs); the pipeline reads the typed ``verdict`` of the last check instead."""

    def __init__(self, job: IngestJob) -> None:
        self.job = job
        self.verdict: PriorCommit | None = None

    def __call__(self, table: Table) -> str | None:
        self.verdict = prior_commit(table, self.job)
        match self.verdict:
            case Succeeded(snapshot_id=snapshot):
                return f"committed:{snapshot}"
            case Duplicate(snapshot_id=snapshot):
                return f"duplicate:{snapshot}"
        return None


# keys of a job's options that the pipeline itself reads; every other key is the reader's
_PIPELINE_KEYS = frozenset({"define_labels", "manifest", "manifest_entries", "parent", "children"})


@dataclass(frozen=True)
class JobOptions:
    """A job's stored options, split: what the pipeline reads (define.xml labels, the manifest's
    entry or entries, the fan-out links) apart from the options its reader takes."""

    define: dict[str, dict[str, str]]
    expected: dict[str, Any]  # the manifest's entry for this file
    entries: dict[str, dict[str, Any]] | None  # an archive's manifest, given with it
    reader: dict[str, Any]

    @classmethod
    def of(cls, job: IngestJob) -> JobOptions:
        stored = dict(job.options or {})
        return cls(
            define=stored.get("define_labels") or {},
            expected=stored.get("manifest") or {},
            entries=stored.get("manifest_entries"),
            reader={key: value for key, value in stored.items() if key not in _PIPELINE_KEYS},
        )


def _duplicate_in_db(session: Session, job: IngestJob) -> IngestJob | None:
    """An earlier succeeded job that delivered the same bytes to this table since its last overwrite."""
    same_table = (IngestJob.namespace == job.namespace) & (IngestJob.table_name == job.table_name)
    last_overwrite = session.scalar(
        select(IngestJob.finished_at)
        .where(
            same_table, IngestJob.state == "succeeded", IngestJob.mode == "overwrite", IngestJob.id != job.id
        )
        .order_by(IngestJob.finished_at.desc())
        .limit(1)
    )
    query = select(IngestJob).where(
        same_table, IngestJob.state == "succeeded", IngestJob.sha256 == job.sha256, IngestJob.id != job.id
    )
    if last_overwrite is not None:
        query = query.where(IngestJob.finished_at >= last_overwrite)
    return session.scalars(query.limit(1)).first()


class JobRun:
    """Runs one claimed job to a final state."""

    def __init__(
        self, settings: Settings, db: Database, job_id: str, on_progress: Progress | None = None
    ) -> None:
        self.settings = settings
        self.db = db
        self.lake: Lake = open_lake(settings)
        self.job_id = job_id
        self.on_progress = on_progress
        self._last_beat = 0.0
        self._created: Any = None
        with db.session() as session:
            job = session.get(IngestJob, job_id)
            assert job is not None, job_id
            session.expunge(job)
        self.job = job
        self.name = TableName(job.namespace, job.table_name)
        self.raw = Path(job.raw_path) if job.raw_path else None
        self._views = contextlib.ExitStack()  # the decrypted view of the raw file, while running
        self._plain: Path | None = None

    @property
    def plain(self) -> Path:
        """The raw file's plain bytes (a view that ends with the run); see ``landing.plain_view``."""
        assert self._plain is not None, "the raw file is opened once the job is past its checks"
        return self._plain

    def progress(self, force: bool = False, **values: Any) -> None:
        now = time.monotonic()
        if self.on_progress:
            self.on_progress(values)
        if force or now - self._last_beat > 1.0:
            self._last_beat = now
            jobs.heartbeat(self.db.engine, self.job_id, self.settings.ingest.job_lease_seconds, **values)

    def run(self) -> str:
        """Run to a final state; a table this job created but did not commit to is removed."""
        try:
            with self._views:
                state = self._run_guarded()
        except BaseException:
            self._drop_created()
            raise
        if state != "succeeded":
            self._drop_created()
        return state

    def _limits(self) -> ReadLimits:
        """Per-file limits every reader takes (columns, record size)."""
        limits = self.settings.ingest
        return ReadLimits(max_columns=limits.max_columns, max_record_bytes=limits.max_record_mb << 20)

    def _drop_created(self) -> None:
        """A first delivery that did not commit leaves no table behind (nor its metadata)."""
        created, self._created = self._created, None
        if created is None:
            return
        try:
            table = self.lake.load(self.name)
            if table.metadata.table_uuid != created or table.metadata.snapshots:
                return  # another job committed to it meanwhile: it is theirs now
            location = table.location()
            self.lake.catalog.drop_table(self.name.ident)
            self.lake.storage.delete_dir(location)
        except Exception:
            log.warning(
                "could not remove the empty table %s of job %s", self.name, self.job_id, exc_info=True
            )

    def _run_guarded(self) -> str:
        """Run the steps, turn an error that ends the job into its outcome, write the final state."""
        try:
            TRACE_STARTED(self.db, self.job)
            return self._conclude(self._run())
        except Exception as exc:
            outcome = self._outcome_of(exc)
        return self._conclude(outcome)

    def _outcome_of(self, exc: Exception) -> Quarantined | Failed:
        """Bad input (the file's fault) is quarantined; anything else is a failure of the platform."""
        match exc:
            case Quarantine():
                return Quarantined(exc.reason)
            case InvalidInput():
                return Quarantined(_reason_for(exc).reason)
            case MemoryError():
                return Quarantined(
                    {
                        "code": "resource-limit",
                        "message": f"reading file '{self.job.source_name}' needed more memory than a job "
                        f"may use ({self.settings.ingest.job_memory_mb} MB): the file is refused",
                        "file": self.job.source_name,
                    }
                )
            case InputFault():
                log.warning(
                    "ingestion job %s: the reader failed on the file's content", self.job_id, exc_info=True
                )
                return Quarantined(exc.reason)
        log.exception("ingestion job %s failed", self.job_id)
        return Failed({"code": "internal", "message": f"{type(exc).__name__}: {exc}"[:500]})

    def _run(self) -> Outcome:
        """The steps of a run, in order; bad input raises ``Quarantine`` from any of them."""
        faults.checkpoint("landed")
        done = self._already_done()
        if done is not None:
            return done
        assert self.raw is not None
        self._plain = self._views.enter_context(landing.plain_view(self.settings, self.raw))
        policy = load_policy_for(self.db, self.job)
        options = JobOptions.of(self.job)
        fmt = self.job.format or self._detect()
        if fmt in ARCHIVES:
            return self._fan_out_archive(fmt, options)
        if fmt == "fhir" and not options.reader.get("resource_type"):
            return self._fan_out_fhir()
        self._check_delivery(fmt, options)
        return self._ingest(fmt, policy, options)

    def _already_done(self) -> PriorCommit | None:
        """Before any reading: a run killed after its commit is finished, a raw file that is gone
        is quarantined, and bytes a succeeded job already delivered are a duplicate."""
        job = self.job
        if job.table_name != WILDCARD and self.lake.exists(self.name):
            prior = prior_commit(self.lake.load(self.name), job)
            if isinstance(prior, Succeeded):
                return prior
        if self.raw is None or not self.raw.exists():
            raise Quarantine("raw-file-missing", "the landed raw file is gone; submit the file again")
        with self.db.session() as session:
            earlier = _duplicate_in_db(session, job)
        return None if earlier is None else Duplicate(earlier.snapshot_id)

    def _check_delivery(self, fmt: str, options: JobOptions) -> None:
        """A file of one table needs a table name, and the bytes its manifest names."""
        job = self.job
        if job.table_name == WILDCARD:
            raise Quarantine(
                "invalid-input",
                f"a {fmt} file needs a table name: submit it to NAMESPACE.TABLE",
                file=job.source_name,
            )
        expected = options.expected.get("sha256")
        if expected and expected != job.sha256:
            raise Quarantine(
                "manifest-mismatch",
                f"file '{job.source_name}' has another SHA-256 than its manifest says",
                file=job.source_name,
            )

    def _ingest(self, fmt: str, policy: Any, options: JobOptions) -> PriorCommit:
        """Read, anonymize and write the file, then commit its files as one snapshot."""
        job = self.job
        reader = self._open_reader(fmt, options)
        self.progress(force=True, step="reading", format=fmt)
        batches = prefetch(guarded(job.source_name, iter(reader.batches())))
        first = self._first_batch(batches)
        step = PolicyStep(
            policy, policy_context(self.settings, self.db, job.namespace, job.table_name, job.id)
        )
        stored_schema = lake_schema(step.plan(first))
        if step.needs_prepass:
            self._prepass(fmt, options, step)
        table, target = self._target_table(step, stored_schema)
        writer = FileWriter(
            self.lake, table, f"job-{job.id}", target, self.settings.lake.target_file_mb << 20
        )
        try:
            rows, files = self._write(writer, reader, step, target, itertools.chain([first], batches))
            self._check_rows(rows, options.expected)
            overridden = self._risk_override(policy, step)
            labels = {
                k: scrub_label(step, v)
                for k, v in _labels(reader, job, options.define).items()
                if k in target.names
            }
            self.progress(
                force=True,
                step="committing",
                rows_read=rows,
                rows_written=rows,
                progress_bytes=job.size_bytes,
                bytes_written=writer.bytes_written,
            )
            faults.checkpoint("written")
            guard = CommitGuard(job)
            result = self._commit(files, step, policy, overridden, guard)
        except BaseException:
            writer.abort()  # nothing of a run that does not commit stays in the lake
            raise
        if result.skipped:
            writer.abort()
            if guard.verdict is not None:  # committed meanwhile by an earlier run, or a duplicate
                return guard.verdict
            if rows == 0 and job.mode != "overwrite":
                return Succeeded(None, rows=0, labels=labels)
        faults.checkpoint("committed")
        return Succeeded(
            result.snapshot_id, rows=rows, labels=labels, bytes_written=writer.bytes_written, rescrub=step
        )

    def _open_reader(self, fmt: str, options: JobOptions) -> Reader:
        """The file's reader; a reader that fails on the content while opening is bad input too."""
        try:
            return open_reader(
                self.plain,
                format=fmt,
                display_name=self.job.source_name,
                options=options.reader,
                limits=self._limits(),
            )
        except InvalidInput:
            raise
        except _CONTENT_ERRORS as exc:
            raise InputFault(self.job.source_name, exc) from exc

    def _first_batch(self, batches: Iterator[pa.RecordBatch]) -> pa.RecordBatch:
        """The first batch, which decides the columns (and must exist: an empty file is refused)."""
        job = self.job
        first = next(batches, None)
        if first is None:
            raise Quarantine(
                "empty", f"file '{job.source_name}' holds no table (no header, no rows)", file=job.source_name
            )
        check_columns(first.schema.names, file=job.source_name, limit=self.settings.ingest.max_columns)
        return first

    def _prepass(self, fmt: str, options: JobOptions, step: PolicyStep) -> None:
        """suppress / scrub_text count over the whole file first: a streaming pass over the landed file."""
        self.progress(force=True, step="counting")
        reader = self._open_reader(fmt, options)
        for batch in guarded(self.job.source_name, iter(reader.batches())):
            step.observe(batch)

    def _target_table(self, step: PolicyStep, stored_schema: pa.Schema) -> tuple[Table, pa.Schema]:
        """The table the files go to (created on a first delivery, dropped again if the run does
        not commit) and the schema each file is conformed to."""
        job = self.job
        if not self.lake.exists(self.name):
            table = self.lake.create(self.name, _iceberg_schema(stored_schema))
            self._created = table.metadata.table_uuid
            return table, file_schema(table)
        table = self.lake.load(self.name)
        target = file_schema(table)
        if job.mode != "overwrite":
            _count_stored_classes(self.lake, self.name, step)  # the risk is the table's after the append
        elif set(target.names) != set(stored_schema.names):
            raise Quarantine(
                "schema-mismatch",
                f"the file's columns differ from table {self.name}: schema changes are not supported yet",
                file=job.source_name,
            )
        return table, target

    def _write(
        self,
        writer: FileWriter,
        reader: Reader,
        step: PolicyStep,
        target: pa.Schema,
        batches: Iterator[pa.RecordBatch],
    ) -> tuple[int, list[str]]:
        """Anonymize, conform and write every batch; the rows read and the files written."""
        rows = 0
        for batch in batches:
            out = step.apply(batch)
            stored = lake_schema(out.schema)
            out = out if out.schema.equals(stored) else out.cast(stored)
            writer.write(conform(out, target, file=self.job.source_name, first_row=rows + 1))
            rows += batch.num_rows
            read_bytes = reader.bytes_read() if isinstance(reader, ReportsProgress) else 0
            self.progress(rows_read=rows, rows_written=rows, progress_bytes=read_bytes, step="writing")
        return rows, writer.close()

    def _check_rows(self, rows: int, expected: dict[str, Any]) -> None:
        """The row count the manifest names, when it names one."""
        if expected.get("rows") is not None and rows != expected["rows"]:
            raise Quarantine(
                "manifest-mismatch",
                f"file '{self.job.source_name}' holds {rows} rows; its manifest says {expected['rows']}",
                file=self.job.source_name,
            )

    def _risk_override(self, policy: Any, step: PolicyStep) -> str | None:
        """A ``shared`` table's re-identification risk must meet the policy's threshold, unless a
        steward's override (its use is audited) allows it: the override's id, or None."""
        risk = step.risk()
        if risk is None or policy.tier != "shared" or risk.meets(policy.risk_threshold):
            return None
        overridden = risk_override(self.db, self.job)
        if overridden is None:
            raise Quarantine(
                "risk-above-threshold",
                f"policy {policy.label} is tier 'shared' but the re-identification risk on "
                f"{', '.join(risk.quasi_identifiers)} is {risk.max_risk:.3f} (k = {risk.k}) above "
                f"{policy.risk_threshold}: generalize or suppress the quasi-identifiers, "
                "or use tier 'internal'",
                risk=risk.as_dict(),
            )
        return overridden

    def _commit(
        self, files: list[str], step: PolicyStep, policy: Any, overridden: str | None, guard: CommitGuard
    ) -> CommitResult:
        """One compare-and-swap snapshot that names the job (an overwrite replaces every file)."""
        job = self.job
        overwrite = job.mode == "overwrite"
        return commit_files(
            self.lake,
            self.name,
            add=files,
            remove=current_data_files if overwrite else None,
            properties={
                "job-id": job.id,
                "source-file": source_pseudonym(step, job.source_name),
                "source-sha256": job.sha256 or "",
                "source-bytes": job.size_bytes,
                "policy": policy.name,
                "policy-version": policy.version,
                "policy-sha256": policy.sha256,
                **privacy_properties(step),
                **({"risk-override": overridden} if overridden else {}),
                "mode": job.mode,
                "actor": job.created_by,
                "operation": "ingest",
            },
            guard=guard,
            holder=f"job:{job.id}",
        )

    def _rescrub(self, step: PolicyStep) -> None:
        """Remember this delivery's identifiers; scrub earlier tables of any that are new."""
        dictionary = step.context.extra.get("identifier_dictionary")
        if dictionary is None or not dictionary.collected:
            return
        try:
            new = remember_digests(self.db, self.job.namespace, dictionary.collected)
            rewritten = (
                rescrub_namespace(
                    self.lake,
                    self.db,
                    self.job.namespace,
                    dictionary.secret,
                    new,
                    skip=self.job.table_name,
                    actor=self.job.created_by,
                )
                if new
                else []
            )
            if rewritten:
                with self.db.session() as session:
                    forget_profiles(session, self.job.namespace, rewritten)
                    record(
                        session,
                        actor=Actor(self.job.created_by, "worker"),
                        action="privacy.rescrub",
                        target=f"namespace:{self.job.namespace}",
                        details={"job": self.job.id, "tables": rewritten, "new_identifiers": len(new)},
                    )
        except Exception:  # the delivery is committed; the steward must see the failure
            log.exception("re-scrubbing namespace %s after job %s failed", self.job.namespace, self.job.id)
            with self.db.session() as session:
                record(
                    session,
                    actor=Actor(self.job.created_by, "worker"),
                    action="privacy.rescrub",
                    target=f"namespace:{self.job.namespace}",
                    outcome="failure",
                    details={"job": self.job.id},
                )

    def _detect(self) -> str:
        try:
            return detect_format(self.plain)
        except ReadError as exc:  # name the delivered file, not the landed copy
            raise ReadError(self.job.source_name, exc.reason) from exc

    @contextlib.contextmanager
    def _keep_lease(self) -> Iterator[None]:
        """Heartbeats while a long step (extraction, the FHIR counting pass) reports nothing,
        so that no other worker takes the job over meanwhile."""
        lease = self.settings.ingest.job_lease_seconds
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(max(lease / 3, 0.5)):
                try:
                    jobs.heartbeat(self.db.engine, self.job_id, lease)
                except Exception:
                    log.warning("heartbeat of job %s failed", self.job_id, exc_info=True)

        thread = threading.Thread(target=beat, name=f"lease-{self.job_id[:8]}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(5)

    # fan-out ------------------------------------------------------------------------------

    def _fan_out_archive(self, kind: str, options: JobOptions) -> FannedOut:
        """Extract (with the archive limits) and queue one child job per contained file."""
        job = self.job
        assert self.raw is not None
        scratch = fanout.extraction_dir(self.raw)
        shutil.rmtree(scratch, ignore_errors=True)  # left by a worker killed while extracting
        self.progress(force=True, step="extracting", format=kind)
        try:
            try:
                with self._keep_lease():
                    outputs = extract(
                        self.plain,
                        scratch,
                        limits=ArchiveLimits(max_entries=self.settings.ingest.max_children),
                    )
            except ReadError as exc:
                code = "archive-refused" if fanout.is_hostile(exc) else "archive-unreadable"
                raise Quarantine(code, exc.detail, file=job.source_name) from exc
            outputs, define = fanout.split_define(outputs, job)
            outputs, entries = self._manifest_of(outputs, options.entries)
            if not outputs:
                raise Quarantine("empty", f"archive '{job.source_name}' holds no file", file=job.source_name)
            members = [(p, p.relative_to(scratch).as_posix()) for p in outputs]
            expected: dict[str, dict[str, Any]] = {}
            if entries is not None:
                try:
                    expected = manifest.check_members(entries, members, job.source_name)
                except ReadError as exc:
                    raise Quarantine("manifest-mismatch", exc.detail, file=job.source_name) from exc
            planned = fanout.plan_members(job, members)
            tables = [table for _, _, table in planned]
            if job.mode == "overwrite" and len(set(tables)) < len(tables):
                raise Quarantine(
                    "overwrite-ambiguous",
                    f"archive '{job.source_name}' holds {len(tables)} files for one table: an overwrite "
                    "takes one file per table (deliver them one by one, or to NAMESPACE.* for a table "
                    "per file)",
                    file=job.source_name,
                )
            with self._keep_lease():
                children = fanout.archive_children(self.settings, job, planned, define, expected)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return FannedOut(children, kind)

    def _manifest_of(
        self, outputs: list[Path], given: dict[str, dict[str, Any]] | None
    ) -> tuple[list[Path], dict[str, dict[str, Any]] | None]:
        """The manifest inside the archive (or given with it), and the data files without it."""
        inside = [p for p in outputs if manifest.is_manifest(p)]
        data = [p for p in outputs if p not in inside]
        if given is not None:
            return data, given
        if not inside:
            return data, None
        if len(inside) > 1:
            raise Quarantine(
                "manifest-mismatch", "the archive holds more than one manifest", file=self.job.source_name
            )
        try:
            return data, manifest.load(inside[0], f"{self.job.source_name}/{inside[0].name}")
        except ReadError as exc:
            raise Quarantine("manifest-mismatch", exc.detail, file=self.job.source_name) from exc

    def _fan_out_fhir(self) -> FannedOut:
        """Count the resource types (a full parse: malformed JSON quarantines the whole file)."""
        job = self.job
        assert self.raw is not None
        self.progress(force=True, step="scanning", format="fhir")
        with self._keep_lease():
            types = resource_types(
                self.plain,
                display_name=job.source_name,
                max_types=self.settings.ingest.max_children,
                max_record_bytes=self.settings.ingest.max_record_mb << 20,
            )
        if not types:
            raise Quarantine(
                "empty", f"file '{job.source_name}' holds no FHIR resource", file=job.source_name
            )
        return FannedOut(fanout.fhir_children(self.settings, job, self.raw, types), "fhir")

    # final states -------------------------------------------------------------------------

    def _conclude(self, outcome: Outcome) -> str:
        """Write the job's final state for this outcome; return that state."""
        match outcome:
            case Succeeded():
                self._succeeded(outcome)
                if outcome.rescrub is not None:
                    self._rescrub(outcome.rescrub)
            case Duplicate():
                self._duplicate(outcome.snapshot_id)
            case FannedOut():
                self._fanned_out(outcome.children, outcome.kind)
            case Quarantined():
                self._quarantine(outcome.reason, outcome.state)
            case Failed():
                self._failed(outcome.reason)
        return outcome.state

    def _fanned_out(self, children: list[IngestJob], kind: str) -> None:
        def write() -> None:
            with self.db.session() as session:
                fanout.commit_fan_out(session, self.job_id, children, kind)

        retry_locked(write)  # one transaction, many rows: the likeliest to meet a busy SQLite
        landing.discard(self.raw)

    def _failed(self, reason: dict[str, Any] | None) -> None:
        """End the job in ``failed`` (keeping the raw file for a retry)."""

        def write() -> None:
            with self.db.session() as session:
                job = session.get(IngestJob, self.job_id)
                assert job is not None
                job.state, job.finished_at, job.lease_expires_at, job.step = "failed", utcnow(), None, None
                job.reason = reason
                record(
                    session,
                    actor=Actor(job.created_by, "worker"),
                    action="ingest.fail",
                    target=f"table:{self.name}",
                    outcome="failure",
                    details={"job": job.id, "file": job.source_name, "code": (job.reason or {}).get("code")},
                )
                TRACE_FINISHED(session, job, "FAIL", reason=(job.reason or {}).get("code"))

        retry_locked(write)

    def _succeeded(self, outcome: Succeeded) -> None:
        """End the job ``succeeded``: the catalog, lineage and audit learn of the commit."""
        job = self.job
        snapshot_id, rows, bytes_written = outcome.snapshot_id, outcome.rows, outcome.bytes_written
        subjects = _policy_subjects(self.db, job)

        def write() -> None:
            with self.db.session() as session:
                row = session.get(IngestJob, self.job_id)
                assert row is not None
                row.state, row.finished_at, row.lease_expires_at, row.step = "succeeded", utcnow(), None, None
                row.snapshot_id = snapshot_id
                if rows is not None:
                    row.rows_read = row.rows_written = rows
                if bytes_written is not None:
                    row.bytes_written = bytes_written
                row.progress_bytes = row.size_bytes
                datasets.record_ingestion(
                    session,
                    TableName(job.namespace, job.table_name),
                    owner=job.created_by,
                    source=job.source_via,
                    policy=(job.policy_name, job.policy_version, job.policy_hash),
                    labels=outcome.labels,
                    source_bytes=job.size_bytes,
                    overwrite=job.mode == "overwrite",
                    columns=file_schema(self.lake.load(self.name)).names,
                    subject_columns=subjects,
                )
                TRACE_FINISHED(
                    session,
                    job,
                    "COMPLETE",
                    snapshot_id=snapshot_id,
                    rows=row.rows_written,
                    bytes_written=row.bytes_written,
                    schema=file_schema(self.lake.load(self.name)),
                )
                record(
                    session,
                    actor=Actor(job.created_by, "worker"),
                    action="ingest.commit",
                    target=f"table:{self.name}",
                    details={
                        "job": job.id,
                        "file": job.source_name,
                        "sha256": job.sha256,
                        "snapshot": snapshot_id,
                        "rows": row.rows_written,
                        "policy": f"{job.policy_name}@{job.policy_version}",
                        "resumed": outcome.resumed,
                    },
                )

        retry_locked(write)
        landing.discard(self.raw)

    def _duplicate(self, snapshot_id: int | None) -> None:
        """End the job ``duplicate``: the table already holds these bytes."""
        job = self.job

        def write() -> None:
            with self.db.session() as session:
                row = session.get(IngestJob, self.job_id)
                assert row is not None
                row.state, row.finished_at, row.lease_expires_at, row.step = "duplicate", utcnow(), None, None
                row.snapshot_id = snapshot_id
                row.reason = {
                    "code": "duplicate",
                    "message": f"table {self.name} already holds this file's content (sha256 {job.sha256})",
                }
                record(
                    session,
                    actor=Actor(job.created_by, "worker"),
                    action="ingest.duplicate",
                    target=f"table:{self.name}",
                    details={
                        "job": job.id,
                        "file": job.source_name,
                        "sha256": job.sha256,
                        "snapshot": snapshot_id,
                    },
                )
                TRACE_FINISHED(session, job, "COMPLETE", snapshot_id=snapshot_id, reason="duplicate")

        retry_locked(write)
        landing.discard(self.raw)

    def _quarantine(self, reason: dict[str, Any], state: str = "quarantined") -> None:
        """End the job ``quarantined`` (or ``cancelled``): the raw file moves to quarantine."""
        moved = quarantine.store(self.settings, self.job_id, self.raw)
        job = self.job

        def write() -> None:
            with self.db.session() as session:
                row = session.get(IngestJob, self.job_id)
                assert row is not None
                row.state, row.finished_at, row.lease_expires_at, row.step = state, utcnow(), None, None
                row.reason = reason
                row.raw_path = str(moved) if moved else None
                record_now(
                    session,
                    actor=Actor(job.created_by, "worker"),
                    action="ingest.quarantine" if state == "quarantined" else "ingest.cancelled",
                    target=f"table:{self.name}",
                    outcome="failure",
                    details={
                        "job": job.id,
                        "file": job.source_name,
                        "sha256": job.sha256,
                        "code": reason.get("code"),
                    },
                )
                TRACE_FINISHED(session, job, "FAIL", reason=reason.get("code"))

        retry_locked(write)


def retry_locked(write: Callable[[], None], attempts: int = 8) -> None:
    """A final-state write retried while SQLite says "database is locked" (a busy fan-out or
    audit burst), or when a concurrent job inserted the same unique row first (two first
    deliveries to one new table both create its catalog entry: the retry, in a new
    transaction, updates the winner's row): a job must never stay ``running``, nor end
    ``failed`` after its commit, because its last write lost a race."""
    from sqlalchemy.exc import IntegrityError, OperationalError

    for attempt in range(attempts):
        try:
            write()
            return
        except (OperationalError, IntegrityError) as exc:
            lost = isinstance(exc, IntegrityError) or "locked" in str(exc).lower()
            if not lost or attempt == attempts - 1:
                raise
            time.sleep(min(0.1 * 2**attempt, 5.0))


def finish_abandoned(
    settings: Settings, db: Database, job_id: str, state: str, reason: dict[str, Any] | None
) -> str:
    """End a job whose reader did not come back (killed at a limit, cancelled, abandoned)."""
    require_tracing()
    run = JobRun(settings, db, job_id)
    if state == "failed":
        return run._conclude(Failed(reason))
    if reason is None:
        reason = {"code": "cancelled", "message": "the job was cancelled while it ran"}
    return run._conclude(Quarantined(reason, state))


def _labels(reader: Any, job: IngestJob, define: dict[str, dict[str, str]]) -> dict[str, str]:
    """The reader's labels, overridden by the define.xml's labels of the file's dataset (member
    name of an XPT, else the file name's stem): the define.xml is the study's reviewed metadata."""
    labels = dict(reader.column_labels())
    if define:
        dataset = getattr(reader, "table_name", None) or Path(job.source_name).name.split(".")[0]
        labels.update(define.get(str(dataset).upper(), {}))
    return labels


def risk_override(db: Database, job: IngestJob) -> str | None:
    """The id of a steward's override for this table (its use is audited), else None."""
    with db.session() as session:
        found = override_for(session, job.namespace, job.table_name)
        if found is None:
            return None
        record(
            session,
            actor=Actor(job.created_by, "worker"),
            action="privacy.risk-override-used",
            target=f"table:{job.namespace}.{job.table_name}",
            details={"job": job.id, "override": found.id, "granted_by": found.granted_by},
        )
        return str(found.id)


def _count_stored_classes(lake, name, step: PolicyStep) -> None:  # type: ignore[no-untyped-def]
    """An append's risk is the table's after the append: count the classes of the rows already
    stored (their quasi-identifier columns only, streamed), then the new file's on top."""
    import pyarrow.dataset as pads

    counter = step.classes
    if counter is None:
        return
    plan = plan_table(lake, name)
    if not plan.files or any(q not in plan.schema.names for q in counter.qis):
        return
    stored = pads.dataset(
        [f.path for f in plan.files], format="parquet", filesystem=lake.storage.fs, schema=plan.schema
    )
    for batch in stored.to_batches(columns=counter.qis, batch_size=65_536):
        counter.add(batch)


def _policy_subjects(db: Database, job: IngestJob) -> tuple[str, ...]:
    """The policy's subject columns: the catalog records the one the table has, for erasure."""
    if not job.policy_name:
        return ()
    try:
        return tuple(load_policy_for(db, job).subject)
    except Exception:  # the table is committed: a policy lookup problem must not fail the job
        return ()


def load_policy_for(db: Database, job: IngestJob):  # type: ignore[no-untyped-def]
    with db.session() as session:
        policy = load_policy(session, job.policy_name, job.policy_version)
    if job.policy_hash and policy.sha256 != job.policy_hash:
        raise Quarantine("policy-changed", f"policy {policy.label} changed since the job was queued")
    return policy


def run_job(settings: Settings, db: Database, job_id: str, on_progress: Progress | None = None) -> str:
    """Run a job this process has claimed; return its final state."""
    require_tracing()
    return JobRun(settings, db, job_id, on_progress).run()
