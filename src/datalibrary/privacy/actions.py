"""The anonymization actions a policy names, vectorized on Arrow columns.

Every action maps DISTINCT values (``dictionary_encode``) and takes the result back to the
rows, so keyed hashing runs once per value or subject, never per row in Python.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections import Counter
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.compute as pc

from datalibrary.privacy.columns import as_strings
from datalibrary.privacy.identifiers import scrub_known
from datalibrary.privacy.isodates import DateValueError, shift_iso_strings
from datalibrary.privacy.keys import StudyKey
from datalibrary.privacy.names import scrub_names
from datalibrary.privacy.policy import PolicyContext, PolicyError, register_action

STRING = pa.string()


def normalize(column: pa.Array, how: str = "upper") -> pa.Array:
    """Trim, collapse inner whitespace and fold case, so 'ab 1 ' and 'AB  1' pseudonymize alike."""
    text = pc.utf8_trim_whitespace(as_strings(column))
    text = pc.replace_substring_regex(text, r"\s+", " ")
    if how == "upper":
        return pc.utf8_upper(text)
    if how == "lower":
        return pc.utf8_lower(text)
    return text


def map_distinct(column: pa.Array, fn: Any, out_type: pa.DataType) -> pa.Array:
    """``fn`` maps the list of distinct values to outputs; the result is taken back to rows."""
    encoded = pc.dictionary_encode(column)
    mapped = pa.array(fn(encoded.dictionary.to_pylist()), type=out_type)
    return mapped.take(encoded.indices)


def study_key(context: PolicyContext) -> StudyKey:
    key = context.extra.get("key")
    if key is None and context.extra.get("key_provider") is not None:
        key = context.extra["key_provider"]()
    if key is None:
        raise PolicyError("this policy needs the study key, which this step was not given")
    return key


def _token_step(secret: bytes, scope: str, values: list[str], length: int) -> list[str]:
    base = hmac.new(secret, ("pseudonym:" + scope).encode() + b"\x00", hashlib.sha256)
    # base32 turns each 5 bytes into 8 characters on their own: encoding only the bytes the
    # first ``length`` characters come from gives the same token for a third of the work
    used = 32 if length > 48 else max(5, -(-length // 8) * 5)
    out = []
    for value in values:
        h = base.copy()
        h.update(value.encode())
        out.append(base64.b32encode(h.digest()[:used]).decode().lower()[:length])
    return out


def tokens_for(key: StudyKey, values: list[str], *, scope: str = "", length: int = 16) -> list[str]:
    """Keyed pseudonyms: base32(HMAC-SHA256(study key, scope || value)) cut to ``length``.

    After a key rotation (generation g), the token of generation g is the HMAC under key g of
    the token of generation g-1, so stored tables can be re-keyed from their tokens alone."""
    tokens = values
    for secret in key.chain:
        tokens = _token_step(secret, scope, tokens, length)
    return tokens


def rekey_tokens(key: StudyKey, tokens: list[str], *, scope: str = "", length: int = 16) -> list[str]:
    """Tokens of the previous generation -> tokens under ``key`` (its newest generation)."""
    return _token_step(key.secret, scope, tokens, length)


def offset_for_tokens(secret: bytes, subject_tokens: list[str], min_days: int, max_days: int) -> list[int]:
    """Date offsets from stored-form subject pseudonyms (16 characters, scope ''); '' = study."""
    span = max_days - min_days + 1
    base = hmac.new(secret, b"date-shift\x00", hashlib.sha256)
    out = []
    for token in subject_tokens:
        h = base.copy()
        h.update(b"study" if token == "" else token.encode())
        number = int.from_bytes(h.digest()[:8], "big")
        magnitude = min_days + (number >> 1) % span
        out.append(magnitude if number & 1 else -magnitude)
    return out


def _param_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


class _Base:
    name: ClassVar[str] = ""

    def __init__(self, params: dict[str, Any], context: PolicyContext) -> None:
        problem = self.check_params(params)
        if problem:
            raise PolicyError(f"action {self.name}: {problem}")
        self.params = params
        self.context = context

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> str | None:
        return None

    def output_field(self, field: pa.Field) -> pa.Field | None:
        return field


@register_action
class Pseudonymize(_Base):
    """A short stable token per normalized value, keyed per study (joins survive, values don't)."""

    name: ClassVar[str] = "pseudonymize"

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> str | None:
        unknown = set(params) - {"prefix", "length", "normalize", "scope"}
        if unknown:
            return f"unknown parameter(s) {sorted(unknown)}"
        length = params.get("length", 16)
        if not isinstance(length, int) or not 10 <= length <= 52:
            return "length is an integer from 10 to 52"
        if params.get("normalize", "upper") not in ("upper", "lower", "none"):
            return "normalize is upper, lower or none"
        return None

    def __init__(self, params: dict[str, Any], context: PolicyContext) -> None:
        super().__init__(params, context)
        self.key = study_key(context)
        self.prefix = str(params.get("prefix", ""))
        self.length = int(params.get("length", 16))
        self.scope = str(params.get("scope", ""))
        self.how = str(params.get("normalize", "upper"))
        self._cache: dict[str, str] = {}

    def output_field(self, field: pa.Field) -> pa.Field | None:
        return pa.field(field.name, STRING, nullable=True)

    def _tokens(self, values: list[str | None]) -> list[str | None]:
        todo = [v for v in values if v and v not in self._cache]
        if todo:
            tokens = tokens_for(self.key, todo, scope=self.scope, length=self.length)
            for value, token in zip(todo, tokens, strict=True):
                self._cache[value] = self.prefix + token
        if len(self._cache) > 1_000_000:
            self._cache.clear()
        return [None if v is None else ("" if v == "" else self._cache[v]) for v in values]

    def apply(self, column: pa.Array, field: pa.Field) -> pa.Array:
        # encode first, normalize only the distinct values
        encoded = pc.dictionary_encode(as_strings(column))
        tokens = self._tokens(normalize(encoded.dictionary, self.how).to_pylist())
        return pa.array(tokens, type=STRING).take(encoded.indices)


@register_action
class Surrogate(_Base):
    """A random token per value; the crosswalk lives (encrypted) in the database, never the lake."""

    name: ClassVar[str] = "surrogate"

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> str | None:
        unknown = set(params) - {"scope", "prefix"}
        return f"unknown parameter(s) {sorted(unknown)}" if unknown else None

    def __init__(self, params: dict[str, Any], context: PolicyContext) -> None:
        super().__init__(params, context)
        self.store = context.extra.get("surrogates")
        if self.store is None and context.extra.get("surrogates_for") is not None:
            self.store = context.extra["surrogates_for"](study_key(context))
        self.scope = str(params.get("scope", "default"))
        self.prefix = str(params.get("prefix", "S"))

    def output_field(self, field: pa.Field) -> pa.Field | None:
        return pa.field(field.name, STRING, nullable=True)

    def _tokens(self, values: list[str | None]) -> list[str | None]:
        present = [v for v in values if v]
        if self.store is not None:
            found = self.store.tokens(self.scope, present, self.prefix)
        else:  # preview: random, not remembered
            found = {v: self.prefix + secrets.token_hex(8) for v in present}
        return [None if v is None else ("" if v == "" else found[v]) for v in values]

    def apply(self, column: pa.Array, field: pa.Field) -> pa.Array:
        return map_distinct(normalize(column), self._tokens, STRING)


# date shifting -------------------------------------------------------------------------------


def subject_offsets(
    key: StudyKey,
    subjects: pa.Array | None,
    rows: int,
    min_days: int,
    max_days: int,
    cache: dict[str, int] | None = None,
) -> pa.Array:
    """Days to shift each row: one offset per subject, from the keyed subject pseudonym."""
    cache = {} if cache is None else cache

    def offsets(values: list[str | None]) -> list[int]:
        wanted = ["" if v is None else v for v in values]
        todo = [v for v in dict.fromkeys(wanted) if v not in cache]
        if todo:
            if len(cache) > 1_000_000:
                cache.clear()
            for value, offset in zip(todo, compute(todo), strict=True):
                cache[value] = offset
        return [cache[v] for v in wanted]

    def compute(present: list[str]) -> list[int]:
        tokens = tokens_for(key, present, length=16)
        return offset_for_tokens(
            key.secret,
            ["" if v == "" else t for v, t in zip(present, tokens, strict=True)],
            min_days,
            max_days,
        )

    study = offsets([None])[0]
    if subjects is None:
        return pa.array([study] * rows, type=pa.int32())
    encoded = pc.dictionary_encode(as_strings(subjects))
    per_subject = pa.array(offsets(normalize(encoded.dictionary).to_pylist()), type=pa.int32())
    return pc.fill_null(per_subject.take(encoded.indices), study)


_PAIR = 8192  # > 2 * the largest offset (3650) + 1


def _shift_distinct_pairs(column: pa.Array, offsets: pa.Array) -> pa.Array:
    """Text dates shifted once per distinct (date, offset) pair, then taken back to the rows.

    A subject has few distinct dates and many rows per date (LB: one date per visit for
    every test), so the string kernels run on a small fraction of the rows."""
    dates = pc.dictionary_encode(as_strings(column))
    key = pc.add(
        pc.multiply(dates.indices.cast(pa.int64()), _PAIR), pc.add(offsets.cast(pa.int64()), _PAIR // 2)
    )
    pairs = pc.dictionary_encode(key)
    date_index = pc.divide(pairs.dictionary, _PAIR)
    pair_offsets = pc.subtract(pc.subtract(pairs.dictionary, pc.multiply(date_index, _PAIR)), _PAIR // 2)
    try:
        shifted = shift_iso_strings(dates.dictionary.take(date_index), pair_offsets)
    except DateValueError as exc:  # name the first row holding that (value, offset) pair
        first = pc.index(pairs.indices, exc.extra["batch_row"]).as_py()
        exc.extra["batch_row"] = first
        raise
    return shifted.take(pairs.indices)


def shift_column(column: pa.Array, offsets: pa.Array) -> pa.Array:
    kind = column.type
    if pa.types.is_date32(kind):
        return pc.add(column.cast(pa.int32()), offsets).cast(pa.date32())
    if pa.types.is_date64(kind):
        return pc.add(column.cast(pa.int64()), pc.multiply(offsets.cast(pa.int64()), 86_400_000)).cast(kind)
    if pa.types.is_timestamp(kind):
        per_day = {"s": 86_400, "ms": 86_400_000, "us": 86_400_000_000, "ns": 86_400_000_000_000}[kind.unit]
        return pc.add(column.cast(pa.int64()), pc.multiply(offsets.cast(pa.int64()), per_day)).cast(kind)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_dictionary(kind):
        return _shift_distinct_pairs(column, offsets)
    raise PolicyError(f"date_shift cannot shift a column of type {kind}: use it on dates or ISO 8601 text")


@register_action
class DateShift(_Base):
    """Moves every date of a subject by the same secret number of days (intervals survive)."""

    name: ClassVar[str] = "date_shift"

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> str | None:
        unknown = set(params) - {"subject", "min_days", "max_days"}
        if unknown:
            return f"unknown parameter(s) {sorted(unknown)}"
        low, high = params.get("min_days", 1), params.get("max_days", 365)
        if not (isinstance(low, int) and isinstance(high, int) and 0 <= low <= high <= 3650):
            return "min_days and max_days are integers with 0 <= min_days <= max_days <= 3650"
        return None

    def __init__(self, params: dict[str, Any], context: PolicyContext) -> None:
        super().__init__(params, context)
        self.key = study_key(context)
        policy = context.extra.get("policy")
        declared = context.extra.get("subject_column")
        wanted = (
            _param_list(params.get("subject"))
            or ([declared] if declared else [])
            or (policy.subject if policy else [])
        )
        columns = context.extra.get("columns", [])
        self.subject = next((c for c in wanted if c in columns), None)
        self.min_days = int(params.get("min_days", 1))
        self.max_days = int(params.get("max_days", 365))
        self._batch_offsets: tuple[pa.RecordBatch, pa.Array] | None = None  # holds the batch: no id reuse
        self._offsets: dict[str, int] = {}

    def offsets(self, batch: pa.RecordBatch) -> pa.Array:
        if self._batch_offsets is None or self._batch_offsets[0] is not batch:
            subjects = batch.column(batch.schema.get_field_index(self.subject)) if self.subject else None
            self._batch_offsets = (
                batch,
                subject_offsets(
                    self.key, subjects, batch.num_rows, self.min_days, self.max_days, self._offsets
                ),
            )
        return self._batch_offsets[1]

    def transform(self, column: pa.Array, field: pa.Field, batch: pa.RecordBatch) -> list[pa.Array]:
        kind = column.type
        if pa.types.is_integer(kind) or pa.types.is_floating(kind):
            # SAS numeric dates (ADaM *DT: days) and date-times (*DTM: seconds)
            per_day = 86_400 if field.name.upper().endswith("DTM") else 1
            delta = pc.multiply(self.offsets(batch).cast(pa.int64()), per_day)
            return [pc.add(column, delta.cast(kind) if pa.types.is_floating(kind) else delta).cast(kind)]
        return [shift_column(column, self.offsets(batch))]


# generalization --------------------------------------------------------------------------------

RESTRICTED_ZIP3 = frozenset(
    [
        "036",
        "059",
        "063",
        "102",
        "203",
        "556",
        "692",
        "790",
        "821",
        "823",
        "830",
        "831",
        "878",
        "879",
        "884",
        "890",
        "893",
    ]
)
CONTINENTS: dict[str, str] = {}
for _continent, _codes in {
    "Africa": "DZ AO BJ BW BF BI CM CV CF TD KM CD CG CI DJ EG GQ ER ET GA GM GH GN GW KE LS LR LY MG MW ML "
    "MR MU MA MZ NA NE NG RW ST SN SC SL SO ZA SS SD SZ TZ TG TN UG ZM ZW",
    "Asia": "AF AM AZ BH BD BT BN KH CN CY GE IN ID IR IQ IL JP JO KZ KW KG LA LB MY MV MN MM NP KP OM PK PS "
    "PH QA SA SG KR LK SY TW TJ TH TL TR TM AE UZ VN YE HK MO",
    "Europe": "AL AD AT BY BE BA BG HR CZ DK EE FI FR DE GR HU IS IE IT LV LI LT LU MT MD MC ME NL MK NO PL "
    "PT RO RU SM RS SK SI ES SE CH UA GB VA XK",
    "North America": "AG BS BB BZ CA CR CU DM DO SV GD GT HT HN JM MX NI PA KN LC VC TT US PR",
    "South America": "AR BO BR CL CO EC GY PY PE SR UY VE",
    "Oceania": "AU FJ KI MH FM NR NZ PW PG WS SB TO TV VU",
}.items():
    for _code in _codes.split():
        CONTINENTS[_code] = _continent
for _name, _code in {
    "USA": "US",
    "UNITED STATES": "US",
    "UNITED STATES OF AMERICA": "US",
    "CAN": "CA",
    "CANADA": "CA",
    "GBR": "GB",
    "UNITED KINGDOM": "GB",
    "UK": "GB",
    "DEU": "DE",
    "GERMANY": "DE",
    "FRA": "FR",
    "FRANCE": "FR",
    "ITA": "IT",
    "ESP": "ES",
    "NLD": "NL",
    "BEL": "BE",
    "CHE": "CH",
    "AUT": "AT",
    "POL": "PL",
    "SWE": "SE",
    "NOR": "NO",
    "DNK": "DK",
    "FIN": "FI",
    "IRL": "IE",
    "PRT": "PT",
    "AUS": "AU",
    "AUSTRALIA": "AU",
    "NZL": "NZ",
    "JPN": "JP",
    "JAPAN": "JP",
    "CHN": "CN",
    "CHINA": "CN",
    "IND": "IN",
    "INDIA": "IN",
    "KOR": "KR",
    "BRA": "BR",
    "BRAZIL": "BR",
    "ARG": "AR",
    "MEX": "MX",
    "MEXICO": "MX",
    "ZAF": "ZA",
    "RUS": "RU",
    "ISR": "IL",
    "TUR": "TR",
    "EGY": "EG",
    "NGA": "NG",
}.items():
    CONTINENTS[_name] = CONTINENTS[_code]

METHODS = ("top_code", "age_band", "year", "zip3", "continent", "band", "age_group")


def _numbers(column: pa.Array) -> pa.Array:
    if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
        return column
    return pc.cast(pc.utf8_trim_whitespace(as_strings(column)), pa.float64(), safe=False)


def _band_labels(values: pa.Array, edges: list[float]) -> pa.Array:
    """Label each number with its half-open band [edge_i, edge_i+1); outside -> '<a' or '>=b'."""

    def label(x: float) -> str:
        return f"{x:g}"

    out = pa.nulls(len(values), STRING)
    out = pc.if_else(pc.less(values, edges[0]), f"<{label(edges[0])}", out)
    for low, high in zip(edges, edges[1:], strict=False):
        inside = pc.and_(pc.greater_equal(values, low), pc.less(values, high))
        out = pc.if_else(inside, f"{label(low)}-{label(high)}", out)
    return pc.if_else(pc.greater_equal(values, edges[-1]), f">={label(edges[-1])}", out)


@register_action
class Generalize(_Base):
    """Coarser values: top-coded ages (+ flag), bands, years, ZIP3, continents."""

    name: ClassVar[str] = "generalize"

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> str | None:
        method = params.get("method")
        if method not in METHODS:
            return f"generalize needs method: one of {', '.join(METHODS)}"
        if method == "band":
            edges = params.get("edges")
            width = params.get("width")
            if edges is None and width is None:
                return "band needs edges: [...] or width: N"
            if edges is not None and (
                not isinstance(edges, list) or len(edges) < 2 or sorted(edges) != edges
            ):
                return "edges is an increasing list of at least two numbers"
        return None

    def __init__(self, params: dict[str, Any], context: PolicyContext) -> None:
        super().__init__(params, context)
        self.method = params["method"]
        self.max = params.get("max", 89)
        self.top = params.get("to", 90)
        self.flag = params.get("flag", True)
        self.width = params.get("width", 5)
        # ``age: AGE``: rows whose age is top-coded get nothing that implies the real age
        # (birth year -> null, age group -> the top code's label), consistently with AGE.
        self.age_column = params.get("age")
        self.age_max = float(params.get("age_max", 89))
        columns = context.extra.get("columns")
        if self.age_column is not None and columns is not None and self.age_column not in columns:
            self.age_column = None

    def outputs(self, field: pa.Field) -> list[pa.Field]:
        name = field.name
        if self.method == "top_code":
            kind = (
                field.type
                if (pa.types.is_integer(field.type) or pa.types.is_floating(field.type))
                else pa.float64()
            )
            fields = [pa.field(name, kind, nullable=True)]
            if self.flag:
                fields.append(pa.field(f"{name}_TOPCODED", pa.bool_(), nullable=True))
            return fields
        if self.method == "year" and not (
            pa.types.is_string(field.type) or pa.types.is_large_string(field.type)
        ):
            return [pa.field(name, pa.int32(), nullable=True)]
        return [pa.field(name, STRING, nullable=True)]

    def transform(self, column: pa.Array, field: pa.Field, batch: pa.RecordBatch) -> list[pa.Array]:
        produced = self._transform(column, field, batch)
        if self.age_column is None:
            return produced
        ages = _numbers(batch.column(batch.schema.get_field_index(self.age_column)))
        over = pc.fill_null(pc.greater(ages, self.age_max), False)
        first = produced[0]
        if self.method == "age_group":
            label = pa.scalar(f">{self.age_max:g}").cast(first.type)
            return [pc.if_else(over, label, first), *produced[1:]]
        return [pc.if_else(over, pa.nulls(len(first), first.type), first), *produced[1:]]

    def _transform(self, column: pa.Array, field: pa.Field, batch: pa.RecordBatch) -> list[pa.Array]:
        method = self.method
        if method == "age_group":  # the sponsor's grouping, kept unless the age is top-coded
            return [as_strings(column)]
        if method == "top_code":
            values = _numbers(column)
            over = pc.greater(values, self.max)
            capped = pc.if_else(over, pa.scalar(self.top).cast(values.type), values)
            return [capped, over] if self.flag else [capped]
        if method == "age_band":
            values = _numbers(column)
            edges = list(range(0, int(self.top) + 1, int(self.width)))
            if edges[-1] != self.top:
                edges.append(self.top)
            labels = _band_labels(values, [float(e) for e in edges])
            return [pc.if_else(pc.greater_equal(values, self.top), f"{self.top}+", labels)]
        if method == "band":
            values = _numbers(column)
            edges = self.params.get("edges")
            if edges is None:
                low = pc.min(values).as_py()
                high = pc.max(values).as_py()
                if low is None:
                    return [pa.nulls(len(column), STRING)]
                width = float(self.width)
                start = (low // width) * width
                edges = [start + i * width for i in range(int((high - start) // width) + 2)]
            return [_band_labels(values, [float(e) for e in edges])]
        if method == "year":
            if pa.types.is_date(column.type) or pa.types.is_timestamp(column.type):
                return [pc.year(column).cast(pa.int32())]
            text = as_strings(column)
            return [
                pc.if_else(
                    pc.match_substring_regex(text, r"^\d{4}"), pc.utf8_slice_codeunits(text, 0, 4), None
                )
            ]
        if method == "zip3":
            if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
                text = pc.utf8_lpad(as_strings(column), 5, "0")
            else:
                text = pc.utf8_trim_whitespace(as_strings(column))
            return [map_distinct(text, _zip3, STRING)]
        # continent
        return [
            map_distinct(
                normalize(column),
                lambda vs: [None if v is None else CONTINENTS.get(v, "Unknown") if v else "" for v in vs],
                STRING,
            )
        ]


def _zip3(values: list[str | None]) -> list[str | None]:
    out: list[str | None] = []
    for value in values:
        digits = re.match(r"^(\d{3,5})(-\d{4})?$", value or "")
        if not digits:
            out.append(None if value else value)
            continue
        zip3 = digits.group(1).zfill(5)[:3]
        out.append("000" if zip3 in RESTRICTED_ZIP3 else zip3)
    return out


def _value_counts(column: pa.Array) -> dict[str, int]:
    counted = pc.value_counts(as_strings(column))
    values, counts = counted.field("values").to_pylist(), counted.field("counts").to_pylist()
    return {v: c for v, c in zip(values, counts, strict=True) if v is not None}


# suppression ---------------------------------------------------------------------------------


@register_action
class Suppress(_Base):
    """Nulls values whose class (rows sharing the value) is smaller than k.

    Class sizes come from the pipeline's first pass over the landed file (``observe``);
    without one (a preview) they are counted within the batch."""

    name: ClassVar[str] = "suppress"

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> str | None:
        unknown = set(params) - {"k"}
        k = params.get("k", 5)
        if unknown:
            return f"unknown parameter(s) {sorted(unknown)}"
        return None if isinstance(k, int) and k >= 2 else "k is an integer >= 2"

    def __init__(self, params: dict[str, Any], context: PolicyContext) -> None:
        super().__init__(params, context)
        self.k = int(params.get("k", 5))
        self.counts: Counter[str] = Counter()
        self.observed = False

    def observe(self, column: pa.Array, field: pa.Field, batch: pa.RecordBatch) -> None:
        self.observed = True
        self.counts.update(_value_counts(column))

    def apply(self, column: pa.Array, field: pa.Field) -> pa.Array:
        counts = self.counts
        if not self.observed:
            counts = Counter(_value_counts(column))
        rare = pa.array([v for v, c in counts.items() if c < self.k and v is not None], type=STRING)
        if len(rare) == 0:
            return column
        hit = pc.is_in(as_strings(column), value_set=rare)
        return pc.if_else(hit, pa.nulls(len(column), column.type), column)


# free text -------------------------------------------------------------------------------------

_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)"
_MONTH_NAME = (
    r"(?:january|february|march|april|may|june|july|august|september|october|november|december"
    r"|jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec)"
)
_STREET = (
    r"(?:street|st|avenue|ave|road|rd|lane|ln|drive|dr|boulevard|blvd|court|ct|way|place|pl|terrace"
    r"|circle|cir|parkway|pkwy|highway|hwy|square|sq|trail|trl|fork|park|alley|crescent|close)"
)
# Order matters: earlier placeholders are not matched again by later patterns.
SCRUB_PATTERNS: list[tuple[str, str]] = [
    ("URL", r"(?i)\b(?:https?://|www\.)[^\s<>\"]+"),
    ("EMAIL", r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"),
    ("IP", r"\b(?:\d{1,3}\.){3}\d{1,3}\b|\b(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}\b"),
    ("SSN", r"\b\d{3}[- .]\d{2}[- .]\d{4}\b"),
    (
        "DATE",
        # ISO (full, partial to the month, intervals), 2014/03/12, 03/12/2014, 12.03.14
        r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?)?\b|\b\d{4}-\d{2}\b"
        r"|\b\d{4}[/.]\d{1,2}[/.]\d{1,2}\b|\b\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}\b"
        # 12MAR1950, 12-MAR-1950, 12 March 2014, MAR1950, March 12, 2014, Mar 12th 2014
        rf"|(?i:\b\d{{1,2}}[ -]?{_MONTH}[a-z]*\.?[ -]?\d{{2,4}}\b)"
        rf"|(?i:\b{_MONTH}[a-z]*\.?[ -]?\d{{4}}\b)"
        rf"|(?i:\b{_MONTH_NAME}\.? \d{{1,2}}(?:st|nd|rd|th)?,? \d{{2,4}}\b)"
        rf"|(?i:\b\d{{1,2}}(?:st|nd|rd|th)? (?:of )?{_MONTH_NAME}\b)",
    ),
    (
        "PHONE",
        r"(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\) ?|\b\d{3}[ .-]?)\d{3}[ .-]\d{4}\b|\b\d{3}-\d{4}\b",
    ),
    ("MRN", r"(?i)\b(?:MRN|MR#|medical record(?: number)?)[:#\s]*[A-Z0-9-]{4,}|\b[A-Z]{1,3}\d{6,10}\b"),
    # numbers long enough to be an SSN, a phone or an account without separators
    ("ID", r"\+?\b\d{7,}\b"),
    (
        "ADDRESS",
        rf"(?i)\b\d{{1,6}}[A-Z]? (?:[A-Z0-9.'-]+ ){{0,3}}{_STREET}\b\.?"
        r"|(?i)\b(?:p\.? ?o\.? box|apt\.?|apartment|suite) ?#? ?\d+[A-Z]?\b",
    ),
    # a title followed by one to three capitalized words: Dr. John Smith, MRS SMITH
    (
        "NAME",
        r"(?:\b(?i:dr|mrs|ms|miss|prof|doctor|nurse|sister)(?:\. ?| )|\bM(?i:r)\. ?)"
        r"(?:[A-Z][A-Za-z'-]+(?:,? [A-Z](?:\.|\b))?)(?: [A-Z][A-Za-z'-]+){0,2}",
    ),
]
_RE2_SPECIAL = re.compile(r"([\\.^$|?*+()\[\]{}])")


def _name_pattern(names: set[str]) -> str | None:
    usable = sorted((n for n in names if len(n) >= 3), key=len, reverse=True)
    if not usable:
        return None
    return r"(?i)\b(?:" + "|".join(_RE2_SPECIAL.sub(r"\\\1", n) for n in usable) + r")\b"


@register_action
class ScrubText(_Base):
    """Replaces identifiers inside free text with typed placeholders ([SSN], [NAME], ...)."""

    name: ClassVar[str] = "scrub_text"

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> str | None:
        unknown = set(params) - {"names_from", "recognizer"}
        if unknown:
            return f"unknown parameter(s) {sorted(unknown)}"
        return None if isinstance(params.get("recognizer", True), bool) else "recognizer is true or false"

    def __init__(self, params: dict[str, Any], context: PolicyContext) -> None:
        super().__init__(params, context)
        columns = context.extra.get("columns", [])
        self.name_columns = [c for c in _param_list(params.get("names_from")) if c in columns]
        self.names: set[str] = set()
        self.dictionary = context.extra.get("identifier_dictionary")
        self.recognizer = bool(params.get("recognizer", True))
        self._cache: dict[str, str] = {}

    def output_field(self, field: pa.Field) -> pa.Field | None:
        return pa.field(field.name, STRING, nullable=True)

    def _collect(self, batch: pa.RecordBatch) -> None:
        for name in self.name_columns:
            values = pc.unique(normalize(batch.column(batch.schema.get_field_index(name)), "none"))
            for value in values.to_pylist():
                if value:
                    self.names.add(value)
                    self.names.update(part for part in value.split(" ") if len(part) >= 3)

    def observe(self, column: pa.Array, field: pa.Field, batch: pa.RecordBatch) -> None:
        self._collect(batch)

    def _patterns(self, values: list[str]) -> list[str]:
        """Patterns and the names recognizer: they depend only on the value (cached)."""
        todo = [v for v in values if v not in self._cache]
        if todo:
            array = pa.array(todo, type=STRING)
            for label, pattern in SCRUB_PATTERNS:
                array = pc.replace_substring_regex(array, pattern, f"[{label}]")
            out = array.to_pylist()
            if self.recognizer:  # names never seen in a column
                out = scrub_names(out)
            if len(self._cache) > 200_000:
                self._cache.clear()
            self._cache.update(zip(todo, out, strict=True))
        return [self._cache[v] for v in values]

    def transform(self, column: pa.Array, field: pa.Field, batch: pa.RecordBatch) -> list[pa.Array]:
        self._collect(batch)
        names = _name_pattern(self.names)

        def scrub(values: list[str | None]) -> list[str | None]:
            present = [v for v in values if v is not None]
            cleaned = iter(self._patterns(present))
            out: list[str | None] = [None if v is None else next(cleaned) for v in values]
            if names:
                out = pc.replace_substring_regex(pa.array(out, type=STRING), names, "[NAME]").to_pylist()
            if self.dictionary is not None:  # names seen in any identifying column of the study
                out = scrub_known(out, self.dictionary.secret, self.dictionary.digests())
            return out

        return [map_distinct(as_strings(column), scrub, STRING)]
