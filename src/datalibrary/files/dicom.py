"""DICOM de-identification on ingestion (pydicom), following PS3.15 Annex E.

* Table E.1-1 (Basic Application Level Confidentiality Profile) decides each standard
  attribute's action (``files.profile``); attributes the table does not list are kept (K).
* Retain Longitudinal Temporal Information with Modified Dates Option: every listed date
  (DA, DT) is moved by the subject's date offset — the same offset the study's tabular policy
  gives the subject's SDTM dates (``privacy.actions.subject_offsets``); times (TM) are kept.
* UIDs (U) become ``2.25.<HMAC-SHA256(study key, uid)>``: the same UID gives the same new UID
  everywhere in one study (series stay series), and different studies cannot be linked.
* Patient ID and Patient's Name become the subject's pseudonym (the table's USUBJID token).
* Private attributes are removed unless allow-listed by the collection (``gggg,xxee@CREATOR``).
* Fail closed on burned-in text: BurnedInAnnotation=YES, or a modality / SOP class known to
  carry text in its pixels (US, SC, secondary capture...) without an explicit decision of the
  collection, is rejected with the reason (the caller quarantines it).
"""

from __future__ import annotations

import hashlib
import hmac
import io
import os
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.sequence import Sequence

from datalibrary.files.profile import Profile, load_profile

