"""Governance of file collections: every read metered and priced like query bytes, the index
table in the risk report, erasure proven on every path (old versions, snapshots, DICOMweb, SDK),
large uploads streamed to disk, concurrent versions of one path."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

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
            session, who(platform, "stew"), principal=f"user:{user}", namespace=namespace, row_filter=row_filter
        )
        return grant.id


# costs ---------------------------------------------------------------------------------------


def test_every_read_is_metered_and_priced_per_user_and_project(platform: Platform, tmp_path: Path) -> None:
    """API download, SDK open and download, DICOMweb WADO retrieve: each read is one metering
    record with the bytes served, a cost line of the reader's project at the query price, and
    a lineage file-read event (DICOMweb included)."""
    import datalibrary.sdk as sdk
    from dicomweb_client.api import DICOMwebClient

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
    sizes = {f["path"]: f["size"] for f in platform.as_user("ada").get("/api/v1/collections/study1.cost/files").json()}
    ct_series = sum(size for path, size in sizes.items() if path.startswith("a/"))

    api = platform.as_user("ada").get("/api/v1/collections/study1.cost/files/b/1.dcm")
    assert api.status_code == 200 and len(api.content) == sizes["b/1.dcm"]
    with LiveServer(platform.app) as server:
        files = sdk.connect(server.url, platform.tokens["ada"]).files("study1.cost")
        assert len(files.open("a/1.dcm").read()) == sizes["a/1.dcm"]
        files.download("a/2.dcm", tmp_path)
        bob = DICOMwebClient(
            f"{server.url}/api/v1/dicomweb/study1.cost", headers={"Authorization": f"Bearer {platform.tokens['bob']}"}
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
    # the caller sees the reads in the costs API, as a product of the query category
    admin = platform.as_user("admin")
    listed = admin.get("/api/v1/costs/lines", params={"user": "bob"})
    assert listed.status_code == 200, listed.text
    assert [ln["product"] for ln in listed.json()] == ["file read"]
