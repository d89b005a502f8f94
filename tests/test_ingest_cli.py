"""The ingestion CLI, a real kill -9 in the middle of an ingestion, and the real Synthea files."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from datalibrary.cli import app
from datalibrary.ingest.models import IngestJob
from datalibrary.ingest.worker import run_pending
from tests.helpers import Platform
from tests.lake_helpers import KEEP_ALL, add_policy, ingest, read_table, write_csv


@pytest.fixture
def cli_env(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {
        "DATALIBRARY_HOME": str(platform.settings.home),
        "DATALIBRARY_DATABASE_URL": platform.settings.connect_url(),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def run_cli(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, f"{args}: exit {result.exit_code}\n{result.output}"
    return result.stdout


def test_cli_ingest_catalog_jobs_and_quarantine(platform: Platform, cli_env: dict, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("name: vitals\nversion: 1\ncolumns:\n  USUBJID: keep\n  VSORRES: keep\n  NAME: drop\n")
    good = write_csv(
        tmp_path / "vs.csv", {"USUBJID": ["SUBJ-0001", "SUBJ-0002"], "VSORRES": [120, 80], "NAME": ["a", "b"]}
    )
    out = json.loads(run_cli("ingest", str(good), "--table", "demo.vs", "--policy", str(policy), "--json"))
    assert out[0]["state"] == "succeeded" and out[0]["rows_written"] == 2
    again = json.loads(run_cli("ingest", str(good), "--table", "demo.vs", "--policy", "vitals", "--json"))
    assert again[0]["state"] == "duplicate"
    bad = write_csv(tmp_path / "bad.csv", {"USUBJID": ["SUBJ-0003"], "SSN": ["1"]})
    quarantined = json.loads(
        run_cli("ingest", str(bad), "--table", "demo.vs", "--policy", "vitals", "--json", code=2)
    )
    assert quarantined[0]["state"] == "quarantined"
    listed = json.loads(run_cli("jobs", "list", "--state", "quarantined", "--json"))
    assert [j["reason"]["code"] for j in listed] == ["policy-identifying-column"]  # SSN looks identifying
    assert "SSN" in listed[0]["reason"]["message"]
    datasets = json.loads(run_cli("datasets", "list", "--json"))
    assert [d["name"] for d in datasets] == ["demo.vs"] and datasets[0]["row_count"] == 2
    run_cli("datasets", "set", "demo.vs", "--tag", "vitals", "--label", "VSORRES=Result", "--json")
    shown = json.loads(run_cli("datasets", "show", "demo.vs", "--json"))
    assert [c["name"] for c in shown["columns"]] == ["USUBJID", "VSORRES"]
    assert shown["columns"][1]["label"] == "Result" and shown["tags"] == ["vitals"]
    assert shown["snapshots"][0]["policy"] == "vitals"
    assert shown["snapshots"][0]["source_file"].startswith("file-"), "file names are pseudonymized (#21)"
    profile = {p["name"]: p for p in shown["profile"]}
    assert profile["VSORRES"]["min"] == "80" and profile["VSORRES"]["null_share"] == 0
    assert shown["size_bytes"] > 0 and shown["compression_ratio"] is not None
    assert json.loads(run_cli("datasets", "list", "--tag", "other", "--json")) == []
    report = json.loads(run_cli("lake", "maintain", "--json"))
    assert report["errors"] == 0
    # a real-length identifier: the proof also looks for the subject in the raw bytes of compressed
    # files, where a two-character one like "S1" turns up by chance now and then
    erased = json.loads(run_cli("lake", "erase", "--namespace", "demo", "--subject", "SUBJ-0001", "--json"))
    assert erased["ok"] and erased["rows_removed"] == 1
    assert "vitals" in [p["name"] for p in json.loads(run_cli("policies", "list", "--json"))]


def test_cli_rejects_bad_arguments_clearly(platform: Platform, cli_env: dict, tmp_path: Path) -> None:
    add_policy(platform)
    source = write_csv(tmp_path / "x.csv", {"A": [1]})
    runner = CliRunner()
    result = runner.invoke(app, ["ingest", str(source), "--table", "no_dot", "--policy", "keep-all"])
    assert result.exit_code == 2 and "NAMESPACE.TABLE" in result.stderr
    result = runner.invoke(app, ["ingest", str(source), "--table", "a.b", "--policy", "missing"])
    assert result.exit_code == 2 and "no policy named 'missing'" in result.stderr
    result = runner.invoke(
        app, ["ingest", str(source), "--table", "a.b", "--policy", "keep-all", "--mode", "merge"]
    )
    assert result.exit_code == 2 and "mode must be" in result.stderr
    odd = tmp_path / "x.weird"
    odd.write_bytes(b"\x00\x01\x02\x03" * 16)  # the content tells the format, not the name
    result = runner.invoke(app, ["ingest", str(odd), "--table", "a.b", "--policy", "keep-all"])
    assert result.exit_code == 2 and "binary content of an unknown format" in result.stdout


@pytest.mark.parametrize("step", ["landed", "written", "committed"])
def test_kill_9_at_any_step_leaves_no_partial_rows_and_the_job_resumes(
    platform: Platform, cli_env: dict, tmp_path: Path, step: str
) -> None:
    add_policy(platform)
    ingest(platform, write_csv(tmp_path / "seed.csv", {"ID": ["seed"], "N": [0]}), "k.t")
    source = write_csv(tmp_path / "big.csv", {"ID": [f"r{i}" for i in range(5000)], "N": list(range(5000))})
    marker = tmp_path / "paused"
    env = {
        **os.environ,
        **cli_env,
        "DATALIBRARY_FAULT_PAUSE": step,
        "DATALIBRARY_FAULT_PAUSE_FILE": str(marker),
        "DATALIBRARY_INGEST__JOB_LEASE_SECONDS": "1",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from datalibrary.cli import main; main()",
            "ingest",
            str(source),
            "--table",
            "k.t",
            "--policy",
            "keep-all",
            "--json",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert process.poll() is None, "the ingestion ended before reaching the pause point"
            assert time.monotonic() < deadline, "the ingestion never reached the pause point"
            time.sleep(0.05)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
    visible = read_table(platform, "k.t").num_rows
    assert visible == (5001 if step == "committed" else 1), "all of the file or nothing is visible"
    with platform.db.session() as session:
        job = session.query(IngestJob).filter(IngestJob.source_name == "big.csv").one()
        assert job.state == "running"
    time.sleep(1.2)  # the dead worker's lease runs out
    settings = platform.settings.model_copy(update={})
    done = run_pending(settings, platform.db)
    assert done == [(job.id, "succeeded")]
    table = read_table(platform, "k.t")
    assert table.num_rows == 5001 and len(set(table.column("ID").to_pylist())) == 5001
    again = ingest(platform, source, "k.t")
    assert again[1] == "duplicate"


def test_every_synthea_csv_ingests_with_matching_row_counts(
    sqlite_platform: Platform, shared_data: Path, tmp_path: Path
) -> None:
    add_policy(sqlite_platform, KEEP_ALL)
    files = sorted((shared_data / "synthea-sample").glob("*.csv"))
    assert len(files) >= 10
    for path in files:
        with open(path, newline="", encoding="utf-8") as handle:
            expected = sum(1 for _ in csv.reader(handle)) - 1
        job_id, state = ingest(sqlite_platform, path, f"synthea.{path.stem}")
        assert state == "succeeded", (path.name, state)
        assert read_table(sqlite_platform, f"synthea.{path.stem}").num_rows == expected, path.name


def test_cli_every_kind_of_delivery_with_define(
    sqlite_platform: Platform, monkeypatch: pytest.MonkeyPatch, shared_data: Path, tmp_path: Path
) -> None:
    """XPT with --define, a zip, a FHIR bundle and a CSV in one command, tables named per file."""
    import gzip
    import zipfile

    from tests.test_readers_formats import observation, patient, write_bundle

    monkeypatch.setenv("DATALIBRARY_HOME", str(sqlite_platform.settings.home))
    monkeypatch.setenv("DATALIBRARY_DATABASE_URL", sqlite_platform.settings.connect_url())
    add_policy(sqlite_platform)
    study = shared_data / "cdiscpilot01-sdtm"
    define = tmp_path / "define.xml"
    define.write_text((study / "define.xml").read_text().replace('"Sex"', '"Sex of the subject"'))
    delivery = tmp_path / "labs.zip"
    with zipfile.ZipFile(delivery, "w") as archive:
        archive.writestr("lb.csv.gz", gzip.compress(b"USUBJID,LBORRES\nS-1,5.5\n"))
        archive.writestr("vs.csv", "USUBJID,VSORRES\nS-1,120\n")
    bundle = tmp_path / "export"  # no suffix: the content tells it is FHIR
    write_bundle(bundle, [patient(1), observation(1)])
    out = json.loads(
        run_cli(
            "ingest", str(study / "dm.xpt"), str(delivery), str(bundle), "--table", "mix.*",
            "--policy", "keep-all", "--define", str(define), "--json",
        )
    )  # fmt: skip
    by_state = sorted((j["state"], j["table"]) for j in out)
    assert ("succeeded", "mix.dm") in by_state and ("succeeded", "mix.lb") in by_state
    assert ("succeeded", "mix.observation") in by_state and ("succeeded", "mix.patient") in by_state
    assert {j["state"] for j in out} == {"succeeded"} and len(out) == 7
    assert [len(j["children"]) for j in out if j["children"]] == [2, 2]
    shown = json.loads(run_cli("datasets", "show", "mix.dm", "--json"))
    assert json.dumps(shown).count("Sex of the subject") >= 1


def test_ingest_reports_every_job_while_a_server_worker_takes_some(
    platform: Platform, cli_env: dict, tmp_path: Path
) -> None:
    """The server's worker pool claims queued jobs as the CLI submits them; the CLI still
    waits for and reports every file it submitted (before, it dropped the ones it lost)."""
    from datalibrary.ingest.worker import WorkerPool

    add_policy(platform)
    files = [
        write_csv(tmp_path / f"part{i}.csv", {"ID": [f"p{i}r{j}" for j in range(200)], "N": list(range(200))})
        for i in range(6)
    ]
    fast = platform.settings.model_copy(
        update={"ingest": platform.settings.ingest.model_copy(update={"poll_seconds": 0.01})}
    )
    pool = WorkerPool(fast, platform.db, 2)
    pool.start()
    try:
        out = json.loads(
            run_cli("ingest", *map(str, files), "--table", "k.parts", "--policy", "keep-all", "--json")
        )
    finally:
        pool.stop()
    assert sorted(r["source_name"] for r in out) == sorted(f.name for f in files)
    assert {r["state"] for r in out} == {"succeeded"}
    assert sum(r["rows_written"] for r in out) == 1200
    assert read_table(platform, "k.parts").num_rows == 1200
    with platform.db.session() as session:
        workers = {j.worker for j in session.query(IngestJob).filter(IngestJob.table_name == "parts")}
    assert any(":pool" in w for w in workers), workers  # the race happened: the pool ran some
