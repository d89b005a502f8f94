"""The catalog: datasets with schema, labels, sizes, snapshot history and column profile."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from datalibrary.access import service as access
from datalibrary.api.fields import Namespace
from datalibrary.auth.permissions import Permission
from datalibrary.http.deps import CurrentPrincipal, DbSession, Requires, SettingsDep
from datalibrary.lake import datasets
from datalibrary.lake.catalog import open_lake

router = APIRouter(prefix="/datasets", tags=["catalog"])


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


@router.get("", summary="List datasets", dependencies=[Requires(Permission.CATALOG_READ)])
def list_datasets(
    principal: CurrentPrincipal,
    session: DbSession,
    settings: SettingsDep,
    q: str | None = Query(None, max_length=200, description="Text in name, title, description or tags."),
    tag: str | None = Query(None, max_length=40),
) -> list[DatasetSummary]:
    visible = access.catalog_visibility(session, principal)
    rows = datasets.list_datasets(session, principal, open_lake(settings), search=q, tag=tag, visible=visible)
    return [DatasetSummary.model_validate(row) for row in rows]


@router.get(
    "/{namespace}/{table}",
    summary="A dataset with schema, history and profile",
    dependencies=[Requires(Permission.CATALOG_READ)],
)
def show_dataset(
    namespace: Namespace,
    table: Namespace,
    principal: CurrentPrincipal,
    session: DbSession,
    settings: SettingsDep,
    profile: bool = True,
) -> DatasetDetail:
    data = datasets.show_dataset(
        session,
        principal,
        open_lake(settings),
        f"{namespace}.{table}",
        profile=profile,
        visible=access.catalog_visibility(session, principal),
    )
    return DatasetDetail.model_validate(data)


@router.patch(
    "/{namespace}/{table}",
    summary="Edit a dataset's catalog metadata",
    dependencies=[Requires(Permission.DATASETS_MANAGE)],
)
def update_dataset(
    namespace: Namespace,
    table: Namespace,
    body: DatasetUpdate,
    principal: CurrentPrincipal,
    session: DbSession,
    settings: SettingsDep,
) -> DatasetDetail:
    changes = body.model_dump(exclude_unset=True)
    data = datasets.update_dataset(session, principal, open_lake(settings), f"{namespace}.{table}", changes)
    return DatasetDetail.model_validate(data)
