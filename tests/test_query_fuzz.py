"""A sample of the DuckDB-derived fuzz corpus (the whole corpus: scripts/fuzz_query_corpus.py):
every statement the guard accepts runs as a restricted caller and returns nothing outside the
grant."""

from __future__ import annotations

from pathlib import Path

from tests.fuzz_corpus import load, make_view, run


def test_corpus_sample_leaks_nothing(tmp_path: Path) -> None:
    statements = load(limit=150, every=45)
    counts = run(statements, make_view(tmp_path))
    assert counts.tried == len(statements) >= 140
    assert counts.ran > 20  # the sample reaches the engine, not only the guard
    assert counts.leaked == 0, counts.leaks
