"""The catalog: datasets with schema, labels, sizes, snapshot history and column profile."""

from __future__ import annotations

from fastapi import APIRouter, Query

from datalibrary.access import service as access
from datalibrary.api.fields import Namespace
from datalibrary.auth.permissions import Permission
from datalibrary.http.deps import CurrentPrincipal, DbSession, Requires, SettingsDep
from datalibrary.lake import datasets
from datalibrary.lake.catalog import open_lake
from datalibrary.lake.schemas import DatasetDetail, DatasetSummary, DatasetUpdate

router = APIRouter(prefix="/datasets", tags=["catalog"])


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
