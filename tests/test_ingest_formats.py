"""Every format through the real pipeline: content detection, archive and FHIR fan-out,
define.xml labels (CLI, API, landing folder), the real clinical files, hostile and bad input."""

from __future__ import annotations

import csv
import gzip
import io
import json
import zipfile
from pathlib import Path

import pyreadstat
import pytest
from sqlalchemy import select

from datalibrary.ingest.models import IngestJob
from datalibrary.ingest.watch import LandingWatcher
from datalibrary.ingest.worker import run_pending, run_tree
from datalibrary.lake.catalog import open_lake
from datalibrary.lake.models import Dataset
from tests.helpers import Platform
from tests.lake_helpers import SYSTEM, add_policy, read_table
from tests.test_readers_formats import OTHERS, observation, patient, write_bundle

CSV = b"USUBJID,AGE\nS-1,70\nS-2,81\n"


def ingest_tree(platform: Platform, path: Path, table: str, **kw) -> list[tuple[str, str]]:
    """Submit one delivery and run it and every job it fans out into."""
    from datalibrary.ingest.submit import submit_file

    with platform.db.session() as session:
        job_id = submit_file(
            session, SYSTEM, platform.settings, path, table=table, policy=kw.pop("policy", "keep-all"), **kw
        ).id
    return run_tree(platform.settings, platform.db, "test-worker", job_id)


def job(platform: Platform, job_id: str) -> IngestJob:
    with platform.db.session() as session:
        found = session.get(IngestJob, job_id)
        session.expunge(found)
    return found


def labels(platform: Platform, table: str) -> dict[str, str]:
    namespace, name = table.split(".")
    with platform.db.session() as session:
        dataset = session.scalar(select(Dataset).where(Dataset.namespace == namespace, Dataset.name == name))
        return dict(dataset.column_labels or {})


def tables(platform: Platform, namespace: str) -> list[str]:
    return sorted(str(t) for t in open_lake(platform.settings).tables(namespace))


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def no_leftovers(platform: Platform) -> None:
    """Nothing of a delivery remains in the private landing area once its jobs are final."""
    raw = platform.settings.home / "ingest" / "raw"
    assert not raw.exists() or not any(raw.iterdir()), list(raw.iterdir())


# -- the real clinical files (SQLite only: the heaviest tests) --------------------------------


def test_every_cdisc_xpt_with_define_labels(
    sqlite_platform: Platform, shared_data: Path, tmp_path: Path
) -> None:
    platform = sqlite_platform
    add_policy(platform)
    study = shared_data / "cdiscpilot01-sdtm"
    # The study's define.xml, with one label changed so that its labels provably win over the XPT's.
    define = tmp_path / "define.xml"
    define.write_text(
        (study / "define.xml").read_text().replace('"Subject Reference Start Date/Time"', '"Reference start"')
    )
    files = sorted(study.glob("*.xpt"))
    assert len(files) >= 18
    for path in files:
        [(job_id, state)] = ingest_tree(platform, path, "cdisc.*", define=define)
        assert state == "succeeded", job(platform, job_id).reason
        try:
            data, meta = pyreadstat.read_xport(str(path), output_format="dict")
        except UnicodeDecodeError:  # a file with Windows-1252 text (curly quotes)
            data, meta = pyreadstat.read_xport(str(path), output_format="dict", encoding="WINDOWS-1252")
        table = f"cdisc.{path.stem}"
        source_rows = len(next(iter(data.values())))
        assert read_table(platform, table).num_rows == source_rows == job(platform, job_id).rows_written
        got = labels(platform, table)
        expected = {c: lab for c, lab in zip(meta.column_names, meta.column_labels, strict=True) if lab}
        assert expected and set(expected) <= set(got), path.name
    dm = labels(platform, "cdisc.dm")
    assert dm["RFSTDTC"] == "Reference start", "the define.xml label wins"
    assert dm["USUBJID"] == "Unique Subject Identifier"
    assert job(platform, job_id).format == "xpt"
    no_leftovers(platform)


