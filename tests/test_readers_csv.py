"""CSV reader: sniffing, stable types across batches, error positions, hostile input."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datalibrary.ingest.readers.base import Reader, ReadError
from datalibrary.ingest.readers.csv import CsvOptions, CsvReader


def read_all(reader: CsvReader, batch_rows: int = 1000) -> pa.Table:
    batches = list(reader.batches(batch_rows))
    assert len({b.schema for b in batches}) == 1, "all batches share one schema"
    return pa.Table.from_batches(batches)


def test_is_a_reader(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("a,b\n1,2\n")
    assert isinstance(CsvReader(path), Reader)


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_delimiter_detection(tmp_path: Path, delimiter: str) -> None:
    path = tmp_path / "d.csv"
    path.write_text(delimiter.join(["id", "name", "value"]) + "\n" + delimiter.join(["1", "x", "2.5"]) + "\n")
    reader = CsvReader(path)
    assert reader.sniffed.delimiter == delimiter
    assert read_all(reader).to_pylist() == [{"id": 1, "name": "x", "value": 2.5}]


def test_latin1_semicolon_file(tmp_path: Path) -> None:
    path = tmp_path / "labo.csv"
    path.write_bytes("patient;résultat;unité\n1;élevé;µmol/L\n2;normal;g/l\n".encode("cp1252"))
    reader = CsvReader(path)
    assert reader.sniffed.delimiter == ";"
    assert reader.sniffed.encoding == "cp1252"
    table = read_all(reader)
    assert table.column_names == ["patient", "résultat", "unité"]
    assert table.column("résultat").to_pylist() == ["élevé", "normal"]


def test_utf8_bom_is_not_part_of_the_first_column(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufeffUSUBJID,AGE\nS-1,70\n".encode())
    table = read_all(CsvReader(path))
    assert table.column_names == ["USUBJID", "AGE"]


def test_quoted_delimiters_and_newlines(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    path.write_text('id,comment\n1,"a, b"\n2,"line one\nline two"\n3,"say ""hi"""\n')
    table = read_all(CsvReader(path))
    assert table.column("comment").to_pylist() == ["a, b", "line one\nline two", 'say "hi"']


