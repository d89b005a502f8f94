"""File collections: create, ingest (de-identify, store, index), list and read files.

A collection ``NS.NAME`` is three things that share the name:
- a row of ``files_collections`` (owner, the study's tabular policy, private-tag allow-list,
  burned-in decisions);
- immutable objects in the warehouse, ``<warehouse>/_files/<ns>/<name>/objects/<sha256>``: the
  bytes AFTER de-identification, addressed by their SHA-256 (never overwritten). They live
  outside the index table's location on purpose: lake maintenance deletes every file under a
  table's location that no snapshot references (and no namespace can be named ``_files``);
- the Iceberg index table ``NS.NAME``: one row per file version. It is a lake table like any
  other, so SQL, grants (whole table or a row filter such as ``modality = 'CT'``), the
  catalog and lineage see it without anything special.

Grants are not imported here (``access`` is a sibling layer): callers pass ``access_of``,
which answers for one table what the caller may see (None: no grant), as the catalog's
``Visibility`` does.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import re
import shutil
import tempfile
import uuid
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
from pyiceberg.io.pyarrow import pyarrow_to_schema
from pyiceberg.table.name_mapping import NameMapping
from sqlalchemy import select
from sqlalchemy.orm import Session

from datalibrary.access import service as access
from datalibrary.audit.service import record
from datalibrary.auth.permissions import Permission, Principal, require
from datalibrary.config import Settings
from datalibrary.errors import Conflict, InvalidInput, NotFound, TooLarge
from datalibrary.files import dicom, formats, index_risk, metering, objects, tiers
from datalibrary.files.freetext import StudyWords
from datalibrary.files.models import FileCollection, QuarantinedFile
from datalibrary.files.schemas import CollectionOut
from datalibrary.ingest.sealed import seal
from datalibrary.lake import locks
from datalibrary.lake.catalog import Lake, TableName, open_lake, parse_table_name
from datalibrary.lake.models import Dataset
from datalibrary.lake.scan_planning import plan_table
from datalibrary.lake.tables import FileWriter, commit_files, file_schema
from datalibrary.privacy.actions import normalize, subject_offsets, tokens_for
from datalibrary.privacy.keys import StudyKey
from datalibrary.privacy.models import IdentifierDigest
from datalibrary.privacy.policy import Policy
from datalibrary.privacy.service import study_key_for
from datalibrary.privacy.store import load_policy

log = logging.getLogger(__name__)
_TAGS = {"standard": ["dicom", "aecg", "documents"], "restricted": ["genomic", "vcf", "restricted"]}
MAX_ARCHIVE_MEMBERS = 20_000
TEMPLATE_FIELDS = ("PatientID", "ClinicalTrialSubjectID", "ClinicalTrialProtocolID")
TEMPLATE_RE = re.compile(r"^(?:[^{}]|\{(?:" + "|".join(TEMPLATE_FIELDS) + r")\})*$")
PRIVATE_RE = re.compile(r"^[0-9A-F]{3}[13579BDF],XX[0-9A-F]{2}@[^@\s]([^@]{0,62}[^@\s])?$")
# segments start with a letter, digit or '_': no '.', '..' or hidden names
PATH_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,199}(/[A-Za-z0-9_][A-Za-z0-9._-]{0,199})*$"
PATH_RE = re.compile(PATH_PATTERN)
INDEX_SCHEMA = pa.schema(
    [
        pa.field("path", pa.string()),
        pa.field("version", pa.int32()),
        pa.field("media_type", pa.string()),
        pa.field("size", pa.int64()),
        pa.field("sha256", pa.string()),
        pa.field("subject", pa.string()),
        pa.field("study", pa.string()),
        pa.field("acquisition_date", pa.date32()),
        pa.field("modality", pa.string()),
        pa.field("body_part", pa.string()),
        pa.field("study_instance_uid", pa.string()),
        pa.field("series_instance_uid", pa.string()),
        pa.field("sop_instance_uid", pa.string()),
        pa.field("sop_class_uid", pa.string()),
        pa.field("profile", pa.string()),
        pa.field("ingested_at", pa.timestamp("us", tz="UTC")),
        pa.field("tier", pa.string()),
        pa.field("details", pa.string()),
    ]
)

INDEX_LABELS = {
    "path": "Path in the collection",
    "version": "Version of the path (1, 2, ...)",
    "media_type": "Media type",
    "size": "Size in bytes (de-identified file)",
    "sha256": "SHA-256 of the de-identified file",
    "subject": "Subject pseudonym (as USUBJID in the study's tables)",
    "study": "Study (namespace)",
    "acquisition_date": "Acquisition date (shifted with the subject's dates)",
    "modality": "DICOM Modality",
    "body_part": "DICOM BodyPartExamined",
    "study_instance_uid": "StudyInstanceUID (keyed per study)",
    "series_instance_uid": "SeriesInstanceUID (keyed per study)",
    "sop_instance_uid": "SOPInstanceUID (keyed per study)",
    "sop_class_uid": "SOPClassUID",
    "profile": "De-identification profile applied",
    "ingested_at": "Committed at (UTC)",
    "tier": "Tier of the collection (standard, restricted: genomic data)",
    "details": "Format metadata (JSON): ECG leads and sampling rate, VCF reference and counts, pages",
}


@dataclass(frozen=True)
class FileView:
    """What the caller's grant shows of one collection: None filter = every row."""

    row_filter: str | None


