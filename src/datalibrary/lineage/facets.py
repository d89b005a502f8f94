"""Facets DataLibrary attaches to its OpenLineage events.

Standard facets come from openlineage-python (schema, data source, column lineage,
input/output statistics, dataset version); the custom ones below carry what the standard
has no place for (who acted and why, the source file's delivery, the policy in force).
Each custom facet names a ``_schemaURL`` under ``datalibrary.dev``, as the spec asks of
custom facets (they are prefixed ``datalibrary_`` in the facet maps).
"""

from __future__ import annotations

from typing import Any

import attr
from openlineage.client.facet_v2 import (
    DatasetFacet,
    RunFacet,
    column_lineage_dataset,
    dataset_version_dataset,
    datasource_dataset,
    input_statistics_input_dataset,
    output_statistics_output_dataset,
    schema_dataset,
)

FACETS_URL = "https://datalibrary.dev/spec/facets/1-0-0"
DATASET_NAMESPACE = "datalibrary"
FILE_NAMESPACE = "file"


@attr.define
class DataLibraryActorRunFacet(RunFacet):
    """Who ran the job, which project pays, and how the caller came in (api, console, sdk, cli)."""

    user: str
    project: str | None = None
    via: str | None = None
    purpose: str | None = None

    @staticmethod
    def _get_schema() -> str:
        return f"{FACETS_URL}/DataLibraryActorRunFacet.json#/$defs/DataLibraryActorRunFacet"


@attr.define
class DataLibrarySourceFileDatasetFacet(DatasetFacet):
    """A delivered source file: its content hash, size, original name and delivery time."""

    sha256: str
    size: int
    fileName: str  # noqa: N815 - OpenLineage facets use camelCase
    deliveredAt: str | None = None  # noqa: N815
    deliveredVia: str | None = None  # noqa: N815

    @staticmethod
    def _get_schema() -> str:
        return f"{FACETS_URL}/DataLibrarySourceFileDatasetFacet.json#/$defs/DataLibrarySourceFileDatasetFacet"


@attr.define
class DataLibraryPolicyDatasetFacet(DatasetFacet):
    """The anonymization policy applied when the dataset version was written."""

    name: str
    version: str | None = None
    sha256: str | None = None

    @staticmethod
    def _get_schema() -> str:
        return f"{FACETS_URL}/DataLibraryPolicyDatasetFacet.json#/$defs/DataLibraryPolicyDatasetFacet"


def schema_facet(columns: list[tuple[str, str]]) -> schema_dataset.SchemaDatasetFacet:
    return schema_dataset.SchemaDatasetFacet(
        fields=[schema_dataset.SchemaDatasetFacetFields(name=n, type=t) for n, t in columns]
    )


def datasource_facet(name: str, uri: str) -> datasource_dataset.DatasourceDatasetFacet:
    return datasource_dataset.DatasourceDatasetFacet(name=name, uri=uri)


def version_facet(snapshot_id: int | None) -> dataset_version_dataset.DatasetVersionDatasetFacet:
    return dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion=str(snapshot_id or ""))


def column_lineage_facet(
    source: str, actions: dict[str, str], policy_label: str
) -> column_lineage_dataset.ColumnLineageDatasetFacet:
    """Each stored column comes from the same-named source column; anything but ``keep``
    transformed it, which the facet marks ``masking = true`` with the policy that did it."""
    fields = {}
    for column, action in actions.items():
        masked = action != "keep"
        fields[column] = column_lineage_dataset.Fields(
            inputFields=[
                column_lineage_dataset.InputField(
                    namespace=FILE_NAMESPACE,
                    name=source,
                    field=column,
                    transformations=[
                        column_lineage_dataset.Transformation(
                            type="DIRECT",
                            subtype="TRANSFORMATION" if masked else "IDENTITY",
                            description=f"{action} by policy {policy_label}",
                            masking=masked,
                        )
                    ],
                )
            ],
            transformationType="MASKED" if masked else "IDENTITY",
            transformationDescription=f"{action} ({policy_label})",
        )
    return column_lineage_dataset.ColumnLineageDatasetFacet(fields=fields)


def input_stats(rows: int | None, size: int | None, files: int | None = None) -> Any:
    return input_statistics_input_dataset.InputStatisticsInputDatasetFacet(
        rowCount=rows, size=size, fileCount=files
    )


def output_stats(rows: int | None, size: int | None, files: int | None = None) -> Any:
    return output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
        rowCount=rows, size=size, fileCount=files
    )
