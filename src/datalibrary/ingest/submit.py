"""Put a delivery in the ingestion queue: a new file (``submit_file``: landed in the private
area, its target, policy, define.xml and manifest checked first) or a job that ended badly
(``retry_job``). Apart from ``jobs`` (list, show, claim, cancel) because checking a delivery
loads the readers and the policies (pyarrow): listing jobs stays light."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session

from datalibrary.audit.service import record
from datalibrary.auth.permissions import Permission, Principal, require
from datalibrary.config import Settings
from datalibrary.errors import Conflict, InvalidInput
from datalibrary.ingest import landing, manifest, quarantine
from datalibrary.ingest.fanout import declared_table, sniff
from datalibrary.ingest.jobs import MODES, get_job
from datalibrary.ingest.models import IngestJob
from datalibrary.ingest.readers import reader_class
from datalibrary.ingest.readers.define_xml import define_labels
from datalibrary.ingest.targets import ARCHIVES, WILDCARD, new_job_id, parse_target
from datalibrary.lake.names import TableName
from datalibrary.privacy.store import load_policy


def read_define(define: Path) -> dict[str, dict[str, str]]:
    """Labels of a define.xml by dataset; refused early (at submission) when unreadable."""
    if not Path(define).is_file():
        raise InvalidInput(f"define.xml {define} is not a readable file")
    return define_labels(Path(define))


def submit_file(
    session: Session,
    principal: Principal,
    settings: Settings,
    source: Path,
    *,
    table: str,
    policy: str,
    mode: str = "append",
    display_name: str | None = None,
    via: str = "cli",
    format: str | None = None,
    move: bool = False,
    define: Path | None = None,
    manifest_file: Path | None = None,
) -> IngestJob:
    """Land ``source`` in the private area and queue a job for it.

    The format is told from the content when the job runs (``format`` forces one). ``table``
    may be ``NS.*`` (table from the file name, or one per FHIR resource type); ``define``
    (a define.xml) gives column labels to the SAS files of the delivery.
    """

    require(principal, Permission.INGEST_RUN)
    name = parse_target(table)
    if mode not in MODES:
        raise InvalidInput(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    display = landing.safe_filename(display_name or source.name)
    if format is not None and format not in ARCHIVES:
        reader_class(format)
    stored = load_policy(session, policy)
    if move and source.is_symlink():
        raise InvalidInput(f"{display} is a symbolic link: only plain files are taken over")
    if not source.is_file():
        raise InvalidInput(f"{source} is not a readable file")
    options: dict[str, object] = {}
    if define is not None:
        options["define_labels"] = read_define(define)
    if manifest_file is not None:
        options.update(_manifest_options(manifest_file, display, format or sniff(source)))
    if name.name == WILDCARD and (format or sniff(source)) not in (*ARCHIVES, "fhir"):
        name = TableName(name.namespace, declared_table(source, display))
    job_id = new_job_id()
    raw, sha, size = landing.land(settings, job_id, source, display, move=move)
    job = IngestJob(
        id=job_id,
        namespace=name.namespace,
        table_name=name.name,
        mode=mode,
        policy_name=stored.name,
        policy_version=stored.version,
        policy_hash=stored.sha256,
        format=format,
        options=options,
        source_name=display,
        source_via=via,
        raw_path=str(raw),
        sha256=sha,
        size_bytes=size,
        state="queued",
        step="landed",
        created_by=principal.name,
    )
    session.add(job)
    record(
        session,
        actor=principal,
        action="ingest.submit",
        target=f"table:{name}",
        details={"job": job_id, "file": display, "sha256": sha, "bytes": size, "mode": mode, "via": via},
    )
    session.flush()
    return job


def _manifest_options(path: Path, display: str, kind: str | None) -> dict[str, object]:
    """A manifest given with a file: its own entry, or (an archive) the entries of its members."""

    entries = manifest.load(Path(path))
    own = manifest.entry_for(entries, display)
    if own is not None:
        return {"manifest": own}
    if kind in ARCHIVES:
        return {"manifest_entries": entries}
    raise InvalidInput(f"the manifest does not list '{display}'")


def retry_job(
    session: Session, principal: Principal, job_id: str, settings: Settings | None = None
) -> IngestJob:
    """Queue a failed, cancelled or quarantined job again (its raw file is kept in the landing
    area or, encrypted, in quarantine). A quarantined file is retried after a fix, usually of
    its policy: the retry uses the policy's current version, and the audit entry names both."""
    require(principal, Permission.INGEST_RUN)
    job = get_job(session, principal, job_id)
    if job.state not in ("failed", "cancelled", "quarantined"):
        raise Conflict(
            f"job {job_id} is {job.state}: only failed, cancelled or quarantined jobs can be retried"
        )
    if not job.raw_path or not Path(job.raw_path).exists():
        raise Conflict(f"job {job_id} has no raw file left to retry; submit the file again")
    before = f"{job.policy_name}@{job.policy_version}"
    if job.state == "quarantined" and job.policy_name:
        current = load_policy(session, job.policy_name)
        job.policy_version, job.policy_hash = current.version, current.sha256
    previous = job.state
    if quarantine.holds(Path(job.raw_path)):
        if settings is None:
            raise Conflict(f"job {job_id}'s file is in quarantine: retry it through the API or CLI")
        job.raw_path = str(quarantine.restore(settings, job))
    job.state, job.reason, job.finished_at = "queued", None, None
    now = f"{job.policy_name}@{job.policy_version}"
    record(
        session, actor=principal, action="ingest.retry", target=f"job:{job_id}",
        details={"was": previous, "policy_before": before, "policy": now},
    )  # fmt: skip
    return job
