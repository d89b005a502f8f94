"""XPT, SAS7BDAT, Parquet, JSON, NDJSON and FHIR readers, and format detection."""

from __future__ import annotations

import dataclasses
import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datalibrary.errors import InvalidInput
from datalibrary.ingest import readers as registry
from datalibrary.ingest.readers.base import Reader, ReadError, ReadLimits, UnknownOption
from datalibrary.ingest.readers.csv import CsvOptions, CsvReader
from datalibrary.ingest.readers.define_xml import define_labels
from datalibrary.ingest.readers.detect import detect_format
from datalibrary.ingest.readers.fhir import FHIR_COLUMNS, FhirOptions, FhirReader, resource_types
from datalibrary.ingest.readers.json_formats import JsonOptions, JsonReader, NdjsonReader
from datalibrary.ingest.readers.parquet import ParquetReader
from datalibrary.ingest.readers.sas7bdat import Sas7bdatReader
from datalibrary.ingest.readers.xpt import XptReader
from tests import test_readers_real_files as real_files

DATA = Path(__file__).parent / "data"
shared_data = real_files.shared_data


def table_of(reader: object, batch_rows: int = 1000) -> pa.Table:
    batches = list(reader.batches(batch_rows))  # type: ignore[attr-defined]
    assert len({b.schema for b in batches}) == 1
    return pa.Table.from_batches(batches)


def test_catalog_maps_every_format_to_a_reader() -> None:
    assert set(registry.READERS) == {"csv", "xpt", "sas7bdat", "parquet", "json", "ndjson", "fhir"}
    for name in registry.READERS:
        assert registry.reader_class(name).format == name


@pytest.mark.parametrize("name", sorted(registry.READERS))
def test_an_unknown_option_is_refused_naming_file_reader_and_option(name: str, tmp_path: Path) -> None:
    """A misspelt option used to be dropped in silence (the file read another way than asked)."""
    path = tmp_path / "lab.data"
    path.write_text("a,b\n1,2\n")  # refused before the content is looked at
    with pytest.raises(UnknownOption) as err:
        registry.open_reader(path, format=name, display_name="lab.csv", options={"delimeter": ";"})
    message = err.value.detail
    assert "'lab.csv'" in message and f"the {name} reader" in message and "'delimeter'" in message
    assert err.value.extra == {
        "code": "unknown-option",
        "file": "lab.csv",
        "reader": name,
        "options": ["delimeter"],
    }
    assert err.value.status == 422
    known = [field.name for field in dataclasses.fields(registry.reader_class(name).Options)]
    assert (", ".join(known) if known else "none") in message, "the reader's options are listed"


