"""The policy and key commands: validate, preview, keys show; the key never printed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from datalibrary.cli import app
from datalibrary.privacy.builtin import BUILTIN
from datalibrary.privacy.keys import load_master_key
from tests.helpers import Platform
from tests.lake_helpers import write_csv


@pytest.fixture
def cli_env(sqlite_platform: Platform, monkeypatch: pytest.MonkeyPatch) -> Platform:
    monkeypatch.setenv("DATALIBRARY_HOME", str(sqlite_platform.settings.home))
    monkeypatch.setenv("DATALIBRARY_DATABASE_URL", sqlite_platform.settings.connect_url())
    return sqlite_platform


def run_cli(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, f"{args}: exit {result.exit_code}\n{result.output}"
    return result.output


def test_validate_preview_and_key_id(cli_env: Platform, tmp_path: Path) -> None:
    policy = tmp_path / "ehr.yaml"
    policy.write_text(BUILTIN["ehr"])
    described = json.loads(run_cli("policies", "validate", str(policy), "--json"))
    assert described["name"] == "ehr" and described["rules"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nversion: 1\ncolumns:\n  A: {action: generalize}\n")
    assert "method" in run_cli("policies", "validate", str(bad), code=2)
    sample = write_csv(
        tmp_path / "patients.csv",
        {
            "Id": ["p1", "p2"],
            "SSN": ["999-11-2222", "999-11-3333"],
            "ZIP": ["02118", "03601"],
            "GENDER": ["F", "M"],
        },
    )
    shown = json.loads(
        run_cli("policies", "preview", str(policy), str(sample), "--namespace", "s1", "--json")
    )
    assert shown["columns"] == ["Id", "ZIP", "GENDER"]
    assert [r["ZIP"] for r in shown["rows"]] == ["021", "000"]
    assert shown["rows"][0]["Id"] != "p1"
    key = json.loads(run_cli("keys", "show", "--namespace", "s1", "--json"))
    assert key["generation"] == 1 and len(key["key_id"]) == 16
    secret = load_master_key(cli_env.settings)
    assert secret.hex() not in json.dumps(key) and secret.hex() not in run_cli("config", "show")


def test_keys_rotate_repseudonymizes_and_deletes_old_files(cli_env: Platform, tmp_path: Path) -> None:
    from datalibrary.lake.catalog import open_lake
    from datalibrary.lake.files import avro_payload
    from tests.lake_helpers import ingest, read_table

    platform = cli_env
    dm = write_csv(
        tmp_path / "dm.csv",
        {
            "USUBJID": ["S-1", "S-2", "S-3"],
            "AGE": [40, 95, 50],
            "SEX": ["F", "M", "F"],
            "RFSTDTC": ["2014-03-05", "2014-03-05", "2014"],
            "DMDY": [1, 1, 1],
        },
    )
    ae = write_csv(
        tmp_path / "ae.csv",
        {"USUBJID": ["S-1", "S-2"], "AESTDTC": ["2014-03-15", "2014-04-01T10:00"], "AESTDY": [11, 28]},
    )
    assert ingest(platform, dm, "rot.dm", policy="sdtm")[1] == "succeeded"
    assert ingest(platform, ae, "rot.ae", policy="sdtm")[1] == "succeeded"
    before_dm = read_table(platform, "rot.dm")
    lake = open_lake(platform.settings)
    old_files = {p for p in (Path(platform.settings.home) / "lake").rglob("*") if p.is_file()}
    result = json.loads(run_cli("keys", "rotate", "--namespace", "rot", "--json"))
    assert result["generation"] == 2 and len(result["tables"]) == 2
    after_dm, after_ae = read_table(platform, "rot.dm"), read_table(platform, "rot.ae")
    old_tokens = set(before_dm.column("USUBJID").to_pylist())
    new_tokens = set(after_dm.column("USUBJID").to_pylist())
    assert len(new_tokens) == 3 and not old_tokens & new_tokens
    assert set(after_ae.column("USUBJID").to_pylist()) <= new_tokens, "joins survive the rotation"
    assert after_dm.column("DMDY").to_pylist() == [1, 1, 1]
    assert after_dm.column("AGE").to_pylist() == before_dm.column("AGE").to_pylist()
    # a file ingested after the rotation gets the same tokens and the same offsets
    assert ingest(platform, ae, "rot.ae2", policy="sdtm")[1] == "succeeded"
    fresh = read_table(platform, "rot.ae2")
    assert fresh.column("USUBJID").to_pylist() == after_ae.column("USUBJID").to_pylist()
    assert fresh.column("AESTDTC").to_pylist() == after_ae.column("AESTDTC").to_pylist()
    # the old tokens are gone from every lake file (data, manifests) of the rotated tables
    remaining = [p for p in (Path(platform.settings.home) / "lake").rglob("*") if p.is_file()]
    survivors = {p.name for p in old_files & set(remaining)}
    assert not {n for n in survivors if not n.endswith(".metadata.json")}, survivors
    for path in remaining:
        data = path.read_bytes()
        data = avro_payload(data) if path.suffix == ".avro" else data
        text = data.decode("latin-1")
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            text += json.dumps(pq.read_table(path).to_pylist(), default=str)
        assert not any(token in text for token in old_tokens), path
    table = lake.load(lake.tables("rot")[0])
    assert len(table.metadata.snapshots) == 1
    summary = table.current_snapshot().summary.additional_properties
    assert summary["datalibrary.study-key-id"] == result["key_id"] and summary["datalibrary.policy"] == "sdtm"
    again = json.loads(run_cli("keys", "rotate", "--namespace", "rot", "--json"))
    assert again["generation"] == 3, "a rotated namespace can rotate again"


def test_shared_tier_quarantines_above_threshold_unless_overridden(cli_env: Platform, tmp_path: Path) -> None:
    from sqlalchemy import select

    from datalibrary.audit.models import AuditEvent
    from datalibrary.ingest.models import IngestJob
    from datalibrary.lake.catalog import open_lake, parse_table_name
    from tests.lake_helpers import add_policy, ingest, read_table

    platform = cli_env
    add_policy(
        platform,
        "name: share\nversion: 1\nquasi_identifiers: [AGE, SEX]\ntier: shared\n"
        "columns:\n  AGE: {action: generalize, method: age_band, width: 10}\n  SEX: keep\n",
    )
    rows = {"AGE": [30 + i % 10 for i in range(40)] + [85], "SEX": ["F"] * 41}
    job_id, state = ingest(platform, write_csv(tmp_path / "s.csv", rows), "shr.t", policy="share")
    assert state == "quarantined"
    with platform.db.session() as session:
        reason = session.get(IngestJob, job_id).reason
    assert reason["code"] == "risk-above-threshold" and reason["risk"]["k"] == 1
    assert not open_lake(platform.settings).exists(parse_table_name("shr.t")), "nothing reached the lake"
    run_cli("policies", "override-risk", "--table", "shr.t", "--reason", "too short", code=2)
    run_cli("policies", "override-risk", "--table", "shr.t", "--reason", "aggregate release approved by DAC")
    assert ingest(platform, tmp_path / "s.csv", "shr.t", policy="share")[1] == "succeeded"
    assert read_table(platform, "shr.t").num_rows == 41
    with platform.db.session() as session:
        actions = set(session.scalars(select(AuditEvent.action)))
    assert {"privacy.risk-override", "privacy.risk-override-used"} <= actions
