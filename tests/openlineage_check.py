"""Validate stored events against the OpenLineage spec as openlineage-python models it.

No PyPI package ships the spec's JSON Schema files (openlineage-python ships the attrs
classes generated from them; openlineage-integration-common and the Airflow provider ship
only their own facet schemas), so a stored payload is rebuilt, strictly, into those
generated classes: every key must be a field, every facet must be a known facet class,
the classes' validators run (run id is a UUID, times are ISO 8601, producer and
_schemaURL are URIs), and serializing the rebuilt event must give back the payload.
"""

from __future__ import annotations

import enum
import types
import typing
from typing import Any

import attr
from openlineage.client.generated import (
    base,
    column_lineage_dataset,
    dataset_version_dataset,
    datasource_dataset,
    input_statistics_input_dataset,
    output_statistics_output_dataset,
    schema_dataset,
)
from openlineage.client.serde import Serde

from datalibrary.lineage import facets

DATASET_FACETS = {
    "schema": schema_dataset.SchemaDatasetFacet,
    "dataSource": datasource_dataset.DatasourceDatasetFacet,
    "columnLineage": column_lineage_dataset.ColumnLineageDatasetFacet,
    "version": dataset_version_dataset.DatasetVersionDatasetFacet,
    "datalibrary_sourceFile": facets.DataLibrarySourceFileDatasetFacet,
    "datalibrary_policy": facets.DataLibraryPolicyDatasetFacet,
}
FACET_MAPS = {
    "facets": DATASET_FACETS,
    "inputFacets": {"inputStatistics": input_statistics_input_dataset.InputStatisticsInputDatasetFacet},
    "outputFacets": {"outputStatistics": output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet},
}
RUN_FACETS = {"datalibrary_actor": facets.DataLibraryActorRunFacet}


def _value(hint: Any, value: Any, key: str, owner: type) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        return _value(options[0], value, key, owner)
    if origin is list:
        (item,) = typing.get_args(hint)
        return [_value(item, v, key, owner) for v in value]
    if origin is dict:
        _, item = typing.get_args(hint)
        if attr.has(item) and issubclass(item, base.BaseFacet):
            known = RUN_FACETS if owner is base.Run else FACET_MAPS.get(key, DATASET_FACETS)
            unknown = set(value) - set(known)
            assert not unknown, f"{owner.__name__}.{key}: unknown facets {unknown}"
            return {k: build(known[k], v) for k, v in value.items()}
        return {k: _value(item, v, key, owner) for k, v in value.items()}
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(value)
    if attr.has(hint):
        return build(hint, value)
    return value


def build(cls: type, data: dict[str, Any]) -> Any:
    assert isinstance(data, dict), f"{cls.__name__}: expected an object, got {type(data).__name__}"
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in attr.fields(cls)}
    unknown = set(data) - set(fields)
    assert not unknown, f"{cls.__name__}: keys not in the spec: {unknown}"
    # Fields the class computes itself (schemaURL) are checked by the round trip.
    kwargs = {fields[k].alias: _value(hints[k], v, k, cls) for k, v in data.items() if fields[k].init}
    return cls(**kwargs)


def validate_event(payload: dict[str, Any]) -> None:
    """Raise if ``payload`` is not an OpenLineage RunEvent of the spec version the client models."""
    event = build(base.RunEvent, payload)
    again = Serde.to_dict(event)
    assert again == payload, "the event does not survive a round trip through the spec's models"
