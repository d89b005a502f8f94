"""What the console shows of one file besides its bytes: what the de-identification profile did
to each attribute, and a thumbnail of an image where that is safe.

Both are read under the caller's grant (the same row filter as a download) and derived from
the stored, de-identified object, never from the original. Thumbnails are rendered from the
pixel data (pydicom + numpy + Pillow) only for files whose header says no burned-in text could
be there: ``BurnedInAnnotation`` is not YES and neither the modality nor the SOP class is one
known to carry text. A file admitted on a collection's *review decision* (``burned_in_reviewed``:
"our US scanner writes no text") gets no thumbnail: the decision covers the lake, not a picture
on a screen that nobody re-checked. Rendered once, cached beside the object in the warehouse
(named by its SHA-256, so erasure removes it with the object), audited and metered as a read.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pyarrow.compute as pc
from sqlalchemy.orm import Session

from datalibrary.audit.service import record
from datalibrary.auth.permissions import Principal
from datalibrary.config import Settings
from datalibrary.errors import Conflict, InvalidInput, NotFound
from datalibrary.files import dicom, metering, objects
from datalibrary.files import service as files
from datalibrary.lake.catalog import open_lake

MAX_EDGE = 128  # pixels: enough to recognise a series, too small to read fine print
ACTION_MEANINGS = {
    "D": "replaced with a dummy value (Patient ID and Name: the subject's pseudonym)",
    "Z": "emptied (zero-length value)",
    "X": "removed",
    "K": "kept",
    "C": "cleaned: date moved by the subject's offset (times kept)",
    "U": "UID replaced by a keyed UID (consistent within the study)",
}


def _row(
    session: Session,
    principal: Principal,
    settings: Settings,
    name: str,
    path: str,
    access_of: files.AccessOf,
    version: int | None,
) -> tuple[Any, dict[str, Any]]:
    """The index row the caller's grant shows (newest version unless one is named)."""
    table, view = files._view(session, principal, name, access_of)
    clean = files._clean_path(path)
    lake = open_lake(settings)
    rows = files._index(lake, table)
    rows = rows.filter(pc.equal(rows["path"], clean))
    if version is not None:
        rows = rows.filter(pc.equal(rows["version"], version))
    rows = files._visible(rows, view.row_filter)
    if rows.num_rows == 0:
        raise NotFound(f"no file {clean} in {table}" + (f" at version {version}" if version else ""))
    return lake, {"table": table, **max(rows.to_pylist(), key=lambda r: r["version"])}


def attribute_actions(
    session: Session,
    principal: Principal,
    settings: Settings,
    name: str,
    path: str,
    access_of: files.AccessOf,
    version: int | None = None,
) -> dict[str, Any]:
    """Per attribute of one file: the PS3.15 Table E.1-1 code and the action applied
    (attribute tags and keywords only: no value, original or new, is ever kept)."""
    lake, row = _row(session, principal, settings, name, path, access_of, version)
    uri = files.derived_uri(lake, row["table"], row["sha256"], "actions.json")
    attributes = json.loads(lake.storage.read_bytes(uri)) if objects.exists(lake.storage, uri) else []
    counts: dict[str, int] = {}
    for item in attributes:
        counts[item["action"]] = counts.get(item["action"], 0) + 1
    return {
        "path": row["path"],
        "version": row["version"],
        "sha256": row["sha256"],
        "profile": row["profile"],
        "counts": counts,
        "meanings": ACTION_MEANINGS,
        "attributes": attributes,
        "recorded": bool(attributes),  # files ingested before per-attribute records have none
    }


def thumbnail_refusal(ds: Any) -> str | None:
    """Why this de-identified file gets no thumbnail (None: it may have one); a file without
    pixel data is refused when its first frame cannot be read."""
    try:
        dicom.check_burned_in(ds, {})  # no review decision counts here
    except dicom.Rejected as exc:
        return f"no thumbnail where burned-in text may be: {exc.reason}"
    return None


def render_png(source: bytes | str) -> bytes:
    """A small grayscale or colour PNG of the first frame, windowed like a viewer would.
    Given a local path, only the header and the first frame are read (a 1 GiB multi-frame
    file costs one frame of memory)."""
    import numpy as np
    import pydicom
    from PIL import Image
    from pydicom.pixels import apply_modality_lut, apply_voi_lut, pixel_array

    opened = source if isinstance(source, str) else io.BytesIO(source)
    ds = pydicom.dcmread(opened, stop_before_pixels=True)
    if not isinstance(opened, str):
        opened.seek(0)
    refusal = thumbnail_refusal(ds)
    if refusal:
        raise Conflict(refusal)
    try:
        pixels = pixel_array(opened, index=0)  # the first frame only
    except Exception as exc:  # noqa: BLE001 - a codec pydicom lacks, a truncated frame, no pixels
        reason = f"the pixel data cannot be decoded for a thumbnail ({type(exc).__name__})"
        raise InvalidInput(reason) from None
    if int(ds.get("SamplesPerPixel", 1) or 1) > 1:
        image = Image.fromarray(np.asarray(pixels, dtype=np.uint8)).convert("RGB")
    else:
        values = apply_voi_lut(apply_modality_lut(pixels, ds), ds).astype(np.float64)
        low, high = float(values.min()), float(values.max())
        scaled = (values - low) / (high - low) * 255 if high > low else np.zeros_like(values)
        if str(ds.get("PhotometricInterpretation", "")) == "MONOCHROME1":
            scaled = 255 - scaled
        image = Image.fromarray(scaled.astype(np.uint8), mode="L")
    image.thumbnail((MAX_EDGE, MAX_EDGE))
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)  # no text chunks: nothing but pixels
    return out.getvalue()


def thumbnail(
    session: Session,
    principal: Principal,
    settings: Settings,
    name: str,
    path: str,
    access_of: files.AccessOf,
    version: int | None = None,
    via: str = "thumbnail",
) -> tuple[dict[str, Any], bytes]:
    """The file's PNG thumbnail (rendered on first use, then cached); audited and metered."""
    lake, row = _row(session, principal, settings, name, path, access_of, version)
    table = row.pop("table")
    if row["media_type"] != dicom.MEDIA_TYPE:
        raise Conflict(f"{row['path']} is not an image: no thumbnail")
    uri = files.derived_uri(lake, table, row["sha256"], "thumb.png")
    if objects.exists(lake.storage, uri):
        png = lake.storage.read_bytes(uri)
    else:
        stored = files.object_uri(lake, table, row["sha256"])
        local = not lake.storage.is_s3
        png = render_png(lake.storage.path(stored) if local else lake.storage.read_bytes(stored))
        objects.store(lake.storage, uri, png)
    record(
        session,
        actor=principal,
        action="files.read",
        target=f"files:{table}/{row['path']}",
        details={"version": row["version"], "bytes": len(png), "thumbnail": True},
    )
    metering.meter(session, principal, str(table), row["path"], size=len(png), via=via)
    return files._public(row), png
