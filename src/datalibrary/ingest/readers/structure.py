"""Structural checks of SAS files before any row is parsed: what the bytes must add up to.

readstat trusts the headers and reads what it can, so a truncated or spliced file can come
out as fewer rows, or as garbage rows, with no error. These checks recompute the layout from
the file itself and refuse any inconsistency with a reason that says what does not add up:

- XPORT (v5 and v8): one member (dataset) per file; the variable descriptors (namestr)
  give the row length; the data area must hold whole rows, its tail only blank padding
  (shorter than one 80-byte record); v8's declared observation count must match; every
  variable needs a name and a valid length.
- SAS7BDAT: header length + page count x page size must be the file's size.

The row count found here bounds how many rows a reader asks readstat for, so a file cannot
make readstat preallocate for rows it does not hold.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from pathlib import Path

from datalibrary.ingest.readers.base import ReadError

RECORD = 80
_MEMBER = b"HEADER RECORD*******MEMB"  # MEMBER (v5) and MEMBV8
_OBS = (
    b"HEADER RECORD*******OBS     HEADER RECORD!!!!!!!",
    b"HEADER RECORD*******OBSV8   HEADER RECORD!!!!!!!",
)
_NAMESTR = (
    b"HEADER RECORD*******NAMESTR HEADER RECORD!!!!!!!",
    b"HEADER RECORD*******NAMSTV8 HEADER RECORD!!!!!!!",
)


@dataclass(frozen=True)
class XptLayout:
    version: int
    variables: int
    row_length: int
    rows: int
    data_start: int


def _aligned(view: mmap.mmap, needle: bytes, start: int, end: int) -> int:
    """The first offset >= start of ``needle`` on an 80-byte record boundary, else -1."""
    position = view.find(needle, start, end)
    while position != -1 and position % RECORD:
        position = view.find(needle, position + 1, end)
    return position


def xpt_layout(path: Path, name: str, *, max_columns: int | None = None) -> XptLayout:
    """The layout of an XPORT file's single member; ``ReadError`` when the bytes disagree."""
    size = path.stat().st_size
    if size % RECORD:
        raise ReadError(name, f"truncated SAS XPORT file: {size} bytes is not a multiple of 80")
    if size < 8 * RECORD:
        raise ReadError(name, "truncated SAS XPORT file: the headers are incomplete")
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as view:
        version = 8 if view[:RECORD].startswith(b"HEADER RECORD*******LIBV8") else 5
        first_member = _aligned(view, _MEMBER, 0, size)
        if first_member == -1:
            raise ReadError(name, "not a SAS XPORT file: no member header")
        namestr_at = -1
        for marker in _NAMESTR:
            namestr_at = _aligned(view, marker, first_member, size)
            if namestr_at != -1:
                break
        if namestr_at == -1:
            raise ReadError(name, "damaged SAS XPORT file: no variable descriptors (NAMESTR header)")
        header = bytes(view[namestr_at : namestr_at + RECORD])
        count_text = header[48:58]  # "000000nnnn" in v5 and v8
        try:
            variables = int(count_text)
        except ValueError:
            raise ReadError(name, "damaged SAS XPORT file: the variable count is not a number") from None
        if variables <= 0:
            raise ReadError(name, "the SAS XPORT member declares no variables")
        if max_columns is not None and variables > max_columns:
            raise ReadError(
                name,
                f"the file has {variables} columns, more than the limit of {max_columns} "
                "(ingest.max_columns)",
            )
        member = bytes(view[first_member : first_member + RECORD])
        namestr_size = int(member[74:78] or b"140") if member[74:78].strip().isdigit() else 140
        if namestr_size not in (136, 140):  # the format knows these two (VAX/VMS: 136)
            raise ReadError(
                name, f"damaged SAS XPORT file: variable descriptors of {namestr_size} bytes (expected 140)"
            )
        start = namestr_at + RECORD
        end = start + variables * namestr_size
        if end > size:
            raise ReadError(name, "truncated SAS XPORT file: the variable descriptors are cut off")
        row_length = 0
        for index in range(variables):
            record = view[start + index * namestr_size : start + (index + 1) * namestr_size]
            kind, _, length, _ = struct.unpack(">hhhh", record[:8])
            short_name = bytes(record[8:16]).strip(b" \x00")
            long_name = bytes(record[88:120]).strip(b" \x00") if version == 8 else b""
            (position,) = struct.unpack(">i", record[84:88])
            if not (short_name or long_name):
                raise ReadError(name, f"variable {index + 1} of the SAS XPORT file has an empty name")
            if kind not in (1, 2) or length <= 0 or (kind == 1 and length > 8) or position < 0:
                raise ReadError(
                    name, f"damaged SAS XPORT file: variable {index + 1} has an invalid type or length"
                )
            row_length = max(row_length, position + length)
        obs_at = -1
        for marker in _OBS:
            obs_at = _aligned(view, marker, end, size)
            if obs_at != -1:
                break
        if obs_at == -1:
            raise ReadError(name, "truncated SAS XPORT file: no observation header after the variables")
        data_start = obs_at + RECORD
        second = _aligned(view, _MEMBER, data_start, size)
        if second != -1:
            raise ReadError(
                name,
                "the SAS XPORT file holds more than one dataset (member): deliver one dataset per file",
            )
        data = size - data_start
        rows, tail = divmod(data, row_length) if row_length else (0, data)
        if tail:
            rest = view[size - tail : size]
            if rest.strip(b" ") or tail >= RECORD:
                raise ReadError(
                    name,
                    f"truncated SAS XPORT file: the last row is incomplete ({tail} of {row_length} bytes; "
                    "the file was cut inside the data)",
                )
        while rows and row_length < RECORD and data - (rows - 1) * row_length <= RECORD:
            last = view[data_start + (rows - 1) * row_length : data_start + rows * row_length]
            if last.strip(b" "):
                break
            rows -= 1  # blank padding of the last record is not a row
        if version == 8:
            declared_text = bytes(view[obs_at + 48 : obs_at + 63]).strip()
            if declared_text.isdigit() and int(declared_text) != rows:
                raise ReadError(
                    name,
                    f"SAS XPORT v8 file declares {int(declared_text)} observations but holds {rows}: "
                    "it is truncated or damaged",
                )
    return XptLayout(version, variables, row_length, rows, data_start)


def sas7bdat_check(path: Path, name: str) -> None:
    """Header length + page count x page size must be the size of the file."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(1024)
    if len(head) < 288:
        raise ReadError(name, "truncated SAS7BDAT file: the header is incomplete")
    u64 = head[32:33] == b"3"  # 64-bit layout: 8-byte page count
    align1 = 4 if head[35:36] == b"3" else 0
    order = "<" if head[37:38] == b"\x01" else ">"
    header_length, page_size = struct.unpack(order + "ii", head[196 + align1 : 204 + align1])
    count_format = order + ("q" if u64 else "i")
    width = 8 if u64 else 4
    (pages,) = struct.unpack(count_format, head[204 + align1 : 204 + align1 + width])
    if header_length <= 0 or page_size <= 0 or pages < 0:
        raise ReadError(name, "damaged SAS7BDAT file: invalid header or page size")
    expected = header_length + pages * page_size
    if expected != size:
        what = "truncated" if size < expected else "damaged"
        raise ReadError(
            name,
            f"{what} SAS7BDAT file: the header declares {pages} pages of {page_size} bytes "
            f"({expected} bytes) but the file has {size} bytes",
        )
