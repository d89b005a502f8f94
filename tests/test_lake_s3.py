"""The same lake behaviour on an S3-compatible store: moto's server, a real S3-protocol
endpoint on loopback (not an in-process mock)."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from datalibrary.config import LakeSettings
from datalibrary.lake.catalog import forget_lakes, open_lake, parse_table_name
from datalibrary.lake.erasure import erase_subject
from datalibrary.lake.maintenance import maintain
from datalibrary.lake.scan_planning import plan_table
from datalibrary.lake.storage import open_storage
from tests.helpers import Platform
from tests.lake_helpers import SYSTEM, add_policy, ingest, read_table, write_csv

logging.getLogger("werkzeug").setLevel(logging.WARNING)


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_platform(sqlite_platform: Platform, s3_endpoint: str) -> Iterator[Platform]:
    import boto3

    bucket = f"lake-{id(sqlite_platform) % 100000}"
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
    )
    client.create_bucket(Bucket=bucket)
    lake = LakeSettings(
        warehouse=f"s3://{bucket}/warehouse",
        s3_endpoint=s3_endpoint,
        s3_access_key_id="test",
        s3_secret_access_key="test",  # noqa: S106 - moto's fixed test credentials
    )
    sqlite_platform.settings = sqlite_platform.settings.model_copy(update={"lake": lake})
    yield sqlite_platform
    forget_lakes()


def test_ingest_time_travel_maintenance_and_erasure_on_s3(s3_platform: Platform, tmp_path: Path) -> None:
    platform = s3_platform
    add_policy(platform)
    assert platform.settings.warehouse.startswith("s3://")
    ingest(platform, write_csv(tmp_path / "a.csv", {"USUBJID": ["S-001", "S-002"], "V": [1, 2]}), "st.lb")
    ingest(platform, write_csv(tmp_path / "b.csv", {"USUBJID": ["S-003"], "V": [3]}), "st.lb")
    lake = open_lake(platform.settings)
    plan = plan_table(lake, "st.lb")
    assert plan.is_s3 and all(f.uri.startswith("s3://") for f in plan.files)
    assert read_table(platform, "st.lb").num_rows == 3
    ingest(
        platform, write_csv(tmp_path / "c.csv", {"USUBJID": ["S-009"], "V": [9]}), "st.lb", mode="overwrite"
    )
    assert read_table(platform, "st.lb").num_rows == 1
    assert read_table(platform, "st.lb", snapshot_id=plan.snapshot_id).num_rows == 3
    location = lake.load(parse_table_name("st.lb")).location()
    before = {f.uri for f in lake.storage.list(location)}
    with platform.db.session() as session:
        report = maintain(session, SYSTEM, lake, retention_hours=0, grace_minutes=0)
    assert report["errors"] == 0 and report["files_deleted"] >= 2
    after = {f.uri for f in lake.storage.list(location)}
    assert not {f.uri for f in plan.files} & after
    parquet = {u for u in before if u.endswith(".parquet")}
    assert {u for u in after if u.endswith(".parquet")} < parquet
    ingest(platform, write_csv(tmp_path / "d.csv", {"USUBJID": ["S-010", "S-011"], "V": [10, 11]}), "st.lb")
    with platform.db.session() as session:
        erased = erase_subject(session, SYSTEM, lake, namespace="st", subject="S-010")
    assert erased["ok"] and erased["rows_removed"] == 1
    assert sorted(read_table(platform, "st.lb").column("USUBJID").to_pylist()) == ["S-009", "S-011"]


@pytest.fixture(params=["file", "s3"])
def storage_settings(request: pytest.FixtureRequest, sqlite_platform: Platform, tmp_path: Path):  # type: ignore[no-untyped-def]
    if request.param == "file":
        lake = LakeSettings(warehouse=str(tmp_path / "warehouse"))
        return sqlite_platform.settings.model_copy(update={"lake": lake})
    return request.getfixturevalue("s3_platform").settings


def test_every_storage_backend_behaves_alike(storage_settings) -> None:  # type: ignore[no-untyped-def]
    """One behaviour suite over each store (pyiceberg style): the lake code above it never
    branches on the kind of store."""
    storage = open_storage(storage_settings)
    assert type(storage).__name__ == (
        "S3Storage" if storage_settings.warehouse.startswith("s3") else "LocalStorage"
    )
    root = storage_settings.warehouse.rstrip("/")
    assert storage.list(f"{root}/t") == []  # a prefix that does not exist is empty, not an error
    with storage.open_output(f"{root}/t/data/a.parquet") as out:
        out.write(b"A" * 10)
    storage.copy(f"{root}/t/data/a.parquet", f"{root}/t/meta/b.json")
    listed = sorted((f.uri, f.size) for f in storage.list(f"{root}/t"))
    assert listed == [(f"{root}/t/data/a.parquet", 10), (f"{root}/t/meta/b.json", 10)]
    assert storage.read_bytes(f"{root}/t/meta/b.json") == b"A" * 10
    assert storage.size(f"{root}/t/data/a.parquet") == 10
    assert storage.delete(f"{root}/t/data/a.parquet") and not storage.delete(f"{root}/t/data/a.parquet")
    assert storage.delete_dir(f"{root}/t") == 1
    assert storage.list(f"{root}/t") == []


def test_a_warehouse_no_backend_handles_is_refused(sqlite_platform: Platform) -> None:
    settings = sqlite_platform.settings.model_copy(
        update={"lake": LakeSettings(warehouse="gs://bucket/lake")}
    )
    with pytest.raises(ValueError, match="no storage backend for 'gs://'"):
        open_storage(settings)