MEDIA_TYPE = "application/dicom"
PATIENT_NAME = 0x00100010
PATIENT_ID = 0x00100020
PATIENT_IDENTITY_REMOVED = 0x00120062
# Temporal attributes Table E.1-1 gives no C under "Rtn. Long. Modif. Dates Opt." (the column is
# empty on their rows): the Basic Profile's action applies to them. Checked against the table:
# of its 55 DA/DT/TM rows these are the only three. Patient's Birth Date stays Z (emptied, not
# shifted), Patient's Birth Time and GPS Time Stamp X (removed).
UNSHIFTED_DATES = {0x00100030, 0x00100032, 0x00160077}
NUMERIC_VRS = {"US", "SS", "UL", "SL", "FL", "FD", "IS", "DS", "UV", "SV", "AT"}
BINARY_VRS = {"OB", "OW", "OF", "OD", "OL", "OV", "UN"}
TEXT_DUMMY = {"AE": "ANONYMOUS", "CS": "ANONYMOUS", "PN": "ANONYMOUS", "AS": "000Y"}
# Modalities and SOP classes whose pixels commonly carry text (PS3.15 E.1.1 note on burned-in
# annotation; secondary captures are screenshots by definition).
BURNED_IN_MODALITIES = {"US", "SC", "XC", "OT", "DOC", "ES", "GM", "SM"}
BURNED_IN_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.7": "Secondary Capture Image Storage",
    "1.2.840.10008.5.1.4.1.1.7.1": "Multi-frame Single Bit Secondary Capture Image Storage",
    "1.2.840.10008.5.1.4.1.1.7.2": "Multi-frame Grayscale Byte Secondary Capture Image Storage",
    "1.2.840.10008.5.1.4.1.1.7.3": "Multi-frame Grayscale Word Secondary Capture Image Storage",
    "1.2.840.10008.5.1.4.1.1.7.4": "Multi-frame True Color Secondary Capture Image Storage",
    "1.2.840.10008.5.1.4.1.1.6.1": "Ultrasound Image Storage",
    "1.2.840.10008.5.1.4.1.1.6.2": "Enhanced US Volume Storage",
    "1.2.840.10008.5.1.4.1.1.3.1": "Ultrasound Multi-frame Image Storage",
    "1.2.840.10008.5.1.4.1.1.104.1": "Encapsulated PDF Storage",
}
# PS3.16 CID 7050 De-identification Method codes
METHOD_CODES = (
    ("113100", "Basic Application Confidentiality Profile"),
    ("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
)


class Rejected(Exception):
    """The file cannot enter the lake; ``reason`` says why (never a raw identifier)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Subject:
    pseudonym: str
    offset_days: int


@dataclass
class DeidOptions:
    resolve_subject: Callable[[Dataset], Subject]  # raises Rejected when no subject is found
    uid_secret: bytes  # the study key's secret (UIDs keyed per study)
    private_allow: frozenset[str] = frozenset()  # "0009,xx10@CREATOR"
    burned_in_reviewed: dict[str, Any] = field(default_factory=dict)  # modality or SOP class -> decision


@dataclass
class DeidResult:
    data: bytes | Path  # a spool file when the input was a file (the caller deletes it)
    metadata: dict[str, Any]
    actions: Counter[str]  # action code -> attributes it was applied to
    profile_edition: str
    subject: str  # the subject's pseudonym
    attributes: list[dict[str, str]] = field(default_factory=list)  # per attribute: tag, keyword, action


def keyed_uid(secret: bytes, uid: str) -> str:
    """``2.25.<decimal 128-bit HMAC>``: a valid UID (PS3.5 B.2), keyed per study. UIDs the
    standard itself defines (SOP classes, transfer syntaxes: pydicom's dictionary of them)
    identify nobody and stay; anything else under the standard's root is keyed too (a number
    dressed as a standard UID could be a record number)."""
    if uid.strip() in pydicom.uid.UID_dictionary:
        return uid.strip()
    digest = hmac.new(secret, b"dicom-uid\x00" + uid.strip().encode(), hashlib.sha256).digest()
    return f"2.25.{int.from_bytes(digest[:16], 'big')}"


def shift_da(value: str, days: int) -> str | None:
    """``YYYYMMDD`` moved by ``days``; None when it is not a full date (then emptied)."""
    text = value.strip()
    if len(text) != 8 or not text.isdigit():
        return None
    try:
        day = date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None
    return (day + timedelta(days=days)).strftime("%Y%m%d")


def shift_dt(value: str, days: int) -> str | None:
    """``YYYYMMDD[HHMMSS[.F]][&ZZXX]``: the date part moved, the rest kept."""
    text = value.strip()
    shifted = shift_da(text[:8], days)
    return None if shifted is None else shifted + text[8:]


def check_burned_in(ds: Dataset, reviewed: dict[str, Any]) -> None:
    flag = str(ds.get("BurnedInAnnotation", "") or "").strip().upper()
    if flag == "YES":
        raise Rejected("BurnedInAnnotation is YES: the pixels carry text that may identify the patient")
    modality = str(ds.get("Modality", "") or "").strip().upper()
    sop_class = str(ds.get("SOPClassUID", "") or "").strip()
    if sop_class in BURNED_IN_SOP_CLASSES and sop_class not in reviewed:
        raise Rejected(
            f"SOP class {sop_class} ({BURNED_IN_SOP_CLASSES[sop_class]}) often carries burned-in text "
            "and the collection has no decision for it (burned_in_reviewed)"
        )
    if modality in BURNED_IN_MODALITIES and modality not in reviewed and flag != "NO":
        raise Rejected(
            f"modality {modality} often carries burned-in text, BurnedInAnnotation is not NO and the "
            "collection has no decision for it (burned_in_reviewed)"
        )


@lru_cache(maxsize=8192)
def _label(number: int) -> tuple[str, str]:
    """``(gggg,eeee)`` and the keyword of a tag (cached: the same tags recur in every file)."""
    private = (number >> 16) % 2 == 1
    keyword = "" if private else pydicom.datadict.keyword_for_tag(number)
    return f"({number >> 16:04X},{number & 0xFFFF:04X})", keyword or ("private" if private else "unknown")


class _Cleaner:
    def __init__(self, profile: Profile, options: DeidOptions, subject: Subject) -> None:
        self.profile = profile
        self.options = options
        self.subject = subject
        self.actions: Counter[str] = Counter()
        self.log: list[dict[str, str]] = []  # one entry per attribute: what was done (no value)
        self.within = ""  # the sequence path being walked ("AnatomicRegionSequence > ")

    def did(self, tag: Any, action: str) -> None:
        number = int(tag)
        self.actions[action] += 1
        attribute, keyword = _label(number)
        self.log.append(
            {
                "attribute": self.within + attribute,
                "keyword": keyword,
                "action": action,
                "table": self.profile.standard_codes.get(number, ""),
            }
        )

    def nested(self, elem: Any, uid_only: bool) -> None:
        outer = self.within
        name = pydicom.datadict.keyword_for_tag(int(elem.tag)) or f"{int(elem.tag):08X}"
        try:
            for index, item in enumerate(elem.value):
                self.within = f"{outer}{name}[{index}] > "
                self.clean(item, uid_only)
        finally:
            self.within = outer

    def uid(self, value: Any) -> Any:
        if isinstance(value, list | pydicom.multival.MultiValue):
            return [keyed_uid(self.options.uid_secret, str(v)) for v in value]
        return keyed_uid(self.options.uid_secret, str(value)) if value else value

    def clean(self, ds: Dataset, uid_only: bool = False) -> None:
        """Walk ``ds`` (and its sequences). Kept elements are looked at through their raw form
        (tag and VR), so pixel data and other kept values are never decoded."""
        for tag in list(ds.keys()):
            if tag.is_private:
                if self.options.private_allow:
                    self.private(ds, ds[tag])
                else:  # nothing allowed: removed without decoding
                    del ds[tag]
                    self.did(tag, "X")
                continue
            action = self.profile.action(int(tag))
            if action is None:
                vr = _vr(ds, tag)
                if uid_only and vr == "UI":
                    action = "U"
                elif vr == "PN":  # a person's name the table does not list is still a name
                    action = "D"
                elif vr == "UN" or not _known(int(tag)):  # nobody can say it is safe to keep
                    del ds[tag]
                    self.did(tag, "X")
                    continue
                else:
                    self.did(tag, "K")
                    if vr == "SQ":
                        self.nested(ds[tag], uid_only)
                    continue
            self.apply(ds, ds[tag], action)

    def private(self, ds: Dataset, elem: Any) -> None:
        group, element = elem.tag.group, elem.tag.element
        allowed = self.options.private_allow
        if 0x0010 <= element <= 0x00FF:  # a private creator: kept if an allowed element uses it
            creator = str(elem.value).strip()
            block = f"{group:04X},XX"
            if any(a.startswith(block) and a.endswith("@" + creator) for a in allowed):
                self.did(elem.tag, "K")
                return
        elif element > 0x00FF:
            creator_elem = ds.get((group << 16) | (element >> 8))
            creator = str(creator_elem.value).strip() if creator_elem is not None else ""
            if f"{group:04X},XX{element & 0xFF:02X}@{creator}" in allowed:
                self.did(elem.tag, "K")
                return
        del ds[elem.tag]
        self.did(elem.tag, "X")

    def apply(self, ds: Dataset, elem: Any, action: str) -> None:
        tag, vr = int(elem.tag), elem.VR
        if tag in (PATIENT_ID, PATIENT_NAME):
            elem.value = self.subject.pseudonym
            self.did(tag, "D")
            return
        if (vr in ("DA", "DT") or vr == "TM" and action != "X") and tag not in UNSHIFTED_DATES:
            self.temporal(ds, elem)
            return
        if action == "X":
            del ds[elem.tag]
        elif action == "U*":
            if vr == "SQ":
                self.nested(elem, True)
            elif vr == "UI":
                elem.value = self.uid(elem.value)
            else:
                elem.value = None
            action = "U"
        elif action == "U":
            if vr == "UI":
                elem.value = self.uid(elem.value)
            elif vr == "SQ":
                self.nested(elem, True)
            else:
                elem.value = None
        elif vr == "SQ":  # Z or D: a dummy sequence is not defined, an empty one is valid
            elem.value = Sequence()
        elif action == "Z" or vr in BINARY_VRS:
            elem.value = None
        elif vr == "UI":
            elem.value = self.uid(elem.value)
        elif vr in NUMERIC_VRS:
            elem.value = 0
        else:
            elem.value = TEXT_DUMMY.get(vr, "ANONYMIZED")
        self.did(tag, action)

    def temporal(self, ds: Dataset, elem: Any) -> None:
        """Action C: dates moved by the subject's offset (precision below a day kept)."""
        vr = elem.VR
        if vr == "TM" or elem.value in (None, ""):
            self.did(elem.tag, "C")
            return
        values = elem.value if isinstance(elem.value, pydicom.multival.MultiValue) else [elem.value]
        shift = shift_da if vr == "DA" else shift_dt
        shifted = [shift(str(v), self.subject.offset_days) for v in values]
        if any(v is None for v in shifted):  # a partial or invalid date: nothing to keep
            elem.value = None
        else:
            elem.value = shifted if len(shifted) > 1 else shifted[0]
        self.did(elem.tag, "C")


def _known(tag: int) -> bool:
    """A public attribute of the data dictionary (an unknown one, whatever VR the file gives
    it, may hold anything)."""
    return pydicom.datadict.dictionary_has_tag(tag) or pydicom.datadict.repeater_has_tag(tag)


def _vr(ds: Dataset, tag: Any) -> str:
    """The element's VR without decoding its value (explicit VR, else the dictionary's)."""
    raw = ds.get_item(tag, keep_deferred=True)
    vr = getattr(raw, "VR", None)
    if vr and vr not in ("UN", "US or SS", "OB or OW", "US or OW", "US or SS or OW"):
        return str(vr)
    return ds[tag].VR  # implicit VR or ambiguous: let pydicom decide


def _date(value: Any) -> date | None:
    text = str(value or "").strip()[:8]
    if len(text) != 8 or not text.isdigit():
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None


def metadata_of(ds: Dataset) -> dict[str, Any]:
    """What the index table holds of a de-identified file."""
    acquired = next(
        (
            d
            for d in (_date(ds.get(k)) for k in ("AcquisitionDate", "ContentDate", "SeriesDate", "StudyDate"))
            if d is not None
        ),
        None,
    )

    def text(keyword: str) -> str | None:
        value = ds.get(keyword)
        return str(value).strip() or None if value is not None else None

    return {
        "acquisition_date": acquired,
        "modality": text("Modality"),
        "body_part": text("BodyPartExamined"),
        "study_instance_uid": text("StudyInstanceUID"),
        "series_instance_uid": text("SeriesInstanceUID"),
        "sop_instance_uid": text("SOPInstanceUID"),
        "sop_class_uid": text("SOPClassUID"),
    }


DEFER_BYTES = 1 << 20  # values larger than this stay in the file until written


def read_dataset(data: bytes | Path) -> Dataset:
    try:
        if isinstance(data, Path):  # large values (pixel data) stay on disk, read when written
            return pydicom.dcmread(data, defer_size=DEFER_BYTES)
        return pydicom.dcmread(io.BytesIO(data))
    except (InvalidDicomError, EOFError, ValueError, KeyError, TypeError, OSError) as exc:
        raise Rejected(f"not a readable DICOM file ({type(exc).__name__})") from None


class _Window(io.BufferedIOBase):
    """A read-only view of ``length`` bytes of an open file from ``start``: pydicom writes a
    buffered element value from it in chunks, so pixel data is copied, never held whole."""

    def __init__(self, handle: io.BufferedReader, start: int, length: int) -> None:
        self.handle, self.start, self.length, self.position = handle, start, length, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self.position, os.SEEK_END: self.length}[whence]
        self.position = min(max(base + offset, 0), self.length)
        return self.position

    def read(self, size: int | None = -1) -> bytes:
        left = self.length - self.position
        size = left if size is None or size < 0 else min(size, left)
        self.handle.seek(self.start + self.position)
        chunk = self.handle.read(size)
        self.position += len(chunk)
        return chunk