AccessOf = Callable[[str, str], FileView | None]


def grants_of(session: Session, principal: Principal) -> AccessOf:
    """What the caller's table grants show of each collection's index table (None: nothing),
    row filters included: the same grants queries use, so every front end reads files alike."""

    def access_of(namespace: str, table: str) -> FileView | None:
        if not principal.can(Permission.QUERY_RUN):
            return None
        found = access.effective_access(session, principal, namespace, table)
        if found is None:
            return None
        collection = session.scalar(
            select(FileCollection).where(FileCollection.namespace == namespace, FileCollection.name == table)
        )
        if collection is not None and collection.tier == tiers.RESTRICTED:  # approved grants only
            visible, row_filter = tiers.restricted_filter(session, collection, found.grant_ids)
            return FileView(row_filter) if visible else None
        return FileView(found.row_filter)

    return access_of


@dataclass
class IngestReport:
    added: list[dict[str, Any]]
    unchanged: list[str]
    quarantined: list[dict[str, Any]]
    snapshot_id: int | None


# collections ----------------------------------------------------------------------------------


def _collection(session: Session, name: TableName) -> FileCollection:
    found = session.scalar(
        select(FileCollection).where(
            FileCollection.namespace == name.namespace, FileCollection.name == name.name
        )
    )
    if found is None:
        raise NotFound(f"no file collection {name}")
    return found


def describe(collection: FileCollection) -> dict[str, Any]:
    """The collection as the front ends show it (``files.schemas.CollectionOut``)."""
    return CollectionOut.of(collection).model_dump()


def create_collection(
    session: Session,
    principal: Principal,
    settings: Settings,
    name: str,
    *,
    policy: str = "sdtm",
    description: str = "",
    subject_template: str = "{PatientID}",
    private_allow: list[str] | None = None,
    burned_in_reviewed: dict[str, str] | None = None,
    classification: str = "",
    tier: str = "standard",
) -> FileCollection:
    """Create ``NS.NAME`` and its (empty) index table; the policy must exist and name a
    pseudonymized subject column and a date shift (what files get from it). ``classification``
    states what the collection holds (documents need one); ``tier='restricted'`` (genomic
    data) serves its files only through grants a steward approved (``files.tiers``)."""
    require(principal, Permission.DATASETS_MANAGE)
    table = parse_table_name(name)
    if tier not in formats.TIERS:
        raise InvalidInput(f"tier must be one of {', '.join(formats.TIERS)}", field="tier")
    classification = tiers.check_classification(classification)
    if not TEMPLATE_RE.match(subject_template or ""):
        raise InvalidInput(
            f"subject_template {subject_template!r} may only use the fields "
            + ", ".join("{" + f + "}" for f in TEMPLATE_FIELDS)
        )
    allow = []
    for item in private_allow or []:
        tag, at, creator = item.strip().partition("@")
        allow.append(f"{tag.upper()}{at}{creator.strip()}")
        if not PRIVATE_RE.match(allow[-1]):
            raise InvalidInput(
                f"private_allow entry {item!r} must be 'gggg,XXee@CREATOR' (odd group, element in the "
                "creator's block), e.g. '0009,XX10@ACME 1.0'"
            )
    reviewed = {str(k).strip(): str(v).strip() for k, v in (burned_in_reviewed or {}).items()}
    if any(not v for v in reviewed.values()):
        raise InvalidInput("every burned_in_reviewed entry needs the decision's reason as its value")
    stored = _policy(session, policy)
    _subject_rules(stored)
    lake = open_lake(settings)
    existing = session.scalar(
        select(FileCollection.id).where(
            FileCollection.namespace == table.namespace, FileCollection.name == table.name
        )
    )
    if existing is not None:
        raise Conflict(f"file collection {table} already exists")
    if lake.exists(table):
        raise Conflict(f"{table} is already a table of the lake: choose another collection name")
    mapping = NameMapping.model_validate(
        [{"field-id": i + 1, "names": [f.name]} for i, f in enumerate(INDEX_SCHEMA)]
    )
    # the catalog first (its own connection: SQLite allows one writer), then our rows
    _release_writes(session)
    lake.create(table, pyarrow_to_schema(INDEX_SCHEMA, name_mapping=mapping))
    collection = FileCollection(
        namespace=table.namespace,
        name=table.name,
        owner=principal.name,
        description=description,
        policy_name=stored.name,
        subject_template=subject_template,
        private_allow=allow,
        burned_in_reviewed=reviewed,
        classification=classification,
        tier=tier,
        approved_grants={},
    )
    session.add(collection)
    # the index is a dataset like any table: the catalog describes it, erasure finds its subjects
    session.add(
        Dataset(
            namespace=table.namespace, name=table.name, title=f"{table.name} (file collection)",
            description=description, owner=principal.name, tags=["files", *_TAGS[tier]],
            sensitivity="restricted" if tier == tiers.RESTRICTED else "confidential",
            source="file collection", subject_column="subject", column_labels=INDEX_LABELS, source_bytes=0,
        )
    )  # fmt: skip
    study_key_for(settings, session, table.namespace)  # records the study's key generation
    session.flush()
    record(
        session,
        actor=principal,
        action="files.collection.create",
        target=f"files:{table}",
        details={"policy": stored.label, "tier": tier, "classification": classification},
    )
    return collection


