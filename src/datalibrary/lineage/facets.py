"""Facets DataLibrary attaches to its OpenLineage events.

Standard facets come from openlineage-python (schema, data source, symlinks, column
lineage, input/output statistics, dataset version, SQL, error message); the custom ones
below carry what the standard has no place for (who acted and why, the source file's
delivery, the policy in force). They are prefixed ``datalibrary_`` in the facet maps; their
JSON schemas (``SCHEMAS``) are served by the app at ``/api/v1/lineage/facets/<Name>.json``
and ``emit`` points each facet's ``_schemaURL`` there.
"""

from __future__ import annotations

from typing import Any

import attr
import sqlglot
from openlineage.client.facet_v2 import (
    DatasetFacet,
    RunFacet,
    column_lineage_dataset,
    dataset_version_dataset,
    datasource_dataset,
    error_message_run,
    input_statistics_input_dataset,
    output_statistics_output_dataset,
    schema_dataset,
    sql_job,
    symlinks_dataset,
)
from sqlglot import exp

from datalibrary.lineage.naming import FILE_NAMESPACE

# Placeholder base of the custom facets' _schemaURL; emit() replaces it with this
# installation's own URL (Naming.schema_url).
FACETS_URL = "https://datalibrary.invalid/api/v1/lineage/facets"


@attr.define
class DataLibraryActorRunFacet(RunFacet):
    """Who ran the job, which project pays, and how the caller came in (api, web, sdk, cli).

    ``user`` is the one whose rights applied; ``operator`` who acted for them when that was
    someone else (``cli`` for a command run ``--as USER``)."""

    user: str
    project: str | None = None
    via: str | None = None
    purpose: str | None = None
    operator: str | None = None

    @staticmethod
    def _get_schema() -> str:
        return f"{FACETS_URL}/DataLibraryActorRunFacet.json"


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
        return f"{FACETS_URL}/DataLibrarySourceFileDatasetFacet.json"


@attr.define
class DataLibraryPolicyDatasetFacet(DatasetFacet):
    """The anonymization policy applied when the dataset version was written."""

    name: str
    version: str | None = None
    sha256: str | None = None

    @staticmethod
    def _get_schema() -> str:
        return f"{FACETS_URL}/DataLibraryPolicyDatasetFacet.json"


def _schema(name: str, base: str, description: str, properties: dict[str, Any], required: list[str]) -> Any:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{FACETS_URL}/{name}.json",
        "title": name,
        "description": description,
        "allOf": [
            {"$ref": f"https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/{base}"},
            {"type": "object", "properties": properties, "required": required},
        ],
        "type": "object",
    }


_TEXT = {"type": "string"}
_MAYBE_TEXT = {"type": ["string", "null"]}
SCHEMAS: dict[str, dict[str, Any]] = {
    "DataLibraryActorRunFacet": _schema(
        "DataLibraryActorRunFacet",
        "RunFacet",
        "Who ran the job (and who acted for them), which project pays, how the caller came in and why.",
        {
            "user": _TEXT,
            "project": _MAYBE_TEXT,
            "via": _MAYBE_TEXT,
            "purpose": _MAYBE_TEXT,
            "operator": _MAYBE_TEXT,
        },
        ["user"],
    ),
    "DataLibrarySourceFileDatasetFacet": _schema(
        "DataLibrarySourceFileDatasetFacet",
        "DatasetFacet",
        "A delivered source file: content hash, size, original name, delivery time and channel.",
        {
            "sha256": {"type": "string", "pattern": "^([0-9a-f]{64})?$"},
            "size": {"type": "integer", "minimum": 0},
            "fileName": _TEXT,
            "deliveredAt": {"type": ["string", "null"], "format": "date-time"},
            "deliveredVia": _MAYBE_TEXT,
        },
        ["sha256", "size", "fileName"],
    ),
    "DataLibraryPolicyDatasetFacet": _schema(
        "DataLibraryPolicyDatasetFacet",
        "DatasetFacet",
        "The anonymization policy applied when the dataset version was written.",
        {"name": _TEXT, "version": _MAYBE_TEXT, "sha256": _MAYBE_TEXT},
        ["name"],
    ),
}


def published_schema(name: str, url: str) -> dict[str, Any] | None:
    """The JSON schema of custom facet ``name`` with its ``$id`` at ``url``."""
    found = SCHEMAS.get(name)
    return None if found is None else {**found, "$id": url}


def symlinks_facet(identifiers: list[tuple[str, str, str]]) -> symlinks_dataset.SymlinksDatasetFacet:
    """(namespace, name, type) of other names of the same dataset (``LOCATION``, ``TABLE``)."""
    return symlinks_dataset.SymlinksDatasetFacet(
        identifiers=[symlinks_dataset.Identifier(namespace=ns, name=n, type=t) for ns, n, t in identifiers]
    )


def error_facet(message: str) -> error_message_run.ErrorMessageRunFacet:
    return error_message_run.ErrorMessageRunFacet(message=message, programmingLanguage="PYTHON")


def sql_facet(query: str) -> sql_job.SQLJobFacet:
    return sql_job.SQLJobFacet(query=query, dialect="duckdb")


def redacted_sql(query: str) -> str | None:
    """The query with every literal (strings, numbers, dates, intervals) replaced by ``?``;
    None when it does not parse, so an unreadable text is never sent as it is."""
    try:
        trees = sqlglot.parse(query, read="duckdb")
    except (sqlglot.errors.SqlglotError, RecursionError, ValueError):
        return None
    if not trees or any(tree is None for tree in trees):
        return None
    redacted = [
        tree.transform(lambda node: exp.Placeholder() if isinstance(node, exp.Literal) else node)
        for tree in trees
        if tree is not None
    ]
    text = "; ".join(tree.sql(dialect="duckdb") for tree in redacted)
    return None if "'" in text or "$" in text else text  # a string form sqlglot keeps: send none


def outgoing(payload: dict[str, Any], sql_mode: str) -> dict[str, Any]:
    """An event as it leaves the installation: the ``sql`` job facet per ``lineage.forward_sql``."""
    facets = (payload.get("job") or {}).get("facets") or {}
    if sql_mode == "full" or "sql" not in facets:
        return payload
    facets = dict(facets)
    query = facets["sql"].get("query") if isinstance(facets["sql"], dict) else None
    text = redacted_sql(query) if sql_mode == "redacted" and isinstance(query, str) else None
    if text is None:
        del facets["sql"]
    else:
        facets["sql"] = {**facets["sql"], "query": text}
    return {**payload, "job": {**payload["job"], "facets": facets}}


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
