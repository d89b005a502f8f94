"""Shifting SDTM ISO 8601 text dates: the whole grammar, every date component.

SDTM ``--DTC`` values are ISO 8601 dates and date-times, possibly partial (``2014``,
``2014-03``), with components missing in the middle written as a hyphen (``2014---15``,
``2014-03-15T-:30``), intervals (``2014-01-03/2014-01-09``, ``2014-01-03/P6D``,
``P6D/2014-01-09``) and durations (``P3D``). Shifting only a prefix would leave a real
date next to a shifted one, and their difference is the subject's secret offset; so:

- every date of an interval is shifted by the same offset (the interval length survives);
- a date is shifted at its precision (a year through July 1st, a month through the 15th);
  components after the first missing one are dropped (``2014---15`` -> a shifted ``2014``),
  because a day without its month cannot be shifted; a value with no year becomes null;
- times and time zones are kept (shifts are whole days); durations are not dates and stay;
- anything else is not a date: :class:`DateValueError` names the value's row (never the
  value), and the pipeline quarantines the file.

Simple values (the bulk of a delivery) take a vectorized Arrow path; the rest are parsed
once per distinct (value, offset) pair.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

import pyarrow as pa
import pyarrow.compute as pc

from datalibrary.errors import InvalidInput

STRING = pa.string()

# full-precision or right-truncated date / date-time, optional fraction and zone: vectorized
SIMPLE = r"^\d{4}(-\d{2}(-\d{2}(T\d{2}(:\d{2}(:\d{2}(\.\d{1,9})?)?)?(Z|[+-]\d{2}(:?\d{2})?)?)?)?)?$"
_PARTIAL_FILL = {4: "-07-01", 7: "-15"}

_DATETIME = re.compile(
    r"^(?P<y>\d{4}|-)"
    r"(?:-(?P<m>\d{2}|-)"
    r"(?:-(?P<d>\d{2}|-)"
    r"(?:T(?P<time>(?:\d{2}|-)(?::(?:\d{2}|-)(?::(?:\d{2}(?:\.\d{1,9})?|-))?)?)"
    r"(?P<zone>Z|[+-]\d{2}(?::?\d{2})?)?)?)?)?$"
)
_DURATION = re.compile(
    r"^-?P(?=\d|T\d)(?:\d+(?:[.,]\d+)?Y)?(?:\d+(?:[.,]\d+)?M)?(?:\d+(?:[.,]\d+)?W)?(?:\d+(?:[.,]\d+)?D)?"
    r"(?:T(?=\d)(?:\d+(?:[.,]\d+)?H)?(?:\d+(?:[.,]\d+)?M)?(?:\d+(?:[.,]\d+)?S)?)?$"
)
_TIME = re.compile(r"^(\d{2}|-)(?::(\d{2}|-)(?::(\d{2}(?:\.\d{1,9})?|-))?)?$")


class DateValueError(InvalidInput):
    """A value of a date column is not an ISO 8601 date: the file is quarantined."""


class _NotADate(ValueError):
    pass


def _time_ok(text: str) -> bool:
    match = _TIME.match(text)
    if not match:
        return False
    hour, minute, second = match.groups()
    if hour != "-" and int(hour) > 24:
        return False
    if minute not in (None, "-") and int(minute) > 59:
        return False
    return not (second not in (None, "-") and float(second) >= 61)


def _shift_datetime(text: str, offset: int) -> str | None:
    """One date or date-time shifted by ``offset`` days at its precision (None: no year)."""
    match = _DATETIME.match(text)
    if not match:
        raise _NotADate(text)
    year, month, day = match.group("y"), match.group("m"), match.group("d")
    time, zone = match.group("time"), match.group("zone") or ""
    if time is not None and not _time_ok(time):
        raise _NotADate(text)
    for part, high in ((month, 12), (day, 31)):
        if part not in (None, "-") and not 1 <= int(part) <= high:
            raise _NotADate(text)
    if year == "-":
        return None
    if month in (None, "-"):
        if month == "-" or day is not None:  # a day without its month: cut to the year
            pass
        return f"{(date(int(year), 7, 1) + timedelta(days=offset)).year:04d}"
    if day in (None, "-"):
        return (date(int(year), int(month), 15) + timedelta(days=offset)).strftime("%Y-%m")
    try:
        shifted = (date(int(year), int(month), int(day)) + timedelta(days=offset)).isoformat()
    except ValueError as exc:  # 2014-02-30
        raise _NotADate(text) from exc
    if time is None:
        return shifted
    # keep the known prefix of the time: components after a missing one are dropped
    kept: list[str] = []
    for part in time.split(":"):
        if part == "-":
            break
        kept.append(part)
    if not kept:
        return shifted
    return f"{shifted}T{':'.join(kept)}{zone if len(kept) == len(time.split(':')) else ''}"


def shift_value(text: str, offset: int) -> str | None:
    """Any SDTM ISO 8601 value (date, date-time, partial, interval, duration) shifted."""
    value = text.strip()
    if value == "":
        return text
    if "/" in value:
        parts = value.split("/")
        if len(parts) != 2 or not parts[0] or not parts[1]:
            raise _NotADate(text)
        if _DURATION.match(parts[0]) and _DURATION.match(parts[1]):
            raise _NotADate(text)
        shifted = [p if _DURATION.match(p) else _shift_datetime(p, offset) for p in parts]
        if any(s is None for s in shifted):
            return None
        return "/".join(s for s in shifted if s is not None)
    if _DURATION.match(value):
        return value
    return _shift_datetime(value, offset)


def _shift_simple(text: pa.Array, offsets: pa.Array) -> pa.Array:
    """Vectorized shift of values that match ``SIMPLE`` (others give garbage: mask them)."""
    length = pc.utf8_length(text)
    is_year = pc.equal(length, 4)
    is_month = pc.equal(length, 7)
    base = pc.if_else(
        is_year,
        pc.binary_join_element_wise(text, _PARTIAL_FILL[4], ""),
        pc.if_else(
            is_month,
            pc.binary_join_element_wise(text, _PARTIAL_FILL[7], ""),
            pc.utf8_slice_codeunits(text, 0, 10),
        ),
    )
    parsed = pc.strptime(base, format="%Y-%m-%d", unit="s", error_is_null=True)
    # strptime rolls 2014-02-30 over to March: only a date that formats back to itself is one
    parsed = pc.if_else(pc.equal(pc.strftime(parsed, format="%Y-%m-%d"), base), parsed, None)
    days = pc.divide(parsed.cast(pa.int64()), 86400)
    shifted_days = pc.add(days, offsets.cast(pa.int64()))
    shifted = pc.multiply(shifted_days, 86400).cast(pa.timestamp("s"))
    formatted = pc.strftime(shifted, format="%Y-%m-%d")
    rest = pc.utf8_slice_codeunits(text, 10, 1 << 20)
    full = pc.binary_join_element_wise(formatted, rest, "")
    return pc.if_else(
        is_year,
        pc.utf8_slice_codeunits(formatted, 0, 4),
        pc.if_else(is_month, pc.utf8_slice_codeunits(formatted, 0, 7), full),
    )


def shift_iso_strings(text: pa.Array, offsets: pa.Array) -> pa.Array:
    """Shift each value by its row's offset; raises :class:`DateValueError` naming the first
    row (0-based, in ``row``) whose value is not an ISO 8601 date, time, interval or duration."""
    if pa.types.is_large_string(text.type):
        text = text.cast(STRING)
    simple = pc.fill_null(pc.match_substring_regex(text, SIMPLE), False)
    fast = _shift_simple(text, offsets)
    # a SIMPLE value that strptime refuses (2014-02-30, 2014-13) is not a date either
    simple = pc.and_(simple, pc.invert(pc.and_(pc.is_null(fast), pc.is_valid(text))))
    blank = pc.fill_null(pc.equal(pc.utf8_trim_whitespace(text), ""), False)
    slow = pc.and_(pc.and_(pc.is_valid(text), pc.invert(simple)), pc.invert(blank))
    out = pc.if_else(simple, fast, text)
    if not pc.any(slow).as_py():
        return pc.if_else(blank, text, out)
    positions = pc.indices_nonzero(slow).to_pylist()
    values = pc.take(text, positions).to_pylist()
    days = pc.take(offsets, positions).to_pylist()
    done: dict[tuple[str, int], str | None] = {}
    results: list[str | None] = []
    for position, value, offset in zip(positions, values, days, strict=True):
        pair = (value, offset)
        if pair not in done:
            try:
                done[pair] = shift_value(value, int(offset))
            except (_NotADate, ValueError, OverflowError):
                raise DateValueError(
                    "a value is not an ISO 8601 date, date-time, interval "
                    "or duration: a date column must hold only dates (the value is not shown)",
                    code="invalid-date",
                    batch_row=position,
                ) from None
        results.append(done[pair])
    patched = pa.array(results, type=STRING)
    scattered = pc.replace_with_mask(out, slow, patched)
    return pc.if_else(blank, text, scattered)
