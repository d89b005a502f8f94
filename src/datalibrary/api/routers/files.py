"""File collections: create, upload files (DICOM, HL7 aECG, VCF, PDF/text documents, or a zip),
list, download; classify a collection, approve grants on a restricted one."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field, StringConstraints
from sqlalchemy.orm import Session

from datalibrary.api.fields import PolicyName, TableRef
from datalibrary.auth.permissions import Permission, Principal
from datalibrary.errors import InvalidInput, TooLarge
from datalibrary.files import service, views
from datalibrary.files.schemas import ApprovalIn, ClassificationIn, CollectionOut, FilesAddedOut
from datalibrary.http.deps import CurrentPrincipal, DbSession, Requires, SettingsDep
from datalibrary.lineage import events as lineage

router = APIRouter(tags=["files"])


class CollectionIn(BaseModel):
    name: TableRef = Field(description="NAMESPACE.COLLECTION (the namespace is the study)")
    policy: PolicyName = Field(
        "sdtm", description="The study's tabular policy: subject pseudonym and date shift"
    )
    description: str = Field("", max_length=4000)
    subject_template: str = Field(
        "{PatientID}",
        max_length=200,
        pattern=service.TEMPLATE_RE.pattern,
        description="How a file's PatientID becomes the study's subject id",
    )
    private_allow: list[Annotated[str, StringConstraints(pattern=service.PRIVATE_RE.pattern)]] = Field(
        default_factory=list, description="Private tags kept: 'gggg,XXee@CREATOR'", max_length=200
    )
    burned_in_reviewed: dict[str, Annotated[str, StringConstraints(max_length=500, pattern=r"\S")]] = Field(
        default_factory=dict,
        description="Modality or SOP class UID -> the reason its files carry no burned-in text",
    )
    classification: str = Field(
        "",
        max_length=500,
        description="What a steward states the collection holds, e.g. 'protocol documents, no patient "
        "data': documents (PDF, text) are quarantined while it is empty",
    )
    tier: Literal["standard", "restricted"] = Field(
        "standard",
        description="'restricted' for genomic data (VCF): files served only through grants a steward "
        "approved for the tier",
    )


@router.post(
    "/collections",
    status_code=201,
    summary="Create a file collection",
    dependencies=[Requires(Permission.DATASETS_MANAGE)],
)
def create_collection(
    body: CollectionIn, principal: CurrentPrincipal, session: DbSession, settings: SettingsDep
) -> CollectionOut:
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
        classification=body.classification,
        tier=body.tier,
    )
    return CollectionOut.of(collection)


@router.put(
    "/collections/{name}/classification",
    summary="State what a collection holds (documents need it); audited",
    dependencies=[Requires(Permission.DATASETS_MANAGE)],
)
def classify(
    name: TableRef, body: ClassificationIn, principal: CurrentPrincipal, session: DbSession
) -> CollectionOut:
    return CollectionOut.of(service.classify_collection(session, principal, name, body.classification))


@router.post(
    "/collections/{name}/approvals",
    summary="Approve a grant on a restricted collection (genomic data) for its tier; audited",
    dependencies=[Requires(Permission.GRANTS_MANAGE)],
)
def approve(
    name: TableRef, body: ApprovalIn, principal: CurrentPrincipal, session: DbSession
) -> dict[str, Any]:
    return service.approve_grant(session, principal, name, body.grant_id, body.reason)


@router.get(
    "/collections", summary="File collections you may see", dependencies=[Requires(Permission.CATALOG_READ)]
)
def list_collections(principal: CurrentPrincipal, session: DbSession) -> list[CollectionOut]:
    found = service.list_collections(session, principal, service.grants_of(session, principal))
    return [CollectionOut.model_validate(row) for row in found]


@router.post(
    "/collections/{name}/files",
    summary="Upload a file (DICOM, HL7 aECG, VCF, PDF, text) or a zip (raw body): de-identified, "
    "stored, indexed, or quarantined with the reason",
    dependencies=[Requires(Permission.INGEST_RUN)],
)
async def upload(
    name: TableRef,
    request: Request,
    principal: CurrentPrincipal,
    session: DbSession,
    settings: SettingsDep,
    filename: str = Query(
        min_length=1, max_length=400, pattern=service.PATH_PATTERN, description="Path in the collection"
    ),
) -> FilesAddedOut:
    limit = settings.files.max_file_bytes
    handle, name_on_disk = tempfile.mkstemp(prefix="upload-", dir=service.spool_dir(settings))
    spooled = Path(name_on_disk)
    try:
        size = 0
        with os.fdopen(handle, "wb") as out:  # streamed to disk: never the whole file in memory
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise TooLarge(
                        f"{filename}: uploads are limited to {limit:,} bytes (files.max_file_bytes)"
                    )
                out.write(chunk)
        report = service.ingest_files(session, principal, settings, name, [(filename, spooled)])
    finally:
        spooled.unlink(missing_ok=True)
    return FilesAddedOut.of(report)


@router.get(
    "/collections/{name}/files",
    summary="Files of a collection your grant shows, with their metadata",
    dependencies=[Requires(Permission.QUERY_RUN)],
)
def list_files(
    name: TableRef, principal: CurrentPrincipal, session: DbSession, settings: SettingsDep
) -> list[dict[str, Any]]:
    return service.list_files(session, principal, settings, name, service.grants_of(session, principal))


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
    responses={
        200: {
            "content": {
                t: {}
                for t in (
                    "application/dicom",
                    "application/hl7-v3+xml",
                    "text/vcf",
                    "application/pdf",
                    "text/plain",
                )
            }
        }
    },
)
def download(
    name: TableRef,
    path: Annotated[str, PathParam(max_length=400, pattern=service.PATH_PATTERN)],
    principal: CurrentPrincipal,
    session: DbSession,
    settings: SettingsDep,
    version: int | None = Query(None, ge=1, le=2**31 - 1),
) -> Response:
    meta, chunks = service.read_file(
        session, principal, settings, name, path, service.grants_of(session, principal), version=version
    )
    lineage.trace_file_read(session, principal, settings, name, meta["path"], meta["size"])
    filename = meta["path"].rsplit("/", 1)[-1]
    return StreamingResponse(  # a body that ends short of Content-Length was altered in storage
        chunks,
        media_type=meta["media_type"],
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Content-Length": str(meta["size"]),
            "X-Bytes": str(meta["size"]),
            "X-File-Version": str(meta["version"]),
            "X-SHA256": meta["sha256"],
        },
    )


@router.get(
    "/collections/{name}/thumbnails/{path:path}",
    summary="A small PNG of an image (only where no burned-in text can be; audited, metered, traced)",
    dependencies=[Requires(Permission.QUERY_RUN)],
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
)
def thumbnail(
    name: TableRef,
    path: Annotated[str, PathParam(max_length=400, pattern=service.PATH_PATTERN)],
    principal: CurrentPrincipal,
    session: DbSession,
    settings: SettingsDep,
    version: int | None = Query(None, ge=1, le=2**31 - 1),
) -> Response:
    meta, png = views.thumbnail(
        session, principal, settings, name, path, service.grants_of(session, principal), version=version
    )
    lineage.trace_file_read(session, principal, settings, name, f"thumbnail/{meta['path']}", len(png))
    return Response(
        png,
        media_type="image/png",
        headers={"Cache-Control": "private, max-age=300", "X-File-Version": str(meta["version"])},
    )


@router.get(
    "/collections/{name}/actions/{path:path}",
    summary="What the de-identification profile did to each attribute of a file (no values)",
    dependencies=[Requires(Permission.QUERY_RUN)],
)
def attribute_actions(
    name: TableRef,
    path: Annotated[str, PathParam(max_length=400, pattern=service.PATH_PATTERN)],
    principal: CurrentPrincipal,
    session: DbSession,
    settings: SettingsDep,
    version: int | None = Query(None, ge=1, le=2**31 - 1),
) -> dict[str, Any]:
    return views.attribute_actions(
        session, principal, settings, name, path, service.grants_of(session, principal), version=version
    )


# DICOMweb: each collection is a service root, behind the platform's authentication ---------------

DICOM_JSON = "application/dicom+json"
Uid = Annotated[str, PathParam(pattern=r"^[0-9]+(\.[0-9]+)*$", max_length=64, description="A DICOM UID")]
QIDO_KEYS = {
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
    "PatientID",
    "Modality",
    "ModalitiesInStudy",
}


def _attr(vr: str, *values: Any) -> dict[str, Any]:
    present = [v for v in values if v not in (None, "")]
    return {"vr": vr, "Value": present} if present else {"vr": vr}


def _study_json(rows: list[dict[str, Any]]) -> dict[str, Any]:
    first = rows[0]
    day = first["acquisition_date"]
    return {
        "00080020": _attr("DA", day.strftime("%Y%m%d") if day else None),
        "00080061": _attr("CS", *sorted({r["modality"] for r in rows if r["modality"]})),
        "00100020": _attr("LO", first["subject"]),
        "0020000D": _attr("UI", first["study_instance_uid"]),
        "00201206": _attr("IS", len({r["series_instance_uid"] for r in rows})),
        "00201208": _attr("IS", len(rows)),
    }


def _series_json(rows: list[dict[str, Any]]) -> dict[str, Any]:
    first = rows[0]
    return {
        "00080060": _attr("CS", first["modality"]),
        "00180015": _attr("CS", first["body_part"]),
        "0020000D": _attr("UI", first["study_instance_uid"]),
        "0020000E": _attr("UI", first["series_instance_uid"]),
        "00201209": _attr("IS", len(rows)),
    }


def _instance_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "00080016": _attr("UI", row["sop_class_uid"]),
        "00080018": _attr("UI", row["sop_instance_uid"]),
        "00080060": _attr("CS", row["modality"]),
        "0020000D": _attr("UI", row["study_instance_uid"]),
        "0020000E": _attr("UI", row["series_instance_uid"]),
    }


def _qido(request: Request, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Exact-match filters of QIDO-RS (unknown keys are refused, never ignored)."""
    params = {
        k: v
        for k, v in request.query_params.items()
        if k not in ("limit", "offset", "includefield", "fuzzymatching")
    }
    unknown = sorted(set(params) - QIDO_KEYS)
    if unknown:
        raise InvalidInput(f"unsupported QIDO-RS search key(s) {unknown}: use {sorted(QIDO_KEYS)}")
    column = {
        "StudyInstanceUID": "study_instance_uid", "SeriesInstanceUID": "series_instance_uid",
        "SOPInstanceUID": "sop_instance_uid", "PatientID": "subject", "Modality": "modality",
        "ModalitiesInStudy": "modality",
    }  # fmt: skip
    for key, value in params.items():
        rows = [r for r in rows if str(r[column[key]] or "") == value]
    return rows