def test_options_are_typed_per_reader(tmp_path: Path) -> None:
    path = tmp_path / "lab.csv"
    path.write_text("a;b\n1;x\n")
    assert registry.open_reader(path, options={"delimiter": ";"}).columns == ["a", "b"]
    assert CsvReader(path, options=CsvOptions(delimiter=";")).columns == ["a", "b"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        CsvOptions().header = False  # type: ignore[misc]
    with pytest.raises(InvalidInput, match="on_type_error must be 'error' or 'string'"):
        registry.open_reader(path, options={"on_type_error": "strnig"})
    with pytest.raises(UnknownOption, match="the csv reader has no option 'max_columns'"):
        registry.open_reader(path, options={"max_columns": 1})  # a limit, not an option
    with pytest.raises(ReadError, match="more than the limit of 1"):
        registry.open_reader(path, limits=ReadLimits(max_columns=1))
    with pytest.raises(TypeError, match="the xpt reader takes XptOptions or a mapping, not CsvOptions"):
        XptReader(path, options=CsvOptions())  # type: ignore[arg-type]


# -- SAS ------------------------------------------------------------------------------------
def test_sas7bdat_real_file() -> None:
    path = DATA / "sas7bdat_converter_file1.sas7bdat"
    assert detect_format(path) == "sas7bdat"
    reader = Sas7bdatReader(path)
    assert isinstance(reader, Reader)
    table = table_of(reader, batch_rows=2)
    assert table.num_rows == 5
    assert table.column("text_row")[0].as_py() == "Some text"
    assert table.column("float_row").to_pylist() == [2.5, 17.23, 3.21, 100.9, 98.6]
    assert str(table.column("date_row")[0].as_py()) == "2018-01-02"


@pytest.mark.parametrize("reader_class", [Sas7bdatReader, XptReader])
@pytest.mark.parametrize("content", [b"", b"not a sas file at all" * 10, b"\x00" * 4096])
def test_sas_readers_refuse_garbage(tmp_path: Path, reader_class: type, content: bytes) -> None:
    path = tmp_path / "bad.bin"
    path.write_bytes(content)
    with pytest.raises(ReadError):
        table_of(reader_class(path))


def test_truncated_sas_files(tmp_path: Path, shared_data: Path) -> None:
    for source, reader_class in [
        (DATA / "sas7bdat_converter_file1.sas7bdat", Sas7bdatReader),
        (shared_data / "cdiscpilot01-sdtm" / "ae.xpt", XptReader),
    ]:
        path = tmp_path / source.name
        path.write_bytes(source.read_bytes()[: source.stat().st_size // 3 + 7])
        with pytest.raises(ReadError):
            table_of(reader_class(path))


def test_define_xml_with_entities_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "define.xml"
    path.write_text('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><ODM>&a;</ODM>')
    with pytest.raises(ReadError):
        define_labels(path)
    padded = tmp_path / "padded.xml"
    padded.write_text(
        '<?xml version="1.0"?>' + "<!-- pad -->" * 200_000 + '<!DOCTYPE x [<!ENTITY a "a">]><ODM/>'
    )
    with pytest.raises(ReadError):
        define_labels(padded)


# -- Parquet --------------------------------------------------------------------------------
def test_parquet_row_groups_and_labels(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    schema = pa.schema([pa.field("AGE", pa.int64(), metadata={"label": "Age"}), pa.field("SEX", pa.string())])
    table = pa.table({"AGE": list(range(1000)), "SEX": ["F", "M"] * 500}, schema=schema)
    pq.write_table(table, path, row_group_size=100)
    reader = ParquetReader(path)
    assert detect_format(path) == "parquet"
    assert reader.column_labels() == {"AGE": "Age"}
    batches = list(reader.batches(batch_rows=64))
    assert max(b.num_rows for b in batches) <= 64
    assert pa.Table.from_batches(batches).column("AGE").to_pylist() == list(range(1000))


def test_truncated_parquet(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"a": list(range(10_000))}), path)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ReadError):
        table_of(ParquetReader(path))


# -- JSON -----------------------------------------------------------------------------------
def test_json_array_is_flattened(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    records = [{"id": i, "name": {"family": f"F{i}", "given": "G"}, "tags": ["x", "y"]} for i in range(2500)]
    path.write_text(json.dumps(records))
    assert detect_format(path) == "json"
    table = table_of(JsonReader(path), batch_rows=1000)
    assert table.column_names == ["id", "name.family", "name.given", "tags"]
    assert table.num_rows == 2500 and table.column("tags")[0].as_py() == '["x","y"]'


def test_json_object_with_records_list(tmp_path: Path) -> None:
    path = tmp_path / "o.json"
    path.write_text(json.dumps({"meta": {"n": 2}, "count": 12345, "records": [{"a": 1}, {"a": 2}]}))
    assert table_of(JsonReader(path)).column("a").to_pylist() == [1, 2]
    assert table_of(JsonReader(path, options=JsonOptions(records_key="records"))).num_rows == 2
    with pytest.raises(ReadError):
        table_of(JsonReader(path, options=JsonOptions(records_key="missing")))


def test_json_later_type_misfit_names_row_and_column(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text(json.dumps([{"a": i} for i in range(10)] + [{"a": "ten"}]))
    with pytest.raises(ReadError) as err:
        table_of(JsonReader(path), batch_rows=5)
    assert err.value.row == 11 and err.value.column == "a"


def test_json_new_column_later_is_named(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text(json.dumps([{"a": 1}, {"a": 2}, {"a": 3, "b": 4}]))
    with pytest.raises(ReadError) as err:
        table_of(JsonReader(path), batch_rows=2)
    assert err.value.row == 3 and err.value.column == "b"


@pytest.mark.parametrize(
    "content",
    [
        "[" * 100_000 + "]" * 100_000,  # deeply nested
        '[{"a": ' * 5000 + "1" + "}]" * 5000,
        '[{"a": 1}, {"a": 2',  # truncated
        '{"a": 1}',  # no records list
        "[1, 2, 3]",  # not objects
        "",
    ],
)
def test_hostile_json(tmp_path: Path, content: str) -> None:
    path = tmp_path / "h.json"
    path.write_text(content)
    with pytest.raises(ReadError):
        table_of(JsonReader(path))


def test_json_record_size_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    path.write_text('[{"a": "' + "x" * (3 << 20) + '"}]')
    from datalibrary.ingest.readers import _jsonstream

    with path.open() as handle, pytest.raises(ReadError):
        list(_jsonstream.JsonStream(handle, "big.json", max_record_bytes=1 << 20).records())


def test_ndjson_streams_and_flattens(tmp_path: Path) -> None:
    path = tmp_path / "n.ndjson"
    lines = [
        json.dumps({"id": i, "lab": {"code": "ALT", "value": i / 2}, "flags": [1, 2]}) for i in range(5000)
    ]
    path.write_text("\n".join(lines) + "\n")
    assert detect_format(path) == "ndjson"
    table = table_of(NdjsonReader(path), batch_rows=700)
    assert table.num_rows == 5000
    assert {"id", "lab.code", "lab.value", "flags"} <= set(table.column_names)


def test_ndjson_bad_line_is_located(tmp_path: Path) -> None:
    path = tmp_path / "n.ndjson"
    path.write_text('{"a": 1}\n{"a": 2}\n{"a": \n')
    with pytest.raises(ReadError) as err:
        table_of(NdjsonReader(path))
    assert err.value.row == 3


def test_json_with_nul_bytes_or_latin1(tmp_path: Path) -> None:
    path = tmp_path / "n.json"
    path.write_bytes(b'[{"a": "\x00\x00"}]'.replace(b"[", b"\x00["))
    with pytest.raises(ReadError):
        table_of(JsonReader(path))
    path.write_bytes('[{"a": "é"}]'.encode("latin-1"))
    with pytest.raises(ReadError):
        table_of(JsonReader(path))


# -- FHIR -----------------------------------------------------------------------------------
def patient(i: int) -> dict:
    return {
        "resourceType": "Patient",
        "id": f"p{i}",
        "identifier": [
            {"system": "urn:mrn", "value": f"MRN{i}"},
            {"system": "http://hl7.org/fhir/sid/us-ssn", "value": f"999-00-{i:04d}"},
        ],
        "name": [{"family": "Doe", "given": ["Jane", "Q"], "prefix": ["Ms."]}],
        "gender": "female",
        "birthDate": "1931-02-03",
        "address": [{"line": ["1 Main St"], "city": "Town", "state": "MA", "postalCode": "02138"}],
        "telecom": [{"system": "email", "value": "jane@example.org"}, {"system": "phone", "value": "555"}],
    }


def observation(i: int) -> dict:
    return {
        "resourceType": "Observation",
        "id": f"o{i}",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "1742-6", "display": "ALT"}]},
        "subject": {"reference": f"Patient/p{i}"},
        "effectiveDateTime": "2014-03-02T10:00:00Z",
        "valueQuantity": {"value": 30 + i, "unit": "U/L"},
        "referenceRange": [{"low": {"value": 7}, "high": {"value": 55}}],
    }


OTHERS = [
    {
        "resourceType": "Encounter",
        "id": "e1",
        "status": "finished",
        "class": {"code": "AMB"},
        "subject": {"reference": "Patient/p1"},
        "period": {"start": "2014-01-01", "end": "2014-01-02"},
    },
    {
        "resourceType": "Condition",
        "id": "c1",
        "code": {"coding": [{"code": "44054006"}]},
        "subject": {"reference": "Patient/p1"},
        "onsetDateTime": "2013",
    },
    {
        "resourceType": "MedicationRequest",
        "id": "m1",
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {"coding": [{"code": "860975"}]},
        "subject": {"reference": "Patient/p1"},
    },
    {"resourceType": "Organization", "id": "org1", "name": "Hospital", "address": [{"city": "Town"}]},
]


def write_bundle(path: Path, resources: list[dict]) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "link": [{"relation": "self", "url": "x"}],
        "total": len(resources),
        "entry": [{"fullUrl": f"urn:{i}", "resource": r} for i, r in enumerate(resources)],
    }
    path.write_text(json.dumps(bundle, indent=1))