def _buffer_deferred(ds: Dataset, handle: io.BufferedReader) -> None:
    """Top-level OB/OW values left in the file (deferred) become windows on it."""
    for tag in list(ds.keys()):
        raw = ds.get_item(tag, keep_deferred=True)
        deferred = getattr(raw, "value", b"") is None and getattr(raw, "length", 0) not in (0, 0xFFFFFFFF)
        if deferred and _vr(ds, tag) in ("OB", "OW"):
            ds.add_new(tag, _vr(ds, tag), _Window(handle, raw.value_tell, raw.length))


def deidentify(data: bytes | Path, options: DeidOptions, spool: Path | None = None) -> DeidResult:
    """De-identified bytes of one DICOM file, its index metadata and the actions applied.

    Given a file, the result is a file too (in ``spool``, default the system's temporary
    directory) and native pixel data is copied in chunks: memory stays at a few MiB whatever
    the file's size. Encapsulated (compressed) pixel data has no length to defer by and is read
    whole."""
    profile = load_profile()
    ds = read_dataset(data)
    check_burned_in(ds, options.burned_in_reviewed)
    subject = options.resolve_subject(ds)
    cleaner = _Cleaner(profile, options, subject)
    cleaner.clean(ds)
    ds.PatientIdentityRemoved = "YES"
    # LO: at most 64 characters; the codes below name the profile and option in full
    ds.DeidentificationMethod = f"DataLibrary PS3.15 E.1-1 {profile.edition} Basic; RLTI modified dates"
    codes = Sequence()
    for value, meaning in METHOD_CODES:
        item = Dataset()
        item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "DCM", meaning
        codes.append(item)
    ds.DeidentificationMethodCodeSequence = codes
    ds.file_meta = _clean_meta(ds.file_meta, ds)
    ds.preamble = b"\x00" * 128  # 128 free bytes: a polyglot hides another format (and names) there
    if not isinstance(data, Path):
        out = io.BytesIO()
        ds.save_as(out, enforce_file_format=True)
        found: bytes | Path = out.getvalue()
        return DeidResult(
            found, metadata_of(ds), cleaner.actions, profile.edition, subject.pseudonym, cleaner.log
        )
    handle_out, name = tempfile.mkstemp(prefix="deid-", suffix=".dcm", dir=spool)
    target = Path(name)
    try:
        with data.open("rb") as source, os.fdopen(handle_out, "wb") as written:
            _buffer_deferred(ds, source)  # type: ignore[arg-type]
            ds.save_as(written, enforce_file_format=True)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return DeidResult(
        target, metadata_of(ds), cleaner.actions, profile.edition, subject.pseudonym, cleaner.log
    )


def _clean_meta(meta: FileMetaDataset | None, ds: Dataset) -> FileMetaDataset:
    """File meta information with the new SOP instance UID; source AE titles and the source's
    implementation name (free text) dropped (pydicom writes its own)."""
    clean = FileMetaDataset()
    if meta is not None:
        for keyword in ("TransferSyntaxUID",):
            if keyword in meta:
                setattr(clean, keyword, meta.get(keyword))
    clean.MediaStorageSOPClassUID = ds.SOPClassUID
    clean.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    if "TransferSyntaxUID" not in clean:
        clean.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    return clean
