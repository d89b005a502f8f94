"""A file collection's settings and its quarantine (the files themselves live in the warehouse,
their index in an Iceberg table of the same name)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from datalibrary.db.base import Base, UTCDateTime, utcnow


class FileCollection(Base):
    """``NAMESPACE.NAME``: files of one study, de-identified on the way in.

    ``policy_name`` names the study's tabular policy: its subject column, subject pseudonym
    and date-shift rules are the ones a file's patient and dates get, so an image's
    StudyDate moves with the subject's SDTM dates."""

    __tablename__ = "files_collections"
    __table_args__ = (UniqueConstraint("namespace", "name", name="uq_files_collections_namespace_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    namespace: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(64))
    owner: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    policy_name: Mapped[str] = mapped_column(String(100))
    # how a file's PatientID becomes the study's subject id, e.g. "CDISCPILOT01-{PatientID}"
    subject_template: Mapped[str] = mapped_column(String(200), default="{PatientID}")
    # private tags kept ("gggg,eeee" with the creator: "gggg,xxee@CREATOR"); everything else removed
    private_allow: Mapped[list[str]] = mapped_column(JSON, default=list)
    # explicit decisions on modalities / SOP classes known to carry burned-in text:
    # {"US": "reviewed: scanner writes no text in pixels"}; without one such files are quarantined
    burned_in_reviewed: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # what a steward stated the collection holds ("protocol documents, no patient data");
    # documents (PDF, text) are quarantined while it is empty (files.documents)
    classification: Mapped[str] = mapped_column(Text, default="")
    # "standard" | "restricted" (genomic data): a restricted collection's files are served only
    # through grants a steward approved for the tier: {grant id: {by, reason, at}} (files.tiers)
    tier: Mapped[str] = mapped_column(String(16), default="standard")
    approved_grants: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def full_name(self) -> str:
        return f"{self.namespace}.{self.name}"


class QuarantinedFile(Base):
    """A file kept out of the lake, with the reason; its raw bytes are sealed at rest."""

    __tablename__ = "files_quarantine"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection_id: Mapped[int] = mapped_column(Integer, index=True)
    path: Mapped[str] = mapped_column(String(500))
    reason: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(Integer, default=0)
    sealed_path: Mapped[str | None] = mapped_column(String(1000))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class FileRead(Base):
    """Bytes of de-identified files served to one user (download, SDK, DICOMweb, thumbnail):
    the metering record costs price like query bytes. Paths only, never a subject."""

    __tablename__ = "files_reads"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user: Mapped[str] = mapped_column(String(64), index=True)
    project: Mapped[str | None] = mapped_column(String(64), index=True)
    collection: Mapped[str] = mapped_column(String(130))
    path: Mapped[str] = mapped_column(String(500))  # one file, or "dicomweb/series <uid>"
    files: Mapped[int] = mapped_column(Integer, default=1)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    via: Mapped[str] = mapped_column(String(32))  # download | dicomweb | thumbnail | cli
    read_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
