"""DICOM de-identification throughput (``files.dicom.deidentify``: the whole PS3.15 Table E.1-1
walk, date shift, keyed UIDs, re-encoding) against pydicom's plain read-modify-write of the
same files in the same run (read, set PatientName and PatientID, write) — the floor any
pydicom-based de-identifier pays.

    .venv/bin/python benchmarks/dicom.py [--files 200] [--frames 1] [--repeat 3]

The series is built from pydicom's bundled CT sample (``CT_small.dcm``) with a fresh SOP
Instance UID per file; ``--frames`` stacks its pixel data to make files larger (a 1 GB series
is ``--files 2000 --frames 16`` or so, about 0.5 MB per file). Prints files/s, MB/s and the
ratio to the baseline (issue #20 target: >= 0.7). Tests never assert times.

``--retrieve`` then ingests the series into a collection of a temporary installation (SQLite,
local warehouse), serves the app with uvicorn and times WADO-RS retrieval of the whole series
(``GET /dicomweb/{collection}/studies/{study}/series/{series}``, multipart/related, one HTTP
request, as a bearer-token user holding a grant) against reading the same stored objects from
disk in the same run."""

from __future__ import annotations

import argparse
import io
import statistics
import time

import pydicom
from pydicom.data import get_testdata_file

from datalibrary.files import dicom


def build_series(count: int, frames: int) -> list[bytes]:
    template = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    if frames > 1:
        template.PixelData = template.PixelData * frames
        template.NumberOfFrames = frames
    files = []
    for index in range(count):
        template.SOPInstanceUID = f"1.2.826.0.1.3680043.10.{index + 1}"
        template.InstanceNumber = index + 1
        out = io.BytesIO()
        template.save_as(out, enforce_file_format=True)
        files.append(out.getvalue())
    return files


def baseline(data: bytes) -> bytes:
    ds = pydicom.dcmread(io.BytesIO(data))
    ds.PatientName = "pseudo0000000001"
    ds.PatientID = "pseudo0000000001"
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def run(files: list[bytes], step) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    for data in files:
        step(data)
    return time.perf_counter() - start


def retrieve(series: list[bytes], repeat: int) -> None:
    """WADO-RS series retrieval through the platform vs reading the stored objects from disk."""
    import sys
    import tempfile
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import httpx
    from tests.helpers import LiveServer, make_platform
    from tests.lake_helpers import SYSTEM

    from datalibrary.access import service as access
    from datalibrary.files import service
    from datalibrary.lake.catalog import open_lake

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with make_platform(root / "home", f"sqlite:///{root}/state.db") as platform:
            with platform.db.session() as session:
                service.create_collection(session, SYSTEM, platform.settings, "bench.ct")
            with platform.db.session() as session:
                service.ingest_files(
                    session, SYSTEM, platform.settings, "bench.ct",
                    [(f"s/{i:05d}.dcm", data) for i, data in enumerate(series)],
                )  # fmt: skip
            platform.as_user("reader")
            with platform.db.session() as session:
                access.add_grant(session, SYSTEM, principal="user:reader", namespace="bench")
            lake = open_lake(platform.settings)
            stored = lake.storage.list(service.objects_root(lake, service.parse_table_name("bench.ct")))
            paths = [lake.storage.path(item.uri) for item in stored]
            total = sum(item.size for item in stored)
            with platform.db.session() as session:
                row = service.list_files(
                    session, SYSTEM, platform.settings, "bench.ct", lambda ns, t: service.FileView(None)
                )[0]
            url = "/api/v1/dicomweb/bench.ct/studies/{}/series/{}".format(
                row["study_instance_uid"], row["series_instance_uid"]
            )

            def from_disk() -> int:
                size = 0
                for path in paths:
                    with open(path, "rb") as handle:
                        size += len(handle.read())
                return size

            with LiveServer(platform.app) as server:
                client = httpx.Client(
                    base_url=server.url, headers={"Authorization": f"Bearer {platform.tokens['reader']}"},
                    timeout=600,
                )  # fmt: skip

                def over_http() -> int:
                    got = client.get(url)
                    got.raise_for_status()
                    return len(got.content)

                over_http()  # warm up
                timings = {}
                for label, step in (
                    ("read the stored objects from disk", from_disk),
                    ("WADO-RS retrieve", over_http),
                ):
                    runs = []
                    for _ in range(repeat):
                        start = time.perf_counter()
                        step()
                        runs.append(time.perf_counter() - start)
                    timings[label] = statistics.median(runs)
                client.close()
    print(f"\nretrieve {len(paths)} stored files, {total / 1e6:.1f} MB, median of {repeat}")
    base = timings["read the stored objects from disk"]
    for label, seconds in timings.items():
        print(
            f"{label:40s} {len(paths) / seconds:8.1f} files/s {total / 1e6 / seconds:8.1f} MB/s"
            f"  ratio to disk {base / seconds:5.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--frames", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--retrieve", action="store_true", help="also time DICOMweb retrieval vs disk")
    args = parser.parse_args()
    series = build_series(args.files, args.frames)
    total = sum(len(d) for d in series)
    options = dicom.DeidOptions(
        resolve_subject=lambda ds: dicom.Subject("pseudo0000000001", 17), uid_secret=b"b" * 32
    )
    dicom.deidentify(series[0], options)  # warm up: the profile table loads once

    def deid(data: bytes) -> bytes:
        return dicom.deidentify(data, options).data

    steps = (("baseline: pydicom read-modify-write", baseline), ("deidentify (PS3.15 E.1-1)", deid))
    # interleaved (baseline, deidentify, baseline, ...): a change of machine load hits both alike
    times: dict[str, list[float]] = {label: [] for label, _ in steps}
    for _ in range(args.repeat):
        for label, step in steps:
            times[label].append(run(series, step))
    rows = [(label, statistics.median(found)) for label, found in times.items()]
    print(f"{args.files} files, {total / 1e6:.1f} MB, median of {args.repeat} interleaved runs")
    base = rows[0][1]
    for label, seconds in rows:
        print(
            f"{label:40s} {args.files / seconds:8.1f} files/s {total / 1e6 / seconds:8.1f} MB/s"
            f"  ratio to baseline {base / seconds:5.2f}"
        )
    if args.retrieve:
        retrieve(series, args.repeat)


if __name__ == "__main__":
    main()
