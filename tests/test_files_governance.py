"""Governance of file collections: every read metered and priced like query bytes, the index
table in the risk report, erasure proven on every path (old versions, snapshots, DICOMweb, SDK),
large uploads streamed to disk, concurrent versions of one path."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from datalibrary.access import service as access
from datalibrary.auth import projects
from datalibrary.files import service
from datalibrary.files.models import FileRead
from datalibrary.lineage.models import LineageEvent
from tests.helpers import Platform
from tests.lake_helpers import SYSTEM
from tests.test_files_dicom import SUBJECTS, image, who


def _collection(platform: Platform, name: str, uploads: list[tuple[str, bytes]]) -> None:
    with platform.db.session() as session:
        service.create_collection(session, SYSTEM, platform.settings, name)
    with platform.db.session() as session:
        service.ingest_files(session, SYSTEM, platform.settings, name, uploads)


def _grant(platform: Platform, user: str, namespace: str, row_filter: str | None = None) -> int:
    if "stew" not in platform.tokens:
        platform.add_user("stew", "steward")
        platform.tokens["stew"] = ""
    with platform.db.session() as session:
        grant = access.add_grant(
            session,
            who(platform, "stew"),
            principal=f"user:{user}",
            namespace=namespace,
            row_filter=row_filter,
        )
        return grant.id


# costs ---------------------------------------------------------------------------------------


def test_every_read_is_metered_and_priced_per_user_and_project(platform: Platform, tmp_path: Path) -> None:
    """API download, SDK open and download, DICOMweb WADO retrieve: each read is one metering
    record with the bytes served, a cost line of the reader's project at the query price, and
    a lineage file-read event (DICOMweb included)."""
    from dicomweb_client.api import DICOMwebClient

    import datalibrary.sdk as sdk
    from datalibrary.costs import service as costs
    from tests.helpers import LiveServer

    a, b = list(SUBJECTS)
    root = "1.2.826.0.1.3680043.88"
    _collection(
        platform,
        "study1.cost",
        [
            ("a/1.dcm", image(a, f"{root}.1", f"{root}.1.1", f"{root}.1.1.1")),
            ("a/2.dcm", image(a, f"{root}.1", f"{root}.1.1", f"{root}.1.1.2")),
            ("b/1.dcm", image(b, f"{root}.2", f"{root}.2.1", f"{root}.2.1.1", "MR")),
        ],
    )
    platform.as_user("ada")
    platform.as_user("bob")
    with platform.db.session() as session:
        projects.create_project(session, SYSTEM, "onco")
        projects.create_project(session, SYSTEM, "cardio")
        projects.add_member(session, SYSTEM, "onco", "ada", default=True)
        projects.add_member(session, SYSTEM, "cardio", "bob", default=True)
    _grant(platform, "ada", "study1")
    _grant(platform, "bob", "study1", row_filter="modality = 'CT'")
    sizes = {
        f["path"]: f["size"]
        for f in platform.as_user("ada").get("/api/v1/collections/study1.cost/files").json()
    }
    ct_series = sum(size for path, size in sizes.items() if path.startswith("a/"))

    api = platform.as_user("ada").get("/api/v1/collections/study1.cost/files/b/1.dcm")
    assert api.status_code == 200 and len(api.content) == sizes["b/1.dcm"]
    with LiveServer(platform.app) as server:
        files = sdk.connect(server.url, platform.tokens["ada"]).files("study1.cost")
        assert len(files.open("a/1.dcm").read()) == sizes["a/1.dcm"]
        files.download("a/2.dcm", tmp_path)
        bob = DICOMwebClient(
            f"{server.url}/api/v1/dicomweb/study1.cost",
            headers={"Authorization": f"Bearer {platform.tokens['bob']}"},
        )
        study = bob.search_for_studies()[0]["0020000D"]["Value"][0]
        assert len(bob.retrieve_study(study)) == 2
    with platform.db.session() as session:
        reads = session.scalars(select(FileRead).order_by(FileRead.id)).all()
        assert [(r.user, r.project, r.via, r.files, r.bytes) for r in reads] == [
            ("ada", "onco", "download", 1, sizes["b/1.dcm"]),
            ("ada", "onco", "download", 1, sizes["a/1.dcm"]),
            ("ada", "onco", "download", 1, sizes["a/2.dcm"]),
            ("bob", "cardio", "dicomweb", 2, ct_series),
        ]
        assert all(r.collection == "study1.cost" and "01-701" not in r.path for r in reads)
        start = min(r.read_at for r in reads).replace(hour=0, minute=0, second=0, microsecond=0)
        from datetime import timedelta

        found, book = costs.cost_lines(session, platform.settings, start, start + timedelta(days=2))
        lines = [ln for ln in found if ln.product == "file read"]
        tb = Decimal(10**12)
        assert sorted((ln.user, ln.project, ln.quantity * tb) for ln in lines) == sorted(
            (r.user, r.project, Decimal(r.bytes)) for r in reads
        )
        price = book.at(reads[0].read_at).query_per_tb
        assert all(ln.category == "query" and ln.amount == ln.quantity * price for ln in lines)
        by_project = {}
        for ln in lines:
            by_project[ln.project] = by_project.get(ln.project, Decimal(0)) + ln.quantity * tb
        assert by_project == {"onco": Decimal(sum(sizes.values())), "cardio": Decimal(ct_series)}
        events = session.scalars(select(LineageEvent).where(LineageEvent.job_name == "file-read")).all()
        completed = [e for e in events if e.event_type == "COMPLETE"]
        assert len(completed) == 4 and sorted(e.user for e in completed) == ["ada", "ada", "ada", "bob"]
        # one function for every front end: each read names its client (the SDK's two, the
        # plain API call and DICOMweb's token calls)
        actors = [(e.user, e.payload["run"]["facets"]["datalibrary_actor"]) for e in completed]
        assert sorted((user, a["via"], a.get("operator")) for user, a in actors) == [
            ("ada", "api", None), ("ada", "sdk", None), ("ada", "sdk", None), ("bob", "api", None),
        ]  # fmt: skip
    # the caller sees the reads in the costs API, as a product of the query category
    admin = platform.as_user("admin")
    listed = admin.get("/api/v1/costs/lines", params={"user": "bob"})
    assert listed.status_code == 200, listed.text
    assert [ln["product"] for ln in listed.json()] == ["file read"]


# risk ------------------------------------------------------------------------------------------


def test_index_table_carries_its_risk_report_on_the_dataset_page(sqlite_platform: Platform) -> None:
    """Each index snapshot records the risk on modality, body part and acquisition date with
    classes counted in subjects (two CT slices of one subject are one person); the dataset
    API shows it like any table's."""
    platform = sqlite_platform
    a, b = list(SUBJECTS)
    root = "1.2.826.0.1.3680043.87"
    _collection(
        platform,
        "study1.risk",
        [
            ("a/1.dcm", image(a, f"{root}.1", f"{root}.1.1", f"{root}.1.1.1")),
            ("a/2.dcm", image(a, f"{root}.1", f"{root}.1.1", f"{root}.1.1.2")),
            ("b/1.dcm", image(b, f"{root}.2", f"{root}.2.1", f"{root}.2.1.1")),
        ],
    )
    admin = platform.as_user("admin")
    shown = admin.get("/api/v1/datasets/study1/risk")
    assert shown.status_code == 200, shown.text
    risk = shown.json()["risk"]
    assert risk["quasi_identifiers"] == ["modality", "body_part", "acquisition_date"]
    # two subjects, each alone in its class (different shifted dates): 2 records, k = 1
    assert (risk["records"], risk["classes"], risk["k"], risk["max_risk"]) == (2, 2, 1, 1.0)
    assert risk["records_at_risk"] == 2 and risk["min_class_size"] == 12