def classify_collection(
    session: Session, principal: Principal, name: str, classification: str
) -> FileCollection:
    """A steward states what the collection holds (documents need it); audited."""
    require(principal, Permission.DATASETS_MANAGE)
    collection = _collection(session, parse_table_name(name))
    tiers.classify(session, principal, collection, classification)
    return collection


def approve_grant(
    session: Session, principal: Principal, name: str, grant_id: int, reason: str
) -> dict[str, Any]:
    """A steward approves one grant on a restricted collection for its tier; audited."""
    require(principal, Permission.GRANTS_MANAGE)
    return tiers.approve_grant(
        session, principal, _collection(session, parse_table_name(name)), grant_id, reason
    )


def list_collections(session: Session, principal: Principal, access_of: AccessOf) -> list[dict[str, Any]]:
    """The collections the caller may see: stewards all, others those they hold a grant on."""
    require(principal, Permission.CATALOG_READ)
    manager = principal.can(Permission.DATASETS_MANAGE)
    rows = session.scalars(select(FileCollection).order_by(FileCollection.namespace, FileCollection.name))
    return [describe(c) for c in rows if manager or access_of(c.namespace, c.name) is not None]


def get_collection(session: Session, principal: Principal, name: str, access_of: AccessOf) -> FileCollection:
    require(principal, Permission.CATALOG_READ)
    collection = _collection(session, parse_table_name(name))
    if (
        not principal.can(Permission.DATASETS_MANAGE)
        and access_of(collection.namespace, collection.name) is None
    ):
        raise NotFound(f"no file collection {name}")  # no grant: not even its existence
    return collection


# subjects -------------------------------------------------------------------------------------


def _policy(session: Session, name: str) -> Policy:
    """The stored policy, read (and a built-in stored on first use) in a transaction of its
    own: the caller's session must hold no write while the catalog commits (SQLite)."""
    _release_writes(session)
    with Session(session.get_bind()) as own:
        policy = load_policy(own, name)
        own.commit()
    return policy


def _release_writes(session: Session) -> None:
    """The catalog commits on a connection of its own and SQLite has one writer at a time:
    what the caller's transaction wrote so far (sign-in bookkeeping) is committed first."""
    if session.get_bind().dialect.name == "sqlite":
        session.commit()


def _subject_rules(policy: Policy) -> tuple[str, dict[str, Any], int, int]:
    column = policy.subject[0] if policy.subject else "USUBJID"
    rule = policy.rule_for(column)
    if rule is None or rule.action != "pseudonymize":
        raise InvalidInput(
            f"policy {policy.label} does not pseudonymize its subject column {column}: a file collection "
            "needs the subject's pseudonym and date shift from it"
        )
    shift = next((r for r in policy.rules if r.action == "date_shift"), None)
    if shift is None:
        raise InvalidInput(f"policy {policy.label} shifts no dates: a file collection needs its date shift")
    return column, rule.params, int(shift.params.get("min_days", 1)), int(shift.params.get("max_days", 365))


def subject_identity(policy: Policy, key: StudyKey, subject: str) -> dicom.Subject:
    """The pseudonym and date offset the study's tables give this subject (same functions)."""
    _, params, low, high = _subject_rules(policy)
    how = str(params.get("normalize", "upper"))
    value = normalize(pa.array([subject]), how)[0].as_py()
    token = tokens_for(key, [value], scope=str(params.get("scope", "")), length=int(params.get("length", 16)))
    offset = subject_offsets(key, pa.array([subject]), 1, low, high)[0].as_py()
    return dicom.Subject(str(params.get("prefix", "")) + token[0], int(offset))


