"""Table names (``NS.TABLE``): parsed and checked without loading the Iceberg catalog, so the
callers that only name a table (listing ingestion jobs, the CLI) stay light. ``lake.catalog``
re-exports them."""

from __future__ import annotations

import re
from dataclasses import dataclass

from datalibrary.errors import InvalidInput

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class TableName:
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}.{self.name}"

    @property
    def ident(self) -> tuple[str, str]:
        return (self.namespace, self.name)


def check_name(value: str, what: str) -> str:
    if not NAME_RE.match(value):
        raise InvalidInput(
            f"{what} {value!r} is not valid: use lower-case letters, digits and '_', starting with a letter"
        )
    return value


def parse_table_name(text: str) -> TableName:
    """``NS.TABLE`` -> TableName; names are lower-case identifiers."""
    namespace, dot, name = (text or "").strip().partition(".")
    if not dot:
        raise InvalidInput(f"table {text!r} must be written NAMESPACE.TABLE (for example study1.dm)")
    return TableName(check_name(namespace.lower(), "namespace"), check_name(name.lower(), "table name"))