def _count(request: Request, key: str) -> int:
    text = request.query_params.get(key, "") or "0"
    if not text.isdigit() or len(text) > 9:
        raise InvalidInput(f"{key} must be a whole number from 0 to 999999999", field=key)
    return int(text)


def _page(request: Request, items: list[dict[str, Any]]) -> Response:
    offset, limit = _count(request, "offset"), _count(request, "limit")
    items = items[offset : offset + limit] if limit > 0 else items[offset:]
    if not items:
        return Response(status_code=204)
    import json

    return Response(json.dumps(items), media_type=DICOM_JSON)


def _grouped(rows: list[dict[str, Any]], key: str) -> list[list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in sorted(rows, key=lambda r: r["path"]):
        groups.setdefault(row[key], []).append(row)
    return list(groups.values())


_QIDO = {"dependencies": [Requires(Permission.QUERY_RUN)], "response_class": Response, "tags": ["dicomweb"]}


@router.get("/dicomweb/{name}/studies", summary="QIDO-RS: search for studies", **_QIDO)
def qido_studies(
    name: TableRef, request: Request, principal: CurrentPrincipal, session: DbSession, settings: SettingsDep
) -> Response:
    rows = service.dicom_instances(session, principal, settings, name, service.grants_of(session, principal))
    matching = {r["study_instance_uid"] for r in _qido(request, rows)}
    return _page(
        request,
        [
            _study_json(g)
            for g in _grouped(rows, "study_instance_uid")
            if g[0]["study_instance_uid"] in matching
        ],
    )


@router.get(
    "/dicomweb/{name}/studies/{study}/series", summary="QIDO-RS: search for series of a study", **_QIDO
)
def qido_series(
    name: TableRef,
    study: Uid,
    request: Request,
    principal: CurrentPrincipal,
    session: DbSession,
    settings: SettingsDep,
) -> Response:
    rows = service.dicom_instances(
        session, principal, settings, name, service.grants_of(session, principal), study=study
    )
    return _page(request, [_series_json(g) for g in _grouped(_qido(request, rows), "series_instance_uid")])


@router.get("/dicomweb/{name}/series", summary="QIDO-RS: search for series", **_QIDO)
def qido_all_series(
    name: TableRef, request: Request, principal: CurrentPrincipal, session: DbSession, settings: SettingsDep
) -> Response:
    rows = service.dicom_instances(session, principal, settings, name, service.grants_of(session, principal))
    return _page(request, [_series_json(g) for g in _grouped(_qido(request, rows), "series_instance_uid")])


@router.get(
    "/dicomweb/{name}/studies/{study}/series/{series}/instances",
    summary="QIDO-RS: search for instances of a series",
    **_QIDO,
)
def qido_instances(
    name: TableRef,
    study: Uid,
    series: Uid,
    request: Request,
    principal: CurrentPrincipal,
    session: DbSession,
    settings: SettingsDep,
) -> Response:
    rows = service.dicom_instances(
        session, principal, settings, name, service.grants_of(session, principal), study=study, series=series
    )
    return _page(request, [_instance_json(r) for r in sorted(_qido(request, rows), key=lambda r: r["path"])])


def _multipart(
    session: Session, principal: Principal, settings: Any, name: str, rows: list[dict[str, Any]], what: str
) -> Response:
    import uuid

    from datalibrary.errors import NotFound

    if not rows:
        raise NotFound(f"no {what} in {name} that your grant shows")
    total, files = service.read_instances(session, principal, settings, name, rows, what)
    boundary = uuid.uuid4().hex.encode()

    def body() -> Iterator[bytes]:  # one file in memory at a time
        for part in files:
            yield b"--" + boundary + b"\r\nContent-Type: application/dicom\r\n\r\n"
            yield part
            yield b"\r\n"
        yield b"--" + boundary + b"--\r\n"

    lineage.trace_file_read(session, principal, settings, name, f"dicomweb/{what}", total)
    return StreamingResponse(
        body(),
        media_type=f'multipart/related; type="application/dicom"; boundary={boundary.decode()}',
        headers={"X-Bytes": str(total)},
    )


_WADO = {"dependencies": [Requires(Permission.QUERY_RUN)], "response_class": Response, "tags": ["dicomweb"],
         "responses": {200: {"content": {"multipart/related": {}}}}}  # fmt: skip


@router.get("/dicomweb/{name}/studies/{study}", summary="WADO-RS: retrieve a study", **_WADO)
def wado_study(
    name: TableRef, study: Uid, principal: CurrentPrincipal, session: DbSession, settings: SettingsDep
) -> Response:
    rows = service.dicom_instances(
        session, principal, settings, name, service.grants_of(session, principal), study=study
    )
    return _multipart(session, principal, settings, name, rows, f"study {study}")


@router.get("/dicomweb/{name}/studies/{study}/series/{series}", summary="WADO-RS: retrieve a series", **_WADO)
def wado_series(
    name: TableRef,
    study: Uid,
    series: Uid,
    principal: CurrentPrincipal,
    session: DbSession,
    settings: SettingsDep,
) -> Response:
    rows = service.dicom_instances(
        session, principal, settings, name, service.grants_of(session, principal), study=study, series=series
    )
    return _multipart(session, principal, settings, name, rows, f"series {series}")


@router.get(
    "/dicomweb/{name}/studies/{study}/series/{series}/instances/{sop}",
    summary="WADO-RS: retrieve an instance",
    **_WADO,
)
def wado_instance(
    name: TableRef,
    study: Uid,
    series: Uid,
    sop: Uid,
    principal: CurrentPrincipal,
    session: DbSession,
    settings: SettingsDep,
) -> Response:
    rows = service.dicom_instances(
        session,
        principal,
        settings,
        name,
        service.grants_of(session, principal),
        study=study,
        series=series,
        sop=sop,
    )
    return _multipart(session, principal, settings, name, rows, f"instance {sop}")
