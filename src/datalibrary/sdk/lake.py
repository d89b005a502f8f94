"""Query results and table descriptions for the SDK.

Results travel as Arrow IPC streams; pyarrow (and pandas or polars) are imported only
when asked for, so the SDK itself stays standard-library only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datalibrary.sdk.client import Client


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    masked: bool
    label: str = ""  # the column's label (SAS label or define.xml), when the dataset has one


@dataclass(frozen=True)
class Table:
    """A table you may query, as your grants show it."""

    name: str
    columns: list[Column]
    row_filtered: bool

    @property
    def schema(self) -> dict[str, str]:
        """Column name -> type, in table order."""
        return {c.name: c.type for c in self.columns}


class Query:
    """A query to run; nothing is sent until a result is asked for (each call is metered)."""

    def __init__(self, client: Client, sql: str, project: str | None = None) -> None:
        self.client, self.sql, self.project = client, sql, project
        self.stats: dict[str, Any] = {}

    def _body(self, **extra: Any) -> dict[str, Any]:
        return {"sql": self.sql, "project": self.project, **extra}

    def to_arrow(self):  # type: ignore[no-untyped-def]
        """The whole result as a ``pyarrow.Table`` (up to the server's row cap)."""
        import pyarrow as pa

        raw, headers = self.client.request_bytes("POST", "/query", self._body(format="arrow"))
        if headers.get("content-type", "").startswith("application/json"):
            # 202: outside a workspace, the download policy sent this result to the airlock
            from datalibrary.sdk.client import SdkError

            routed = json.loads(raw)
            raise SdkError(202, str(routed.get("detail", "the download needs review")), routed)
        self.stats = {
            "bytes_scanned": int(headers.get("x-bytes-scanned", 0)),
            "rows": int(headers.get("x-rows", 0)),
            "truncated": headers.get("x-truncated") == "true",
        }
        return pa.ipc.open_stream(raw).read_all()

    def to_pandas(self):  # type: ignore[no-untyped-def]
        return self.to_arrow().to_pandas()

    def to_polars(self):  # type: ignore[no-untyped-def]
        import polars as pl

        return pl.from_arrow(self.to_arrow())

    def rows(self, limit: int = 1000, offset: int = 0) -> list[list[Any]]:
        """One page of rows as plain lists (no pyarrow needed)."""
        page = self.client.request("POST", "/query", self._body(limit=limit, offset=offset))
        self.stats = page["stats"]
        return page["rows"]