def test_header_cleanup(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text("a,, b \n1,2,3\n")
    assert read_all(CsvReader(path)).column_names == ["a", "column_2", "b"]


def test_repeated_column_names_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text("a,b,A\n1,2,3\n")
    with pytest.raises(ReadError, match="columns 1 and 3 are both named 'A'"):
        read_all(CsvReader(path))


def test_no_header_option(tmp_path: Path) -> None:
    path = tmp_path / "n.csv"
    path.write_text("1,x\n2,y\n")
    table = read_all(CsvReader(path, options=CsvOptions(header=False)))
    assert table.column_names == ["column_1", "column_2"] and table.num_rows == 2


def test_types_are_decided_once_and_a_later_misfit_names_row_and_column(tmp_path: Path) -> None:
    path = tmp_path / "late.csv"
    lines = ["id,value,unit"] + [f"{i},{i * 2},mg" for i in range(300_000)] + ["300000,n/a,mg"]
    path.write_text("\n".join(lines) + "\n")
    reader = CsvReader(
        path, options=CsvOptions(max_field_bytes=1 << 20)
    )  # first block (1 MiB) decides the types
    assert reader.schema().field("value").type == pa.int64()
    with pytest.raises(ReadError) as err:
        read_all(reader, batch_rows=10_000)
    assert err.value.row == 300_001 and err.value.column == "value"
    assert "n/a" in err.value.detail


def test_string_fallback_option(tmp_path: Path) -> None:
    path = tmp_path / "late.csv"
    lines = ["id,value"] + [f"{i},{i}" for i in range(200_000)] + ["x,n/a"]
    path.write_text("\n".join(lines) + "\n")
    reader = CsvReader(path, options=CsvOptions(on_type_error="string", max_field_bytes=1 << 20))
    table = read_all(reader, batch_rows=20_000)
    assert table.schema.field("value").type == pa.string()
    assert table.schema.field("id").type == pa.string()
    assert table.num_rows == 200_001 and table.column("value")[-1].as_py() == "n/a"


def test_declared_types_win(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("code,n\n001,1\n002,2\n")
    table = read_all(CsvReader(path, options=CsvOptions(column_types={"code": pa.string()})))
    assert table.column("code").to_pylist() == ["001", "002"]


def test_dates_stay_text_unless_asked(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("d\n2014-03-02\n2014-03\n")
    assert read_all(CsvReader(path)).column("d").to_pylist() == ["2014-03-02", "2014-03"]


def test_ragged_row_gives_its_number(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("a,b,c\n1,2,3\n4,5,6\n7,8\n9,10,11\n")
    with pytest.raises(ReadError) as err:
        read_all(CsvReader(path))
    assert err.value.row == 3 and "expected 3 fields, found 2" in err.value.detail


def test_ragged_row_far_into_the_file(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("a,b\n" + "1,2\n" * 250_000 + "1,2,3\n")
    with pytest.raises(ReadError) as err:
        read_all(CsvReader(path, options=CsvOptions(max_field_bytes=1 << 20)), batch_rows=5_000)
    assert err.value.row == 250_001


def test_header_only_file_yields_an_empty_batch(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text("a,b\n")
    table = read_all(CsvReader(path))
    assert table.num_rows == 0 and table.column_names == ["a", "b"]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty"),
        (b"   \n\n", "empty"),
        (b"a,b\n1,\x00\x002\n", "NUL"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "NUL"),
    ],
)
def test_hostile_or_empty_input(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(ReadError) as err:
        read_all(CsvReader(path))
    assert reason in err.value.detail


def test_huge_field_is_refused_not_buffered(tmp_path: Path) -> None:
    path = tmp_path / "huge.csv"
    path.write_text("a,b\n1,x\n2," + "y" * (12 << 20) + "\n" + "3,z\n" * 1000)
    with pytest.raises(ReadError) as err:
        read_all(CsvReader(path))
    assert "max_field_bytes" in err.value.detail
    bigger = read_all(CsvReader(path, options=CsvOptions(max_field_bytes=16 << 20)))
    assert len(bigger.column("b")[1].as_py()) == 12 << 20


def test_unclosed_quote_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    path.write_text('a,b\n1,"never closed\n' + "2,3\n" * 10)
    with pytest.raises(ReadError):
        read_all(CsvReader(path))


def test_wrong_declared_encoding(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_bytes("a\né\n".encode("cp1252"))
    with pytest.raises(ReadError):
        read_all(CsvReader(path, options=CsvOptions(encoding="utf-8")))


cell = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufeff"), max_size=12
).map(lambda s: s.strip())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(st.tuples(cell, cell, st.integers(-(10**9), 10**9)), min_size=1, max_size=30),
    delimiter=st.sampled_from([",", ";", "\t", "|"]),
    quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC]),
)
def test_round_trip_of_generated_tables(tmp_path: Path, rows: list, delimiter: str, quoting: int) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, quoting=quoting, lineterminator="\n")
    writer.writerow(["name", "note", "count"])
    writer.writerows(rows)
    path = tmp_path / "rt.csv"
    path.write_text(buffer.getvalue(), encoding="utf-8")
    table = read_all(
        CsvReader(
            path,
            options=CsvOptions(delimiter=delimiter, column_types={"name": pa.string(), "note": pa.string()}),
        )
    )
    assert table.column("count").to_pylist() == [r[2] for r in rows]
    assert table.column("name").to_pylist() == [r[0] or None for r in rows]
    assert table.column("note").to_pylist() == [r[1] or None for r in rows]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(
        st.tuples(st.integers(0, 999), st.sampled_from(["mg", "g/L", "U/L", "a;b", "x|y"])),
        min_size=3,
        max_size=40,
    ),
    delimiter=st.sampled_from([",", ";", "\t", "|"]),
)
def test_delimiter_is_detected_for_generated_tables(tmp_path: Path, rows: list, delimiter: str) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\n")
    writer.writerow(["id", "unit", "flag"])
    writer.writerows([(a, b, "Y") for a, b in rows])
    path = tmp_path / "d.csv"
    path.write_text(buffer.getvalue())
    reader = CsvReader(path)
    assert reader.sniffed.delimiter == delimiter
    assert read_all(reader).column("unit").to_pylist() == [b for _, b in rows]


def test_crlf_tabs_and_latin1_beyond_cp1252(tmp_path: Path) -> None:
    path = tmp_path / "w.tsv"
    path.write_bytes('site\tnote\r\n701\tcaf\xe9 \x81\r\n702\t"a\tb"\r\n'.encode("latin-1"))
    reader = CsvReader(path)
    assert (reader.sniffed.delimiter, reader.sniffed.encoding) == ("\t", "latin-1")
    table = read_all(reader)
    assert table.column("note").to_pylist() == ["caf\xe9 \x81", "a\tb"]
    assert table.column("site").to_pylist() == [701, 702]
