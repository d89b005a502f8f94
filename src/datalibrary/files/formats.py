"""Which format a file is, and the de-identification each one gets (one dispatch by media type).

The service calls ``deidentify`` for every file; each format module raises ``Rejected`` with a
reason (the file is then quarantined) and returns the de-identified bytes with its index
metadata otherwise. Formats are recognized by their content, not by the file name alone: a
file named ``.pdf`` that is not a PDF is not read as one.

- ``application/dicom`` — ``files.dicom`` (PS3.15 Annex E);
- ``application/hl7-v3+xml`` (HL7 aECG) — ``files.aecg``;
- ``text/vcf`` (plain or bgzipped) — ``files.vcf``, only in a restricted collection;
- ``application/pdf``, ``text/plain`` — ``files.documents``, only in a classified collection;
- anything else is quarantined: "unrecognized format".
"""

from __future__ import annotations

import gzip
import io
import logging
import struct
import zlib
from pathlib import Path

from datalibrary.files import aecg, dicom, documents, vcf
from datalibrary.files.deidentified import AECG, PDF, TEXT, VCF, Context, Deidentified
from datalibrary.files.dicom import Rejected

TEXT_SUFFIXES = (".txt", ".text", ".md")
SNIFF_BYTES = 1 << 16  # what sniff() looks at (gzip head of a VCF included)
TIERS = ("standard", "restricted")
log = logging.getLogger(__name__)
# what a reader raises on input nobody foresaw: the file is quarantined, never half-processed
FAIL_CLOSED = (
    ValueError, TypeError, KeyError, IndexError, AttributeError, OSError, RecursionError, struct.error,
    NotImplementedError, OverflowError,
)  # fmt: skip


def _gzip_head(data: bytes, size: int = 64) -> bytes:
    try:
        return gzip.GzipFile(fileobj=io.BytesIO(data[: 1 << 16])).read(size)
    except (OSError, EOFError, zlib.error):
        return b""


def sniff(path: str, data: bytes) -> str | None:
    """The media type the content shows (None: not one DataLibrary knows)."""
    if data[128:132] == b"DICM":
        return dicom.MEDIA_TYPE
    if b"%PDF-" in data[:1024]:
        return PDF
    if data[:2] == b"\x1f\x8b":
        return VCF if _gzip_head(data).startswith(b"##fileformat=VCF") else None
    text = data[:4096].removeprefix(b"\xef\xbb\xbf").lstrip()
    if text.startswith(b"##fileformat=VCF"):
        return VCF
    if text.startswith(b"<"):
        return AECG  # XML: the aECG reader says when it is XML of another kind
    if path.lower().endswith(TEXT_SUFFIXES):
        return TEXT
    return None


def _other(path: str, data: bytes, media_type: str, context: Context) -> Deidentified:
    if media_type == AECG:
        return aecg.deidentify(data, context)
    if media_type == VCF:
        return vcf.deidentify(data, context)
    return documents.check(path, data, media_type, context)


def deidentify(path: str, data: bytes | Path, context: Context, spool: Path | None = None) -> Deidentified:
    """De-identified bytes and index metadata of one file; ``Rejected`` says why not. A DICOM
    file given on disk is de-identified on disk (pixel data copied in chunks, the result a
    spool file); the other formats' readers take the file's bytes."""
    if isinstance(data, Path):
        with data.open("rb") as handle:
            head = handle.read(SNIFF_BYTES)
    else:
        head = data[:SNIFF_BYTES]
    media_type = sniff(path, head)
    if media_type in (AECG, VCF, PDF, TEXT):
        try:
            return _other(path, data.read_bytes() if isinstance(data, Path) else data, media_type, context)
        except Rejected:
            raise
        except FAIL_CLOSED as exc:
            # fail closed: an input nobody foresaw is quarantined, not half-processed
            log.warning("a %s file could not be processed: %s", media_type, type(exc).__name__)
            raise Rejected(f"the {media_type} file could not be processed ({type(exc).__name__})") from None
    try:
        result = dicom.deidentify(data, context.dicom_options, spool)
    except Rejected as exc:
        if media_type is None and exc.reason.startswith("not a readable DICOM file"):
            raise Rejected(
                "unrecognized format: not DICOM, HL7 aECG XML, VCF, PDF or a UTF-8 text document "
                f"({exc.reason})"
            ) from None
        raise
    except FAIL_CLOSED as exc:  # sequences nested thousands deep, values pydicom cannot convert
        log.warning("a DICOM file could not be processed: %s", type(exc).__name__)
        raise Rejected(f"the DICOM file could not be processed ({type(exc).__name__})") from None
    return Deidentified(
        result.data, dicom.MEDIA_TYPE, result.subject, result.metadata, {}, result.actions,
        f"PS3.15 E.1-1 {result.profile_edition}", result.attributes,
    )  # fmt: skip