def _study_digests(session: Session, namespace: str) -> set[str]:
    """The study's identifier dictionary (keyed digests of words seen in identifying columns)."""
    return set(
        session.scalars(select(IdentifierDigest.digest).where(IdentifierDigest.namespace == namespace))
    )


def _with_new_columns(iceberg: Any) -> Any:
    """Index tables created before a column of ``INDEX_SCHEMA`` existed get it (optional,
    NULL in older rows): schema evolution, no rewrite."""
    from pyiceberg.types import StringType

    missing = [f.name for f in INDEX_SCHEMA if f.name not in iceberg.schema().column_names]
    if not missing:
        return iceberg
    with iceberg.update_schema() as update:
        for column in missing:
            update.add_column(column, StringType(), doc=INDEX_LABELS[column])
    return iceberg


def _resolver(collection: FileCollection, policy: Policy, key: StudyKey) -> Callable[[Any], dicom.Subject]:
    def resolve(ds: Any) -> dicom.Subject:
        fields = {f: str(ds.get(f, "") or "").strip() for f in TEMPLATE_FIELDS}
        if not fields["PatientID"]:
            raise dicom.Rejected("PatientID is empty: the file cannot be linked to a subject of the study")
        used = re.findall(r"\{(\w+)\}", collection.subject_template)
        missing = [f for f in used if not fields.get(f)]
        if missing:
            raise dicom.Rejected(f"the subject template needs {', '.join(missing)}, which the file lacks")
        subject = re.sub(r"\{(\w+)\}", lambda m: fields[m.group(1)], collection.subject_template)
        return subject_identity(policy, key, subject)

    return resolve


# ingestion ------------------------------------------------------------------------------------


def _clean_path(path: str) -> str:
    text = path.replace("\\", "/").lstrip("/")  # no normalization: 'a/./b' is refused, not rewritten
    if not PATH_RE.match(text) or len(text) > 400:
        raise InvalidInput(
            f"file path {path!r} is not valid: use letters, digits, '.', '_', '-' and '/', each part "
            "starting with a letter, digit or '_' (at most 400 characters)"
        )
    return text


def objects_root(lake: Lake, name: TableName) -> str:
    """The collection's object directory (outside every table location)."""
    return f"{lake.settings.warehouse.rstrip('/')}/_files/{name.namespace}/{name.name}/objects"


def object_uri(lake: Lake, name: TableName, sha256: str) -> str:
    return f"{objects_root(lake, name)}/{sha256[:2]}/{sha256}"


def derived_root(lake: Lake, name: TableName) -> str:
    """What is derived from objects (attribute actions, thumbnails), named by the object's SHA-256."""
    return f"{lake.settings.warehouse.rstrip('/')}/_files/{name.namespace}/{name.name}/derived"


def derived_uri(lake: Lake, name: TableName, sha256: str, kind: str) -> str:
    return f"{derived_root(lake, name)}/{sha256[:2]}/{sha256}.{kind}"


Loader = Callable[[], bytes | Path]
SPOOL_MEMBER_BYTES = 64 << 20  # archive members above this are extracted to disk, not memory


SPOOL_MAX_AGE_SECONDS = 6 * 3600


def spool_dir(settings: Settings) -> Path:
    """Where uploads and de-identified files wait on disk (never in memory) before storage.

    A spool file holds a raw upload for the length of one request (owner-only directory) and
    is deleted when the request ends; any a crash left behind is deleted here, by the next
    upload, once older than ``SPOOL_MAX_AGE_SECONDS`` (no upload runs that long)."""
    directory = settings.home / "tmp" / "files"
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    stale = datetime.now(UTC).timestamp() - SPOOL_MAX_AGE_SECONDS
    for leftover in directory.iterdir():
        with contextlib.suppress(OSError):
            if leftover.stat().st_mtime < stale:
                leftover.unlink()
    return directory


def _extract(archive: zipfile.ZipFile, info: zipfile.ZipInfo, spool: Path) -> Path:
    handle, name = tempfile.mkstemp(prefix="member-", dir=spool)
    with archive.open(info) as member, os.fdopen(handle, "wb") as out:
        shutil.copyfileobj(member, out, 8 << 20)
    return Path(name)


