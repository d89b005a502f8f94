"""SDTM-like DM, AE, LB and VS domains as Arrow tables, deterministic by seed.

Shapes follow SDTMIG: USUBJID = STUDYID-SITEID-SUBJID, --DY counted from RFSTDTC with no
day 0, ISO 8601 dates that are sometimes partial (``2014-03``, ``1948``), lab tests with
units and reference ranges, and visits on a protocol schedule.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datalibrary.demo_data._vec import day_of, iso_dates, join, round_text, study_day, take, text, zpad

VISITS = [  # (VISITNUM, VISIT, planned study day)
    (1, "SCREENING", -14),
    (2, "BASELINE", 1),
    (3, "WEEK 2", 15),
    (4, "WEEK 4", 29),
    (5, "WEEK 8", 57),
    (6, "WEEK 12", 85),
    (7, "WEEK 24", 169),
]
LAB_TESTS = [  # code, name, category, unit, low, high, mean, sd
    ("ALT", "Alanine Aminotransferase", "CHEMISTRY", "U/L", 7.0, 55.0, 28.0, 12.0),
    ("AST", "Aspartate Aminotransferase", "CHEMISTRY", "U/L", 8.0, 48.0, 25.0, 10.0),
    ("ALB", "Albumin", "CHEMISTRY", "g/L", 35.0, 50.0, 42.0, 4.0),
    ("CREAT", "Creatinine", "CHEMISTRY", "umol/L", 53.0, 115.0, 85.0, 20.0),
    ("GLUC", "Glucose", "CHEMISTRY", "mmol/L", 3.9, 5.6, 5.2, 1.1),
    ("SODIUM", "Sodium", "CHEMISTRY", "mmol/L", 135.0, 145.0, 140.0, 3.0),
    ("K", "Potassium", "CHEMISTRY", "mmol/L", 3.5, 5.0, 4.3, 0.4),
    ("HGB", "Hemoglobin", "HEMATOLOGY", "g/L", 120.0, 170.0, 140.0, 15.0),
    ("WBC", "Leukocytes", "HEMATOLOGY", "10^9/L", 4.0, 11.0, 7.0, 2.0),
    ("PLAT", "Platelets", "HEMATOLOGY", "10^9/L", 150.0, 400.0, 250.0, 60.0),
]
VITALS = [  # code, name, unit, mean, sd, decimals
    ("SYSBP", "Systolic Blood Pressure", "mmHg", 128.0, 15.0, 0),
    ("DIABP", "Diastolic Blood Pressure", "mmHg", 78.0, 10.0, 0),
    ("PULSE", "Pulse Rate", "beats/min", 72.0, 11.0, 0),
    ("TEMP", "Temperature", "C", 36.7, 0.35, 1),
    ("WEIGHT", "Weight", "kg", 78.0, 16.0, 1),
]
AE_TERMS = [  # term, decoded term, body system
    ("HEADACHE", "Headache", "NERVOUS SYSTEM DISORDERS"),
    ("NAUSEA", "Nausea", "GASTROINTESTINAL DISORDERS"),
    ("DIZZINESS", "Dizziness", "NERVOUS SYSTEM DISORDERS"),
    (
        "APPLICATION SITE PRURITUS",
        "Application site pruritus",
        "GENERAL DISORDERS AND ADMINISTRATION SITE CONDITIONS",
    ),
    ("DIARRHOEA", "Diarrhoea", "GASTROINTESTINAL DISORDERS"),
    ("FATIGUE", "Fatigue", "GENERAL DISORDERS AND ADMINISTRATION SITE CONDITIONS"),
    ("RASH", "Rash", "SKIN AND SUBCUTANEOUS TISSUE DISORDERS"),
    ("COUGH", "Cough", "RESPIRATORY, THORACIC AND MEDIASTINAL DISORDERS"),
]
# LBREASND free text of the ingest benchmark (names and numbers the scrubber must remove)
REASONS = [
    "SAMPLE HEMOLYZED",
    "SAMPLE LOST IN TRANSIT",
    "INSUFFICIENT VOLUME",
    "PATIENT REFUSED",
    "NOT DONE PER INVESTIGATOR",
    "SPECIMEN CLOTTED, REDRAW SCHEDULED",
    "LAB CLOSED ON VISIT DAY",
    "SAMPLE HEMOLYZED PER JOHN SMITH",
    "CALLED MARIA GARCIA AT 617-555-0142 TO REDRAW",
    "REDRAW ON 12MAR2014 REQUESTED BY DR. PATEL",
]
ARMS = [("PBO", "Placebo"), ("XAN_LO", "Xanomeline Low Dose"), ("XAN_HI", "Xanomeline High Dose")]
RACES = ["WHITE", "BLACK OR AFRICAN AMERICAN", "ASIAN", "AMERICAN INDIAN OR ALASKA NATIVE"]


@dataclass(frozen=True)
class Subjects:
    """The subjects of a study: everything the other domains need to stay consistent."""

    study: str
    usubjid: pa.Array
    siteid: pa.Array
    subjid: pa.Array
    rfstdtc: np.ndarray  # days since epoch
    birth: np.ndarray  # days since epoch

    def __len__(self) -> int:
        return len(self.usubjid)


def make_subjects(rng: np.random.Generator, count: int, study: str, first: int = 0) -> Subjects:
    number = np.arange(first, first + count)
    sites = 700 + rng.integers(1, 19, size=count)
    siteid = text(sites)
    subjid = zpad(1000 + number, 4)
    usubjid = join(pa.array([study] * count), siteid, subjid, sep="-")
    rfstdtc = day_of("2012-01-01") + rng.integers(0, 3 * 365, size=count)
    age_years = np.clip(rng.normal(70, 9, size=count), 45, 94)
    birth = rfstdtc - (age_years * 365.25).astype(np.int64) - rng.integers(0, 365, size=count)
    return Subjects(study, usubjid, siteid, subjid, rfstdtc, birth)


def _repeat(subjects: Subjects, per: np.ndarray) -> tuple[np.ndarray, pa.Array]:
    index = np.repeat(np.arange(len(subjects)), per)
    return index, subjects.usubjid.take(pa.array(index))


def _seq(index: np.ndarray) -> np.ndarray:
    """--SEQ: 1, 2, ... within each subject (index is sorted by subject)."""
    starts = np.r_[0, np.flatnonzero(np.diff(index)) + 1]
    counts = np.diff(np.r_[starts, len(index)])
    return np.arange(len(index)) - np.repeat(starts, counts) + 1


def dm(rng: np.random.Generator, subjects: Subjects) -> pa.Table:
    n = len(subjects)
    age = ((subjects.rfstdtc - subjects.birth) / 365.25).astype(np.int64)
    arm = rng.integers(0, len(ARMS), size=n)
    end = subjects.rfstdtc + rng.integers(60, 200, size=n)
    dmdtc = subjects.rfstdtc - rng.integers(7, 21, size=n)
    birth_iso = iso_dates(subjects.birth)
    precision = rng.random(n)  # some birth dates known only to the month or the year
    brthdtc = pc.if_else(
        pa.array(precision < 0.15),
        pc.utf8_slice_codeunits(birth_iso, 0, 4),
        pc.if_else(pa.array(precision < 0.4), pc.utf8_slice_codeunits(birth_iso, 0, 7), birth_iso),
    )
    return pa.table(
        {
            "STUDYID": pa.array([subjects.study] * n),
            "DOMAIN": pa.array(["DM"] * n),
            "USUBJID": subjects.usubjid,
            "SUBJID": subjects.subjid,
            "RFSTDTC": iso_dates(subjects.rfstdtc),
            "RFENDTC": iso_dates(end),
            "SITEID": subjects.siteid,
            "BRTHDTC": brthdtc,
            "AGE": pa.array(age),
            "AGEU": pa.array(["YEARS"] * n),
            "SEX": take(["F", "M"], rng.integers(0, 2, size=n)),
            "RACE": take(RACES, rng.choice(len(RACES), size=n, p=[0.8, 0.1, 0.07, 0.03])),
            "ETHNIC": take(
                ["NOT HISPANIC OR LATINO", "HISPANIC OR LATINO"], (rng.random(n) < 0.08).astype(int)
            ),
            "ARMCD": take([a for a, _ in ARMS], arm),
            "ARM": take([b for _, b in ARMS], arm),
            "COUNTRY": pa.array(["USA"] * n),
            "DMDTC": iso_dates(dmdtc),
            "DMDY": pa.array(study_day(dmdtc, subjects.rfstdtc)),
        }
    )


def _visit_grid(rng: np.random.Generator, subjects: Subjects, tests: int) -> dict[str, np.ndarray]:
    """One row per subject x visit x test, with the visit date jittered around its plan."""
    n, v = len(subjects), len(VISITS)
    subject = np.repeat(np.arange(n), v * tests)
    visit = np.tile(np.repeat(np.arange(v), tests), n)
    test = np.tile(np.arange(tests), n * v)
    planned = np.array([d for _, _, d in VISITS])[visit]
    jitter = rng.integers(-2, 3, size=n * v)[np.repeat(np.arange(n * v), tests)]
    offset = np.where(planned > 0, planned - 1, planned) + np.where(visit > 1, jitter, 0)
    date = subjects.rfstdtc[subject] + offset
    return {"subject": subject, "visit": visit, "test": test, "date": date}


def lb(rng: np.random.Generator, subjects: Subjects) -> pa.Table:
    grid = _visit_grid(rng, subjects, len(LAB_TESTS))
    return lb_rows(rng, subjects, grid)


def lb_rows(rng: np.random.Generator, subjects: Subjects, grid: dict[str, np.ndarray]) -> pa.Table:
    test, visit, subject = grid["test"], grid["visit"], grid["subject"]
    spec = list(zip(*LAB_TESTS, strict=True))
    low, high = np.array(spec[4])[test], np.array(spec[5])[test]
    mean, sd = np.array(spec[6])[test], np.array(spec[7])[test]
    value = np.round(np.abs(rng.normal(mean, sd)), 2)
    nrind = np.where(value < low, 1, np.where(value > high, 2, 0))
    rows = len(test)
    return pa.table(
        {
            "STUDYID": pa.array([subjects.study] * rows),
            "DOMAIN": pa.array(["LB"] * rows),
            "USUBJID": subjects.usubjid.take(pa.array(subject)),
            "LBSEQ": pa.array(_seq(subject)),
            "LBTESTCD": take(list(spec[0]), test),
            "LBTEST": take(list(spec[1]), test),
            "LBCAT": take(list(spec[2]), test),
            "LBORRES": text(value),
            "LBORRESU": take(list(spec[3]), test),
            "LBORNRLO": text(low),
            "LBORNRHI": text(high),
            "LBSTRESC": text(value),
            "LBSTRESN": pa.array(value),
            "LBSTRESU": take(list(spec[3]), test),
            "LBSTNRLO": pa.array(low),
            "LBSTNRHI": pa.array(high),
            "LBNRIND": take(["NORMAL", "LOW", "HIGH"], nrind),
            "VISITNUM": pa.array(np.array([n for n, _, _ in VISITS])[visit]),
            "VISIT": take([name for _, name, _ in VISITS], visit),
            "LBDTC": iso_dates(grid["date"]),
            "LBDY": pa.array(study_day(grid["date"], subjects.rfstdtc[subject])),
        }
    )


def vs(rng: np.random.Generator, subjects: Subjects) -> pa.Table:
    grid = _visit_grid(rng, subjects, len(VITALS))
    test, visit, subject = grid["test"], grid["visit"], grid["subject"]
    spec = list(zip(*VITALS, strict=True))
    value = rng.normal(np.array(spec[3])[test], np.array(spec[4])[test])
    decimals = np.array(spec[5])[test]
    value = np.where(decimals == 0, np.round(value), np.round(value, 1))
    rows = len(test)
    return pa.table(
        {
            "STUDYID": pa.array([subjects.study] * rows),
            "DOMAIN": pa.array(["VS"] * rows),
            "USUBJID": subjects.usubjid.take(pa.array(subject)),
            "VSSEQ": pa.array(_seq(subject)),
            "VSTESTCD": take(list(spec[0]), test),
            "VSTEST": take(list(spec[1]), test),
            "VSORRES": round_text(value, 1),
            "VSORRESU": take(list(spec[2]), test),
            "VSSTRESN": pa.array(value),
            "VSSTRESU": take(list(spec[2]), test),
            "VISITNUM": pa.array(np.array([n for n, _, _ in VISITS])[visit]),
            "VISIT": take([name for _, name, _ in VISITS], visit),
            "VSDTC": iso_dates(grid["date"]),
            "VSDY": pa.array(study_day(grid["date"], subjects.rfstdtc[subject])),
        }
    )


def ae(rng: np.random.Generator, subjects: Subjects) -> pa.Table:
    per = rng.poisson(1.6, size=len(subjects))
    subject, usubjid = _repeat(subjects, per)
    rows = len(subject)
    term = rng.integers(0, len(AE_TERMS), size=rows)
    start = subjects.rfstdtc[subject] + rng.integers(1, 150, size=rows)
    end = start + rng.integers(1, 30, size=rows)
    partial = rng.random(rows) < 0.1  # onset known only to the month: no study day
    start_iso = iso_dates(start)
    stdtc = pc.if_else(pa.array(partial), pc.utf8_slice_codeunits(start_iso, 0, 7), start_iso)
    stdy = pa.array(study_day(start, subjects.rfstdtc[subject]), mask=partial)
    ongoing = rng.random(rows) < 0.15
    return pa.table(
        {
            "STUDYID": pa.array([subjects.study] * rows),
            "DOMAIN": pa.array(["AE"] * rows),
            "USUBJID": usubjid,
            "AESEQ": pa.array(_seq(subject)),
            "AETERM": take([t for t, _, _ in AE_TERMS], term),
            "AEDECOD": take([d for _, d, _ in AE_TERMS], term),
            "AEBODSYS": take([b for _, _, b in AE_TERMS], term),
            "AESEV": take(["MILD", "MODERATE", "SEVERE"], rng.choice(3, size=rows, p=[0.6, 0.32, 0.08])),
            "AESER": take(["N", "Y"], (rng.random(rows) < 0.04).astype(int)),
            "AEREL": take(["NONE", "REMOTE", "POSSIBLE", "PROBABLE"], rng.integers(0, 4, size=rows)),
            "AESTDTC": stdtc,
            "AEENDTC": pa.array(iso_dates(end).to_pylist(), mask=ongoing),
            "AESTDY": stdy,
        }
    )
