"""FHIR R4 reader: Bundles (JSON) and bulk-export NDJSON, one table per resource type.

``FhirReader(path, resource_type="Observation")`` yields the Observations of the file as
rows. Patient, Encounter, Observation, Condition and MedicationRequest have a fixed
column map (``FHIR_COLUMNS``: column name -> FHIR path), so every file gives the same
schema; other types are flattened generically (dotted paths, lists as JSON text) with
the schema of their first records. ``resource_types(path)`` counts the types present so
the pipeline can fan out one table per type. Column labels are the FHIR paths.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa

from datalibrary.ingest.readers._jsonstream import (
    MAX_RECORD_BYTES,
    SURROGATE,
    BatchBuilder,
    JsonStream,
    check_width,
    flatten,
    open_text,
)
from datalibrary.ingest.readers.base import (
    DEFAULT_BATCH_ROWS,
    NO_LIMITS,
    ReadError,
    ReadLimits,
    parse_options,
)

S, F = pa.string(), pa.float64()
SSN = "http://hl7.org/fhir/sid/us-ssn"

# column -> (FHIR path, type). Path syntax: dotted keys; ``[n]`` picks a list item, ``[*]``
# joins all items with a space, ``[key=value]`` picks the first item whose key equals value.
FHIR_COLUMNS: dict[str, dict[str, tuple[str, pa.DataType]]] = {
    "Patient": {
        "id": ("id", S),
        "identifier": ("identifier[0].value", S),
        "ssn": (f"identifier[system={SSN}].value", S),
        "name_family": ("name[0].family", S),
        "name_given": ("name[0].given[*]", S),
        "name_prefix": ("name[0].prefix[*]", S),
        "gender": ("gender", S),
        "birth_date": ("birthDate", S),
        "deceased_datetime": ("deceasedDateTime", S),
        "marital_status": ("maritalStatus.coding[0].code", S),
        "address_line": ("address[0].line[*]", S),
        "address_city": ("address[0].city", S),
        "address_state": ("address[0].state", S),
        "address_postal_code": ("address[0].postalCode", S),
        "address_country": ("address[0].country", S),
        "phone": ("telecom[system=phone].value", S),
        "email": ("telecom[system=email].value", S),
        "language": ("communication[0].language.coding[0].code", S),
    },
    "Encounter": {
        "id": ("id", S),
        "status": ("status", S),
        "class": ("class.code", S),
        "type_code": ("type[0].coding[0].code", S),
        "type_display": ("type[0].coding[0].display", S),
        "subject": ("subject.reference", S),
        "participant": ("participant[0].individual.reference", S),
        "period_start": ("period.start", S),
        "period_end": ("period.end", S),
        "reason_code": ("reasonCode[0].coding[0].code", S),
        "reason_display": ("reasonCode[0].coding[0].display", S),
        "service_provider": ("serviceProvider.reference", S),
    },
    "Observation": {
        "id": ("id", S),
        "status": ("status", S),
        "category": ("category[0].coding[0].code", S),
        "code_system": ("code.coding[0].system", S),
        "code": ("code.coding[0].code", S),
        "code_display": ("code.coding[0].display", S),
        "subject": ("subject.reference", S),
        "encounter": ("encounter.reference", S),
        "effective_datetime": ("effectiveDateTime", S),
        "issued": ("issued", S),
        "value_quantity": ("valueQuantity.value", F),
        "value_unit": ("valueQuantity.unit", S),
        "value_code": ("valueCodeableConcept.coding[0].code", S),
        "value_display": ("valueCodeableConcept.coding[0].display", S),
        "value_string": ("valueString", S),
        "interpretation": ("interpretation[0].coding[0].code", S),
        "reference_low": ("referenceRange[0].low.value", F),
        "reference_high": ("referenceRange[0].high.value", F),
    },
    "Condition": {
        "id": ("id", S),
        "clinical_status": ("clinicalStatus.coding[0].code", S),
        "verification_status": ("verificationStatus.coding[0].code", S),
        "category": ("category[0].coding[0].code", S),
        "code_system": ("code.coding[0].system", S),
        "code": ("code.coding[0].code", S),
        "code_display": ("code.coding[0].display", S),
        "subject": ("subject.reference", S),
        "encounter": ("encounter.reference", S),
        "onset_datetime": ("onsetDateTime", S),
        "abatement_datetime": ("abatementDateTime", S),
        "recorded_date": ("recordedDate", S),
    },
    "MedicationRequest": {
        "id": ("id", S),
        "status": ("status", S),
        "intent": ("intent", S),
        "medication_system": ("medicationCodeableConcept.coding[0].system", S),
        "medication_code": ("medicationCodeableConcept.coding[0].code", S),
        "medication_display": ("medicationCodeableConcept.coding[0].display", S),
        "medication_reference": ("medicationReference.reference", S),
        "subject": ("subject.reference", S),
        "encounter": ("encounter.reference", S),
        "authored_on": ("authoredOn", S),
        "requester": ("requester.reference", S),
        "dosage_text": ("dosageInstruction[0].text", S),
        "reason_reference": ("reasonReference[0].reference", S),
    },
}

_STEP = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:\[([^\]]*)\])?")


def _steps(path: str) -> list[tuple[str, str | None]]:
    steps, pos = [], 0
    while pos < len(path):
        match = _STEP.match(path, pos)
        if not match:
            raise ValueError(f"bad FHIR path {path!r}")
        steps.append((match.group(1), match.group(2)))
        pos = match.end() + 1  # skip the dot
    return steps


_COMPILED = {t: {c: (_steps(p), k) for c, (p, k) in cols.items()} for t, cols in FHIR_COLUMNS.items()}


def extract(resource: Any, steps: list[tuple[str, str | None]]) -> Any:
    """The value at a compiled path, or None when any step is missing."""
    node = resource
    for key, pick in steps:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
        if pick is None or node is None:
            continue
        if not isinstance(node, list):
            return None
        if pick == "*":
            items = [str(i) for i in node if isinstance(i, str | int | float)]
            node = " ".join(items) if items else None
        elif pick.isdigit():
            index = int(pick)
            node = node[index] if index < len(node) else None
        else:
            field, _, wanted = pick.partition("=")
            node = next((i for i in node if isinstance(i, dict) and str(i.get(field)) == wanted), None)
    if isinstance(node, dict | list):
        return json.dumps(node, separators=(",", ":"))
    return node


def _is_ndjson(path: Path) -> bool:
    with path.open("rb") as handle:
        first = handle.readline(1 << 20).strip()
    try:
        record = json.loads(first)
    except (ValueError, RecursionError):
        return False
    return isinstance(record, dict) and record.get("resourceType") not in (None, "Bundle")


def iter_resources(
    path: Path, name: str, max_record_bytes: int = MAX_RECORD_BYTES
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(record number, resource) for each resource of a Bundle, a single resource or an NDJSON
    file; a line or entry longer than ``max_record_bytes`` is refused before it is decoded."""
    if _is_ndjson(path):
        with open_text(path, name) as handle:
            number = 0
            while line := handle.readline(max_record_bytes + 1):
                number += 1
                if len(line) > max_record_bytes:
                    raise ReadError(name, f"a line is longer than {max_record_bytes} characters", row=number)
                if not line.strip():
                    continue
                try:
                    resource = json.loads(line)
                except (ValueError, RecursionError) as exc:
                    raise ReadError(name, f"line is not valid JSON: {exc}", row=number) from exc
                if not isinstance(resource, dict):
                    raise ReadError(name, "each line must be a FHIR resource object", row=number)
                yield number, resource
        return
    with open_text(path, name) as handle:
        stream = JsonStream(handle, name, max_record_bytes=max_record_bytes)
        for number, entry in enumerate(stream.records("entry"), start=1):
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if isinstance(resource, dict):
                yield number, resource


