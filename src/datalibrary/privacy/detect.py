"""Fail-closed scan of a column no rule covers: does it look identifying?

Two kinds of evidence, never the values themselves: the column's name matches an
identifier pattern (name, SSN, email, phone, address, birth date, MRN...), or values of a
content sample match identifier shapes. The scan runs only on uncovered columns, on at most
``SAMPLE`` values of the first batch, vectorized with Arrow's regex kernels.
"""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.compute as pc

SAMPLE = 2000

NAME_PATTERNS: dict[str, str] = {
    "name": r"(^|_)(FIRST|LAST|MIDDLE|MAIDEN|FAMILY|GIVEN|SUR|FULL|PATIENT|SUBJECT|PERSON)?_?NAMES?$"
    r"|^(FNAME|LNAME|NAME|FIRST|LAST|MIDDLE|MAIDEN)$",
    "ssn": r"SSN|SOCIAL_?SEC|NATIONAL_?ID|NIN[O]?$",
    "email": r"E_?MAIL",
    "phone": r"PHONE|MOBILE|FAX|TEL(EPHONE)?$",
    "address": r"ADDRESS|ADDR|STREET|ZIP|POSTAL|POSTCODE|CITY|COUNTY|LAT(ITUDE)?$|LON(G|GITUDE)?$",
    "birth date": r"BIRTH|DOB$|BRTHDTC",
    "medical record number": r"MRN|MED(ICAL)?_?REC|CHART_?(NO|NUM)",
    "identity document": r"PASSPORT|DRIVERS?|LICEN[CS]E|INSURANCE_?ID|MEMBER_?ID",
    "free text": r"NOTES?$|COMMENT|REMARK|NARRATIVE|FREE_?TEXT",
}
_NAME_RES = {kind: re.compile(pattern, re.IGNORECASE) for kind, pattern in NAME_PATTERNS.items()}

CONTENT_PATTERNS: dict[str, str] = {
    "ssn": r"\b\d{3}-\d{2}-\d{4}\b",
    "email": r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}",
    "phone": r"(\+\d{1,3}[ .-]?)?\(?\b\d{3}\)?[ .-]\d{3}[ .-]\d{4}\b",
    "street address": r"\b\d{1,6} [A-Z][a-z]+( [A-Z][a-z]+)* "
    r"(Street|St|Avenue|Ave|Road|Rd|Lane|Ln|Drive|Dr|Park|Way|Court|Ct|Fork|Boulevard|Blvd)\b",
    "medical record number": r"(?i)\bMRN[:# ]*\d{4,}",
    "person name": r"^(Mr|Mrs|Ms|Dr)\.? [A-Z][a-z]+",
}


def name_evidence(name: str) -> list[str]:
    """Evidence from a variable's name alone (also used for SUPPQUAL ``QNAM`` values)."""
    return [f"name looks like {kind}" for kind, pattern in _NAME_RES.items() if pattern.search(name)]


def scan_column(name: str, column: pa.Array) -> list[str]:
    """Evidence that a column holds identifiers, as short descriptions (no values)."""
    evidence = name_evidence(name)
    sample = column.slice(0, SAMPLE)
    if pa.types.is_dictionary(sample.type):
        sample = sample.cast(sample.type.value_type)
    if pa.types.is_string(sample.type) or pa.types.is_large_string(sample.type):
        present = pc.drop_null(sample)
        total = len(present)
        for kind, pattern in CONTENT_PATTERNS.items():
            hits = pc.sum(pc.match_substring_regex(present, pattern)).as_py() or 0
            if hits:
                evidence.append(f"{hits} of {total} sampled values look like {kind}")
    return evidence
