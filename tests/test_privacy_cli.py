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
    monkeypatch.setenv("DATALIBRARY_DATABASE_URL", str(sqlite_platform.settings.database_url))
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
