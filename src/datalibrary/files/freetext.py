"""Free text inside files (aECG annotations, PDF and text documents), checked with the SAME
detection the tabular policies use for free text: ``privacy.actions.SCRUB_PATTERNS`` (dates,
names after a title, SSN, phone, MRN, long numbers, addresses...), the names recognizer
(``privacy.names``) and the study-wide identifier dictionary (words seen in identifying
columns of any table of the study, as keyed digests).

``findings`` says WHAT was found (kinds, never the values: quarantine reasons are shown to
stewards and written to the audit log); ``scrub`` replaces what was found with typed
placeholders, as ``scrub_text`` does in a table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from datalibrary.privacy.actions import SCRUB_PATTERNS
from datalibrary.privacy.identifiers import PLACEHOLDER as KNOWN_PLACEHOLDER
from datalibrary.privacy.identifiers import scrub_known
from datalibrary.privacy.names import PLACEHOLDER as NAME_PLACEHOLDER
from datalibrary.privacy.names import scrub_names

MAX_CHARS = 20_000_000  # text beyond this is not checked: the caller refuses such a document
# a word with a possessive or elided tail ("Canary's", "Canary’s"): the dictionary's words have none
_TAILED = re.compile(r"\b([A-Za-z0-9][A-Za-z0-9-]*)(['\u2019][A-Za-z]{1,2})\b")
_PLACEHOLDER = re.compile(r"\[(" + "|".join(re.escape(label) for label, _ in SCRUB_PATTERNS) + r")\]")


@dataclass(frozen=True)
class StudyWords:
    """The study's identifier dictionary (keyed digests) and the key that made them."""

    secret: bytes = b""
    digests: frozenset[str] = field(default_factory=frozenset)


def _patterns_many(texts: list[str]) -> list[str]:
    array = pa.array(texts, type=pa.string())
    for label, pattern in SCRUB_PATTERNS:
        array = pc.replace_substring_regex(array, pattern, f"[{label}]")
    return [str(t) for t in array.to_pylist()]


def _patterns(text: str) -> str:
    return _patterns_many([text])[0]


def _known(texts: list[str], words: StudyWords) -> list[str]:
    """``scrub_known``, and the stem of a possessive checked too ("Canary's" is "Canary")."""
    out = [t or "" for t in scrub_known(list(texts), words.secret, set(words.digests))]

    def stem(match: re.Match[str]) -> str:
        found = scrub_known([match.group(1)], words.secret, set(words.digests))[0]
        return match.group(0) if found == match.group(1) else f"{found}{match.group(2)}"

    return [_TAILED.sub(stem, t) for t in out]


def scrub_known_words(text: str, words: StudyWords) -> str:
    """Only the words of the study's identifier dictionary replaced (for structured text
    such as header fields, where the patterns would break codes)."""
    return _known([text], words)[0] if words.digests else text


def scrub_many(texts: list[str], words: StudyWords | None = None) -> list[str]:
    """Each text with identifiers replaced by placeholders ([DATE], [NAME], [MRN]...): one
    vectorized pass of the patterns for all of them."""
    if not texts:
        return []
    out = [t or "" for t in scrub_names(list(_patterns_many(texts)))]
    if words is not None and words.digests:
        out = _known(out, words)
    return out


def scrub(text: str, words: StudyWords | None = None) -> str:
    """``text`` with identifiers replaced by placeholders ([DATE], [NAME], [MRN]...)."""
    return scrub_many([text], words)[0]


def findings(text: str, words: StudyWords | None = None) -> list[str]:
    """The kinds of identifier ``text`` holds (sorted, no values): empty when it is clean."""
    kinds: set[str] = set()
    patterned = _patterns(text)
    kinds.update(m.group(1) for m in _PLACEHOLDER.finditer(patterned) if m.group(0) not in text)
    named = scrub_names([patterned])[0] or ""
    if named.count(NAME_PLACEHOLDER) > patterned.count(NAME_PLACEHOLDER):
        kinds.add("NAME")
    if words is not None and words.digests:
        known = _known([named], words)[0]
        if known.count(KNOWN_PLACEHOLDER) > named.count(KNOWN_PLACEHOLDER):
            kinds.add("STUDY IDENTIFIER")
    return sorted(kinds)


def describe(kinds: list[str]) -> str:
    labels = {
        "NAME": "a person name",
        "DATE": "a date",
        "SSN": "a social security number",
        "MRN": "a medical record number",
        "ID": "a long identifier number",
        "PHONE": "a phone number",
        "EMAIL": "an e-mail address",
        "ADDRESS": "an address",
        "URL": "a URL",
        "IP": "an IP address",
        "STUDY IDENTIFIER": "a name or identifier seen in the study's identifying columns",
    }
    return ", ".join(labels.get(k, k.lower()) for k in kinds)