def test_every_synthea_csv(sqlite_platform: Platform, shared_data: Path) -> None:
    platform = sqlite_platform
    add_policy(platform)
    files = sorted((shared_data / "synthea-sample").glob("*.csv"))
    assert len(files) == 18
    for path in files:
        [(job_id, state)] = ingest_tree(platform, path, "synthea.*")
        assert state == "succeeded", (path.name, job(platform, job_id).reason)
        with path.open(newline="", encoding="utf-8") as handle:
            source_rows = sum(1 for _ in csv.reader(handle)) - 1
        assert read_table(platform, f"synthea.{path.stem}").num_rows == source_rows, path.name
    assert len(tables(platform, "synthea")) == 18


def test_a_zip_of_the_real_study_with_its_define_xml(
    sqlite_platform: Platform, shared_data: Path, tmp_path: Path
) -> None:
    """A delivery as labs send it: domains and define.xml in one zip, one table per domain."""
    platform = sqlite_platform
    add_policy(platform)
    study = shared_data / "cdiscpilot01-sdtm"
    define = (study / "define.xml").read_text().replace('"Age Units"', '"Unit of age"')
    members = {f"sdtm/{p.name}": p.read_bytes() for p in [study / "dm.xpt", study / "ae.xpt"]}
    delivery = tmp_path / "sdtm.zip"
    delivery.write_bytes(zip_bytes({**members, "sdtm/define.xml": define.encode()}))
    done = ingest_tree(platform, delivery, "pilot.*")
    assert [s for _, s in done] == ["succeeded"] * 3, "the define.xml is metadata, not a table"
    parent = job(platform, done[0][0])
    assert parent.step == "fanned-out" and parent.format == "zip" and len(parent.options["children"]) == 2
    assert tables(platform, "pilot") == ["pilot.ae", "pilot.dm"]
    child = job(platform, done[1][0])
    assert child.options["parent"] == parent.id and child.source_name.startswith("sdtm.zip/sdtm/")
    assert labels(platform, "pilot.dm")["AGEU"] == "Unit of age"
    # a define.xml given with the delivery wins over the one inside it
    again = tmp_path / "sdtm2.zip"
    again.write_bytes(zip_bytes({"dm.xpt": members["sdtm/dm.xpt"], "define.xml": define.encode()}))
    done = ingest_tree(platform, again, "other.*", define=study / "define.xml")
    assert labels(platform, "other.dm")["AGEU"] == "Age Units"
    no_leftovers(platform)


# -- archives --------------------------------------------------------------------------------


def test_zip_gz_and_nested_archives_fan_out(platform: Platform, tmp_path: Path) -> None:
    add_policy(platform)
    delivery = tmp_path / "delivery.zip"
    inner = zip_bytes({"part3.csv": b"USUBJID,AGE\nS-5,50\n"})
    delivery.write_bytes(
        zip_bytes(
            {
                "part1.csv": CSV,
                "deep/part2.csv.gz": gzip.compress(b"USUBJID,AGE\nS-3,30\nS-4,40\n"),
                "more.zip": inner,
                "__MACOSX/._part1.csv": b"junk",
            }
        )
    )
    done = ingest_tree(platform, delivery, "s.lb")
    assert len(done) == 4 and {s for _, s in done} == {"succeeded"}
    table = read_table(platform, "s.lb")
    assert sorted(table.column("USUBJID").to_pylist()) == ["S-1", "S-2", "S-3", "S-4", "S-5"]
    # a .csv.gz on its own: one child, same table
    single = tmp_path / "more.csv.gz"
    single.write_bytes(gzip.compress(b"USUBJID,AGE\nS-6,60\n"))
    done = ingest_tree(platform, single, "s.lb")
    assert [s for _, s in done] == ["succeeded", "succeeded"] and job(platform, done[0][0]).format == "gzip"
    assert read_table(platform, "s.lb").num_rows == 6
    # the same archive again is a duplicate delivery; a new archive holding a known file too
    again = tmp_path / "again.zip"
    again.write_bytes(delivery.read_bytes())
    assert [s for _, s in ingest_tree(platform, again, "s.lb")] == ["duplicate"]
    repacked = tmp_path / "repacked.zip"
    repacked.write_bytes(zip_bytes({"renamed.csv": CSV, "new.csv": b"USUBJID,AGE\nS-7,70\n"}))
    done = ingest_tree(platform, repacked, "s.lb")
    assert sorted(s for _, s in done[1:]) == ["duplicate", "succeeded"]
    assert read_table(platform, "s.lb").num_rows == 7
    no_leftovers(platform)


