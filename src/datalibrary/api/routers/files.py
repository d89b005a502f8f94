"""File collections: create, upload DICOM files (or a zip of a series), list, download."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from datalibrary.access import service as access
from datalibrary.api.deps import CurrentPrincipal, DbSession, Requires, SettingsDep
from datalibrary.api.fields import PolicyName, TableRef
from datalibrary.auth.permissions import Permission, Principal
from datalibrary.errors import TooLarge
from datalibrary.files import service
from datalibrary.lake.catalog import open_lake, parse_table_name
from datalibrary.lineage import events as lineage

router = APIRouter(tags=["files"])
MAX_UPLOAD_BYTES = 2 << 30


class CollectionIn(BaseModel):
    name: TableRef = Field(description="NAMESPACE.COLLECTION (the namespace is the study)")
    policy: PolicyName = Field(
        "sdtm", description="The study's tabular policy: subject pseudonym and date shift"
    )
    description: str = Field("", max_length=4000)
    subject_template: str = Field(
        "{PatientID}", max_length=200, description="How a file's PatientID becomes the study's subject id"
    )
    private_allow: list[str] = Field(
        default_factory=list, description="Private tags kept: 'gggg,XXee@CREATOR'", max_length=200
    )
    burned_in_reviewed: dict[str, str] = Field(
        default_factory=dict,
        description="Modality or SOP class UID -> the reason its files carry no burned-in text",
    )


def _access_of(session: Session, principal: Principal) -> service.AccessOf:
    def access_of(namespace: str, table: str) -> service.FileView | None:
        if not principal.can(Permission.QUERY_RUN):
            return None
        found = access.effective_access(session, principal, namespace, table)
        return None if found is None else service.FileView(found.row_filter)

    return access_of


@router.post(
    "/collections",
    status_code=201,
    summary="Create a file collection",
    dependencies=[Requires(Permission.DATASETS_MANAGE)],
)
def create_collection(
    body: CollectionIn, principal: CurrentPrincipal, session: DbSession, settings: SettingsDep
) -> dict[str, Any]:
    collection = service.create_collection(
        session,
        principal,
        settings,
        body.name,
        policy=body.policy,
        description=body.description,
        subject_template=body.subject_template,
        private_allow=body.private_allow,
        burned_in_reviewed=body.burned_in_reviewed,
    )
    return service.describe(collection)


@router.get(
    "/collections", summary="File collections you may see", dependencies=[Requires(Permission.CATALOG_READ)]
)
def list_collections(principal: CurrentPrincipal, session: DbSession) -> list[dict[str, Any]]:
    return service.list_collections(session, principal, _access_of(session, principal))


@router.post(
    "/collections/{name}/files",
    summary="Upload a DICOM file or a zip of a series (raw body): de-identified, stored, indexed",
    dependencies=[Requires(Permission.INGEST_RUN)],
)
async def upload(
    name: TableRef,
    request: Request,
    principal: CurrentPrincipal,
    session: DbSession,
    settings: SettingsDep,
    filename: str = Query(min_length=1, max_length=255, description="Path in the collection"),
) -> dict[str, Any]:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_UPLOAD_BYTES:
            raise TooLarge(f"{filename}: uploads are limited to {MAX_UPLOAD_BYTES >> 20} MiB")
        chunks.append(chunk)
    report = service.ingest_files(session, principal, settings, name, [(filename, b"".join(chunks))])
    return {
        "added": report.added,
        "unchanged": report.unchanged,
        "quarantined": report.quarantined,
        "snapshot_id": report.snapshot_id,
    }


@router.get(
    "/collections/{name}/files",
    summary="Files of a collection your grant shows, with their metadata",
    dependencies=[Requires(Permission.QUERY_RUN)],
)
def list_files(
    name: TableRef, principal: CurrentPrincipal, session: DbSession, settings: SettingsDep
) -> list[dict[str, Any]]:
    return service.list_files(session, principal, settings, name, _access_of(session, principal))


@router.get(
    "/collections/{name}/quarantine",
    summary="Files kept out of the collection, with the reason",
    dependencies=[Requires(Permission.INGEST_RUN)],
)
def quarantine(name: TableRef, principal: CurrentPrincipal, session: DbSession) -> list[dict[str, Any]]:
    return service.quarantined(session, principal, name)


@router.get(
    "/collections/{name}/files/{path:path}",
    summary="Download one de-identified file (audited, metered in bytes, traced in lineage)",
    dependencies=[Requires(Permission.QUERY_RUN)],
    response_class=Response,
    responses={200: {"content": {"application/dicom": {}}}},
)
def download(
    name: TableRef,
    path: str,
    principal: CurrentPrincipal,
    session: DbSession,
    settings: SettingsDep,
    version: int | None = Query(None, ge=1),
) -> Response:
    meta, data = service.read_file(
        session, principal, settings, name, path, _access_of(session, principal), version=version
    )
    table = parse_table_name(name)
    snapshot = open_lake(settings).load(table).current_snapshot()
    lineage.record_file_read(
        session, user=principal.name, project=principal.default_project, collection=str(table),
        snapshot_id=snapshot.snapshot_id if snapshot else None, path=meta["path"], size=len(data),
        via=principal.via,
    )  # fmt: skip
    filename = meta["path"].rsplit("/", 1)[-1]
    return Response(
        data,
        media_type=meta["media_type"],
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "X-Bytes": str(len(data)),
            "X-File-Version": str(meta["version"]),
            "X-SHA256": meta["sha256"],
        },
    )
