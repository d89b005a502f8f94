"""Archive extraction: nested .gz/.zip, and refusal of bombs, traversal, links and floods."""

from __future__ import annotations

import gzip
import io
import stat
import zipfile
from pathlib import Path

import pytest

from datalibrary.ingest.readers.archive import ArchiveLimits, extract
from datalibrary.ingest.readers.base import ReadError
from datalibrary.ingest.readers.csv import CsvReader
from tests import test_readers_real_files as real_files

shared_data = real_files.shared_data
CSV = b"USUBJID,AGE\nS-1,70\nS-2,81\n"


def zip_bytes(entries: dict[str, bytes], *, symlink: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return buffer.getvalue()


def test_gzip_csv(tmp_path: Path) -> None:
    source = tmp_path / "dm.csv.gz"
    source.write_bytes(gzip.compress(CSV))
    [out] = extract(source, tmp_path / "x")
    assert out.name == "dm.csv" and out.read_bytes() == CSV
    assert sum(b.num_rows for b in CsvReader(out).batches()) == 2


def test_zip_with_folders_and_nested_archives(tmp_path: Path) -> None:
    inner = zip_bytes({"lb.csv": CSV})
    source = tmp_path / "delivery.zip"
    source.write_bytes(
        zip_bytes(
            {
                "sdtm/dm.csv": CSV,
                "sdtm/ae.csv.gz": gzip.compress(CSV),
                "more.zip": inner,
                "__MACOSX/._x": b"x",
            }
        )
    )
    outputs = extract(source, tmp_path / "x")
    assert sorted(p.name for p in outputs) == ["ae.csv", "dm.csv", "lb.csv"]
    assert all(p.read_bytes() == CSV for p in outputs)
    assert all((tmp_path / "x") in p.parents for p in outputs)


@pytest.mark.parametrize(
    "name", ["../evil.csv", "a/../../evil.csv", "/etc/evil.csv", "C:/evil.csv", "..\\evil.csv"]
)
def test_path_traversal_is_refused(tmp_path: Path, name: str) -> None:
    source = tmp_path / "t.zip"
    source.write_bytes(zip_bytes({"ok.csv": CSV, name: CSV}))
    dest = tmp_path / "x"
    with pytest.raises(ReadError):
        extract(source, dest)
    assert not (tmp_path / "evil.csv").exists()
    assert list(dest.iterdir()) == [], "partial output is removed"


def test_symlink_entry_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "l.zip"
    source.write_bytes(zip_bytes({"ok.csv": CSV}, symlink="link.csv"))
    with pytest.raises(ReadError, match="symbolic link"):
        extract(source, tmp_path / "x")


def test_zip_bomb_by_ratio(tmp_path: Path) -> None:
    source = tmp_path / "bomb.zip"
    source.write_bytes(zip_bytes({"zeros.csv": b"0" * (50 << 20)}))
    assert source.stat().st_size < 100_000
    with pytest.raises(ReadError, match="zip bomb"):
        extract(source, tmp_path / "x")


def test_gzip_bomb_by_total_size(tmp_path: Path) -> None:
    source = tmp_path / "bomb.csv.gz"
    source.write_bytes(gzip.compress(b"a,b\n" + b"1,2\n" * (2 << 20), compresslevel=9))
    with pytest.raises(ReadError, match="zip bomb"):
        extract(source, tmp_path / "x", limits=ArchiveLimits(max_total_bytes=1 << 20, max_ratio=10_000))
    with pytest.raises(ReadError, match="zip bomb"):
        extract(source, tmp_path / "y", limits=ArchiveLimits(max_ratio=5))


def test_nested_bomb_depth_and_entry_count(tmp_path: Path) -> None:
    data = CSV
    for _ in range(5):
        data = zip_bytes({"next.zip": data})
    source = tmp_path / "deep.zip"
    source.write_bytes(data)
    with pytest.raises(ReadError, match="nested"):
        extract(source, tmp_path / "x")
    many = tmp_path / "many.zip"
    many.write_bytes(zip_bytes({f"f{i}.csv": CSV for i in range(50)}))
    with pytest.raises(ReadError, match="entries"):
        extract(many, tmp_path / "y", limits=ArchiveLimits(max_entries=20))


@pytest.mark.parametrize("kind", ["zip", "gz"])
def test_truncated_or_corrupt_archives(tmp_path: Path, kind: str) -> None:
    payload = zip_bytes({"dm.csv": CSV * 1000}) if kind == "zip" else gzip.compress(CSV * 1000)
    source = tmp_path / f"t.{kind}"
    source.write_bytes(payload[: len(payload) // 2])
    with pytest.raises(ReadError):
        extract(source, tmp_path / "x")


def test_not_an_archive(tmp_path: Path) -> None:
    source = tmp_path / "plain.csv"
    source.write_bytes(CSV)
    with pytest.raises(ReadError, match="not an archive"):
        extract(source, tmp_path / "x")


def test_formats_inside_archives_read_after_extraction(tmp_path: Path, shared_data: Path) -> None:
    import json

    from datalibrary.ingest.readers import reader_class
    from datalibrary.ingest.readers.detect import detect_format

    xpt = (shared_data / "cdiscpilot01-sdtm" / "dm.xpt").read_bytes()
    fhir = "\n".join(json.dumps({"resourceType": "Patient", "id": f"p{i}"}) for i in range(3)).encode()
    source = tmp_path / "delivery.zip"
    source.write_bytes(zip_bytes({"dm.xpt.gz": gzip.compress(xpt), "Patient.ndjson": fhir, "lb.csv": CSV}))
    outputs = {p.name: p for p in extract(source, tmp_path / "x")}
    assert {name: detect_format(p) for name, p in outputs.items()} == {
        "dm.xpt": "xpt",
        "Patient.ndjson": "fhir",
        "lb.csv": "csv",
    }
    assert sum(b.num_rows for b in reader_class("xpt")(outputs["dm.xpt"]).batches()) == 306
    assert sum(b.num_rows for b in reader_class("fhir")(outputs["Patient.ndjson"]).batches()) == 3