def _members(
    filename: str, source: bytes | Path, archives: list[zipfile.ZipFile], spool: Path | None = None
) -> list[tuple[str, int, Loader]]:
    """A zip of a series fans out into its files (directories and macOS metadata skipped);
    each file or member is read only when its turn comes, so one is in memory at a time, and
    a file given on disk (or a large member, extracted to ``spool``) is never read whole."""
    handle = source if isinstance(source, Path) else io.BytesIO(source)
    if not zipfile.is_zipfile(handle):
        if isinstance(source, Path):
            return [(filename, source.stat().st_size, lambda: source)]
        return [(filename, len(source), lambda: source)]
    archive = zipfile.ZipFile(source if isinstance(source, Path) else io.BytesIO(source))
    archives.append(archive)
    infos = [
        i
        for i in archive.infolist()
        if not i.is_dir()
        and not i.filename.startswith("__MACOSX/")
        and not i.filename.rsplit("/", 1)[-1].startswith(".")  # .DS_Store and friends
    ]
    if len(infos) > MAX_ARCHIVE_MEMBERS:
        raise TooLarge(f"{filename}: more than {MAX_ARCHIVE_MEMBERS} files in one archive")

    # zipfile stops at the declared size, so a member cannot inflate past it
    def loader(info: zipfile.ZipInfo) -> Loader:
        if spool is not None and info.file_size > SPOOL_MEMBER_BYTES:
            return lambda: _extract(archive, info, spool)
        return lambda: archive.read(info)

    return [(i.filename, i.file_size, loader(i)) for i in infos]


def _digest(data: bytes | Path) -> tuple[str, int]:
    """SHA-256 and size of bytes or a file (read in chunks)."""
    if not isinstance(data, Path):
        return hashlib.sha256(data).hexdigest(), len(data)
    digest = hashlib.sha256()
    with data.open("rb") as handle:
        while chunk := handle.read(8 << 20):
            digest.update(chunk)
    return digest.hexdigest(), data.stat().st_size


def _seal(settings: Settings, collection: FileCollection, data: bytes | Path) -> Path:
    """A rejected file's raw bytes, sealed at rest at once (the ingestion quarantine's format)."""
    directory = settings.home / "files" / "quarantine" / str(collection.id)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    if isinstance(data, Path):
        with data.open("rb") as handle:
            return seal(settings, handle, directory / f"{uuid.uuid4().hex}.dlq")
    return seal(settings, io.BytesIO(data), directory / f"{uuid.uuid4().hex}.dlq")


def _quarantine(
    session: Session, principal: Principal, collection: FileCollection,
    path: str, size: int, sealed: Path | None, reason: str,
) -> dict[str, Any]:  # fmt: skip
    row = QuarantinedFile(
        collection_id=collection.id,
        path=path,
        reason=reason,
        size=size,
        sealed_path=str(sealed) if sealed else None,
        created_by=principal.name,
    )
    session.add(row)
    session.flush()
    record(
        session,
        actor=principal,
        action="files.quarantine",
        target=f"files:{collection.full_name}/{path}",
        outcome="failure",
        details={"reason": reason, "size": size},
    )
    return {"id": row.id, "path": path, "reason": reason}


