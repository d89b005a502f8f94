"""Stored policies: every version kept, identified by name, version and SHA-256."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from datalibrary.db.base import Base, UTCDateTime, utcnow


class StoredPolicy(Base):
    __tablename__ = "privacy_policies"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_privacy_policies_name_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), index=True)
    version: Mapped[str] = mapped_column(String(32))
    sha256: Mapped[str] = mapped_column(String(64))
    document: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class StudyKeyRecord(Base):
    """The current key generation of a study; the key itself is derived, never stored."""

    __tablename__ = "privacy_study_keys"
    __table_args__ = (UniqueConstraint("namespace", "generation", name="uq_privacy_study_keys_ns_gen"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    namespace: Mapped[str] = mapped_column(String(200), index=True)
    generation: Mapped[int] = mapped_column(Integer)
    key_id: Mapped[str] = mapped_column(String(32))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Surrogate(Base):
    """Crosswalk of the ``surrogate`` action: a random token per value, in the database only.

    The value is kept encrypted (AES-GCM under a key derived from the master key) and found
    by its keyed digest, so the table never holds an identifier in clear."""

    __tablename__ = "privacy_surrogates"
    __table_args__ = (
        UniqueConstraint("namespace", "scope", "digest", name="uq_privacy_surrogates_digest"),
        UniqueConstraint("namespace", "scope", "token", name="uq_privacy_surrogates_token"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    namespace: Mapped[str] = mapped_column(String(200))
    scope: Mapped[str] = mapped_column(String(100))
    digest: Mapped[str] = mapped_column(String(64))
    token: Mapped[str] = mapped_column(String(64))
    sealed: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RiskOverride(Base):
    """A steward's audited decision to store a ``shared`` table above the risk threshold."""

    __tablename__ = "privacy_risk_overrides"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    namespace: Mapped[str] = mapped_column(String(200))
    table_name: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    granted_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class IdentifierDigest(Base):
    """One word or value seen in an identifying column of a study, as a keyed digest.

    The study-wide identifier dictionary: free text of every table of the namespace is
    scrubbed of these words, whatever the order in which the tables were delivered. Only the
    HMAC (study key) is stored, so the dictionary itself names no one."""

    __tablename__ = "privacy_identifier_digests"
    __table_args__ = (UniqueConstraint("namespace", "digest", name="uq_privacy_identifier_digests"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    namespace: Mapped[str] = mapped_column(String(200), index=True)
    digest: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
