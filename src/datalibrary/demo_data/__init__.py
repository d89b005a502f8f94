"""Synthetic clinical data: SDTM-like domains and EHR-like tables with fake personal data.

Deterministic by seed, vectorized (numpy + pyarrow), any size. ``generate_study`` writes a
small study as CSV files; ``write_lb_csv`` streams an LB-like CSV of a target size in
bounded memory for the ingestion benchmark.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from datalibrary.demo_data import ehr, sdtm

__all__ = ["generate_study", "write_lb_csv", "study_tables"]


def study_tables(*, subjects: int = 50, seed: int = 0, study: str = "DEMO01") -> dict[str, pa.Table]:
    """The tables of one study by name: dm, ae, lb, vs (SDTM-like), patients, encounters (EHR-like)."""
    if subjects < 1:
        raise ValueError("subjects must be at least 1")
    rng = np.random.default_rng(seed)
    people = sdtm.make_subjects(rng, subjects, study)
    patient_table = ehr.patients(rng, people)
    return {
        "dm": sdtm.dm(rng, people),
        "ae": sdtm.ae(rng, people),
        "lb": sdtm.lb(rng, people),
        "vs": sdtm.vs(rng, people),
        "patients": patient_table,
        "encounters": ehr.encounters(rng, people, patient_table["patient_id"].combine_chunks()),
    }


def generate_study(out_dir: Path, *, subjects: int = 50, seed: int = 0, study: str = "DEMO01") -> list[Path]:
    """Write ``<name>.csv`` for every table of ``study_tables`` into ``out_dir``; returns the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, table in study_tables(subjects=subjects, seed=seed, study=study).items():
        path = out_dir / f"{name}.csv"
        pacsv.write_csv(table, path)
        paths.append(path)
    return paths


def write_lb_csv(
    path: Path,
    target_bytes: int,
    *,
    seed: int = 0,
    study: str = "BENCH01",
    subjects_per_chunk: int = 2_000,
    text: bool = False,
) -> int:
    """Stream LB-like rows into one CSV until it holds at least ``target_bytes``; returns rows.

    Memory stays bounded: each chunk of subjects is generated, written and dropped. ``text``
    adds ``LBREASND`` (free text, scrubbed by the ``sdtm`` policy): empty on most rows, a
    reason on one in ten, some of which name a person or give a phone number.
    """
    rng = np.random.default_rng(seed)
    rows = 0
    first = 0

    def chunk(people: sdtm.Subjects) -> pa.Table:
        table = sdtm.lb(rng, people)
        if text:
            pick = rng.integers(0, len(sdtm.REASONS) * 10, table.num_rows)
            reasons = pa.array(["", *sdtm.REASONS]).take(
                pa.array(np.where(pick % 10 == 0, pick // 10 + 1, 0))
            )
            table = table.append_column("LBREASND", reasons)
        return table

    with pacsv.CSVWriter(path, chunk(sdtm.make_subjects(rng, 1, study)).schema) as writer:
        while Path(path).stat().st_size < target_bytes:
            people = sdtm.make_subjects(rng, subjects_per_chunk, study, first=first)
            table = chunk(people)
            writer.write_table(table)
            rows += table.num_rows
            first += subjects_per_chunk
    return rows
