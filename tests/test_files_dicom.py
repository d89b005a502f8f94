"""File collections with DICOM: PS3.15 Annex E de-identification on real pydicom sample files,
the index table under grants, dates shifted with the subject's SDTM dates, UIDs keyed per
study, burned-in images quarantined, and a canary scan over every byte written."""

from __future__ import annotations

import copy
import io
import zipfile
from datetime import date, timedelta
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from datalibrary.access import service as access
from datalibrary.auth import service as auth_service
from datalibrary.auth.permissions import Principal
from datalibrary.files import dicom, service
from datalibrary.files.profile import ACTIONS, load_profile
from datalibrary.lake.catalog import open_lake
from datalibrary.lake.files import avro_payload
from tests.helpers import Platform
from tests.lake_helpers import SYSTEM, ingest, read_table, write_csv

SECRET = b"s" * 32
# Sample files pydicom ships inside its wheel (no download): a CT and an MR.
SAMPLES = ("CT_small.dcm", "MR_small.dcm")


def sample(name: str = "CT_small.dcm") -> Dataset:
    path = get_testdata_file(name)
    assert path is not None, f"pydicom no longer ships {name}"
    return pydicom.dcmread(path)


def to_bytes(ds: Dataset) -> bytes:
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def tag_for(action: str, vr: str) -> int:
    """A tag Table E.1-1 gives ``action`` whose dictionary VR is ``vr`` (the test asks the
    profile, so it checks the table as shipped, not a list of its own)."""
    profile = load_profile()
    for tag, found in sorted(profile.exact.items()):
        known = found == action and pydicom.datadict.dictionary_has_tag(tag)
        if known and pydicom.datadict.dictionary_VR(tag) == vr and tag >> 16 != 0x0010:
            return tag
    raise AssertionError(f"no {action} attribute with VR {vr} in the profile")


def options(offset: int = 17, **kw) -> dicom.DeidOptions:
    return dicom.DeidOptions(
        resolve_subject=lambda ds: dicom.Subject("pseudo0000000001", offset), uid_secret=SECRET, **kw
    )


# the profile's action classes, one by one ----------------------------------------------------


def test_profile_is_table_e1_1_from_the_maintained_package() -> None:
    profile = load_profile()
    assert profile.edition in ("2026c", "2024b", "2023")
    assert profile.action(0x00100010) == "Z"  # Patient's Name
    assert profile.action(0x00080018) == "U"  # SOP Instance UID
    assert profile.action(0x00080020) == "Z"  # Study Date (C under the dates option)
    assert profile.action(0x00081040) == "X"  # Institutional Department Name
    assert profile.action(0x60003000) == "X" and profile.action(0x60023000) == "X"  # Overlay Data, masked
    assert profile.action(0x00080060) is None  # Modality: not listed, kept
    assert len(profile.exact) > 500


@pytest.mark.parametrize("name", SAMPLES)
def test_every_action_class_on_real_samples(name: str) -> None:
    ds = sample(name)
    d_tag, z_tag, x_tag = tag_for("D", "LO"), tag_for("Z", "SH"), tag_for("X", "LO")
    ds.add_new(d_tag, "LO", "Sponsor Canary Dlo")
    ds.add_new(z_tag, "SH", "ZCANARY1")
    ds.add_new(x_tag, "LO", "Removed Canary Xlo")
    ds.StudyDate, ds.AcquisitionDateTime = "20200229", "20200301101500.5"
    ds.StudyTime = "101500"
    ref = Dataset()
    ref.ReferencedSOPClassUID = ds.SOPClassUID
    ref.ReferencedSOPInstanceUID = "1.2.3.4.5.6.7.8"
    ds.ReferencedImageSequence = Sequence([ref])  # X/Z/U*: the sequence stays, its UIDs are replaced
    ds.add_new(0x00091010, "LO", "PRIVATE CANARY")
    ds.private_block(0x0011, "ACME 1.0", create=True).add_new(0x10, "LO", "kept private value")
    original = copy.deepcopy(ds)
    result = dicom.deidentify(to_bytes(ds), options(private_allow=frozenset({"0011,XX10@ACME 1.0"})))
    out = pydicom.dcmread(io.BytesIO(result.data))

    assert set(result.actions) <= set(ACTIONS) and {"D", "Z", "X", "K", "C", "U"} <= set(result.actions)
    # D: dummy value
    assert out[d_tag].value == "ANONYMIZED"
    # Z: present, zero length
    assert z_tag in out and not out[z_tag].value
    # X: removed (standard and non-allow-listed private attributes)
    assert x_tag not in out and 0x00091010 not in out
    # K: kept (not in the table), pixels untouched; the allow-listed private element kept
    assert out.Modality == original.Modality and out.Rows == original.Rows
    assert out.PixelData == original.PixelData
    assert out.private_block(0x0011, "ACME 1.0")[0x10].value == "kept private value"
    # C: dates moved by the subject's offset, time of day kept
    assert out.StudyDate == "20200317"
    assert out.AcquisitionDateTime == "20200318101500.5"
    assert out.StudyTime == "101500"
    # U: UIDs replaced by keyed UIDs, the same one for the same input, inside sequences too
    assert out.SOPInstanceUID == dicom.keyed_uid(SECRET, original.SOPInstanceUID) != original.SOPInstanceUID
    assert out.StudyInstanceUID.startswith("2.25.")
    assert out.ReferencedImageSequence[0].ReferencedSOPInstanceUID == dicom.keyed_uid(
        SECRET, "1.2.3.4.5.6.7.8"
    )
    assert out.ReferencedImageSequence[0].ReferencedSOPClassUID == original.SOPClassUID
    assert out.file_meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID
    # patient identifiers -> the subject's pseudonym; de-identification recorded in the file
    assert out.PatientID == "pseudo0000000001" and str(out.PatientName) == "pseudo0000000001"
    assert out.PatientIdentityRemoved == "YES"
    assert [c.CodeValue for c in out.DeidentificationMethodCodeSequence] == ["113100", "113107"]
    # no original identifier, date or UID survives anywhere in the bytes
    for canary in (
        "Sponsor Canary Dlo", "ZCANARY1", "Removed Canary Xlo", "PRIVATE CANARY", "20200229",
        "1.2.3.4.5.6.7.8", original.SOPInstanceUID, original.StudyInstanceUID, str(original.PatientID),
        str(original.PatientName),
    ):  # fmt: skip
        assert canary.encode() not in result.data, canary


