"""HL7 v3 annotated ECG (aECG, ``AnnotatedECG`` in ``urn:hl7-org:v3``) de-identified like DICOM.

The XML is parsed with ``defusedxml`` (no DTD, no entity expansion, no external entity: an
XML bomb or an XXE is refused before anything is expanded), after a size limit; nesting
deeper than ``MAX_DEPTH`` is refused too. Then every element is handled by what it is:

- ``trialSubject/id``: the extension becomes the subject's pseudonym (the study's USUBJID
  token), the root a keyed OID — action D;
- other ``id`` elements (ECG, series, annotation, site, investigator ids) and every other
  instance identifier (``setId``, ``templateId``, any element with an ``extension``): root and
  extension keyed per study (the same id gives the same value within the study, unlinkable
  across studies), any content dropped — action U; ``clinicalTrial/id`` (the protocol) is
  kept — K;
- ``name``, ``addr``, ``telecom`` (patient, investigators, sites, organizations) and
  ``birthTime`` are emptied to ``nullFlavor="MSK"`` — action X (the study's tables keep at
  most the birth year, so a shifted birth time would say more than they do);
- every time value (``effectiveTime``, ``low``/``high``/``center``, the waveforms' ``head``,
  TS-typed values) is moved by the subject's date offset — the same offset the study's
  tabular policy gives the subject's SDTM dates; partial dates are emptied — action C;
- free text (annotations, ``text``, titles, mixed content) is scrubbed with the detection the
  tabular policies use for free text (``files.freetext``) — action S;
- codes, units and ``xsi:type`` are kept unless they are a word of the document's own names
  and ids or of the study's identifier dictionary (then replaced like free text) — S;
- waveform ``digits`` are kept (numbers only, checked).

An element or attribute whose NAME is such a word is rejected.

Anything unexpected — another root, elements outside the HL7 v3 namespace, no or several
subjects, non-numeric digits — is rejected with the reason (the file is quarantined).
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import re
import xml.etree.ElementTree as ET  # noqa: S405 - only to serialize; parsing is defusedxml's
from collections import Counter
from datetime import date
from typing import Any

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse

from datalibrary.files import freetext
from datalibrary.files.deidentified import AECG, Context, Deidentified
from datalibrary.files.dicom import Rejected, keyed_uid, shift_dt
from datalibrary.privacy.identifiers import digest, scrub_known, words_of

HL7 = "urn:hl7-org:v3"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
MAX_BYTES = 64 << 20
MAX_DEPTH = 128
MAX_ELEMENTS = 2_000_000
EMPTIED = {"name", "addr", "telecom", "birthTime"}
TIME_ELEMENTS = {"effectiveTime", "low", "high", "center", "head", "time", "activityTime"}
TIME_TYPES = {"TS", "IVL_TS", "GLIST_TS", "PIVL_TS"}
TS = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?)?([+-]\d{4})?$")
DIGITS = re.compile(r"^[\s0-9.eE+-]*$")
NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
# attributes that hold codes, units, structure: kept (everything else is scrubbed as free text)
STRUCTURAL = frozenset(
    [
        "code",
        "codeSystem",
        "codeSystemVersion",
        "unit",
        "nullFlavor",
        "classCode",
        "moodCode",
        "typeCode",
        "root",
        "extension",
        "inclusive",
        "operator",
        "institutionSpecified",
        "mediaType",
        "representation",
        "contextConductionInd",
        "negationInd",
    ]
)
TYPE = f"{{{XSI}}}type"
ET.register_namespace("", HL7)
ET.register_namespace("xsi", XSI)


def _local(tag: str) -> tuple[str, str]:
    namespace, _, local = tag[1:].partition("}") if tag.startswith("{") else ("", "", tag)
    return namespace, local


def parse(data: bytes) -> ET.Element:
    """The document's root, parsed safely (DTDs, entities and deep nesting refused)."""
    if len(data) > MAX_BYTES:
        raise Rejected(f"aECG XML larger than {MAX_BYTES >> 20} MiB")
    depth, count, root = 0, 0, None
    try:
        for event, element in iterparse(
            io.BytesIO(data), events=("start", "end"), forbid_dtd=True, forbid_entities=True
        ):
            if event == "start":
                depth += 1
                count += 1
                root = element if root is None else root
                if depth > MAX_DEPTH:
                    raise Rejected(f"XML nested deeper than {MAX_DEPTH} levels")
                if count > MAX_ELEMENTS:
                    raise Rejected(f"XML with more than {MAX_ELEMENTS} elements")
            else:
                depth -= 1
    except DefusedXmlException as exc:
        raise Rejected(f"XML refused: {type(exc).__name__} (DTDs and entities are not accepted)") from None
    except ET.ParseError as exc:
        raise Rejected(f"not well-formed XML ({exc.msg if hasattr(exc, 'msg') else 'parse error'})") from None
    if root is None:
        raise Rejected("empty XML document")
    namespace, local = _local(root.tag)
    if (namespace, local) != (HL7, "AnnotatedECG"):
        raise Rejected(
            f"XML whose root is {local!r} in namespace {namespace or 'none'!r}, not an HL7 v3 "
            "AnnotatedECG (urn:hl7-org:v3)"
        )
    return root


