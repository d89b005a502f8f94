"""Policy API (validate, preview, show), the editor page, and the risk report on the dataset page."""

from __future__ import annotations

from pathlib import Path

from datalibrary.privacy.builtin import BUILTIN
from tests.helpers import PASSWORD, Platform
from tests.lake_helpers import ingest, write_csv
from tests.test_web import sign_in


def test_validate_and_preview_api(platform: Platform) -> None:
    platform.add_user("steward", "steward")
    client = platform.as_user("steward")
    ok = client.post("/api/v1/policies/validate", json={"document": BUILTIN["sdtm"]})
    assert ok.status_code == 200 and ok.json()["name"] == "sdtm"
    bad = client.post("/api/v1/policies/validate", json={"document": "name: x\nversion: 1\ncolumns: 3\n"})
    assert bad.status_code == 422 and "columns" in bad.json()["detail"]
    sample = "USUBJID,AGE,SEX,RFSTDTC,DMDY\n01-701-1015,95,F,2014-01,1\n01-701-1023,64,M,2014-01-02,2\n"
    shown = client.post(
        "/api/v1/policies/preview",
        json={"document": BUILTIN["sdtm"], "sample_csv": sample, "namespace": "pilot"},
    )
    assert shown.status_code == 200, shown.text
    data = shown.json()
    assert data["columns"] == ["USUBJID", "AGE", "AGE_TOPCODED", "SEX", "RFSTDTC", "DMDY"]
    assert data["rows"][0]["AGE"] == 90 and data["rows"][0]["AGE_TOPCODED"] is True
    assert len(data["rows"][0]["RFSTDTC"]) == 7 and data["rows"][0]["USUBJID"] != "01-701-1015"
    hostile = client.post(
        "/api/v1/policies/preview",
        json={"document": BUILTIN["sdtm"], "sample_csv": "\x00\x01", "namespace": "pilot"},
    )
    assert hostile.status_code == 422
    assert client.get("/api/v1/policies/ehr").json()["document"] == BUILTIN["ehr"]
    scientist = platform.as_user("sci")
    assert scientist.post("/api/v1/policies/validate", json={"document": "x"}).status_code == 403


def test_policy_page_and_risk_on_dataset_page(sqlite_platform: Platform, tmp_path: Path) -> None:
    platform = sqlite_platform
    path = write_csv(
        tmp_path / "dm.csv",
        {
            "USUBJID": [f"S{i}" for i in range(30)],
            "AGE": [30 + i % 3 for i in range(30)],
            "SEX": ["M", "F"] * 15,
            "RACE": ["WHITE"] * 30,
            "ETHNIC": ["X"] * 30,
            "COUNTRY": ["USA"] * 30,
        },
    )
    assert ingest(platform, path, "pilot.dm", policy="sdtm")[1] == "succeeded"
    platform.add_user("steward", "steward")
    client = platform.as_user("steward")
    detail = client.get("/api/v1/datasets/pilot/dm").json()
    assert detail["risk"]["k"] == 5 and detail["risk"]["classes"] == 6
    assert detail["snapshots"][0]["study_key_id"]
    browser = sign_in(platform, "steward", PASSWORD)
    page = browser.get("/catalog/pilot/dm")
    assert page.status_code == 200 and "Re-identification risk" in page.text
    assert "k (smallest class)" in page.text
    editor = browser.get("/catalog/policies?name=ehr")
    assert editor.status_code == 200 and "pseudonymize" in editor.text
    assert "/static/policies.js" in editor.text