def ingest_files(
    session: Session,
    principal: Principal,
    settings: Settings,
    name: str,
    uploads: list[tuple[str, bytes | Path]],
) -> IngestReport:
    """De-identify, store and index each file (zips fan out); a file that fails is quarantined
    with its reason, the others are committed as ONE snapshot of the index table. ``uploads``
    are (path in the collection, bytes or a local file)."""
    require(principal, Permission.INGEST_RUN)
    table = parse_table_name(name)
    collection = _collection(session, table)
    policy = _policy(session, collection.policy_name)
    key = study_key_for(settings, session, table.namespace, record=False)  # recorded at creation
    options = dicom.DeidOptions(
        resolve_subject=_resolver(collection, policy, key),
        uid_secret=key.secret,
        private_allow=frozenset(collection.private_allow or []),
        burned_in_reviewed=dict(collection.burned_in_reviewed or {}),
    )
    context = formats.Context(
        resolve_subject=options.resolve_subject, uid_secret=key.secret, dicom_options=options,
        tier=collection.tier or "standard", classification=collection.classification or "",
        words=StudyWords(key.secret, frozenset(_study_digests(session, table.namespace))),
    )  # fmt: skip
    lake = open_lake(settings)
    current = _current_rows(lake, table)
    latest = {r["path"]: r for r in current}
    rows: list[dict[str, Any]] = []
    report = IngestReport([], [], [], None)
    now = datetime.now(UTC)
    # every path checked before anything is written: a bad name refuses the whole upload
    archives: list[zipfile.ZipFile] = []
    spool = spool_dir(settings)
    limit = settings.files.max_file_bytes
    members = [
        (_clean_path(path), size, load)
        for filename, data in uploads
        for path, size, load in _members(filename, data, archives, spool)
    ]
    duplicates = sorted(p for p, n in Counter(p for p, _, _ in members).items() if n > 1)
    if duplicates:
        raise InvalidInput(f"the upload names {duplicates[0]} more than once")
    given = {data for _, data in uploads if isinstance(data, Path)}  # the caller's files: kept
    rejected: list[tuple[str, int, Path | None, str]] = []  # sealed at once, recorded after the commit
    for path, size, load in members:
        if size > limit:
            rejected.append((path, size, None, f"file larger than {limit:,} bytes (files.max_file_bytes)"))
            continue
        try:
            data = load()
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
            rejected.append((path, size, None, f"cannot be read from its archive ({type(exc).__name__})"))
            continue
        try:
            result = formats.deidentify(path, data, context, spool)
        except dicom.Rejected as exc:
            rejected.append((path, _digest(data)[1], _seal(settings, collection, data), exc.reason))
            continue
        finally:
            if isinstance(data, Path) and data not in given:
                data.unlink(missing_ok=True)
            del data
        try:
            digest, stored_size = _digest(result.data)
            if (previous := latest.get(path)) is None or previous["sha256"] != digest:
                objects.store(lake.storage, object_uri(lake, table, digest), result.data)
                if getattr(result, "attributes", None):  # what the profile did, attribute by attribute
                    done = json.dumps(result.attributes, separators=(",", ":")).encode()
                    objects.store(lake.storage, derived_uri(lake, table, digest, "actions.json"), done)
        finally:
            if isinstance(result.data, Path):
                result.data.unlink(missing_ok=True)
        previous = latest.get(path)
        if previous is not None and previous["sha256"] == digest:
            report.unchanged.append(path)
            continue
        row = {
            "path": path,
            "version": (previous["version"] + 1) if previous else 1,
            "media_type": result.media_type,
            "size": stored_size,
            "sha256": digest,
            "subject": result.subject,
            "study": table.namespace,
            **result.metadata,
            "profile": result.profile,
            "ingested_at": now,
            "tier": collection.tier or "standard",
            "details": json.dumps(result.details, sort_keys=True, default=str) if result.details else None,
        }
        latest[path] = row
        rows.append(row)
        report.added.append(
            {
                "path": path, "version": row["version"], "sha256": digest, "media_type": result.media_type,
                "actions": dict(result.actions),
            }
        )  # fmt: skip
    if rows:
        _release_writes(session)
        report.snapshot_id = _commit_rows(lake, table, rows, report, policy.risk_threshold)
    # our rows after the catalog's commit (SQLite: one writer at a time)
    for path, size, sealed, reason in rejected:
        report.quarantined.append(_quarantine(session, principal, collection, path, size, sealed, reason))
    for archive in archives:
        archive.close()
    record(
        session,
        actor=principal,
        action="files.ingest",
        target=f"files:{table}",
        details={
            "added": len(report.added),
            "unchanged": len(report.unchanged),
            "quarantined": len(report.quarantined),
            "snapshot_id": report.snapshot_id,
        },
    )
    return report


def _commit_rows(
    lake: Lake, table: TableName, rows: list[dict[str, Any]], report: IngestReport, threshold: float
) -> int | None:
    """Commit the new index rows under the table's exclusive lease: versions are assigned
    from the index as it is at commit time, so two uploads of one path at once give versions
    n+1 and n+2 (never two n+1), and a file equal to the newest version is not added twice.
    The snapshot records the index's re-identification risk like an ingested table's."""
    settings = lake.settings.lake
    with locks.lease(
        lake.catalog.engine, f"table:{table}", locks.EXCLUSIVE,
        holder=locks.holder_name(f"files:{table}"), ttl=max(settings.lock_timeout_seconds, 60),
        timeout=settings.lock_timeout_seconds,
    ):  # fmt: skip
        iceberg = _with_new_columns(lake.load(table))  # before reading: the rows get its columns
        stored = _index(lake, table)
        latest = {r["path"]: r for r in _current_rows(lake, table, stored)}
        fresh = []
        for row in rows:  # in upload order: one path appears once per upload
            previous = latest.get(row["path"])
            if previous is not None and previous["sha256"] == row["sha256"]:
                report.unchanged.append(row["path"])
                report.added = [a for a in report.added if a["path"] != row["path"]]
                continue
            row["version"] = (previous["version"] + 1) if previous else 1
            fresh.append(row)
        for added_entry in report.added:
            added_entry["version"] = next(r["version"] for r in fresh if r["path"] == added_entry["path"])
        if not fresh:
            return None
        schema = file_schema(iceberg)
        new_rows = pa.Table.from_pylist(fresh, schema=schema)
        writer = FileWriter(lake, iceberg, f"files-{uuid.uuid4().hex[:12]}", schema, 64 << 20)
        try:
            writer.write(pa.RecordBatch.from_pylist(fresh, schema=schema))
            added = writer.close()
        except BaseException:
            writer.abort()
            raise
        needed = new_rows.select(["subject", *index_risk.quasi_identifiers(new_rows.column_names)])
        every = pa.concat_tables([stored.select(needed.column_names).cast(needed.schema), needed])
        risk = index_risk.risk_properties(every, threshold)
        result = commit_files(
            lake, table, add=added, exclusive_held=True,
            properties={"mode": "append", "files": len(fresh), **risk},
        )  # fmt: skip
        return result.snapshot_id