def _find_subject(root: ET.Element) -> tuple[str, str]:
    subjects = root.findall(f".//{{{HL7}}}trialSubject/{{{HL7}}}id")
    if len(subjects) != 1:
        raise Rejected(
            "no subject id (trialSubject/id)" if not subjects else f"{len(subjects)} subjects in one aECG"
        )
    subject = (subjects[0].get("extension") or "").strip()
    if not subject:
        raise Rejected("trialSubject/id has no extension: the ECG cannot be linked to a subject of the study")
    trial = root.find(f".//{{{HL7}}}clinicalTrial/{{{HL7}}}id")
    return subject, (trial.get("extension") or "").strip() if trial is not None else ""


class _Cleaner:
    def __init__(self, context: Context, pseudonym: str, offset: int, raw_subject: str) -> None:
        self.context = context
        self.pseudonym = pseudonym
        self.offset = offset
        # the subject's own id wherever it is quoted (text, attributes): replaced by the pseudonym
        self.mention = (
            re.compile(r"(?<![A-Za-z0-9])" + re.escape(raw_subject) + r"(?![A-Za-z0-9])")
            if len(raw_subject) >= 3
            else None
        )
        self.actions: Counter[str] = Counter()
        self.words = context.words
        self.pending: list[tuple[ET.Element, str, str]] = []
        self.coded: list[tuple[ET.Element, str, str]] = []  # codes, units, types: known words only
        self.names: set[str] = set()  # element and attribute names

    def collect(self, root: ET.Element) -> None:
        """Words of the document's own identifying elements (names, addresses, telecom, ids):
        scrubbed wherever free text quotes them, as the study's identifier dictionary does."""
        words: set[str] = set()
        for element in root.iter():
            local = _local(element.tag)[1]
            if local in ("name", "addr", "telecom"):
                values = [*element.itertext(), *element.attrib.values()]
            elif local == "id":
                values = [element.get("extension") or ""]
            else:
                continue
            for value in values:
                words |= words_of(value.removeprefix("tel:").removeprefix("mailto:"))
        secret = self.context.words.secret or self.context.uid_secret
        own = {digest(secret, w) for w in words}
        self.words = freetext.StudyWords(secret, frozenset(self.context.words.digests | own))

    def token(self, value: str) -> str:
        digest = hmac.new(self.context.uid_secret, b"aecg-id\x00" + value.encode(), hashlib.sha256)
        return digest.hexdigest()[:20]

    def text(self, element: ET.Element, slot: str, value: str | None) -> None:
        """Free text to scrub: gathered during the walk, scrubbed in one batch (``finish``)."""
        if value is not None and value.strip():
            self.pending.append((element, slot, value))

    def finish(self) -> None:
        names = sorted(self.names)
        if any(
            found != name or (self.mention and self.mention.search(name))
            for name, found in zip(
                names, scrub_known(list(names), self.words.secret, set(self.words.digests)), strict=True
            )
        ):
            raise Rejected("an element or attribute name quotes a name or identifier of the document")
        coded = scrub_known([v for _, _, v in self.coded], self.words.secret, set(self.words.digests))
        for (element, name, value), cleaned in zip(self.coded, coded, strict=True):
            if cleaned != value:  # a code, unit or type that is a name of the document: not a code
                element.set(name, cleaned or "")
                self.actions["S"] += 1
        self.coded.clear()
        values = [self.mention.sub(self.pseudonym, v) if self.mention else v for _, _, v in self.pending]
        for (element, slot, value), cleaned in zip(
            self.pending, freetext.scrub_many(values, self.words), strict=True
        ):
            if cleaned == value:
                continue
            self.actions["S"] += 1
            if slot == "#text":
                element.text = cleaned
            elif slot == "#tail":
                element.tail = cleaned
            else:
                element.set(slot, cleaned)
        self.pending.clear()

    def time(self, element: ET.Element, typed: bool) -> None:
        value = element.get("value")
        if value is None:
            return
        found = TS.match(value.strip())
        if found is None:
            if typed:  # a time element whose value is not a time: nothing to keep
                self.empty(element, "C")
            return
        shifted = shift_dt(value, self.offset) if found.group(3) else None
        if shifted is None:  # YYYY or YYYYMM: cannot move by days, emptied
            self.empty(element, "C")
            return
        element.set("value", shifted)
        self.actions["C"] += 1

    def empty(self, element: ET.Element, action: str) -> None:
        for child in list(element):
            element.remove(child)
        element.attrib.clear()
        element.text = None
        element.set("nullFlavor", "MSK")
        self.actions[action] += 1

    def walk(self, element: ET.Element, parent: str) -> None:
        namespace, local = _local(element.tag)
        if namespace != HL7:
            raise Rejected(f"element {local!r} outside the HL7 v3 namespace: unknown content is not passed")
        self.names.add(local)
        self.names.update(_local(name)[1] for name in element.attrib)
        for name in list(element.attrib):
            if name.startswith("{") and not name.startswith(f"{{{XSI}}}"):
                raise Rejected(f"attribute {name.split('}')[1]!r} of {local!r} outside the HL7 v3 namespace")
            if self.mention and local != "id" and self.mention.search(element.attrib[name]):
                element.set(name, self.mention.sub(self.pseudonym, element.attrib[name]))
                self.actions["D"] += 1
        self.text(element, "#tail", element.tail)
        if local in EMPTIED:
            self.empty(element, "X")
            return
        if local == "id" or local.endswith("Id") or "extension" in element.attrib:
            # II-typed elements (id, setId, templateId...): the extension is an identifier
            self.identifier(element, parent)
            return
        typed = element.get(TYPE, "") in TIME_TYPES
        if local in TIME_ELEMENTS or typed:
            self.time(element, typed or local in ("low", "high", "center", "head"))
        elif _looks_like_date(element.get("value")):  # a date where no time was expected: moved too
            self.time(element, False)
        self.attributes(element)
        if local == "digits":
            if element.text and not DIGITS.match(element.text):
                raise Rejected("waveform digits hold something other than numbers")
        else:
            self.text(element, "#text", element.text)
        for child in list(element):
            self.walk(child, local)

    def attributes(self, element: ET.Element) -> None:
        """Attributes other than codes, units, numbers and times (display names, descriptions
        a vendor chose) are free text: scrubbed."""
        for name, value in list(element.attrib.items()):
            if name in STRUCTURAL or name == TYPE:
                self.coded.append((element, name, value))
                continue
            if name == "value" and NUMBER.match(value.strip()):
                continue
            self.text(element, name, value)

    def identifier(self, element: ET.Element, parent: str) -> None:
        for child in list(element):  # an II has attributes only: content there is hidden text
            element.remove(child)
        element.text = None
        if parent == "clinicalTrial" and _local(element.tag)[1] == "id":
            self.actions["K"] += 1
            return
        root, extension = element.get("root"), element.get("extension")
        for name in list(element.attrib):
            if name not in ("root", "extension", "assigningAuthorityName"):
                del element.attrib[name]
        element.attrib.pop("assigningAuthorityName", None)
        if root:
            element.set("root", keyed_uid(self.context.uid_secret, root))
        if parent == "trialSubject":
            element.set("extension", self.pseudonym)
            self.actions["D"] += 1
            return
        if extension:
            element.set("extension", self.token(extension))
        self.actions["U"] += 1