def test_archive_members_fail_one_by_one(sqlite_platform: Platform, tmp_path: Path) -> None:
    """All or nothing per contained file: the bad member is quarantined, the good ones commit."""
    platform = sqlite_platform
    add_policy(platform)
    delivery = tmp_path / "mixed.zip"
    delivery.write_bytes(zip_bytes({"a.csv": CSV, "b.csv": b"USUBJID,AGE\nS-9,70\nS-10\n"}))
    done = dict(ingest_tree(platform, delivery, "s.*"))
    states = sorted(done.values())
    assert states == ["quarantined", "succeeded", "succeeded"]
    bad = next(job(platform, j) for j, s in done.items() if s == "quarantined")
    assert bad.table == "s.b" and "mixed.zip/b.csv" in bad.reason["message"] and bad.reason["row"]
    assert tables(platform, "s") == ["s.a"]


def test_overwrite_of_one_table_from_several_members_is_refused(
    sqlite_platform: Platform, tmp_path: Path
) -> None:
    add_policy(sqlite_platform)
    delivery = tmp_path / "two.zip"
    delivery.write_bytes(zip_bytes({"a.csv": CSV, "b.csv": CSV}))
    [(job_id, state)] = ingest_tree(sqlite_platform, delivery, "s.t", mode="overwrite")
    assert state == "quarantined" and job(sqlite_platform, job_id).reason["code"] == "overwrite-ambiguous"


@pytest.mark.parametrize("kind", ["bomb", "traversal", "truncated"])
def test_hostile_and_damaged_archives_are_quarantined(platform: Platform, tmp_path: Path, kind: str) -> None:
    add_policy(platform)
    source = tmp_path / f"{kind}.zip"
    if kind == "bomb":
        source.write_bytes(zip_bytes({"ok.csv": CSV, "zeros.csv": b"0" * (50 << 20)}))
    elif kind == "traversal":
        source.write_bytes(zip_bytes({"ok.csv": CSV, "../../evil.csv": CSV}))
    else:
        source = tmp_path / "cut.csv.gz"
        rows = b"".join(b"S-%d,%d\n" % (i, i * 7919 % 97) for i in range(20_000))
        packed = gzip.compress(b"USUBJID,AGE\n" + rows)
        source.write_bytes(packed[: len(packed) // 2])
    [(job_id, state)] = ingest_tree(platform, source, "s.t")
    assert state == "quarantined"
    found = job(platform, job_id)
    code = "archive-unreadable" if kind == "truncated" else "archive-refused"
    assert found.reason["code"] == code and found.reason["file"] == source.name
    assert {"bomb": "zip bomb", "traversal": "escapes", "truncated": "truncated"}[kind] in found.reason[
        "message"
    ]
    assert "children" not in (found.options or {}) and tables(platform, "s") == []
    assert Path(found.raw_path).exists() and "quarantine" in found.raw_path
    no_leftovers(platform)


# -- FHIR ------------------------------------------------------------------------------------


def test_fhir_bundle_fans_out_one_table_per_resource_type(platform: Platform, tmp_path: Path) -> None:
    add_policy(platform)
    bundle = tmp_path / "export.json"
    write_bundle(bundle, [patient(1), patient(2), observation(1), observation(2), observation(3), *OTHERS])
    done = ingest_tree(platform, bundle, "ehr.fhir")
    assert {s for _, s in done} == {"succeeded"} and len(done) == 7
    assert tables(platform, "ehr") == [
        "ehr.fhir_condition",
        "ehr.fhir_encounter",
        "ehr.fhir_medication_request",
        "ehr.fhir_observation",
        "ehr.fhir_organization",
        "ehr.fhir_patient",
    ]
    observations = read_table(platform, "ehr.fhir_observation")
    assert observations.num_rows == 3 and observations.column("value_quantity").to_pylist() == [31, 32, 33]
    assert read_table(platform, "ehr.fhir_patient").num_rows == 2
    assert labels(platform, "ehr.fhir_observation")["code"] == "Observation.code.coding[0].code"
    children = [job(platform, j) for j, _ in done[1:]]
    assert {c.options["resource_type"] for c in children} >= {"Patient", "Observation", "MedicationRequest"}
    no_leftovers(platform)


def test_fhir_ndjson_to_namespace_tables(sqlite_platform: Platform, tmp_path: Path) -> None:
    add_policy(sqlite_platform)
    ndjson = tmp_path / "Observation.ndjson"
    ndjson.write_text("\n".join(json.dumps(r) for r in [observation(1), observation(2), patient(1)]) + "\n")
    done = ingest_tree(sqlite_platform, ndjson, "bulk.*")
    assert {s for _, s in done} == {"succeeded"}
    assert tables(sqlite_platform, "bulk") == ["bulk.observation", "bulk.patient"]
    assert read_table(sqlite_platform, "bulk.observation").num_rows == 2
    # a FHIR file inside an archive fans out again
    delivery = tmp_path / "fhir.zip"
    delivery.write_bytes(zip_bytes({"Patient.ndjson": json.dumps(patient(7)).encode() + b"\n"}))
    done = ingest_tree(sqlite_platform, delivery, "bulk.*")
    assert [s for _, s in done] == ["succeeded"] * 3
    assert read_table(sqlite_platform, "bulk.patient").num_rows == 2


# -- malformed and truncated input of each format ---------------------------------------------


def _truncated_parquet(path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"A": list(range(1000))}), path)
    path.write_bytes(path.read_bytes()[:-200])