def test_index_risk_counts_subjects_not_files() -> None:
    import pyarrow as pa

    from datalibrary.files.index_risk import index_risk

    rows = pa.table(
        {
            "subject": ["s1"] * 300 + ["s2", "s3"],
            "modality": ["CT"] * 302,
            "body_part": ["CHEST"] * 302,
            "acquisition_date": [None] * 302,
        }
    )
    report = index_risk(rows)
    assert report is not None and (report.records, report.classes, report.k) == (3, 1, 3)
    assert index_risk(pa.table({"subject": ["s1"], "path": ["x"]})) is None


# concurrent versions ---------------------------------------------------------------------------


def test_concurrent_adds_of_one_path_keep_every_version(platform: Platform) -> None:
    """Four uploads of the same path at once (threads, one session each): versions 1..4, each
    readable with its own bytes; none lost, none duplicated; the index stays one row per version."""
    import io
    import threading

    import pydicom

    from tests.lake_helpers import read_table

    with platform.db.session() as session:
        service.create_collection(session, SYSTEM, platform.settings, "study1.race")
    a = list(SUBJECTS)[0]
    root = "1.2.826.0.1.3680043.86"
    bodies = [image(a, f"{root}.1", f"{root}.1.1", f"{root}.1.1.{i}") for i in range(4)]
    errors: list[BaseException] = []
    start = threading.Barrier(len(bodies))

    def add(data: bytes) -> None:
        try:
            start.wait()
            with platform.db.session() as session:
                service.ingest_files(session, SYSTEM, platform.settings, "study1.race", [("x.dcm", data)])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(data,)) for data in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    index = read_table(platform, "study1.race").to_pylist()
    assert sorted(r["version"] for r in index) == [1, 2, 3, 4]
    assert len({r["sha256"] for r in index}) == 4
    _grant(platform, "ada", "study1")
    ada = platform.as_user("ada")
    sops = set()
    for version in (1, 2, 3, 4):
        got = ada.get("/api/v1/collections/study1.race/files/x.dcm", params={"version": version})
        assert got.status_code == 200 and got.headers["X-File-Version"] == str(version)
        sops.add(pydicom.dcmread(io.BytesIO(got.content)).SOPInstanceUID)
    assert len(sops) == 4
    # new bytes, twice at once: one becomes version 5, the other finds it unchanged
    fifth = image(a, f"{root}.1", f"{root}.1.1", f"{root}.1.1.9")
    start = threading.Barrier(2)
    threads = [threading.Thread(target=add, args=(fifth,)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    assert sorted(r["version"] for r in read_table(platform, "study1.race").to_pylist()) == [1, 2, 3, 4, 5]


# erasure ---------------------------------------------------------------------------------------


def test_erasure_leaves_no_byte_of_the_subject_and_no_path_to_their_files(
    platform: Platform, tmp_path: Path
) -> None:
    """Attack after erasure: the subject's files (two versions of one path, so an old version
    and old snapshots), their quarantined raw file, every warehouse byte (objects, data files,
    manifests, metadata), DICOMweb search and retrieve, the SDK and the REST download."""
    import io

    from dicomweb_client.api import DICOMwebClient
    from requests import HTTPError

    import datalibrary.sdk as sdk
    from datalibrary.lake.catalog import open_lake
    from datalibrary.lake.erasure import erase_subject
    from datalibrary.lake.files import avro_payload
    from tests.helpers import LiveServer
    from tests.lake_helpers import read_table
    from tests.test_files_dicom import sample, to_bytes

    a, b = list(SUBJECTS)
    root = "1.2.826.0.1.3680043.85"
    burned = sample()
    burned.PatientID, burned.BurnedInAnnotation = a, "YES"
    _collection(platform, "study1.gone", [("a/x.dcm", image(a, f"{root}.1", f"{root}.1.1", f"{root}.1.1.1"))])
    with platform.db.session() as session:  # a second version of the path, a burned-in file, b's file
        service.ingest_files(
            session, SYSTEM, platform.settings, "study1.gone",
            [("a/x.dcm", image(a, f"{root}.1", f"{root}.1.1", f"{root}.1.1.2")),
             ("a/burned.dcm", to_bytes(burned)),
             ("b/y.dcm", image(b, f"{root}.2", f"{root}.2.1", f"{root}.2.1.1", "MR"))],
        )  # fmt: skip
    index = read_table(platform, "study1.gone").to_pylist()
    gone = next(r["subject"] for r in index if r["path"] == "a/x.dcm")
    kept = next(r for r in index if r["path"] == "b/y.dcm")
    erased = [r for r in index if r["subject"] == gone]
    assert sorted(r["version"] for r in erased) == [1, 2]
    with platform.db.session() as session:
        sealed = service.sealed_paths(session, "study1.gone")
    assert len(sealed) == 1 and sealed[0].is_file()
    _grant(platform, "ada", "study1")
    platform.as_user("ada")
    with platform.db.session() as session:  # before: everything readable (so the attack below can fail)
        listed = service.list_files(
            session, who(platform, "ada"), platform.settings, "study1.gone",
            service.grants_of(session, who(platform, "ada")),
        )  # fmt: skip
    assert {f["path"] for f in listed} == {"a/x.dcm", "b/y.dcm"}
    thumb = platform.as_user("ada").get("/api/v1/collections/study1.gone/thumbnails/a/x.dcm")
    assert thumb.status_code == 200  # a derived copy in the warehouse, cached

    lake = open_lake(platform.settings)
    with platform.db.session() as session:
        report = erase_subject(session, SYSTEM, lake, namespace="study1", subject=gone)
    assert report["ok"] is True, report["files_containing_subject"]
    assert report["rows_removed"] == 2
    objects = report["copies"]["file collections"]
    kinds = sorted((c["uri"].rsplit("/", 1)[-1].partition(".")[2], c["action"]) for c in objects)
    assert kinds == [
        ("", "deleted"), ("", "deleted"), ("", "kept"),  # the objects: two versions of a's, b's
        ("actions.json", "deleted"), ("actions.json", "deleted"), ("actions.json", "kept"),
        ("thumb.png", "deleted"),
    ]  # fmt: skip
    quarantine = report["copies"]["file collections quarantine"]
    assert [(q["action"], q["found_in"]) for q in quarantine] == [
        ("deleted", ["its PatientID resolves to the subject"])
    ]
    assert not sealed[0].exists()

    # every byte of the warehouse: no pseudonym, no object of the erased versions
    warehouse = Path(lake.storage.path(platform.settings.warehouse))
    for path in warehouse.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            data = avro_payload(data) if path.suffix == ".avro" else data
            assert gone.encode() not in data, path
            assert not any(r["sha256"] in path.name for r in erased), path
    iceberg = lake.load(service.parse_table_name("study1.gone"))
    assert len(iceberg.metadata.snapshots) == 1  # no snapshot to travel back to
    assert [r["path"] for r in read_table(platform, "study1.gone").to_pylist()] == ["b/y.dcm"]

    # every read path returns nothing of the subject
    ada = platform.as_user("ada")
    for version in (1, 2):
        got = ada.get("/api/v1/collections/study1.gone/files/a/x.dcm", params={"version": version})
        assert got.status_code == 404
        for what in ("thumbnails", "actions"):
            got = ada.get(f"/api/v1/collections/study1.gone/{what}/a/x.dcm", params={"version": version})
            assert got.status_code == 404
    with LiveServer(platform.app) as server:
        files = sdk.connect(server.url, platform.tokens["ada"]).files("study1.gone")
        assert [f["path"] for f in files.list()] == ["b/y.dcm"]
        with pytest.raises(sdk.SdkError):
            files.read("a/x.dcm", version=1)
        web = DICOMwebClient(
            f"{server.url}/api/v1/dicomweb/study1.gone",
            headers={"Authorization": f"Bearer {platform.tokens['ada']}"},
        )
        studies = web.search_for_studies()
        assert [s["0020000D"]["Value"][0] for s in studies] == [kept["study_instance_uid"]]
        assert web.search_for_studies(search_filters={"PatientID": gone}) == []
        for row in erased:
            with pytest.raises(HTTPError) as refused:
                web.retrieve_instance(
                    row["study_instance_uid"], row["series_instance_uid"], row["sop_instance_uid"]
                )
            assert refused.value.response.status_code == 404
        remaining = web.retrieve_study(kept["study_instance_uid"])
        assert [d.PatientID for d in remaining] == [kept["subject"]]
        assert gone.encode() not in io.BytesIO(files.read("b/y.dcm")).getvalue()


# large uploads ---------------------------------------------------------------------------------


def big_ct(path: Path, frames: int, usubjid: str = "01-701-1015") -> Path:
    """A multi-frame CT written frame by frame (never whole in memory): 512x512x16-bit frames."""
    from tests.test_files_dicom import sample

    ds = sample()
    ds.PatientID, ds.PatientName = usubjid, "Canary^Big"
    ds.Rows = ds.Columns = 512
    ds.NumberOfFrames = frames
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = (
        "1.2.3.84.1",
        "1.2.3.84.1.1",
        "1.2.3.84.1.1.1",
    )
    frame = bytes(range(256)) * (512 * 512 * 2 // 256)
    ds.PixelData = frame  # placeholder: the real value is streamed below
    del ds.PixelData
    import io as _io

    head = _io.BytesIO()
    ds.save_as(head, enforce_file_format=True)
    with path.open("wb") as out:
        out.write(head.getvalue())
        out.write(b"\xe0\x7f\x10\x00OW\x00\x00" + (len(frame) * frames).to_bytes(4, "little"))
        for _ in range(frames):
            out.write(frame)
    return path


def test_a_large_file_is_deidentified_in_bounded_memory(sqlite_platform: Platform, tmp_path: Path) -> None:
    """A 128 MiB multi-frame CT given on disk: de-identified and stored with Python allocations
    under 24 MiB at peak (the pixel data is copied in chunks, never held); the stored file has
    every frame and no identifier."""
    import tracemalloc

    import pydicom

    from datalibrary.lake.catalog import open_lake

    platform = sqlite_platform
    source = big_ct(tmp_path / "big.dcm", frames=256)
    assert source.stat().st_size > 128 << 20
    with platform.db.session() as session:
        service.create_collection(session, SYSTEM, platform.settings, "study1.big")
    tracemalloc.start()
    try:
        with platform.db.session() as session:
            report = service.ingest_files(
                session, SYSTEM, platform.settings, "study1.big", [("big.dcm", source)]
            )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [a["path"] for a in report.added] == ["big.dcm"], report.quarantined
    assert peak < 24 << 20, f"peak Python allocations {peak >> 20} MiB"
    assert source.exists()  # the caller's file is left alone
    assert list(service.spool_dir(platform.settings).iterdir()) == []  # no spool file left behind
    lake = open_lake(platform.settings)
    [stored] = lake.storage.list(service.objects_root(lake, service.parse_table_name("study1.big")))
    out = pydicom.dcmread(lake.storage.path(stored.uri), defer_size=1 << 20)
    assert out.NumberOfFrames == 256 and out.PatientIdentityRemoved == "YES"
    assert str(out.PatientID) != "01-701-1015" and "Canary" not in str(out.PatientName)
    assert stored.size >= 256 * 512 * 512 * 2
    # its thumbnail reads the header and the first frame only
    from datalibrary.files import views

    tracemalloc.start()
    try:
        with platform.db.session() as session:
            _, png = views.thumbnail(
                session,
                SYSTEM,
                platform.settings,
                "study1.big",
                "big.dcm",
                lambda ns, t: service.FileView(None),
            )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert png.startswith(b"\x89PNG") and peak < 24 << 20, f"thumbnail peak {peak >> 20} MiB"


def test_upload_limit_is_configurable_and_refuses_past_it(sqlite_platform: Platform) -> None:
    import os
    import time

    platform = sqlite_platform
    leftover = service.spool_dir(platform.settings) / "upload-crashed"  # a crash's raw upload
    leftover.write_bytes(b"raw")
    old = time.time() - service.SPOOL_MAX_AGE_SECONDS - 60
    os.utime(leftover, (old, old))
    with platform.db.session() as session:
        service.create_collection(session, SYSTEM, platform.settings, "study1.lim")
    platform.settings.files.max_file_bytes = 1000
    body = image(list(SUBJECTS)[0], "1.2.3.83.1", "1.2.3.83.1.1", "1.2.3.83.1.1.1")
    admin = platform.as_user("admin")
    sent = admin.post("/api/v1/collections/study1.lim/files", params={"filename": "x.dcm"}, content=body)
    assert sent.status_code == 413 and "files.max_file_bytes" in sent.text
    assert list(service.spool_dir(platform.settings).iterdir()) == []  # its own and the stale one
    platform.settings.files.max_file_bytes = 1 << 20
    sent = admin.post("/api/v1/collections/study1.lim/files", params={"filename": "x.dcm"}, content=body)
    assert sent.status_code == 200 and [a["path"] for a in sent.json()["added"]] == ["x.dcm"]


# per-file page: attribute actions and thumbnails -----------------------------------------------


def _us(usubjid: str) -> bytes:
    """An ultrasound image (a modality known for burned-in text) admitted by a review decision."""
    from tests.test_files_dicom import sample, to_bytes

    ds = sample()
    ds.PatientID, ds.Modality = usubjid, "US"
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = (
        "1.2.3.82.2",
        "1.2.3.82.2.1",
        "1.2.3.82.2.1.1",
    )
    return to_bytes(ds)


def test_attribute_actions_and_thumbnails_under_grants(
    sqlite_platform: Platform, tmp_path: Path, monkeypatch
) -> None:
    import io
    import json

    from PIL import Image
    from typer.testing import CliRunner

    from datalibrary.cli import app
    from datalibrary.lake.catalog import open_lake
    from tests.helpers import PASSWORD
    from tests.test_web import sign_in

    platform = sqlite_platform
    a, b = list(SUBJECTS)
    with platform.db.session() as session:
        service.create_collection(
            session,
            SYSTEM,
            platform.settings,
            "study1.view",
            burned_in_reviewed={"US": "vendor writes no text"},
        )
    with platform.db.session() as session:
        service.ingest_files(
            session, SYSTEM, platform.settings, "study1.view",
            [("ct.dcm", image(a, "1.2.3.82.1", "1.2.3.82.1.1", "1.2.3.82.1.1.1")),
             ("mr.dcm", image(b, "1.2.3.82.3", "1.2.3.82.3.1", "1.2.3.82.3.1.1", "MR")),
             ("us.dcm", _us(a))],
        )  # fmt: skip
    _grant(platform, "ada", "study1", row_filter="modality IN ('CT', 'US')")
    ada = platform.as_user("ada")

    # what the profile did, attribute by attribute: every action class, the table's code, no value
    got = ada.get("/api/v1/collections/study1.view/actions/ct.dcm")
    assert got.status_code == 200, got.text
    found = got.json()
    by_keyword = {x["keyword"]: x for x in found["attributes"] if ">" not in x["attribute"]}
    assert by_keyword["PatientName"]["action"] == "D" and by_keyword["PatientID"]["action"] == "D"
    assert by_keyword["StudyDate"]["action"] == "C" and by_keyword["StudyInstanceUID"]["action"] == "U"
    assert by_keyword["PatientBirthDate"]["action"] == "Z"
    assert by_keyword["Modality"]["action"] == "K"
    assert by_keyword["InstitutionName"]["table"] == "X/Z/D"
    assert set(found["counts"]) >= {"D", "Z", "X", "K", "C", "U"}
    assert sum(found["counts"].values()) == len(found["attributes"])
    for canary in ("Canary", "01-701", "1.2.3.82", "20140102", "19411212"):
        assert canary not in got.text, canary
    assert ada.get("/api/v1/collections/study1.view/actions/mr.dcm").status_code == 404  # row filter

    # thumbnails: a CT renders (small PNG, cached in the warehouse, metered, audited) ...
    thumb = ada.get("/api/v1/collections/study1.view/thumbnails/ct.dcm")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/png"
    picture = Image.open(io.BytesIO(thumb.content))
    assert picture.format == "PNG" and max(picture.size) <= 128 and not picture.info  # no text chunks
    lake = open_lake(platform.settings)
    cached = lake.storage.list(service.derived_root(lake, service.parse_table_name("study1.view")))
    assert sum(1 for c in cached if c.uri.endswith(".thumb.png")) == 1
    assert ada.get("/api/v1/collections/study1.view/thumbnails/ct.dcm").content == thumb.content
    # ... the ultrasound admitted on a review decision does not, the MR is outside the grant
    refused = ada.get("/api/v1/collections/study1.view/thumbnails/us.dcm")
    assert refused.status_code == 409 and "burned-in" in refused.text
    assert ada.get("/api/v1/collections/study1.view/thumbnails/mr.dcm").status_code == 404
    assert platform.as_user("eve").get("/api/v1/collections/study1.view/thumbnails/ct.dcm").status_code == 404
    assert platform.anonymous.get("/api/v1/collections/study1.view/thumbnails/ct.dcm").status_code == 401
    with platform.db.session() as session:
        reads = session.scalars(select(FileRead).where(FileRead.via == "thumbnail")).all()
        assert [(r.user, r.path, r.bytes) for r in reads] == [("ada", "ct.dcm", len(thumb.content))] * 2
        # (read before the SDK and CLI below add theirs)

    # the console's file page: actions table, thumbnail only where safe
    client = sign_in(platform, "ada", PASSWORD)
    page = client.get("/collections/file", params={"name": "study1.view", "path": "ct.dcm"})
    assert page.status_code == 200 and "PatientBirthDate" in page.text and "X/Z/D" in page.text
    assert "/thumbnails/ct.dcm" in page.text and "Canary" not in page.text
    us_page = client.get("/collections/file", params={"name": "study1.view", "path": "us.dcm"})
    assert "no-thumbnail" in us_page.text and "/thumbnails/" not in us_page.text
    assert (
        client.get("/collections/file", params={"name": "study1.view", "path": "mr.dcm"}).status_code == 404
    )
    listing = client.get("/collections", params={"name": "study1.view"}).text
    assert "/collections/file?name=study1.view&amp;path=ct.dcm" in listing

    # the SDK, as the same user
    import datalibrary.sdk as sdk
    from tests.helpers import LiveServer

    with LiveServer(platform.app) as server:
        files = sdk.connect(server.url, platform.tokens["ada"]).files("study1.view")
        assert files.actions("ct.dcm")["attributes"] == found["attributes"]
        assert files.thumbnail("ct.dcm") == thumb.content
        with pytest.raises(sdk.SdkError) as unsafe:
            files.thumbnail("us.dcm")
        assert unsafe.value.status == 409

    # the CLI, as the same user
    monkeypatch.setenv("DATALIBRARY_HOME", str(platform.settings.home))
    monkeypatch.setenv("DATALIBRARY_DATABASE_URL", platform.settings.connect_url())

    def run(*args: str, code: int = 0) -> str:
        result = CliRunner().invoke(app, list(args))
        assert result.exit_code == code, f"{args}: exit {result.exit_code}\n{result.output}"
        return result.output

    cli_actions = json.loads(run("files", "actions", "study1.view", "ct.dcm", "--as", "ada", "--json"))
    assert cli_actions["attributes"] == found["attributes"]
    target = tmp_path / "ct.png"
    made = json.loads(
        run("files", "thumbnail", "study1.view", "ct.dcm", "--output", str(target), "--as", "ada", "--json")
    )
    assert made["bytes"] == len(thumb.content) and target.read_bytes() == thumb.content
    assert "burned-in" in run(
        "files", "thumbnail", "study1.view", "us.dcm", "--output", str(target), "--as", "ada", code=2
    )


def test_an_altered_object_is_never_served_by_dicomweb(sqlite_platform: Platform) -> None:
    """WADO-RS streams a series file by file: a missing or resized object refuses the retrieval
    before anything is sent (409); an object altered in place ends the stream before its bytes,
    without the closing boundary (clients see an error, never the altered file)."""
    from datalibrary.lake.catalog import open_lake
    from tests.lake_helpers import read_table

    platform = sqlite_platform
    a = list(SUBJECTS)[0]
    root = "1.2.826.0.1.3680043.81"
    _collection(
        platform,
        "study1.alt",
        [(f"s/{i}.dcm", image(a, f"{root}.1", f"{root}.1.1", f"{root}.1.1.{i}")) for i in range(3)],
    )
    _grant(platform, "ada", "study1")
    ada = platform.as_user("ada")
    rows = sorted(read_table(platform, "study1.alt").to_pylist(), key=lambda r: r["path"])
    study, series = rows[0]["study_instance_uid"], rows[0]["series_instance_uid"]
    url = f"/api/v1/dicomweb/study1.alt/studies/{study}/series/{series}"
    whole = ada.get(url)
    assert whole.status_code == 200 and int(whole.headers["X-Bytes"]) == sum(r["size"] for r in rows)
    boundary = whole.headers["content-type"].rsplit("boundary=", 1)[1].encode()
    assert whole.content.count(b"--" + boundary) == 4 and whole.content.endswith(b"--" + boundary + b"--\r\n")
    lake = open_lake(platform.settings)
    target = lake.storage.path(
        service.object_uri(lake, service.parse_table_name("study1.alt"), rows[2]["sha256"])
    )
    original = Path(target).read_bytes()
    Path(target).write_bytes(original.replace(b"ANONYMIZED", b"TAMPERED!!", 1))  # same size
    try:
        cut = ada.get(url)
        assert not cut.content.endswith(b"--" + boundary + b"--\r\n")
    except Exception as exc:  # noqa: BLE001 - the in-process transport re-raises the ended stream
        assert "SHA-256" in str(exc)
    Path(target).write_bytes(original + b"more")  # resized: refused before the first byte
    refused = ada.get(url)
    assert refused.status_code == 409 and "missing or altered" in refused.text


def test_concurrent_cli_processes_adding_one_path_keep_every_version(
    platform: Platform, tmp_path: Path
) -> None:
    """Three `datalibrary files add` processes at once, each with its own content for the same
    path: versions 1, 2 and 3, one per content (the lease is in the database, so processes on
    several machines behave alike)."""
    import os
    import subprocess
    import sys

    from tests.lake_helpers import read_table

    with platform.db.session() as session:
        service.create_collection(session, SYSTEM, platform.settings, "study1.procs")
    a = list(SUBJECTS)[0]
    root = "1.2.826.0.1.3680043.80"
    env = {
        **os.environ,
        "DATALIBRARY_HOME": str(platform.settings.home),
        "DATALIBRARY_DATABASE_URL": platform.settings.connect_url(),
    }
    runs = []
    for i in range(3):
        folder = tmp_path / f"d{i}"
        folder.mkdir()
        (folder / "x.dcm").write_bytes(image(a, f"{root}.1", f"{root}.1.1", f"{root}.1.1.{i}"))
        command = [sys.executable, "-c", "from datalibrary.cli import main; main()"]
        command += ["files", "add", "study1.procs", str(folder / "x.dcm")]
        runs.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    for run in runs:
        output = run.communicate(timeout=300)[0].decode()
        assert run.returncode == 0, output
    index = read_table(platform, "study1.procs").to_pylist()
    assert sorted(r["version"] for r in index) == [1, 2, 3] and len({r["sha256"] for r in index}) == 3


def test_exports_of_index_rows_suggest_the_index_quasi_identifiers() -> None:
    """The exports airlock suggests quasi-identifiers by column name when the reviewer names
    none: an index table's modality, body part and acquisition date are among them."""
    from datalibrary.files.index_risk import QUASI_IDENTIFIERS
    from datalibrary.privacy.risk import suggest_quasi_identifiers

    columns = [f.name for f in service.INDEX_SCHEMA]
    assert suggest_quasi_identifiers(columns) == ["acquisition_date", "modality", "body_part"]
    assert set(suggest_quasi_identifiers(list(QUASI_IDENTIFIERS))) == {*QUASI_IDENTIFIERS}


def test_a_download_streams_in_chunks_and_never_completes_an_altered_file(
    sqlite_platform: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One file is served in chunks (never held whole); the last chunk waits for the SHA-256,
    so an object altered in place ends the body short of its Content-Length and the CLI leaves
    no output file; a resized object is refused (409) before the first byte."""
    import json

    from typer.testing import CliRunner

    from datalibrary.cli import app
    from datalibrary.files import objects
    from datalibrary.lake.catalog import open_lake
    from tests.lake_helpers import read_table

    monkeypatch.setattr(objects, "CHUNK", 4096)  # many chunks for a small file
    platform = sqlite_platform
    root = "1.2.826.0.1.3680043.82"
    _collection(
        platform,
        "study1.dl",
        [("s/1.dcm", image(list(SUBJECTS)[0], f"{root}.1", f"{root}.1.1", f"{root}.1.1.1"))],
    )
    _grant(platform, "ada", "study1")
    ada = platform.as_user("ada")
    row = read_table(platform, "study1.dl").to_pylist()[0]
    url = "/api/v1/collections/study1.dl/files/s/1.dcm"
    whole = ada.get(url)
    assert whole.status_code == 200 and len(whole.content) == row["size"] > 3 * 4096
    assert whole.headers["content-length"] == str(row["size"])
    lake = open_lake(platform.settings)
    target = Path(
        lake.storage.path(service.object_uri(lake, service.parse_table_name("study1.dl"), row["sha256"]))
    )
    original = target.read_bytes()
    target.write_bytes(original.replace(b"ANONYMIZED", b"TAMPERED!!", 1))  # same size
    try:
        cut = ada.get(url)
        assert len(cut.content) < row["size"]
    except Exception as exc:  # noqa: BLE001 - the in-process transport re-raises the ended stream
        assert "SHA-256" in str(exc)
    monkeypatch.setenv("DATALIBRARY_HOME", str(platform.settings.home))
    monkeypatch.setenv("DATALIBRARY_DATABASE_URL", platform.settings.connect_url())
    output = tmp_path / "got.dcm"
    result = CliRunner().invoke(
        app, ["files", "get", "study1.dl", "s/1.dcm", "--output", str(output), "--as", "ada", "--json"]
    )
    assert result.exit_code != 0 and not output.exists() and not list(tmp_path.glob(".got.dcm*"))
    target.write_bytes(original + b"more")  # resized: refused before the first byte
    refused = ada.get(url)
    assert refused.status_code == 409 and "missing or altered" in refused.text
    target.write_bytes(original)
    result = CliRunner().invoke(
        app, ["files", "get", "study1.dl", "s/1.dcm", "--output", str(output), "--as", "ada", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert output.read_bytes() == original and json.loads(result.output)["output"] == str(output)
