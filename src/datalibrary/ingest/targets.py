"""What a delivery names before any reader loads: its job id, the ``NS.*`` wildcard, the
archive formats that fan out, and the target table. Below ``jobs``, ``submit`` and ``fanout``,
which all need them (fan-out gives each child a job id of its own)."""

from __future__ import annotations

import uuid

from datalibrary.lake.names import TableName, check_name, parse_table_name

WILDCARD = "*"
ARCHIVES = ("zip", "gzip")


def new_job_id() -> str:
    return uuid.uuid4().hex


def parse_target(text: str) -> TableName:
    """``NS.TABLE``, or ``NS.*``: a table per file (from its name) or per FHIR resource type."""
    namespace, dot, name = (text or "").strip().partition(".")
    if dot and name.strip() == WILDCARD:
        return TableName(check_name(namespace.lower(), "namespace"), WILDCARD)
    return parse_table_name(text)
