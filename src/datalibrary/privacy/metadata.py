"""Identifiers in metadata: source file names, column labels, cached profiles.

A delivered file may be named ``MRN1234567_SMITH_JOHN_DOB_1950-03-12.xpt`` and an XPT or
define.xml label may quote an SSN. Labels are shown to every catalog reader, snapshot
properties to every engine reading the table: so labels are scrubbed like free text, and
the snapshot's ``source-file`` is a keyed pseudonym of the file name (the name itself stays
only in the restricted ingestion job, audit and lineage records).
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import select
from sqlalchemy.orm import Session

from datalibrary.lake.models import Dataset
from datalibrary.privacy.actions import SCRUB_PATTERNS, study_key, tokens_for
from datalibrary.privacy.identifiers import scrub_known
from datalibrary.privacy.names import scrub_names
from datalibrary.privacy.policy import PolicyStep


def source_pseudonym(step: PolicyStep, source_name: str) -> str:
    """``file-<token>.<ext>``: the same file name gives the same token within a study."""
    base = source_name.rsplit("/", 1)[-1]
    extension = base.rsplit(".", 1)[-1].lower() if "." in base else ""
    token = tokens_for(study_key(step.context), [base], scope="source-file", length=16)[0]
    return f"file-{token}" + (f".{extension}" if extension.isalnum() and len(extension) <= 8 else "")


def scrub_label(step: PolicyStep, text: str) -> str:
    """A column or dataset label scrubbed like free text (patterns + the study's identifiers)."""
    array = pa.array([text], type=pa.string())
    for label, pattern in SCRUB_PATTERNS:
        array = pc.replace_substring_regex(array, pattern, f"[{label}]")
    out = array.to_pylist()
    dictionary = step.context.extra.get("identifier_dictionary")
    if dictionary is not None:
        out = scrub_known(out, dictionary.secret, dictionary.digests())
    return str(out[0])


def looks_identifying(text: str) -> bool:
    """True when the scrubber would change ``text`` (patterns or the names recognizer)."""
    array = pa.array([text], type=pa.string())
    for label, pattern in SCRUB_PATTERNS:
        array = pc.replace_substring_regex(array, pattern, f"[{label}]")
    return array.to_pylist()[0] != text or scrub_names([text])[0] != text


def forget_profiles(session: Session, namespace: str, tables: list[str]) -> None:
    """Cached column profiles (min/max) of rewritten tables may quote a scrubbed name."""
    names = [t.split(".", 1)[1] for t in tables]
    for dataset in session.scalars(
        select(Dataset).where(Dataset.namespace == namespace, Dataset.name.in_(names))
    ):
        dataset.profile, dataset.profile_snapshot_id = None, None
