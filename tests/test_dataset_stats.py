"""The dataset page's statistics: exact distinct counts of key columns and a compression
ratio that says the right direction."""

from __future__ import annotations

from pathlib import Path

import pytest

from datalibrary.lake.datasets import compression_text
from tests.helpers import Platform
from tests.lake_helpers import add_policy, ingest, write_csv


@pytest.mark.parametrize("rows", [40, 1000, 5003])
def test_distinct_counts_are_exact(sqlite_platform: Platform, tmp_path: Path, rows: int) -> None:
    add_policy(sqlite_platform)
    write_csv(
        tmp_path / "dm.csv",
        {
            "USUBJID": [f"01-{700 + i % 4}-{i:04d}" for i in range(rows)],
            "SITEID": [str(700 + i % 4) for i in range(rows)],
            "AGE": [20 + i % 61 for i in range(rows)],
        },
    )
    assert ingest(sqlite_platform, tmp_path / "dm.csv", "study.dm")[1] == "succeeded"
    body = sqlite_platform.as_user("admin").get("/api/v1/datasets/study/dm").json()
    profile = {p["name"]: p for p in body["profile"]}
    assert profile["USUBJID"]["distinct"] == rows and profile["USUBJID"]["distinct_exact"] is True
    assert profile["SITEID"]["distinct"] == 4
    assert profile["AGE"]["distinct"] == min(rows, 61)
    assert body["subject_column"] == "USUBJID"


def test_compression_says_the_right_direction(sqlite_platform: Platform, tmp_path: Path) -> None:
    assert compression_text(1000, 250) == "4.00× smaller than the source"
    assert compression_text(850, 1000).startswith("1.18× larger than the source")
    assert compression_text(0, 10) is None
    add_policy(sqlite_platform)
    write_csv(tmp_path / "tiny.csv", {"A": [1, 2]})
    ingest(sqlite_platform, tmp_path / "tiny.csv", "s.tiny")
    admin = sqlite_platform.as_user("admin")
    body = admin.get("/api/v1/datasets/s/tiny").json()
    assert body["size_bytes"] > body["source_bytes"] and "larger than the source" in body["compression"]
    page = admin.get("/catalog/s/tiny")
    assert page.status_code == 200, page.status_code
    assert "larger than the source" in page.text and "smaller than the source" not in page.text