# reading --------------------------------------------------------------------------------------


def _current_rows(lake: Lake, table: TableName, data: pa.Table | None = None) -> list[dict[str, Any]]:
    """The newest version of each path (of ``data``, read from the table when not given)."""
    data = _index(lake, table) if data is None else data
    if data.num_rows == 0:
        return []
    rows = data.sort_by([("path", "ascending"), ("version", "descending")]).to_pylist()
    seen: set[str] = set()
    out = []
    for row in rows:
        if row["path"] not in seen:
            seen.add(row["path"])
            out.append(row)
    return out


def _index(lake: Lake, table: TableName) -> pa.Table:
    plan = plan_table(lake, str(table))
    if not plan.files:
        return plan.schema.empty_table()
    return pads.dataset(
        [f.path for f in plan.files], format="parquet", filesystem=lake.storage.fs, schema=plan.schema
    ).to_table()


def _visible(rows: pa.Table, row_filter: str | None) -> pa.Table:
    """Rows the grant's filter passes, with SQL semantics (NULL is not visible)."""
    if row_filter is None or rows.num_rows == 0:
        return rows
    con = duckdb.connect(config={"enable_external_access": False, "autoload_known_extensions": False})
    try:
        con.register("index_rows", rows)
        sql = f"SELECT * FROM index_rows WHERE COALESCE(({row_filter}), FALSE)"  # noqa: S608
        return con.sql(sql).to_arrow_table()
    finally:
        con.close()


def _view(
    session: Session, principal: Principal, name: str, access_of: AccessOf
) -> tuple[TableName, FileView]:
    """The caller's view of a collection. Without a grant the answer is the one a missing
    collection gets (as for tables): nobody learns what exists without being granted it."""
    require(principal, Permission.QUERY_RUN)
    table = parse_table_name(name)
    exists = session.scalar(
        select(FileCollection.id).where(
            FileCollection.namespace == table.namespace, FileCollection.name == table.name
        )
    )
    view = access_of(table.namespace, table.name) if exists is not None else None
    if view is None:
        raise NotFound(f"file collection {table} does not exist or you have no grant on it")
    return table, view


def list_files(
    session: Session, principal: Principal, settings: Settings, name: str, access_of: AccessOf
) -> list[dict[str, Any]]:
    """The newest version of each file the caller's grant shows, with its metadata."""
    table, view = _view(session, principal, name, access_of)
    lake = open_lake(settings)
    current = _current_rows(lake, table)
    if not current:
        return []
    shown = _visible(pa.Table.from_pylist(current, schema=INDEX_SCHEMA), view.row_filter)
    return [_public(r) for r in shown.to_pylist()]


