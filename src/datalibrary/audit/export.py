"""CSV export of audit events, safe to open in a spreadsheet.

A cell that starts with ``=``, ``+``, ``-``, ``@`` (or a tab / carriage return) is a formula
to Excel and LibreOffice; such cells are prefixed with ``'`` (OWASP "CSV injection")."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator

from datalibrary.audit.models import AuditEvent
from datalibrary.csvsafe import FORMULA_STARTS, neutralize

COLUMNS = ("id", "at", "actor", "action", "target", "outcome", "client", "request_id", "details", "hash")
__all__ = ["COLUMNS", "FORMULA_STARTS", "csv_lines", "neutralize"]


def _row(event: AuditEvent) -> list[str]:
    details = json.dumps(event.details, sort_keys=True, separators=(",", ":"), default=str)
    values = [
        event.id,
        event.at.isoformat(),
        event.actor,
        event.action,
        event.target,
        event.outcome,
        event.client,
        event.request_id,
        details,
        event.hash,
    ]
    return [neutralize(v) for v in values]


def csv_lines(events: Iterable[AuditEvent]) -> Iterator[str]:
    """The header, then one CSV line per event (streamed: exports can be large)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for event in events:
        writer.writerow(_row(event))
        if buffer.tell() > 64_000:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
