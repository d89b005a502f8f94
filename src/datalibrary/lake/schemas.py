"""What the front ends show of the catalog's datasets: one shape for the API, the CLI's
``--json`` and pages (``lake.datasets`` builds the dicts these validate)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class PolicyRef(BaseModel):
    name: str | None
    version: str | None
    sha256: str | None


class DatasetSummary(BaseModel):
    name: str
    namespace: str
    table: str
    title: str
    description: str
    owner: str
    tags: list[str]
    sensitivity: str
    source: str
    subject_column: str | None
    policy: PolicyRef | None
    row_count: int
    data_files: int
    size_bytes: int
    source_bytes: int
    compression_ratio: float | None = Field(description="Source bytes / stored bytes (below 1: larger)")
    compression: str | None = Field(None, description="The ratio in words, in the right direction")
    snapshot_id: int | None
    updated_at: datetime | None


class ColumnOut(BaseModel):
    name: str
    type: str
    label: str
    required: bool
    policy_action: str | None = None  # what the policy did: kept, pseudonymized, shifted, ...


class RiskOut(BaseModel):
    """Re-identification risk (prosecutor model) on the policy's quasi-identifiers."""

    quasi_identifiers: list[str]
    records: int
    classes: int
    k: int
    max_risk: float
    average_risk: float
    threshold: float
    share_above_threshold: float = Field(description="Share of records in classes under min_class_size")
    min_class_size: int | None = Field(None, description="Smallest class within the threshold (0.09: 12)")
    records_at_risk: int | None = None


class SnapshotOut(BaseModel):
    snapshot_id: int
    parent_id: int | None
    committed_at: datetime
    operation: str | None
    mode: str | None
    actor: str | None
    job_id: str | None
    source_file: str | None
    source_sha256: str | None
    policy: str | None
    policy_version: str | None
    policy_sha256: str | None
    study_key_id: str | None = None
    tier: str | None = None
    risk: RiskOut | None = None
    added_rows: int
    total_rows: int


class ProfileOut(BaseModel):
    name: str
    null_share: float | None
    distinct: int | None
    distinct_exact: bool | None = Field(None, description="False: a HyperLogLog estimate (large tables)")
    min: str | None
    max: str | None


class DatasetDetail(DatasetSummary):
    columns: list[ColumnOut]
    dropped_columns: list[str] = Field(default_factory=list, description="Source columns the policy dropped.")
    snapshots: list[SnapshotOut]
    profile: list[ProfileOut] | None
    risk: RiskOut | None = Field(None, description="Risk report of the current snapshot's ingested file.")
    jobs: list[dict[str, Any]] = Field(description="Recent ingestion jobs (for callers who may ingest).")


class DatasetUpdate(BaseModel):
    title: str | None = Field(None, max_length=200)
    description: str | None = Field(None, max_length=10_000)
    owner: str | None = Field(None, max_length=64)
    tags: list[str] | None = None
    sensitivity: str | None = None
    source: str | None = Field(None, max_length=200)
    subject_column: str | None = None
    column_labels: dict[str, str] | None = None
