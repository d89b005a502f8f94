"""The attribute actions of DICOM PS3.15 Annex E, Table E.1-1 (Basic Application Level
Confidentiality Profile), as a lookup from tag to action.

The table is not written here: it comes from the ``dicom-anonymizer`` package (Kitware),
whose ``dicom_anonymization_databases/dicomfields_<edition>.py`` modules are generated from
the standard's own Table E.1-1 (its ``scripts/scrap_DICOM_fields.py``). We read the newest
edition the installed package ships (``PROFILE_EDITIONS``, newest first) and record which one
de-identified each file.

Action codes (PS3.15 E.1.1): D replace with a dummy value, Z replace with a zero-length
value, X remove, K keep, C clean (here: the Retain Longitudinal Temporal Information with
Modified Dates option, a date moved by the subject's offset), U replace a UID with a keyed
one. Compound codes (``Z/D``, ``X/Z``, ``X/D``, ``X/Z/D``, ``X/Z/U*``) leave the choice to
the implementation; we take the one that keeps the attribute's IOD type valid, as the
dicom-anonymizer defaults do: X/Z -> Z, Z/D, X/D, X/Z/D -> D, X/Z/U* -> U for UIDs (inside the
sequence) and Z otherwise.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache

PROFILE_EDITIONS = ("dicomfields_2026c", "dicomfields_2024b", "dicomfields_2023")
# list name in dicom-anonymizer -> the action we apply
CATEGORIES = {
    "D_TAGS": "D",
    "Z_TAGS": "Z",
    "X_TAGS": "X",
    "U_TAGS": "U",
    "Z_D_TAGS": "D",
    "X_Z_TAGS": "Z",
    "X_D_TAGS": "D",
    "X_Z_D_TAGS": "D",
    "X_Z_U_STAR_TAGS": "U*",
}
ACTIONS = ("D", "Z", "X", "K", "C", "U")


@dataclass(frozen=True)
class Profile:
    edition: str
    exact: dict[int, str]  # (group << 16 | element) -> action
    masked: tuple[tuple[int, int, int, int, str], ...]  # group, element, group mask, element mask, action
    standard_codes: dict[int, str]  # the code as Table E.1-1 writes it ("X/Z/D"), for reports

    def action(self, tag: int) -> str | None:
        found = self.exact.get(tag)
        if found is not None:
            return found
        group, element = tag >> 16, tag & 0xFFFF
        for g, e, gmask, emask, action in self.masked:
            if group & gmask == g and element & emask == e:
                return action
        return None


@cache
def load_profile() -> Profile:
    """Table E.1-1 from the newest edition dicom-anonymizer ships."""
    for edition in PROFILE_EDITIONS:
        try:
            module = importlib.import_module(f"dicomanonymizer.dicom_anonymization_databases.{edition}")
        except ModuleNotFoundError:
            continue
        exact: dict[int, str] = {}
        codes: dict[int, str] = {}
        masked: list[tuple[int, int, int, int, str]] = []
        for category, action in CATEGORIES.items():
            code = category.removesuffix("_TAGS").replace("_STAR", "*").replace("_", "/")
            for entry in getattr(module, category, []):
                if len(entry) == 4:
                    masked.append((entry[0], entry[1], entry[2], entry[3], action))
                else:
                    tag = entry[0] << 16 | entry[1]
                    exact.setdefault(tag, action)
                    codes.setdefault(tag, code)
        if not exact:
            continue
        return Profile(edition.removeprefix("dicomfields_"), exact, tuple(masked), codes)
    raise RuntimeError(
        "no DICOM PS3.15 Table E.1-1 found: install the 'dicom-anonymizer' package (a DataLibrary dependency)"
    )
