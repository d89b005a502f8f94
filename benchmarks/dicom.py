"""DICOM de-identification throughput (``files.dicom.deidentify``: the whole PS3.15 Table E.1-1
walk, date shift, keyed UIDs, re-encoding) against pydicom's plain read-modify-write of the
same files in the same run (read, set PatientName and PatientID, write) — the floor any
pydicom-based de-identifier pays.

    .venv/bin/python benchmarks/dicom.py [--files 200] [--frames 1] [--repeat 3]

The series is built from pydicom's bundled CT sample (``CT_small.dcm``) with a fresh SOP
Instance UID per file; ``--frames`` stacks its pixel data to make files larger (a 1 GB series
is ``--files 2000 --frames 16`` or so, about 0.5 MB per file). Prints files/s, MB/s and the
ratio to the baseline (issue #20 target: >= 0.7). Tests never assert times."""

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--frames", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    series = build_series(args.files, args.frames)
    total = sum(len(d) for d in series)
    options = dicom.DeidOptions(
        resolve_subject=lambda ds: dicom.Subject("pseudo0000000001", 17), uid_secret=b"b" * 32
    )
    dicom.deidentify(series[0], options)  # warm up: the profile table loads once

    def deid(data: bytes) -> bytes:
        return dicom.deidentify(data, options).data

    rows = []
    for label, step in (
        ("baseline: pydicom read-modify-write", baseline),
        ("deidentify (PS3.15 E.1-1)", deid),
    ):
        seconds = statistics.median(run(series, step) for _ in range(args.repeat))
        rows.append((label, seconds))
    print(f"{args.files} files, {total / 1e6:.1f} MB, median of {args.repeat}")
    base = rows[0][1]
    for label, seconds in rows:
        print(
            f"{label:40s} {args.files / seconds:8.1f} files/s {total / 1e6 / seconds:8.1f} MB/s"
            f"  ratio to baseline {base / seconds:5.2f}"
        )


if __name__ == "__main__":
    main()