BAD = {
    "ragged.csv": (b"A,B\n1,2\n3,4\n5\n", {"row": 3}),
    "cut.xpt": (None, {}),
    "garbage.sas7bdat": (b"\x00" * 32 + b"not sas" * 40, {}),
    "cut.parquet": (_truncated_parquet, {}),
    "bad.json": (b'[{"A": 1}, {"A": 2}, {"A": ', {}),
    "bad.ndjson": (b'{"A": 1}\n{"A": 2}\n{"A": oops}\n', {"row": 3}),
    "bad-value.fhir.json": (None, {"column": "value_quantity"}),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_malformed_input_of_each_format_is_quarantined_naming_where(
    sqlite_platform: Platform, shared_data: Path, tmp_path: Path, name: str
) -> None:
    add_policy(sqlite_platform)
    content, where = BAD[name]
    path = tmp_path / name
    if name == "cut.xpt":
        data = (shared_data / "cdiscpilot01-sdtm" / "ae.xpt").read_bytes()
        path.write_bytes(data[: len(data) // 2 + 7])
    elif name == "bad-value.fhir.json":
        bad = observation(1)
        bad["valueQuantity"]["value"] = "high"
        write_bundle(path, [observation(2), bad])
    elif callable(content):
        content(path)
    else:
        path.write_bytes(content)
    done = ingest_tree(sqlite_platform, path, "s.*")
    quarantined = [job(sqlite_platform, j) for j, s in done if s == "quarantined"]
    assert len(quarantined) == 1, done
    reason = quarantined[0].reason
    assert reason["file"] == name and name in reason["message"]
    for key, value in where.items():
        assert reason[key] == value, reason
    assert all(read_table(sqlite_platform, t).num_rows == 0 for t in tables(sqlite_platform, "s"))


# -- define.xml through the API and the landing folder -----------------------------------------


def test_api_upload_with_a_define_xml(platform: Platform, shared_data: Path, tmp_path: Path) -> None:
    add_policy(platform)
    platform.add_user("ingester", "steward")
    client = platform.as_user("ingester")
    define = tmp_path / "define.xml"
    define.write_text(
        (shared_data / "cdiscpilot01-sdtm" / "define.xml").read_text().replace('"Age Units"', '"Unit of age"')
    )
    started = client.post("/api/v1/ingest/uploads", json={"filename": "define.xml"})
    assert started.status_code == 201, started.text
    upload_id = started.json()["id"]
    assert (
        client.put(f"/api/v1/ingest/uploads/{upload_id}?offset=0", content=define.read_bytes()).status_code
        == 200
    )
    response = client.post(
        "/api/v1/ingest/files",
        params={"table": "study.dm", "policy": "keep-all", "filename": "dm.xpt", "define_upload": upload_id},
        content=(shared_data / "cdiscpilot01-sdtm" / "dm.xpt").read_bytes(),
    )
    assert response.status_code == 202, response.text
    run_pending(platform.settings, platform.db)
    body = client.get(f"/api/v1/ingest/jobs/{response.json()['id']}").json()
    assert body["state"] == "succeeded" and body["format"] == "xpt" and body["children"] == []
    assert labels(platform, "study.dm")["AGEU"] == "Unit of age"
    # a zip through the API shows its children
    response = client.post(
        "/api/v1/ingest/files",
        params={"table": "study.*", "policy": "keep-all", "filename": "two.zip"},
        content=zip_bytes({"x.csv": CSV, "y.csv": CSV}),
    )
    run_pending(platform.settings, platform.db)
    body = client.get(f"/api/v1/ingest/jobs/{response.json()['id']}").json()
    assert body["state"] == "succeeded" and len(body["children"]) == 2
    child = client.get(f"/api/v1/ingest/jobs/{body['children'][0]}").json()
    assert child["parent"] == body["id"] and child["state"] == "succeeded"


def test_landing_folder_define_xml_applies_to_the_xpts_next_to_it(
    sqlite_platform: Platform, shared_data: Path
) -> None:
    platform = sqlite_platform
    add_policy(platform)
    platform.settings.ingest.poll_seconds = 0.01
    study = shared_data / "cdiscpilot01-sdtm"
    folder = platform.settings.home / "landing" / "pilot" / "_"
    folder.mkdir(parents=True)
    (folder / "POLICY").write_text("keep-all\n")
    (folder.parent / "define.xml").write_text(
        (study / "define.xml").read_text().replace('"Study Site Identifier"', '"Site"')
    )
    for name in ("dm.xpt", "ex.xpt"):
        (folder / name).write_bytes((study / name).read_bytes())
    watcher = LandingWatcher(platform.settings, platform.db)
    assert watcher.scan() == []  # first sight: wait until the files stop changing
    import time

    time.sleep(0.05)
    queued = watcher.scan()
    assert len(queued) == 2
    assert sorted(s for _, s in run_pending(platform.settings, platform.db)) == ["succeeded", "succeeded"]
    assert tables(platform, "pilot") == ["pilot.dm", "pilot.ex"]
    assert labels(platform, "pilot.dm")["SITEID"] == "Site"
    assert (folder.parent / "define.xml").exists() and not (folder / "dm.xpt").exists()


def test_a_bad_define_xml_is_refused_at_submission(
    sqlite_platform: Platform, shared_data: Path, tmp_path: Path
) -> None:
    from datalibrary.errors import InvalidInput

    add_policy(sqlite_platform)
    define = tmp_path / "define.xml"
    define.write_text('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "boom">]><ODM>&e;</ODM>')
    with pytest.raises(InvalidInput, match="DOCTYPE"):
        ingest_tree(sqlite_platform, shared_data / "cdiscpilot01-sdtm" / "dm.xpt", "s.dm", define=define)


def test_read_ahead_hands_errors_over_and_stops_with_its_caller() -> None:
    import time

    from datalibrary.ingest.prefetch import prefetch

    def failing():
        yield 1
        yield 2
        raise ValueError("boom at row 3")

    ahead = prefetch(failing())
    assert next(ahead) == 1 and next(ahead) == 2
    with pytest.raises(ValueError, match="row 3"):
        next(ahead)
    produced: list[int] = []

    def endless():
        while True:
            produced.append(len(produced))
            yield produced[-1]

    ahead = prefetch(endless(), depth=2)
    assert next(ahead) == 0
    ahead.close()
    seen = len(produced)
    time.sleep(0.3)
    assert len(produced) == seen <= 5, "bounded read-ahead, stopped when the caller stopped"