def _looks_like_date(value: str | None) -> bool:
    found = TS.match((value or "").strip())
    day = _date(value) if found and found.group(3) else None
    return day is not None and 1800 <= day.year <= 2200


def _date(value: str | None) -> date | None:
    if not value or len(value) < 8 or not value[:8].isdigit():
        return None
    try:
        return date(int(value[:4]), int(value[4:6]), int(value[6:8]))
    except ValueError:
        return None


def _details(root: ET.Element) -> dict[str, Any]:
    """Lead count, sampling rate and effective time of the de-identified document."""
    ns = {"h": HL7}
    leads = {
        code.get("code")
        for code in root.findall(".//h:sequence/h:code", ns)
        if (code.get("code") or "").startswith("MDC_ECG_LEAD_")
    }
    rate = None
    increment = root.find(".//h:sequence/h:value/h:increment", ns)
    if increment is not None:
        try:
            step = float(increment.get("value", ""))
            unit = increment.get("unit", "s")
            seconds = step / 1000 if unit == "ms" else step
            rate = round(1 / seconds, 3) if seconds > 0 else None
        except ValueError:
            rate = None
    low = root.find("h:effectiveTime/h:low", ns)
    effective = low.get("value") if low is not None else None
    return {
        "leads": len(leads),
        "sampling_rate_hz": rate,
        "effective_time": effective,
        "series": len(root.findall(".//h:series", ns)),
        "annotations": len(root.findall(".//h:annotation", ns)),
    }


def deidentify(data: bytes, context: Context) -> Deidentified:
    root = parse(data)
    raw_subject, protocol = _find_subject(root)
    subject = context.resolve_subject(
        {"PatientID": raw_subject, "ClinicalTrialSubjectID": raw_subject, "ClinicalTrialProtocolID": protocol}
    )
    cleaner = _Cleaner(context, subject.pseudonym, subject.offset_days, raw_subject)
    cleaner.collect(root)
    cleaner.walk(root, "")
    cleaner.finish()
    out = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    details = _details(root)
    acquired = _date(details["effective_time"])
    if acquired is None:
        first = root.find(f".//{{{HL7}}}series/{{{HL7}}}effectiveTime/{{{HL7}}}low")
        acquired = _date(first.get("value") if first is not None else None)
    metadata = {"acquisition_date": acquired, "modality": "ECG"}
    json.dumps(details)  # the index stores it as JSON: fail here, not at the commit
    return Deidentified(out, AECG, subject.pseudonym, metadata, details, cleaner.actions, "HL7 aECG v1")
