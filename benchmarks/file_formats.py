"""Throughput of the non-DICOM formats of file collections against the floor of the library
each one uses, measured in the same run on the same bytes:

- VCF (``files.vcf.deidentify``: inflate, header rules, BGZF out, htslib read-back) against
  pysam reading every record of the bgzipped file and writing it again as BGZF;
- HL7 aECG (``files.aecg.deidentify``: safe parse, the walk, free-text scrub, serialize) against
  defusedxml parsing the file and ElementTree serializing it;
- PDF (``files.documents.check``: extraction, free-text detection, metadata removal) against
  pypdf extracting every page's text.

    .venv/bin/python benchmarks/file_formats.py [--variants 200000] [--ecgs 20] [--pages 50] [--repeat 3]

Prints MB/s (or files/s) of both and the ratio; tests never assert times."""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
import xml.etree.ElementTree as ET  # noqa: S405 - serialization only
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.files_fixtures import aecg, bgzip, pdf, vcf_text  # noqa: E402

from datalibrary.files import dicom, formats  # noqa: E402


def context() -> formats.Context:
    def resolve(fields):  # type: ignore[no-untyped-def]
        return dicom.Subject("pseudo0000000001", 17)

    secret = b"s" * 32
    return formats.Context(
        resolve, secret, dicom.DeidOptions(resolve_subject=resolve, uid_secret=secret), "restricted",
        "protocol documents, no patient data",
    )  # fmt: skip


def vcf_floor(data: bytes) -> None:
    import pysam

    with tempfile.TemporaryDirectory() as directory:
        source, target = os.path.join(directory, "in.vcf.gz"), os.path.join(directory, "out.vcf.gz")
        Path(source).write_bytes(data)
        with (
            pysam.VariantFile(source) as reader,
            pysam.VariantFile(target, "wz", header=reader.header) as out,
        ):
            for record in reader.fetch():
                out.write(record)


def aecg_floor(data: bytes) -> None:
    from defusedxml.ElementTree import fromstring

    ET.tostring(fromstring(data, forbid_dtd=True), encoding="utf-8")


def pdf_floor(data: bytes) -> None:
    from pypdf import PdfReader

    for page in PdfReader(io.BytesIO(data)).pages:
        page.extract_text()


def timed(items: list[bytes], step, repeat: int) -> float:  # type: ignore[no-untyped-def]
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        for data in items:
            step(data)
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def report(name: str, items: list[bytes], ours, floor, repeat: int) -> None:  # type: ignore[no-untyped-def]
    size = sum(len(d) for d in items) / 1e6
    mine, base = timed(items, ours, repeat), timed(items, floor, repeat)
    print(
        f"{name:5} {len(items):4} files {size:8.1f} MB"
        f" | ours {size / mine:7.1f} MB/s {len(items) / mine:8.1f} files/s"
        f" | floor {size / base:7.1f} MB/s {len(items) / base:8.1f} files/s | ratio {base / mine:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", type=int, default=200_000)
    parser.add_argument("--ecgs", type=int, default=20)
    parser.add_argument("--pages", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    ctx = context()
    genome = [bgzip(vcf_text(variants=args.variants))]
    report("VCF", genome, lambda d: formats.deidentify("a.vcf.gz", d, ctx), vcf_floor, args.repeat)
    leads = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
    digits = " ".join(str((i * 37) % 400 - 200) for i in range(5000))  # 10 s at 500 Hz
    ecg = aecg(leads=leads).replace(b"0 5 12 30 12 -4 -8 0", digits.encode())
    report("aECG", [ecg] * args.ecgs, lambda d: formats.deidentify("e.xml", d, ctx), aecg_floor, args.repeat)
    lines = [f"Section {i}: dosing twice daily with food, assessments at weeks 2, 4 and 8" for i in range(40)]
    document = pdf(lines * 1)
    report(
        "PDF", [document] * args.pages, lambda d: formats.deidentify("p.pdf", d, ctx), pdf_floor, args.repeat
    )
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
