"""Small vectorized helpers: numpy arrays to Arrow string columns, dates, joins."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

EPOCH_DAY = np.datetime64("1970-01-01", "D")


def text(values: np.ndarray | pa.Array) -> pa.Array:
    return (
        pa.array(values).cast(pa.string()) if not isinstance(values, pa.Array) else values.cast(pa.string())
    )


def zpad(values: np.ndarray, width: int) -> pa.Array:
    return pc.utf8_lpad(text(values), width=width, padding="0")


def join(*parts: pa.Array | str, sep: str = "") -> pa.Array:
    return pc.binary_join_element_wise(*parts, sep)


def take(choices: list[str], index: np.ndarray) -> pa.Array:
    return pa.array(choices, pa.string()).take(pa.array(index))


def iso_dates(days: np.ndarray) -> pa.Array:
    """Days since 1970-01-01 as ISO dates (``2014-03-02``)."""
    return pa.array(days.astype("int32"), pa.int32()).cast(pa.date32()).cast(pa.string())


def study_day(event: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """SDTM --DY: day 1 is the reference date; there is no day 0."""
    delta = event - reference
    return np.where(delta >= 0, delta + 1, delta)


def day_of(iso: str) -> int:
    return int((np.datetime64(iso, "D") - EPOCH_DAY).astype(int))


def round_text(values: np.ndarray, decimals: int) -> pa.Array:
    return text(np.round(values, decimals))