def test_partial_or_invalid_dates_are_emptied_not_kept() -> None:
    assert dicom.shift_da("2020", 3) is None and dicom.shift_da("20200231", 3) is None
    assert dicom.shift_da("20201231", 1) == "20210101"
    assert dicom.shift_dt("20201231235959+0100", -1) == "20201230235959+0100"


def test_temporal_attributes_without_c_under_the_modified_dates_option_follow_the_basic_profile() -> None:
    """PS3.15 Table E.1-1: every DA/DT/TM row has C under "Rtn. Long. Modif. Dates Opt." except
    Patient's Birth Date (Z), Patient's Birth Time (X) and GPS Time Stamp (X): those are emptied
    or removed, never shifted; a Study Date (Z in the Basic Profile, C under the option) moves."""
    ds = sample()
    ds.PatientBirthDate, ds.PatientBirthTime = "19500607", "101500"
    ds.add_new(0x00160077, "DT", "20190102030405")  # GPS Time Stamp
    ds.StudyDate = "20190102"
    result = dicom.deidentify(to_bytes(ds), options(offset=10))
    out = pydicom.dcmread(io.BytesIO(result.data))
    assert "PatientBirthDate" in out and not out.PatientBirthDate
    assert "PatientBirthTime" not in out and 0x00160077 not in out
    assert out.StudyDate == "20190112"
    for canary in (b"19500607", b"19500617", b"20190102030405", b"20190112030405"):
        assert canary not in result.data


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"BurnedInAnnotation": "YES"}, "BurnedInAnnotation is YES"),
        ({"Modality": "US"}, "modality US"),
        ({"SOPClassUID": "1.2.840.10008.5.1.4.1.1.7"}, "Secondary Capture"),
        ({"PatientID": ""}, "PatientID is empty"),
    ],
)
def test_fail_closed_cases_are_rejected_with_reason(change: dict, reason: str) -> None:
    ds = sample()
    for keyword, value in change.items():
        setattr(ds, keyword, value)

    def resolve(found: Dataset) -> dicom.Subject:
        if not str(found.get("PatientID", "")).strip():
            raise dicom.Rejected("PatientID is empty")
        return dicom.Subject("p", 1)

    with pytest.raises(dicom.Rejected, match=reason):
        dicom.deidentify(to_bytes(ds), dicom.DeidOptions(resolve, SECRET))


def test_a_reviewed_modality_is_accepted() -> None:
    ds = sample()
    ds.Modality = "US"
    result = dicom.deidentify(to_bytes(ds), options(burned_in_reviewed={"US": "vendor writes no text"}))
    assert result.metadata["modality"] == "US"


# the platform: collections, SDTM-consistent dates, grants, canaries ------------------------------

SUBJECTS = {"01-701-1015": "20140102", "01-701-1023": "20120805"}  # USUBJID -> RFSTDTC (DICOM form)
NAMES = {"01-701-1015": "Canary^Alice", "01-701-1023": "Canary^Bob"}


def image(usubjid: str, study_uid: str, series_uid: str, sop_uid: str, modality: str = "CT") -> bytes:
    ds = sample("CT_small.dcm" if modality == "CT" else "MR_small.dcm")
    ds.PatientID, ds.PatientName = usubjid, NAMES[usubjid]
    ds.PatientBirthDate = "19411212"
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = SUBJECTS[usubjid]
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = study_uid, series_uid, sop_uid
    ds.InstitutionName = "Canary General Hospital"
    ds.BodyPartExamined = "CHEST"
    return to_bytes(ds)


def dm_csv(path: Path) -> Path:
    return write_csv(
        path,
        {
            "STUDYID": ["CDISCPILOT01"] * 2,
            "DOMAIN": ["DM"] * 2,
            "USUBJID": list(SUBJECTS),
            "SUBJID": ["1015", "1023"],
            "RFSTDTC": [f"{v[:4]}-{v[4:6]}-{v[6:]}" for v in SUBJECTS.values()],
            "SITEID": ["701", "701"],
        },
    )


