"""What every format module takes and returns (the ``Context`` of a collection and study, the
``Deidentified`` result) and the media types: below ``formats`` (the dispatch) and the format
modules it dispatches to, so the dispatch imports them and they import nothing of it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datalibrary.files import dicom
from datalibrary.files.dicom import Subject
from datalibrary.files.freetext import StudyWords

AECG = "application/hl7-v3+xml"
VCF = "text/vcf"
PDF = "application/pdf"
TEXT = "text/plain"


@dataclass
class Context:
    """What a format needs from its collection and study."""

    # fields (PatientID, ClinicalTrialSubjectID, ClinicalTrialProtocolID) -> the subject
    resolve_subject: Callable[[Mapping[str, str]], Subject]
    uid_secret: bytes
    dicom_options: dicom.DeidOptions
    tier: str = "standard"
    classification: str = ""
    words: StudyWords = field(default_factory=StudyWords)


@dataclass
class Deidentified:
    data: bytes | Path  # a spool file when a DICOM file was given on disk (the caller deletes it)
    media_type: str
    subject: str | None
    metadata: dict[str, Any]  # index columns: acquisition_date, modality, ...
    details: dict[str, Any]  # format metadata (the index's ``details`` column, JSON)
    actions: Counter[str]
    profile: str
    attributes: list[dict[str, str]] = field(default_factory=list)  # DICOM: what was done per attribute
