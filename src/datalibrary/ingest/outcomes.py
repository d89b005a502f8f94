"""How a run of an ingestion job ends, as types: each step of the pipeline returns (or the
guard around it maps an error to) one of these, and ``JobRun`` matches on the type to write
the job's final state. Types rather than strings, so a new outcome is a new class that the
type checker follows, not a prefix that some caller forgets to ``split``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from datalibrary.ingest.models import IngestJob
    from datalibrary.privacy.policy import PolicyStep


@dataclass(frozen=True)
class Succeeded:
    """The file's rows are in the table: committed by this run, or by an earlier run of the
    same job that was killed before it could say so (``resumed``)."""

    state: ClassVar[str] = "succeeded"
    snapshot_id: int | None
    rows: int | None = None
    labels: dict[str, str] = field(default_factory=dict)
    bytes_written: int | None = None
    resumed: bool = False
    # a fresh commit: its identifiers may re-scrub the namespace's earlier tables afterwards
    rescrub: PolicyStep | None = None


@dataclass(frozen=True)
class Duplicate:
    """The table already holds a file with the same bytes (since its last overwrite)."""

    state: ClassVar[str] = "duplicate"
    snapshot_id: int | None


@dataclass(frozen=True)
class FannedOut:
    """An archive or a FHIR file became one child job per member (or resource type)."""

    state: ClassVar[str] = "succeeded"
    children: list[IngestJob]
    kind: str


@dataclass(frozen=True)
class Quarantined:
    """Bad input (or a cancelled run): the raw file moves to quarantine with this reason."""

    reason: dict[str, Any]
    state: str = "quarantined"  # or "cancelled"


@dataclass(frozen=True)
class Failed:
    """A fault of the platform, not of the file: the raw file stays for a retry."""

    state: ClassVar[str] = "failed"
    reason: dict[str, Any] | None


Outcome = Succeeded | Duplicate | FannedOut | Quarantined | Failed
PriorCommit = Succeeded | Duplicate
