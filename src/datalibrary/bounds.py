"""Bounds every front end and schema shares, so input the database cannot hold is refused
as invalid (422) at the edge instead of overflowing in the driver (500).

SQLite and PostgreSQL store integers as signed 64-bit values; record ids start at 1.
"""

from __future__ import annotations

from typing import Annotated

from annotated_types import Ge, Le

MAX_INT = 2**63 - 1
# Ids stay within what every JSON client reads exactly (JavaScript numbers, float renderings
# of the OpenAPI document): 2^53 - 1, far beyond any table's row count.
MAX_ID = 2**53 - 1
MAX_OFFSET = 10**9  # far beyond any page a client may ask for, well inside 64 bits
MAX_HOURS = 24 * 366 * 100  # a century: longer durations are typos, and timedelta overflows past ~2.7e9 h

RecordId = Annotated[int, Ge(1), Le(MAX_ID)]
Offset = Annotated[int, Ge(0), Le(MAX_OFFSET)]
