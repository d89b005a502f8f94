"""Hostile and damaged files at the reader level (issues 14 and 22): each is refused with a
clear ``ReadError`` before readstat, pyarrow or the JSON decoder can return garbage."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from datalibrary.ingest.readers.archive import extract
from datalibrary.ingest.readers.base import ReadError, ReadLimits
from datalibrary.ingest.readers.define_xml import define_labels
from datalibrary.ingest.readers.json_formats import JsonReader
from datalibrary.ingest.readers.sas7bdat import Sas7bdatReader
from datalibrary.ingest.readers.xpt import XptReader

pyreadstat = pytest.importorskip("pyreadstat")
DATA = Path(__file__).parent / "data"


def xpt(path: Path, rows: int = 306, version: int = 5, table: str = "DM") -> Path:
    frame = pd.DataFrame(
        {
            "USUBJID": [f"01-701-{i:04d}" for i in range(rows)],
            "AGE": [float(40 + i % 50) for i in range(rows)],
            "ARM": ["Placebo" if i % 2 else "Xanomeline High Dose" for i in range(rows)],
        }
    )
    pyreadstat.write_xport(frame, str(path), file_format_version=version, table_name=table)
    return path


def rows_of(reader) -> int:  # type: ignore[no-untyped-def]
    return sum(b.num_rows for b in reader.batches())


def test_xpt_cut_at_a_record_boundary_inside_the_data_is_refused(tmp_path: Path) -> None:
    whole = xpt(tmp_path / "dm.xpt")
    assert rows_of(XptReader(whole)) == 306
    data = whole.read_bytes()
    for cut in range(len(data) // 2 // 80 * 80, len(data) - 80, 80 * 7):
        part = tmp_path / "cut.xpt"
        part.write_bytes(data[:cut])
        with pytest.raises(ReadError, match="truncated SAS XPORT"):
            rows_of(XptReader(part))


def test_xpt_with_two_members_is_refused_not_read_as_garbage(tmp_path: Path) -> None:
    first = xpt(tmp_path / "a.xpt", rows=20).read_bytes()
    second = xpt(tmp_path / "b.xpt", rows=5, table="AE").read_bytes()
    both = tmp_path / "both.xpt"
    both.write_bytes(first + second[240:])  # a second member after the first's data
    with pytest.raises(ReadError, match="more than one dataset"):
        XptReader(both)


@pytest.mark.parametrize("size", [b"0001", b"0087", b"9999"])
def test_xpt_with_an_odd_descriptor_size_is_refused(tmp_path: Path, size: bytes) -> None:
    """Found by the reader fuzzer: a member header declaring short variable descriptors made
    the layout check fail with a bare struct error instead of a reason."""
    data = bytearray(xpt(tmp_path / "dm.xpt", rows=3).read_bytes())
    member = data.find(b"HEADER RECORD*******MEMBER")
    assert data[member + 74 : member + 78] == b"0140"
    data[member + 74 : member + 78] = size
    bad = tmp_path / "odd.xpt"
    bad.write_bytes(bytes(data))
    with pytest.raises(ReadError, match="variable descriptors of"):
        XptReader(bad)


def test_xpt_variable_with_an_empty_name_is_refused(tmp_path: Path) -> None:
    data = bytearray(xpt(tmp_path / "dm.xpt", rows=3).read_bytes())
    at = data.find(b"USUBJID ")
    data[at : at + 8] = b" " * 8
    bad = tmp_path / "noname.xpt"
    bad.write_bytes(bytes(data))
    with pytest.raises(ReadError, match="empty name"):
        XptReader(bad)


def test_xpt_variable_name_starting_with_nul_is_refused(tmp_path: Path) -> None:
    """Found by the reader fuzzer in CI: a name starting with a NUL byte is no name to readstat
    (None), which ended in a bare TypeError instead of a reason."""
    data = bytearray(xpt(tmp_path / "dm.xpt", rows=3).read_bytes())
    at = data.find(b"USUBJID ")
    data[at] = 0
    bad = tmp_path / "nul.xpt"
    bad.write_bytes(bytes(data))
    with pytest.raises(ReadError, match="name"):
        XptReader(bad)


def test_xpt_v8_observation_count_is_checked(tmp_path: Path) -> None:
    data = bytearray(xpt(tmp_path / "dm8.xpt", rows=30, version=8).read_bytes())
    at = data.find(b"HEADER RECORD*******OBSV8")
    data[at + 48 : at + 63] = b"             31"
    bad = tmp_path / "count.xpt"
    bad.write_bytes(bytes(data))
    with pytest.raises(ReadError, match="declares 31 observations but holds 30"):
        XptReader(bad)


def test_xpt_column_limit(tmp_path: Path) -> None:
    with pytest.raises(ReadError, match="more than the limit of 2"):
        XptReader(xpt(tmp_path / "dm.xpt", rows=3), limits=ReadLimits(max_columns=2))


def test_truncated_sas7bdat_is_refused(tmp_path: Path) -> None:
    source = DATA / "sas7bdat_converter_file1.sas7bdat"
    assert rows_of(Sas7bdatReader(source)) > 0
    cut = tmp_path / "cut.sas7bdat"
    cut.write_bytes(source.read_bytes()[: source.stat().st_size - 4096])
    with pytest.raises(ReadError, match="truncated SAS7BDAT"):
        Sas7bdatReader(cut)


def json_file(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    return path


def test_json_integer_over_4300_digits_is_a_read_error(tmp_path: Path) -> None:
    path = json_file(tmp_path / "big.json", '[{"a": ' + "9" * 5000 + "}]")
    with pytest.raises(ReadError):
        rows_of(JsonReader(path))


def test_json_lone_surrogate_is_a_read_error(tmp_path: Path) -> None:
    path = json_file(tmp_path / "s.json", '[{"a": "x\\ud800y"}]')
    with pytest.raises(ReadError, match="surrogate"):
        rows_of(JsonReader(path))


def test_json_with_200k_keys_is_refused_fast(tmp_path: Path) -> None:
    import time

    record = {f"k{i}": i for i in range(200_000)}
    path = tmp_path / "wide.json"
    path.write_text(json.dumps([record]))
    started = time.monotonic()
    with pytest.raises(ReadError, match="more than the limit"):
        rows_of(JsonReader(path, limits=ReadLimits(max_columns=4096)))
    assert time.monotonic() - started < 10


def test_json_record_over_the_limit_is_refused_even_when_valid(tmp_path: Path) -> None:
    path = tmp_path / "huge.json"
    path.write_text(json.dumps([{"a": "x" * (3 << 20)}]))
    with pytest.raises(ReadError, match="larger than"):
        rows_of(JsonReader(path, limits=ReadLimits(max_record_bytes=1 << 20)))


def zip_bytes(entries: list[tuple[str, bytes]]) -> bytes:
    sink = io.BytesIO()
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return sink.getvalue()


def test_zip_with_a_duplicate_member_is_refused(tmp_path: Path) -> None:
    import warnings

    path = tmp_path / "dup.zip"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path.write_bytes(zip_bytes([("dm.csv", b"A\n1\n"), ("dm.csv", b"A\n2\n")]))
    with pytest.raises(ReadError, match="twice"):
        extract(path, tmp_path / "out")


def test_zip_nested_archive_colliding_with_a_folder_is_refused(tmp_path: Path) -> None:
    inner = zip_bytes([("x.csv", b"A\n1\n")])
    path = tmp_path / "c.zip"
    path.write_bytes(zip_bytes([("a.zip", inner), ("a.zip.d/y.csv", b"A\n2\n")]))
    with pytest.raises(ReadError, match="collides"):
        extract(path, tmp_path / "out")
    path.write_bytes(zip_bytes([("a.zip.d/y.csv", b"A\n2\n"), ("a.zip", inner)]))
    with pytest.raises(ReadError, match="collides"):
        extract(path, tmp_path / "out2")


def test_zip_ratio_counts_bytes_written_not_declared_sizes(tmp_path: Path) -> None:
    """An entry that declares a huge compressed size must not buy a huge expansion."""
    payload = b"0" * (64 << 20)
    data = bytearray(zip_bytes([("bomb.csv", payload)]))
    # over-declare the compressed size in the central directory (offset 20 of the entry)
    central = data.rfind(b"PK\x01\x02")
    data[central + 20 : central + 24] = (1 << 31).to_bytes(4, "little")
    path = tmp_path / "liar.zip"
    path.write_bytes(bytes(data))
    out = tmp_path / "out"
    with pytest.raises(ReadError):
        extract(path, out)
    written = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    assert written == 0


def test_define_xml_utf16_doctype_and_entities_are_refused(tmp_path: Path) -> None:
    laughs = (
        '<?xml version="1.0" encoding="UTF-16"?>\n'
        '<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
        '<ODM><ItemDef OID="x" Name="A"><Description><TranslatedText>&lol2;</TranslatedText>'
        "</Description></ItemDef></ODM>"
    )
    path = tmp_path / "define.xml"
    path.write_bytes(laughs.encode("utf-16"))
    with pytest.raises(ReadError, match="DOCTYPE|entit"):
        define_labels(path)
