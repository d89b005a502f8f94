"""Validate stored events against the official OpenLineage JSON schemas.

The schemas are the spec's own files (``tests/data/openlineage``, copied from the
OpenLineage repository: see tests/data/README.md): the RunEvent against
``OpenLineage.json``, every standard facet against its facet schema (and it must sit where
that schema says: a ``...RunFacet`` in ``run.facets``, a ``...DatasetFacet`` in a dataset's
``facets``...), every custom ``datalibrary_*`` facet against the schema the app publishes
at its ``_schemaURL`` (which extends the spec's base facet). A facet the spec does not
define and we do not publish fails, as does a facet another producer claims.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource

from datalibrary.lineage import facets
from datalibrary.lineage.service import PRODUCER

SPEC = Path(__file__).parent / "data" / "openlineage"
EVENT = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
# Where a facet sits, by the suffix of its schema's definition name.
PLACES = (
    ("InputDatasetFacet", "inputFacets"),
    ("OutputDatasetFacet", "outputFacets"),
    ("DatasetFacet", "facets"),
    ("RunFacet", "run"),
    ("JobFacet", "job"),
)


@cache
def _spec() -> tuple[Registry, dict[str, tuple[str, str]]]:
    """The registry of the spec's schemas and, per standard facet key, (schema $id, place)."""
    resources, standard = [], {}
    for path in [SPEC / "OpenLineage.json", *sorted((SPEC / "facets").glob("*.json"))]:
        document = json.loads(path.read_text())
        resources.append((document["$id"], Resource.from_contents(document)))
        for key, spec in document.get("properties", {}).items() if path.parent.name == "facets" else ():
            definition = spec["$ref"].rsplit("/", 1)[-1]
            place = next(p for suffix, p in PLACES if definition.endswith(suffix))
            standard[key] = (document["$id"], place)
    for name in facets.SCHEMAS:
        document = facets.published_schema(name, f"{facets.FACETS_URL}/{name}.json")
        resources.append((document["$id"], Resource.from_contents(document)))
    return Registry().with_resources(resources), standard


def _check(schema: dict[str, Any], instance: Any, what: str) -> None:
    registry, _ = _spec()
    validator = Draft202012Validator(schema, registry=registry, format_checker=FormatChecker())
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
    assert not errors, f"{what}: " + "; ".join(f"{list(e.path)}: {e.message}" for e in errors[:5])


def _facet_maps(payload: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    maps = [("run", payload["run"].get("facets") or {}), ("job", payload["job"].get("facets") or {})]
    for dataset in [*payload.get("inputs", []), *payload.get("outputs", [])]:
        maps += [(key, dataset.get(key) or {}) for key in ("facets", "inputFacets", "outputFacets")]
    return maps


def validate_event(payload: dict[str, Any], schema_base: str | None = None) -> None:
    """Raise unless ``payload`` is a RunEvent valid under the official schemas whose every
    facet is valid under its schema, produced by DataLibrary. ``schema_base``: where the
    custom facets' schemas must be served (``.../api/v1/lineage/facets``)."""
    _, standard = _spec()
    _check({"$ref": EVENT}, payload, "RunEvent")
    for place, facet_map in _facet_maps(payload):
        for key, facet in facet_map.items():
            assert facet.get("_producer") == PRODUCER, f"{key}: produced by {facet.get('_producer')}"
            if key.startswith("datalibrary_"):
                url = facet["_schemaURL"]
                name = url.rsplit("/", 1)[-1].removesuffix(".json")
                if schema_base is not None:
                    assert url == f"{schema_base}/{name}.json", f"{key}: _schemaURL {url}"
                assert name in facets.SCHEMAS, f"{key}: no published schema {name}"
                _check({"$ref": f"{facets.FACETS_URL}/{name}.json"}, facet, key)
                continue
            assert key in standard, f"{key}: not a facet of the OpenLineage spec"
            schema_id, expected = standard[key]
            assert place == expected, f"{key} belongs in {expected}, found in {place}"
            assert facet["_schemaURL"].startswith(schema_id.rsplit("/", 2)[0]), facet["_schemaURL"]
            _check({"$ref": schema_id}, {key: facet}, key)
