"""EHR-like tables with FAKE personal data (names, SSN-like numbers, contacts, addresses),
so anonymization has identifiers to remove: every value is invented from the seed.

SSN-like numbers use the 900-999 area, which is never issued; some ZIP codes fall in the
HIPAA restricted ZIP3 list and a few patients are older than 89.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datalibrary.demo_data._vec import day_of, iso_dates, join, take, text, zpad
from datalibrary.demo_data.sdtm import Subjects

FIRST = [
    "Alice",
    "Bruno",
    "Chloe",
    "Dmitri",
    "Elena",
    "Farid",
    "Grace",
    "Hiro",
    "Ines",
    "Jonas",
    "Keiko",
    "Liam",
    "Maya",
    "Nadia",
    "Omar",
    "Priya",
    "Quentin",
    "Rosa",
    "Sven",
    "Tala",
]
LAST = [
    "Abbott",
    "Baptiste",
    "Castillo",
    "Dubois",
    "Eriksen",
    "Fischer",
    "Garcia",
    "Haddad",
    "Ivanova",
    "Jensen",
    "Kowalski",
    "Lindqvist",
    "Moreau",
    "Nakamura",
    "Okafor",
    "Petrov",
    "Quinn",
    "Rossi",
]
STREETS = ["Maple Ave", "Oak St", "Cedar Ln", "Elm Dr", "Pine Rd", "Birch Way", "Harbor Blvd"]
CITIES = [
    ("Springfield", "IL", "627"),
    ("Riverton", "WY", "825"),
    ("Fairview", "TN", "370"),
    ("Franklin", "MA", "020"),
    ("Greenville", "SC", "296"),
    ("Madison", "WI", "537"),
]
RESTRICTED_ZIP3 = [
    "036",
    "059",
    "063",
    "102",
    "203",
    "556",
    "692",
    "790",
    "821",
    "823",
    "830",
    "831",
    "878",
    "879",
    "884",
    "890",
    "893",
]
ENCOUNTER_TYPES = ["ambulatory", "emergency", "inpatient", "wellness", "outpatient"]


def patients(rng: np.random.Generator, subjects: Subjects) -> pa.Table:
    n = len(subjects)
    first = take(FIRST, rng.integers(0, len(FIRST), size=n))
    last = take(LAST, rng.integers(0, len(LAST), size=n))
    city = rng.integers(0, len(CITIES), size=n)
    zip3 = take([c[2] for c in CITIES], city)
    restricted = rng.random(n) < 0.12
    zip3 = pc.if_else(
        pa.array(restricted), take(RESTRICTED_ZIP3, rng.integers(0, len(RESTRICTED_ZIP3), size=n)), zip3
    )
    birth = subjects.birth.copy()
    old = rng.random(n) < 0.06  # a few very old patients: ages over 89 must become "90+"
    birth = np.where(old, day_of("2024-01-01") - rng.integers(90 * 365 + 30, 99 * 365, size=n), birth)
    age = ((day_of("2024-01-01") - birth) / 365.25).astype(np.int64)
    ssn = join(
        text(rng.integers(900, 1000, size=n)),
        zpad(rng.integers(1, 100, size=n), 2),
        zpad(rng.integers(1, 10000, size=n), 4),
        sep="-",
    )
    local = pc.utf8_lower(join(first, last, sep="."))
    return pa.table(
        {
            "patient_id": join(pa.array(["P"] * n), zpad(np.arange(1, n + 1), 7)),
            "mrn": join(pa.array(["MRN"] * n), zpad(rng.integers(0, 10**8, size=n), 8)),
            "usubjid": subjects.usubjid,
            "first_name": first,
            "last_name": last,
            "ssn": ssn,
            "birth_date": iso_dates(birth),
            "age": pa.array(age),
            "sex": take(["F", "M"], rng.integers(0, 2, size=n)),
            "email": join(
                local,
                take(["example.org", "example.net", "mail.example"], rng.integers(0, 3, size=n)),
                sep="@",
            ),
            "phone": join(
                pa.array(["+1"] * n),
                text(rng.integers(200, 999, size=n)),
                zpad(rng.integers(0, 10**7, size=n), 7),
                sep="-",
            ),
            "address": join(
                text(rng.integers(1, 9999, size=n)),
                take(STREETS, rng.integers(0, len(STREETS), size=n)),
                sep=" ",
            ),
            "city": take([c[0] for c in CITIES], city),
            "state": take([c[1] for c in CITIES], city),
            "zip": join(zip3, zpad(rng.integers(0, 100, size=n), 2)),
        }
    )


def encounters(rng: np.random.Generator, subjects: Subjects, patient_ids: pa.Array) -> pa.Table:
    per = rng.integers(1, 6, size=len(subjects))
    index = np.repeat(np.arange(len(subjects)), per)
    rows = len(index)
    start = subjects.rfstdtc[index] + rng.integers(-400, 200, size=rows)
    kind = rng.choice(len(ENCOUNTER_TYPES), size=rows, p=[0.45, 0.1, 0.05, 0.2, 0.2])
    length = np.where(kind == 2, rng.integers(1, 12, size=rows), 0)
    doctor = join(pa.array(["Dr."] * rows), take(LAST, rng.integers(0, len(LAST), size=rows)), sep=" ")
    return pa.table(
        {
            "encounter_id": join(pa.array(["E"] * rows), zpad(np.arange(1, rows + 1), 8)),
            "patient_id": patient_ids.take(pa.array(index)),
            "start_date": iso_dates(start),
            "end_date": iso_dates(start + length),
            "encounter_type": take(ENCOUNTER_TYPES, kind),
            "provider": doctor,
            "note": join(pa.array(["Seen by"] * rows), doctor, sep=" "),
        }
    )
