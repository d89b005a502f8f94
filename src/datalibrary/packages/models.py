"""The mirror's policy: its mode and the allow/deny rules (names with optional version ranges)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from datalibrary.db.base import Base, UTCDateTime, utcnow


class PackagePolicy(Base):
    """One row: ``open`` (everything not denied) or ``allowlist`` (only what is allowed)."""

    __tablename__ = "package_policy"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mode: Mapped[str] = mapped_column(String(16), default="open")
    updated_by: Mapped[str] = mapped_column(String(64), default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PackageRule(Base):
    """An allow or deny rule for the Python packages (pip, uv) or the R packages
    (``install.packages()``) of that name."""

    __tablename__ = "package_rules"
    __table_args__ = (
        UniqueConstraint("ecosystem", "kind", "name", name="uq_package_rules_ecosystem_kind_name"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ecosystem: Mapped[str] = mapped_column(String(8), default="python", server_default="python")  # | r
    kind: Mapped[str] = mapped_column(String(8))  # allow | deny
    name: Mapped[str] = mapped_column(String(200), index=True)  # PEP 503-normalized; R: lower case
    specifier: Mapped[str] = mapped_column(String(200), default="")  # "" = every version
    note: Mapped[str] = mapped_column(String(500), default="")
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
