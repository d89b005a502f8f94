"""A small sample of the hostile-input fuzzing of benchmarks/hostile.py, run in CI: every
mutated file of every format either reads or is refused with a ReadError, never another error."""

from __future__ import annotations

import pytest
from benchmarks.hostile import corpus, fuzz


def test_fuzzed_files_are_read_or_refused_cleanly() -> None:
    results = fuzz(1.5)
    assert set(results) == {"csv", "xpt", "json", "ndjson", "fhir", "zip"}
    for format_, (tried, handled, problems) in results.items():
        assert tried > 0 and handled == tried, (format_, problems)


@pytest.mark.parametrize(
    "case", [c for c in corpus() if c.format in ("xpt", "json", "zip")], ids=lambda c: f"{c.format}-{c.name}"
)
def test_corpus_cases_are_refused_by_the_readers(case, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from datalibrary.ingest.readers import ReadError, ReadLimits, open_reader
    from datalibrary.ingest.readers.archive import extract

    path = case.make(tmp_path)
    try:
        if case.format == "zip":
            extract(path, tmp_path / "out")
        else:
            for _ in open_reader(path, format=case.format, limits=ReadLimits(max_columns=4096)).batches():
                pass
        outcome, message = "succeeded", ""
    except ReadError as exc:
        outcome, message = "quarantined", exc.detail
    assert outcome == case.state and case.reason.lower() in message.lower(), message