def test_fhir_bundle_one_table_per_type(tmp_path: Path) -> None:
    path = tmp_path / "bundle.json"
    write_bundle(path, [patient(1), observation(1), patient(2), observation(2), *OTHERS])
    assert detect_format(path) == "fhir"
    assert resource_types(path) == {
        "Patient": 2,
        "Observation": 2,
        "Encounter": 1,
        "Condition": 1,
        "MedicationRequest": 1,
        "Organization": 1,
    }
    patients = table_of(FhirReader(path, options=FhirOptions(resource_type="Patient"))).to_pylist()
    assert patients[0]["ssn"] == "999-00-0001" and patients[0]["identifier"] == "MRN1"
    assert patients[0]["name_given"] == "Jane Q" and patients[0]["email"] == "jane@example.org"
    assert patients[0]["address_postal_code"] == "02138"
    obs = table_of(FhirReader(path, options=FhirOptions(resource_type="Observation")))
    assert obs.schema.field("value_quantity").type == pa.float64()
    assert obs.column("reference_high").to_pylist() == [55, 55]
    for kind in ("Encounter", "Condition", "MedicationRequest"):
        reader = FhirReader(path, options=FhirOptions(resource_type=kind))
        assert table_of(reader).column_names == list(FHIR_COLUMNS[kind])
        assert reader.column_labels()["id"] == f"{kind}.id"
    org = table_of(FhirReader(path, options=FhirOptions(resource_type="Organization")))
    assert org.column("name").to_pylist() == ["Hospital"]