def _public(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    if out.get("acquisition_date") is not None:
        out["acquisition_date"] = out["acquisition_date"].isoformat()
    if out.get("ingested_at") is not None:
        out["ingested_at"] = out["ingested_at"].isoformat()
    return out


def read_file(
    session: Session,
    principal: Principal,
    settings: Settings,
    name: str,
    path: str,
    access_of: AccessOf,
    version: int | None = None,
    via: str = "download",
) -> tuple[dict[str, Any], Iterator[bytes]]:
    """A file's metadata and de-identified bytes (in chunks: a file of any size is streamed,
    never held whole), if the caller's grant shows its index row; audited and metered with the
    bytes served (the caller traces them in lineage). The object must be present with its
    indexed size before anything is sent; its SHA-256 is checked as it is read and an altered
    object ends the stream before its last chunk (``objects.verified_chunks``)."""
    table, view = _view(session, principal, name, access_of)
    clean = _clean_path(path)
    lake = open_lake(settings)
    rows = _index(lake, table)
    rows = rows.filter(pc.equal(rows["path"], clean))
    if version is not None:
        rows = rows.filter(pc.equal(rows["version"], version))
    rows = _visible(rows, view.row_filter)
    if rows.num_rows == 0:
        raise NotFound(f"no file {clean} in {table}" + (f" at version {version}" if version else ""))
    row = max(rows.to_pylist(), key=lambda r: r["version"])
    uri = object_uri(lake, table, row["sha256"])
    if not objects.exists(lake.storage, uri, row["size"]):
        raise Conflict(f"{table}/{clean}: the stored object is missing or altered")
    record(
        session,
        actor=principal,
        action="files.read",
        target=f"files:{table}/{clean}",
        details={"version": row["version"], "bytes": row["size"], "sha256": row["sha256"]},
    )
    metering.meter(session, principal, str(table), clean, size=row["size"], via=via)
    return _public(row), _checked(
        objects.verified_chunks(lake.storage, uri, row["sha256"]), f"{table}/{clean}"
    )


def _checked(chunks: Iterator[bytes], label: str) -> Iterator[bytes]:
    """The chunks, with an altered object logged (by path, never content) and reported as a
    conflict."""
    try:
        yield from chunks
    except objects.AlteredObject:
        log.error("%s: stored bytes do not match their SHA-256; stream ended", label)
        raise Conflict(f"{label}: stored bytes do not match their SHA-256 (the object was altered)") from None


def quarantined(session: Session, principal: Principal, name: str) -> list[dict[str, Any]]:
    require(principal, Permission.INGEST_RUN)
    collection = _collection(session, parse_table_name(name))
    return [
        {
            "id": q.id,
            "path": q.path,
            "reason": q.reason,
            "size": q.size,
            "created_at": q.created_at.isoformat(),
        }
        for q in session.scalars(
            select(QuarantinedFile)
            .where(QuarantinedFile.collection_id == collection.id)
            .order_by(QuarantinedFile.id)
        )
    ]


def sealed_paths(session: Session, name: str) -> list[Path]:
    collection = _collection(session, parse_table_name(name))
    return [
        Path(q.sealed_path)
        for q in session.scalars(
            select(QuarantinedFile).where(QuarantinedFile.collection_id == collection.id)
        )
        if q.sealed_path
    ]


# DICOMweb (QIDO-RS search, WADO-RS retrieve) over the index ------------------------------------


def dicom_instances(
    session: Session,
    principal: Principal,
    settings: Settings,
    name: str,
    access_of: AccessOf,
    *,
    study: str | None = None,
    series: str | None = None,
    sop: str | None = None,
) -> list[dict[str, Any]]:
    """The newest version of each DICOM file the caller's grant shows, narrowed to a study,
    series or instance (remapped UIDs: the only ones the lake knows)."""
    table, view = _view(session, principal, name, access_of)
    lake = open_lake(settings)
    current = [r for r in _current_rows(lake, table) if r["media_type"] == dicom.MEDIA_TYPE]
    for key, wanted in (
        ("study_instance_uid", study),
        ("series_instance_uid", series),
        ("sop_instance_uid", sop),
    ):
        if wanted is not None:
            current = [r for r in current if r[key] == wanted]
    if not current:
        return []
    return _visible(pa.Table.from_pylist(current, schema=INDEX_SCHEMA), view.row_filter).to_pylist()


def read_instances(
    session: Session,
    principal: Principal,
    settings: Settings,
    name: str,
    rows: list[dict[str, Any]],
    what: str = "instances",
) -> tuple[int, Iterator[bytes]]:
    """The bytes of rows ``dicom_instances`` returned, one file at a time (a series of any size
    is streamed, never held whole); one audit event and one metering record for the whole
    retrieval, written first, with the bytes to serve. Each object must be present with its
    indexed size before anything is sent; its SHA-256 is checked as it is read, and a file
    that does not match ends the stream (the multipart body is then left without its closing
    boundary, which clients report as an error) rather than serving altered bytes."""
    require(principal, Permission.QUERY_RUN)
    table = parse_table_name(name)
    lake = open_lake(settings)
    for row in rows:
        if not objects.exists(lake.storage, object_uri(lake, table, row["sha256"]), row["size"]):
            raise Conflict(f"{table}/{row['path']}: the stored object is missing or altered")
    total = sum(int(row["size"]) for row in rows)
    record(
        session,
        actor=principal,
        action="files.read",
        target=f"files:{table}",
        details={"files": len(rows), "bytes": total, "via": "dicomweb"},
    )
    metering.meter(
        session, principal, str(table), f"dicomweb/{what}", size=total, via="dicomweb", files=len(rows)
    )

    def files() -> Iterator[bytes]:
        for row in rows:
            data = lake.storage.read_bytes(object_uri(lake, table, row["sha256"]))
            if hashlib.sha256(data).hexdigest() != row["sha256"]:
                log.error("%s/%s: stored bytes do not match their SHA-256; stream ended", table, row["path"])
                raise Conflict(f"{table}/{row['path']}: stored bytes do not match their SHA-256")
            yield data

    return total, files()