def who(platform: Platform, name: str) -> Principal:
    with platform.db.session() as session:
        return auth_service.principal_for(auth_service.get_user(session, name))


def access_for(platform: Platform, principal: Principal):  # type: ignore[no-untyped-def]
    def access_of(namespace: str, table: str) -> service.FileView | None:
        with platform.db.session() as session:
            found = access.effective_access(session, principal, namespace, table)
        return None if found is None else service.FileView(found.row_filter)

    return access_of


def every_byte(platform: Platform) -> bytes:
    """Everything the installation wrote: warehouse, state dir (logs, quarantine), database."""
    blobs = []
    for path in sorted(p for p in platform.settings.home.rglob("*") if p.is_file()):
        data = path.read_bytes()
        blobs.append(avro_payload(data) if path.suffix == ".avro" else data)
    with platform.db.engine.connect() as connection:
        from sqlalchemy import MetaData

        meta = MetaData()
        meta.reflect(connection)
        for table in meta.sorted_tables:
            for row in connection.execute(table.select()):
                blobs.append(repr(tuple(row)).encode())
    return b"\n".join(blobs)


def test_collection_end_to_end(platform: Platform, tmp_path: Path) -> None:
    ingest(platform, dm_csv(tmp_path / "dm.csv"), "study1.dm", policy="sdtm")
    for name in ("study1.ct", "study2.ct"):
        with platform.db.session() as session:
            service.create_collection(session, SYSTEM, platform.settings, name, policy="sdtm")
    a, b = list(SUBJECTS)
    root = "1.2.826.0.1.3680043.99"
    files = {
        "a/1.dcm": image(a, f"{root}.1", f"{root}.1.1", f"{root}.1.1.1"),
        "a/2.dcm": image(a, f"{root}.1", f"{root}.1.1", f"{root}.1.1.2"),
        "b/1.dcm": image(b, f"{root}.2", f"{root}.2.1", f"{root}.2.1.1", "MR"),
    }
    burned = sample()
    burned.PatientID, burned.BurnedInAnnotation = a, "YES"
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        for path, data in files.items():
            zf.writestr(path, data)
        zf.writestr("a/burned.dcm", to_bytes(burned))

    def upload(name: str, items: list[tuple[str, bytes]]) -> service.IngestReport:
        with platform.db.session() as session:  # one request, one transaction
            return service.ingest_files(session, SYSTEM, platform.settings, name, items)

    report = upload("study1.ct", [("series.zip", archive.getvalue())])
    again = upload("study1.ct", [("a/1.dcm", files["a/1.dcm"])])
    upload("study2.ct", [("a/1.dcm", files["a/1.dcm"])])
    with platform.db.session() as session:
        quarantine = service.quarantined(session, SYSTEM, "study1.ct")
    assert len(report.added) == 3 and again.unchanged == ["a/1.dcm"] and not again.added
    assert [q["path"] for q in quarantine] == ["a/burned.dcm"]
    assert "BurnedInAnnotation is YES" in quarantine[0]["reason"]

    index = {r["path"]: r for r in read_table(platform, "study1.ct").to_pylist()}
    dm = {r["USUBJID"]: r for r in read_table(platform, "study1.dm").to_pylist()}
    # the subject column holds the same pseudonym as the SDTM table's USUBJID ...
    by_subject = {r["subject"] for r in index.values()}
    assert by_subject == set(dm)
    # ... and the acquisition date moved exactly like the subject's RFSTDTC
    for row in index.values():
        assert row["acquisition_date"].isoformat() == dm[row["subject"]]["RFSTDTC"]
        assert row["acquisition_date"] != date.fromisoformat(row["acquisition_date"].isoformat()) + timedelta(
            1
        )
    # UIDs: one study/series stays one; the same file in another study is unlinkable
    assert index["a/1.dcm"]["study_instance_uid"] == index["a/2.dcm"]["study_instance_uid"]
    assert index["a/1.dcm"]["series_instance_uid"] == index["a/2.dcm"]["series_instance_uid"]
    assert index["a/1.dcm"]["sop_instance_uid"] != index["a/2.dcm"]["sop_instance_uid"]
    assert index["a/1.dcm"]["study_instance_uid"] != index["b/1.dcm"]["study_instance_uid"]
    study2 = read_table(platform, "study2.ct").to_pylist()[0]
    assert study2["study_instance_uid"] != index["a/1.dcm"]["study_instance_uid"]
    assert study2["subject"] != index["a/1.dcm"]["subject"]
    assert {r["modality"] for r in index.values()} == {"CT", "MR"}

    # the index is a table: SQL under grants, a row filter limits the files too
    platform.add_user("stew", "steward")
    with platform.db.session() as session:
        access.add_grant(
            session, who(platform, "stew"), principal="user:ada", namespace="study1", table="ct",
            row_filter="modality = 'CT'",
        )  # fmt: skip
    ada_client = platform.as_user("ada")
    response = ada_client.post(
        "/api/v1/query", json={"sql": "SELECT path, modality FROM study1.ct ORDER BY path"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["rows"] == [["a/1.dcm", "CT"], ["a/2.dcm", "CT"]]
    ada = who(platform, "ada")
    with platform.db.session() as session:
        listed = service.list_files(session, ada, platform.settings, "study1.ct", access_for(platform, ada))
        meta, chunks = service.read_file(
            session, ada, platform.settings, "study1.ct", "a/1.dcm", access_for(platform, ada)
        )
        data = b"".join(chunks)
        with pytest.raises(Exception, match="no file b/1.dcm"):
            service.read_file(
                session, ada, platform.settings, "study1.ct", "b/1.dcm", access_for(platform, ada)
            )
        with pytest.raises(Exception, match="does not exist or you have no grant"):
            service.list_files(session, ada, platform.settings, "study2.ct", access_for(platform, ada))
    assert [f["path"] for f in listed] == ["a/1.dcm", "a/2.dcm"]
    reread = pydicom.dcmread(io.BytesIO(data))
    assert reread.SOPInstanceUID == meta["sop_instance_uid"] and reread.PatientID == meta["subject"]
    assert reread.StudyDate == meta["acquisition_date"].replace("-", "")

    # canaries: no original identifier, date or UID anywhere the platform wrote
    written = every_byte(platform)
    for usubjid, day in SUBJECTS.items():
        assert day.encode() not in written, day
        assert NAMES[usubjid].encode() not in written
    for canary in (b"19411212", b"Canary General Hospital", b"1.2.826.0.1.3680043.99", b"Canary^"):
        assert canary not in written, canary
    # (the USUBJIDs themselves are in the CSV's source, sealed, never in plain)
    assert not any(usubjid.encode() in written for usubjid in SUBJECTS)
    assert open_lake(platform.settings).exists(service.parse_table_name("study1.ct"))


def test_rest_endpoints_restricted_user(platform: Platform, tmp_path: Path) -> None:
    """Create, upload (a zip of a series), list and download through the API; a user without
    a grant sees nothing, a granted one reads the file and the read is audited and traced."""
    from sqlalchemy import select

    from datalibrary.audit.models import AuditEvent
    from datalibrary.lineage.models import LineageEvent

    platform.add_user("stew", "steward")
    steward = platform.as_user("stew")
    created = steward.post("/api/v1/collections", json={"name": "study1.mr", "policy": "sdtm"})
    assert created.status_code == 201, created.text
    assert steward.post("/api/v1/collections", json={"name": "study1.mr"}).status_code == 409
    archive = io.BytesIO()
    a = list(SUBJECTS)[0]
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("s1/1.dcm", image(a, "1.2.3.99.1", "1.2.3.99.1.1", "1.2.3.99.1.1.1", "MR"))
        zf.writestr("notes.txt", b"Canary^Alice was here")
    sent = steward.post(
        "/api/v1/collections/study1.mr/files", params={"filename": "series.zip"}, content=archive.getvalue()
    )
    assert sent.status_code == 200, sent.text
    assert [f["path"] for f in sent.json()["added"]] == ["s1/1.dcm"]
    assert "this collection is not classified" in sent.json()["quarantined"][0]["reason"]  # a document

    outsider = platform.as_user("eve")
    assert outsider.get("/api/v1/collections").json() == []
    assert outsider.get("/api/v1/collections/study1.mr/files").status_code == 404  # as if it did not exist
    assert outsider.get("/api/v1/collections/study1.mr/files/s1/1.dcm").status_code == 404
    assert outsider.get("/api/v1/collections/study1.none/files").json()["detail"] == (
        "file collection study1.none does not exist or you have no grant on it"
    )
    assert outsider.post("/api/v1/collections", json={"name": "study1.x"}).status_code == 403

    with platform.db.session() as session:
        access.add_grant(session, who(platform, "stew"), principal="user:ada", namespace="study1", table="mr")
    ada = platform.as_user("ada")
    assert [c["name"] for c in ada.get("/api/v1/collections").json()] == ["study1.mr"]
    listed = ada.get("/api/v1/collections/study1.mr/files").json()
    assert [f["path"] for f in listed] == ["s1/1.dcm"] and listed[0]["modality"] == "MR"
    got = ada.get("/api/v1/collections/study1.mr/files/s1/1.dcm")
    assert got.status_code == 200 and got.headers["content-type"] == "application/dicom"
    assert int(got.headers["X-Bytes"]) == len(got.content)
    assert pydicom.dcmread(io.BytesIO(got.content)).SOPInstanceUID == listed[0]["sop_instance_uid"]
    assert ada.get("/api/v1/collections/study1.mr/files/../etc/passwd").status_code in (404, 422)
    with platform.db.session() as session:
        reads = session.scalars(select(AuditEvent).where(AuditEvent.action == "files.read")).all()
        assert [(e.actor, e.details["bytes"]) for e in reads] == [("ada", len(got.content))]
        traced = session.scalars(select(LineageEvent)).all()
        assert any("file-read" in repr(e.__dict__) for e in traced)


def test_cli_create_add_list_get(sqlite_platform: Platform, tmp_path: Path, monkeypatch) -> None:
    import json

    from typer.testing import CliRunner

    from datalibrary.cli import app

    monkeypatch.setenv("DATALIBRARY_HOME", str(sqlite_platform.settings.home))
    monkeypatch.setenv("DATALIBRARY_DATABASE_URL", sqlite_platform.settings.connect_url())

    def run(*args: str, code: int = 0) -> str:
        result = CliRunner().invoke(app, list(args))
        assert result.exit_code == code, f"{args}: exit {result.exit_code}\n{result.output}"
        return result.output

    created = json.loads(
        run("files", "create", "study1.us", "--reviewed", "US=vendor burns no text", "--json")
    )
    assert created["burned_in_reviewed"] == {"US": "vendor burns no text"}
    series = tmp_path / "series"
    (series / "s1").mkdir(parents=True)
    a = list(SUBJECTS)[0]
    (series / "s1" / "1.dcm").write_bytes(image(a, "1.2.3.98.1", "1.2.3.98.1.1", "1.2.3.98.1.1.1"))
    burned = sample()
    burned.BurnedInAnnotation = "YES"
    (series / "s1" / "2.dcm").write_bytes(to_bytes(burned))
    added = json.loads(run("files", "add", "study1.us", str(series), "--json"))
    assert [f["path"] for f in added["added"]] == ["s1/1.dcm"]
    assert "BurnedInAnnotation is YES" in added["quarantined"][0]["reason"]
    assert json.loads(run("files", "quarantine", "study1.us", "--json"))[0]["path"] == "s1/2.dcm"
    assert [c["name"] for c in json.loads(run("files", "list-collections", "--json"))] == ["study1.us"]
    sqlite_platform.as_user("ada")  # a scientist without a grant
    assert "no grant" in run("files", "list", "study1.us", "--as", "ada", code=2)
    sqlite_platform.add_user("stew", "steward")
    with sqlite_platform.db.session() as session:
        access.add_grant(session, who(sqlite_platform, "stew"), principal="user:ada", namespace="study1")
    listed = json.loads(run("files", "list", "study1.us", "--as", "ada", "--json"))
    assert [f["path"] for f in listed] == ["s1/1.dcm"]
    target = tmp_path / "out.dcm"
    got = json.loads(
        run("files", "get", "study1.us", "s1/1.dcm", "--output", str(target), "--as", "ada", "--json")
    )
    assert pydicom.dcmread(target).SOPInstanceUID == got["sop_instance_uid"]


def test_dicomweb_with_dicomweb_client_as_restricted_user(sqlite_platform: Platform) -> None:
    """QIDO-RS and WADO-RS behind the platform's tokens, driven by the standard client: a user
    whose grant shows only CT sees only the CT study; a user without a grant sees nothing."""
    from dicomweb_client.api import DICOMwebClient
    from requests import HTTPError

    from tests.helpers import LiveServer

    platform = sqlite_platform
    with platform.db.session() as session:
        service.create_collection(session, SYSTEM, platform.settings, "study1.img")
    a, b = list(SUBJECTS)
    root = "1.2.826.0.1.3680043.97"
    uploads = [
        ("a/1.dcm", image(a, f"{root}.1", f"{root}.1.1", f"{root}.1.1.1")),
        ("a/2.dcm", image(a, f"{root}.1", f"{root}.1.1", f"{root}.1.1.2")),
        ("b/1.dcm", image(b, f"{root}.2", f"{root}.2.1", f"{root}.2.1.1", "MR")),
    ]
    with platform.db.session() as session:
        service.ingest_files(session, SYSTEM, platform.settings, "study1.img", uploads)
    platform.add_user("stew", "steward")
    with platform.db.session() as session:
        access.add_grant(
            session, who(platform, "stew"), principal="user:ada", namespace="study1", table="img",
            row_filter="modality = 'CT'",
        )  # fmt: skip
    platform.as_user("ada")
    platform.as_user("eve")
    with LiveServer(platform.app) as server:
        url = f"{server.url}/api/v1/dicomweb/study1.img"
        ada = DICOMwebClient(url, headers={"Authorization": f"Bearer {platform.tokens['ada']}"})
        studies = ada.search_for_studies()
        assert len(studies) == 1 and studies[0]["00080061"]["Value"] == ["CT"]
        study = studies[0]["0020000D"]["Value"][0]
        assert study.startswith("2.25.") and not study.startswith(root)
        series = ada.search_for_series(study)
        assert [s["00201209"]["Value"] for s in series] == [[2]]
        series_uid = series[0]["0020000E"]["Value"][0]
        instances = ada.search_for_instances(study, series_uid)
        assert len(instances) == 2
        sop = instances[0]["00080018"]["Value"][0]
        one = ada.retrieve_instance(study, series_uid, sop)
        assert one.SOPInstanceUID == sop and one.PatientID == studies[0]["00100020"]["Value"][0]
        assert one.PatientIdentityRemoved == "YES"
        whole = ada.retrieve_series(study, series_uid)
        assert sorted(d.SOPInstanceUID for d in whole) == sorted(i["00080018"]["Value"][0] for i in instances)
        assert ada.search_for_studies(search_filters={"Modality": "MR"}) == []  # filtered by the grant
        eve = DICOMwebClient(url, headers={"Authorization": f"Bearer {platform.tokens['eve']}"})
        with pytest.raises(HTTPError) as refused:
            eve.search_for_studies()
        assert refused.value.response.status_code == 404  # a collection without a grant: as if absent
        anonymous = DICOMwebClient(url)
        with pytest.raises(HTTPError) as unauthenticated:
            anonymous.search_for_studies()
        assert unauthenticated.value.response.status_code == 401
        with pytest.raises(HTTPError) as hidden:  # the MR study exists, but not for ada
            mr = [r for r in read_table(platform, "study1.img").to_pylist() if r["modality"] == "MR"][0]
            ada.retrieve_instance(mr["study_instance_uid"], mr["series_instance_uid"], mr["sop_instance_uid"])
        assert hidden.value.response.status_code == 404
    with platform.db.session() as session:
        from sqlalchemy import select

        from datalibrary.audit.models import AuditEvent

        reads = session.scalars(select(AuditEvent).where(AuditEvent.action == "files.read")).all()
        assert [(e.actor, e.details["files"]) for e in reads] == [("ada", 1), ("ada", 2)]


def test_console_page_shows_granted_files_and_quarantine(sqlite_platform: Platform) -> None:
    from tests.helpers import PASSWORD
    from tests.test_web import sign_in

    platform = sqlite_platform
    with platform.db.session() as session:
        service.create_collection(session, SYSTEM, platform.settings, "study1.web")
    a = list(SUBJECTS)[0]
    burned = sample()
    burned.PatientID, burned.BurnedInAnnotation = a, "YES"
    with platform.db.session() as session:
        service.ingest_files(
            session, SYSTEM, platform.settings, "study1.web",
            [("a/1.dcm", image(a, "1.2.3.96.1", "1.2.3.96.1.1", "1.2.3.96.1.1.1")),
             ("a/9.dcm", to_bytes(burned))],
        )  # fmt: skip
    platform.add_user("sci", "scientist")
    client = sign_in(platform, "sci", PASSWORD)
    assert "study1.web" not in client.get("/collections").text  # no grant: not even listed
    platform.add_user("stew", "steward")
    with platform.db.session() as session:
        access.add_grant(
            session, who(platform, "stew"), principal="user:sci", namespace="study1", table="web"
        )
    page = client.get("/collections", params={"name": "study1.web"}).text
    assert "a/1.dcm" in page and "CHEST" in page and "Canary" not in page
    assert "a/9.dcm" not in page  # the quarantine is for ingest operators
    download = client.get("/api/v1/collections/study1.web/files/a/1.dcm")
    assert (
        download.status_code == 200
        and pydicom.dcmread(io.BytesIO(download.content)).PatientIdentityRemoved == "YES"
    )
    admin = sign_in(platform, "admin", platform.admin_password)
    assert "BurnedInAnnotation is YES" in admin.get("/collections", params={"name": "study1.web"}).text


# attacks on the boundary -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad", ["../escape.dcm", "a/../../b.dcm", "a\\..\\..\\b.dcm", "a/./b.dcm", "a/b c.dcm", "ok.dcm"]
)
def test_bad_paths_refuse_the_whole_upload_before_anything_is_written(
    sqlite_platform: Platform, bad: str
) -> None:
    platform = sqlite_platform
    with platform.db.session() as session:
        service.create_collection(session, SYSTEM, platform.settings, "study1.bad")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ok.dcm", image(list(SUBJECTS)[0], "1.2.3.95.1", "1.2.3.95.1.1", "1.2.3.95.1.1.1"))
        zf.writestr(bad, b"payload")
    lake = open_lake(platform.settings)
    objects = service.objects_root(lake, service.parse_table_name("study1.bad"))
    with platform.db.session() as session, pytest.raises(Exception, match="not valid|more than once|is not"):
        service.ingest_files(
            session, SYSTEM, platform.settings, "study1.bad", [("up.zip", archive.getvalue())]
        )
    assert lake.storage.list(objects) == []
    assert read_table(platform, "study1.bad").num_rows == 0


def test_collection_settings_are_checked(sqlite_platform: Platform) -> None:
    platform = sqlite_platform
    cases = [
        ({"name": "nodot"}, "NAMESPACE.TABLE"),
        ({"name": "s.c", "policy": "keep-all-missing"}, "no policy"),
        ({"name": "s.c", "subject_template": "{PatientID.__class__}"}, "may only use"),
        ({"name": "s.c", "subject_template": "{PatientName}"}, "may only use"),
        ({"name": "s.c", "private_allow": ["0010,XX10@X"]}, "gggg,XXee@CREATOR"),  # even group: not private
        ({"name": "s.c", "burned_in_reviewed": {"US": " "}}, "reason"),
    ]
    for kwargs, message in cases:
        name = kwargs.pop("name")
        with platform.db.session() as session, pytest.raises(Exception, match=message):
            service.create_collection(session, SYSTEM, platform.settings, name, **kwargs)
    ingest_table = write_csv(platform.settings.home / "t.csv", {"A": [1]})
    from tests.lake_helpers import add_policy

    add_policy(platform)
    ingest(platform, ingest_table, "s.tbl")
    with platform.db.session() as session, pytest.raises(Exception, match="already a table"):
        service.create_collection(session, SYSTEM, platform.settings, "s.tbl")
    with platform.db.session() as session, pytest.raises(Exception, match="does not pseudonymize"):
        service.create_collection(session, SYSTEM, platform.settings, "s.other", policy="keep-all")


def test_scientists_cannot_create_or_upload(sqlite_platform: Platform) -> None:
    platform = sqlite_platform
    with platform.db.session() as session:
        service.create_collection(session, SYSTEM, platform.settings, "study1.perm")
    sci = platform.as_user("sci")
    assert sci.post("/api/v1/collections", json={"name": "study1.x"}).status_code == 403
    sent = sci.post("/api/v1/collections/study1.perm/files", params={"filename": "x.dcm"}, content=b"x")
    assert sent.status_code == 403
    assert sci.get("/api/v1/collections/study1.perm/quarantine").status_code == 403
    assert sci.get("/api/v1/dicomweb/study1.perm/studies/1.2/series/x").status_code == 422  # UIDs are digits
    assert sci.get("/api/v1/dicomweb/study1.perm/studies", params={"limit": "-1"}).status_code in (404, 422)


def test_a_new_version_keeps_the_old_one_readable_through_maintenance(sqlite_platform: Platform) -> None:
    platform = sqlite_platform
    with platform.db.session() as session:
        service.create_collection(session, SYSTEM, platform.settings, "study1.ver")
    a = list(SUBJECTS)[0]
    first = image(a, "1.2.3.94.1", "1.2.3.94.1.1", "1.2.3.94.1.1.1")
    second = image(a, "1.2.3.94.1", "1.2.3.94.1.1", "1.2.3.94.1.1.2")
    for data in (first, second):
        with platform.db.session() as session:
            service.ingest_files(session, SYSTEM, platform.settings, "study1.ver", [("x.dcm", data)])
    from datalibrary.lake.maintenance import maintain

    with platform.db.session() as session:  # compaction, expiry, orphan removal: objects survive
        maintain(session, SYSTEM, open_lake(platform.settings), retention_hours=0, grace_minutes=0)
    platform.add_user("stew", "steward")
    with platform.db.session() as session:
        access.add_grant(session, who(platform, "stew"), principal="user:ada", namespace="study1")
    ada = platform.as_user("ada")
    listed = ada.get("/api/v1/collections/study1.ver/files").json()
    assert [(f["path"], f["version"]) for f in listed] == [("x.dcm", 2)]
    old = ada.get("/api/v1/collections/study1.ver/files/x.dcm", params={"version": 1})
    new = ada.get("/api/v1/collections/study1.ver/files/x.dcm")
    assert old.headers["X-File-Version"] == "1" and new.headers["X-File-Version"] == "2"
    assert (
        pydicom.dcmread(io.BytesIO(old.content)).SOPInstanceUID
        != pydicom.dcmread(io.BytesIO(new.content)).SOPInstanceUID
    )


def test_erasing_a_subject_removes_their_files_with_proof(platform: Platform) -> None:
    from datalibrary.lake.erasure import erase_subject

    with platform.db.session() as session:
        service.create_collection(session, SYSTEM, platform.settings, "study1.er")
    a, b = list(SUBJECTS)
    uploads = [
        ("a/1.dcm", image(a, "1.2.3.93.1", "1.2.3.93.1.1", "1.2.3.93.1.1.1")),
        ("b/1.dcm", image(b, "1.2.3.93.2", "1.2.3.93.2.1", "1.2.3.93.2.1.1", "MR")),
    ]
    with platform.db.session() as session:
        service.ingest_files(session, SYSTEM, platform.settings, "study1.er", uploads)
    index = {r["path"]: r for r in read_table(platform, "study1.er").to_pylist()}
    gone = index["a/1.dcm"]["subject"]
    lake = open_lake(platform.settings)
    with platform.db.session() as session:
        report = erase_subject(session, SYSTEM, lake, namespace="study1", subject=gone)
    assert report["ok"] is True, report["files_containing_subject"]
    assert report["rows_removed"] == 1
    checked = [c for c in report["copies"]["file collections"] if "/objects/" in c["uri"]]
    assert {c["action"] for c in checked} == {"deleted", "kept"} and len(checked) == 2
    assert [r["path"] for r in read_table(platform, "study1.er").to_pylist()] == ["b/1.dcm"]
    remaining = lake.storage.list(service.objects_root(lake, service.parse_table_name("study1.er")))
    assert [item.uri.rsplit("/", 1)[-1] for item in remaining] == [index["b/1.dcm"]["sha256"]]
    assert not any(gone.encode() in lake.storage.read_bytes(item.uri) for item in remaining)


def test_multi_frame_overlays_icons_and_nested_dates() -> None:
    """Pixel-data-adjacent attributes: overlay data and comments (a masked group of the table),
    the icon image (a thumbnail of the pixels), dates nested in kept sequences."""
    ds = sample("CT_small.dcm")
    ds.PixelData = ds.PixelData * 4
    ds.NumberOfFrames = 4
    ds.add_new(0x60003000, "OW", b"\x01\x02" * 64)  # Overlay Data
    ds.add_new(0x60024000, "LT", "Overlay Canary Comment")  # Overlay Comments, group 6002
    icon = Dataset()
    icon.Rows, icon.Columns, icon.BitsAllocated, icon.SamplesPerPixel = 2, 5, 8, 1
    icon.add_new(0x7FE00010, "OB", b"ICONCANARY")
    ds.IconImageSequence = Sequence([icon])
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = "T-D3000", "SRT", "Chest"
    item.add_new(0x00080020, "DA", "20191231")  # a Study Date nested in a kept sequence
    item.add_new(0x00091001, "LO", "NESTED PRIVATE CANARY")  # a private tag inside an item
    ds.AnatomicRegionSequence = Sequence([item])
    ds.PatientBirthDate = "19500607"
    ds.add_new(0x0022FFF0, "UN", b"UNKNOWN CANARY")  # a standard group, not in the dictionary
    result = dicom.deidentify(to_bytes(ds), options(offset=-1))
    out = pydicom.dcmread(io.BytesIO(result.data))
    assert out.NumberOfFrames == 4 and out.PixelData == ds.PixelData
    assert 0x60003000 not in out and 0x60024000 not in out and "IconImageSequence" not in out
    assert out.AnatomicRegionSequence[0].StudyDate == "20191230"
    assert 0x00091001 not in out.AnatomicRegionSequence[0]
    assert "PatientBirthDate" in out and not out.PatientBirthDate  # Z: emptied, never shifted
    for canary in (
        b"Overlay Canary Comment", b"ICONCANARY", b"20191231", b"NESTED PRIVATE", b"19500606",
        b"UNKNOWN CANARY",
    ):  # fmt: skip
        assert canary not in result.data


def test_a_corrupt_archive_member_is_quarantined_and_the_rest_committed(sqlite_platform: Platform) -> None:
    platform = sqlite_platform
    with platform.db.session() as session:
        service.create_collection(session, SYSTEM, platform.settings, "study1.zip")
    good = image(list(SUBJECTS)[0], "1.2.3.92.1", "1.2.3.92.1.1", "1.2.3.92.1.1.1")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("good.dcm", good)
        zf.writestr("broken.dcm", good)
    raw = bytearray(archive.getvalue())
    start = raw.index(b"broken.dcm") + len("broken.dcm") + 40  # inside its compressed data
    raw[start : start + 64] = bytes(64)
    with platform.db.session() as session:
        report = service.ingest_files(
            session, SYSTEM, platform.settings, "study1.zip", [("d.zip", bytes(raw))]
        )
    assert [f["path"] for f in report.added] == ["good.dcm"]
    assert [q["path"] for q in report.quarantined] == ["broken.dcm"]
    assert "archive" in report.quarantined[0]["reason"] or "DICOM" in report.quarantined[0]["reason"]


def test_sdk_lists_reads_and_downloads_under_grants(sqlite_platform: Platform, tmp_path: Path) -> None:
    import datalibrary.sdk as sdk
    from tests.helpers import LiveServer

    platform = sqlite_platform
    with platform.db.session() as session:
        service.create_collection(session, SYSTEM, platform.settings, "study1.sdk")
    a = list(SUBJECTS)[0]
    with platform.db.session() as session:
        service.ingest_files(
            session, SYSTEM, platform.settings, "study1.sdk",
            [("s/1.dcm", image(a, "1.2.3.91.1", "1.2.3.91.1.1", "1.2.3.91.1.1.1"))],
        )  # fmt: skip
    platform.add_user("stew", "steward")
    with platform.db.session() as session:
        grant = access.add_grant(session, who(platform, "stew"), principal="user:ada", namespace="study1")
        grant_id = grant.id
    platform.as_user("ada")
    with LiveServer(platform.app) as server:
        lake = sdk.connect(server.url, platform.tokens["ada"])
        assert [c["name"] for c in lake.collections()] == ["study1.sdk"]
        files = lake.files("study1.sdk")
        listed = files.list()
        assert [f["path"] for f in listed] == ["s/1.dcm"]
        ds = pydicom.dcmread(files.open("s/1.dcm"))
        assert ds.SOPInstanceUID == listed[0]["sop_instance_uid"]
        saved = files.download("s/1.dcm", tmp_path)
        assert saved == tmp_path / "1.dcm" and saved.read_bytes() == files.read("s/1.dcm")
        with pytest.raises(ValueError, match="max_bytes"):
            files.download("s/1.dcm", tmp_path / "x.dcm", max_bytes=10)
        with platform.db.session() as session:  # revocation is live: the next read is refused
            access.revoke_grant(session, who(platform, "stew"), grant_id)
        with pytest.raises(sdk.SdkError) as refused:
            files.read("s/1.dcm")
        assert refused.value.status == 404