def resource_types(
    path: Path,
    *,
    display_name: str | None = None,
    max_types: int | None = None,
    max_record_bytes: int = MAX_RECORD_BYTES,
) -> dict[str, int]:
    """How many resources of each type the file holds (one streaming pass). More than
    ``max_types`` distinct types (each would become a table and a job) is refused."""
    name = display_name or Path(path).name
    counts: Counter[str] = Counter()
    for number, resource in iter_resources(Path(path), name, max_record_bytes):
        kind = resource.get("resourceType")
        if not isinstance(kind, str) or not re.fullmatch(r"[A-Z][A-Za-z]{1,63}", kind):
            if kind is None:
                continue
            raise ReadError(name, "not a FHIR resource type", row=number, value=kind)
        counts[kind] += 1
        if max_types is not None and len(counts) > max_types:
            raise ReadError(
                name,
                f"the file holds more than {max_types} FHIR resource types (each would become a "
                "table): the fan-out limit (ingest.max_children) is exceeded",
            )
    return dict(counts)


@dataclass(frozen=True)
class FhirOptions:
    """Which resources of a FHIR file to read (a file of several types fans out, one job each)."""

    resource_type: str = "Patient"


class FhirReader:
    format: ClassVar[str] = "fhir"
    Options: ClassVar[type[FhirOptions]] = FhirOptions

    def __init__(
        self,
        path: Path,
        *,
        display_name: str | None = None,
        options: FhirOptions | Mapping[str, Any] | None = None,
        limits: ReadLimits = NO_LIMITS,
    ) -> None:
        self.path = Path(path)
        self.name = display_name or self.path.name
        resource_type = parse_options(FhirOptions, options, file=self.name, reader=self.format).resource_type
        self.max_columns = limits.max_columns
        self.max_record_bytes = limits.max_record_bytes or MAX_RECORD_BYTES
        if not re.fullmatch(r"[A-Z][A-Za-z]{1,63}", resource_type):
            raise ReadError(self.name, f"not a FHIR resource type: {resource_type!r}")
        self.resource_type = resource_type
        self.columns = _COMPILED.get(resource_type)

    def schema(self) -> pa.Schema | None:
        if self.columns is None:
            return None
        return pa.schema([pa.field(c, kind) for c, (_, kind) in self.columns.items()])

    def column_labels(self) -> dict[str, str]:
        mapped = FHIR_COLUMNS.get(self.resource_type, {})
        return {column: f"{self.resource_type}.{path}" for column, (path, _) in mapped.items()}

    def _row(self, resource: dict[str, Any], number: int) -> dict[str, Any]:
        if self.columns is None:
            row = flatten(resource, self.name, number)
            check_width(row, self.name, number, self.max_columns)
            return row
        row = {}
        for column, (steps, kind) in self.columns.items():
            value = extract(resource, steps)
            if value is not None and kind == F and not isinstance(value, int | float):
                raise ReadError(self.name, "expected a number", row=number, column=column, value=value)
            row[column] = value if kind == F or value is None else str(value)
        return row

    def batches(self, batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[pa.RecordBatch]:
        builder = BatchBuilder(self.name, self.schema())
        rows: list[dict[str, Any]] = []
        try:
            for number, resource in iter_resources(self.path, self.name, self.max_record_bytes):
                if resource.get("resourceType") != self.resource_type:
                    continue
                rows.append(self._row(resource, number))
                if len(rows) >= batch_rows:
                    yield builder.build(rows)
                    rows = []
        except UnicodeDecodeError as exc:
            raise ReadError(self.name, f"FHIR JSON must be UTF-8 text: {exc.reason}") from exc
        except UnicodeEncodeError as exc:
            raise ReadError(self.name, SURROGATE) from exc
        if rows:
            yield builder.build(rows)
        elif builder.schema is not None and builder.rows_done == 0:
            yield pa.RecordBatch.from_pylist([], schema=builder.schema)