def test_fhir_bulk_ndjson(tmp_path: Path) -> None:
    path = tmp_path / "Observation.ndjson"
    path.write_text("\n".join(json.dumps(observation(i)) for i in range(300)) + "\n")
    assert detect_format(path) == "fhir"
    assert resource_types(path) == {"Observation": 300}
    table = table_of(FhirReader(path, options=FhirOptions(resource_type="Observation")), batch_rows=64)
    assert table.num_rows == 300 and table.column("code").to_pylist()[0] == "1742-6"


def test_fhir_type_absent_gives_empty_fixed_schema(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    write_bundle(path, [patient(1)])
    table = table_of(FhirReader(path, options=FhirOptions(resource_type="Condition")))
    assert table.num_rows == 0 and table.column_names == list(FHIR_COLUMNS["Condition"])


def test_fhir_rejects_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    bad = observation(1)
    bad["valueQuantity"]["value"] = "high"
    write_bundle(path, [bad])
    with pytest.raises(ReadError) as err:
        table_of(FhirReader(path, options=FhirOptions(resource_type="Observation")))
    assert err.value.column == "value_quantity"
    with pytest.raises(ReadError):
        FhirReader(path, options=FhirOptions(resource_type="../etc"))
    path.write_text('{"resourceType": "Bundle", "entry": [{"resource": ')
    with pytest.raises(ReadError):
        table_of(FhirReader(path, options=FhirOptions(resource_type="Patient")))


# -- detection ------------------------------------------------------------------------------
def test_detection_prefers_content_over_suffix(tmp_path: Path, shared_data: Path) -> None:
    xpt = tmp_path / "data.csv"
    xpt.write_bytes((shared_data / "cdiscpilot01-sdtm" / "ts.xpt").read_bytes())
    assert detect_format(xpt) == "xpt"
    gz = tmp_path / "x.txt"
    gz.write_bytes(gzip.compress(b"a,b\n1,2\n"))
    assert detect_format(gz) == "gzip"
    csv_named_json = tmp_path / "x.json"
    csv_named_json.write_text("a;b\n1;2\n")
    assert detect_format(csv_named_json) == "csv"
    empty = tmp_path / "e.csv"
    empty.write_bytes(b"")
    with pytest.raises(ReadError):
        detect_format(empty)
    binary = tmp_path / "b.csv"
    binary.write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)))
    with pytest.raises(ReadError):
        detect_format(binary)


def test_hostile_ndjson_and_fhir(tmp_path: Path) -> None:
    deep = '{"a": ' * 5000 + "1" + "}" * 5000
    path = tmp_path / "deep.ndjson"
    path.write_text('{"a": 1}\n' + deep + "\n")
    with pytest.raises(ReadError):
        table_of(NdjsonReader(path))
    fhir = tmp_path / "deep_fhir.ndjson"
    fhir.write_text(
        '{"resourceType": "Patient", "id": "1"}\n{"resourceType": "Patient", "x": ' + deep + "}\n"
    )
    with pytest.raises(ReadError):
        table_of(FhirReader(fhir, options=FhirOptions(resource_type="Patient")))


json_scalar = st.one_of(st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.text(max_size=8))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "id": st.integers(0, 10**6),
                "name": st.text(max_size=10),
                "lab": st.fixed_dictionaries(
                    {"code": st.sampled_from(["ALT", "AST"]), "note": json_scalar.map(str)}
                ),
            }
        ),
        min_size=1,
        max_size=40,
    ),
    st.integers(1, 7),
)
def test_json_round_trip_of_generated_records(tmp_path: Path, records: list, batch_rows: int) -> None:
    path = tmp_path / "g.json"
    path.write_text(json.dumps({"meta": {"x": [1, 2]}, "records": records}, indent=2))
    table = table_of(JsonReader(path), batch_rows=batch_rows)
    assert table.column("id").to_pylist() == [r["id"] for r in records]
    assert table.column("lab.note").to_pylist() == [r["lab"]["note"] for r in records]
    assert table.column("name").to_pylist() == [r["name"] for r in records]
