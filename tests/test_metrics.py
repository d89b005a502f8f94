"""Domain metrics on /metrics: parsed with prometheus_client's own parser, on both databases."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import Platform
from tests.lake_helpers import add_policy, ingest, write_csv


def _families(platform: Platform) -> dict[str, object]:
    response = platform.anonymous.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {family.name: family for family in text_string_to_metric_families(response.text)}


def _value(family: object, name: str, **labels: str) -> float:
    for sample in family.samples:  # type: ignore[attr-defined]
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
            return sample.value
    raise AssertionError(f"no sample {name} {labels}")


def test_domain_metrics_follow_ingestion_and_queries(platform: Platform, tmp_path: Path) -> None:
    empty = _families(platform)
    assert _value(empty["datalibrary_ingest_jobs"], "datalibrary_ingest_jobs_total", outcome="succeeded") == 0
    assert _value(empty["datalibrary_ingest_quarantined_files"], "datalibrary_ingest_quarantined_files") == 0

    add_policy(platform)
    source = write_csv(tmp_path / "lb.csv", {"USUBJID": ["s1", "s2", "s3"], "LBORRES": [1.5, 2.5, 3.5]})
    ingest(platform, source, "study.lb")
    admin = platform.as_user("admin")
    granted = admin.post("/api/v1/grants", json={"principal": "user:admin", "table": "study.lb"})
    assert granted.status_code == 201, granted.text
    assert admin.post("/api/v1/query", json={"sql": "SELECT count(*) FROM study.lb"}).status_code == 200
    assert admin.post("/api/v1/query", json={"sql": "DROP TABLE study.lb"}).status_code >= 400

    families = _families(platform)
    jobs = families["datalibrary_ingest_jobs"]
    assert _value(jobs, "datalibrary_ingest_jobs_total", outcome="succeeded") == 1
    assert _value(families["datalibrary_ingest_rows"], "datalibrary_ingest_rows_total") == 3
    assert _value(families["datalibrary_ingest_source_bytes"], "datalibrary_ingest_source_bytes_total") == (
        source.stat().st_size
    )
    duration = families["datalibrary_ingest_job_duration_seconds"]
    assert duration.type == "histogram"
    count = _value(duration, "datalibrary_ingest_job_duration_seconds_count", outcome="succeeded")
    assert count == 1
    assert (
        _value(duration, "datalibrary_ingest_job_duration_seconds_bucket", outcome="succeeded", le="+Inf")
        == 1
    )
    assert _value(duration, "datalibrary_ingest_job_duration_seconds_sum", outcome="succeeded") >= 0

    queries = families["datalibrary_queries"]
    assert _value(queries, "datalibrary_queries_total", outcome="success") == 1
    assert sum(s.value for s in queries.samples if s.labels["outcome"] != "success") == 1
    assert _value(families["datalibrary_query_scanned_bytes"], "datalibrary_query_scanned_bytes_total",
                  outcome="success") > 0  # fmt: skip
    assert families["datalibrary_query_duration_seconds"].type == "histogram"
    assert _value(families["datalibrary_lineage_events"], "datalibrary_lineage_events_total") >= 2
    assert "datalibrary_lineage_outbox_events" in families
    assert "datalibrary_workspaces" in families
    assert "datalibrary_budget_alerts" in families


def test_metrics_carry_no_identifiers(platform: Platform, tmp_path: Path) -> None:
    """Labels name outcomes and states, never users, tables or files: /metrics is unauthenticated."""
    add_policy(platform)
    ingest(platform, write_csv(tmp_path / "secret_name.csv", {"A": [1]}), "hidden.secret_table")
    text = platform.anonymous.get("/metrics").text
    for word in ("secret_name", "secret_table", "hidden", "admin"):
        assert word not in text
