"""The study-wide identifier dictionary: names seen in one table are scrubbed from all.

A name dropped from ``INVNAM`` in SUPPDM must not survive in an ``AETERM`` of AE. Every
ingestion collects the words of its identifying values (columns the policy drops, the
subject column, SUPPQUAL rows whose ``QNAM`` is dropped) as keyed digests
(HMAC-SHA256 under the study key: the dictionary names no one) and stores them per
namespace. Free text is scrubbed of every word whose digest the dictionary holds:

- tables delivered after the name: scrubbed at ingestion (the dictionary is loaded first);
- tables delivered before it: **re-scrubbed** when the name arrives (``rescrub``): their
  files are rewritten and every older snapshot and file is deleted, so no byte keeps it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Iterable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from datalibrary.privacy.detect import name_evidence

WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'-]*[A-Za-z0-9]|[A-Za-z0-9]")
# words that identify no one although they stand in identifying columns ("Dr Who", addresses)
NOT_NAMES = frozenset(
    {"DR", "MR", "MRS", "MS", "MISS", "PROF", "DOCTOR", "NURSE", "SIR", "THE", "AND", "OF", "VAN", "VON"}
    | {"DE", "LA", "DEL", "DER", "DI", "DA", "JR", "SR", "II", "III", "IV", "MD", "PHD", "RN"}
)
PLACEHOLDER = "[NAME]"


def words_of(value: str) -> set[str]:
    """The dictionary entries of one identifying value: the whole value and its name-like words."""
    text = " ".join(value.split()).upper()
    if len(text) < 2:
        return set()
    found = {text} if WORD.fullmatch(text) else set()
    for word in WORD.findall(text):
        if (
            len(word) >= 3
            and any(c.isalpha() for c in word)
            and word not in NOT_NAMES
            or len(word) >= 4
            and word == text
        ):
            found.add(word)
    return found


def digest(secret: bytes, word: str) -> str:
    return hmac.new(secret, b"identifier-word\x00" + word.upper().encode(), hashlib.sha256).hexdigest()[:32]


class IdentifierDictionary:
    """Digests known for the study (loaded lazily) plus those this job collects."""

    def __init__(self, secret: Callable[[], bytes], known: Callable[[], set[str]] | None = None) -> None:
        self._secret = secret
        self._known_loader = known
        self._known: set[str] | None = None
        self.collected: set[str] = set()
        self._seen: set[str] = set()  # raw values already digested (memory only)

    @property
    def secret(self) -> bytes:
        return self._secret()

    def known(self) -> set[str]:
        if self._known is None:
            self._known = set(self._known_loader()) if self._known_loader else set()
        return self._known

    def collect(self, values: Iterable[str | None], *, words: bool = True) -> None:
        """Digest identifying values: their name-like words too (``words``), or only the
        whole value (a subject identifier such as 01-701-1015)."""
        fresh = [v for v in values if v and v not in self._seen]
        if not fresh:
            return
        secret = self.secret
        for value in fresh:
            self._seen.add(value)
            if words:
                self.collected.update(digest(secret, w) for w in words_of(str(value)))
            elif WORD.fullmatch(whole := " ".join(str(value).split()).upper()) and len(whole) >= 4:
                self.collected.add(digest(secret, whole))

    def digests(self) -> set[str]:
        return self.known() | self.collected

    def new(self) -> set[str]:
        """Digests this job collected that the study did not know before."""
        return self.collected - self.known()


def scrub_known(texts: list[str | None], secret: bytes, digests: set[str]) -> list[str | None]:
    """Replace every word (or hyphenated identifier) whose digest is in ``digests``."""
    if not digests:
        return texts
    cache: dict[str, bool] = {}

    def hit(match: re.Match[str]) -> str:
        word = match.group(0).upper()
        if word not in cache:
            cache[word] = digest(secret, word) in digests
        return PLACEHOLDER if cache[word] else match.group(0)

    return [None if t is None else WORD.sub(hit, t) for t in texts]


def scrub_column(column: pa.Array, secret: bytes, digests: set[str]) -> pa.Array:
    """``scrub_known`` on the distinct values of a text column."""
    if pa.types.is_large_string(column.type):
        column = column.cast(pa.string())
    encoded = pc.dictionary_encode(column)
    scrubbed = scrub_known(encoded.dictionary.to_pylist(), secret, digests)
    return pa.array(scrubbed, type=pa.string()).take(encoded.indices)


IDENTIFYING_ACTIONS = ("drop",)


def identifying_values(
    plan: list[tuple[str, Any, pa.Field, list[pa.Field]]],
    policy: Any,
    batch: pa.RecordBatch,
    subject: str | None,
) -> list[tuple[pa.Array, bool]]:
    """The columns (or rows of a SUPPQUAL value column) whose values feed the dictionary,
    each with whether its words count (names, addresses) or only whole values (subject ids)."""
    out: list[tuple[pa.Array, bool]] = []
    planned = {name for name, _, _, _ in plan}
    for field in batch.schema:
        rule = policy.rule_for(field.name)
        column = batch.column(batch.schema.get_field_index(field.name))
        is_text = pa.types.is_string(field.type) or pa.types.is_large_string(field.type)
        if rule is not None and rule.action in IDENTIFYING_ACTIONS and is_text:
            out.append((column, True))
        elif field.name == subject:
            out.append((column, False))
        elif rule is not None and rule.action == "by_variable" and field.name in planned:
            key = rule.params.get("key")
            if key not in batch.schema.names:
                continue
            names = pc.fill_null(
                pc.utf8_upper(
                    pc.utf8_trim_whitespace(batch.column(batch.schema.get_field_index(key)).cast(pa.string()))
                ),
                "",
            )
            encoded = pc.dictionary_encode(names)
            for index, variable in enumerate(encoded.dictionary.to_pylist()):
                variable_rule = policy.rule_for(variable) if variable else None
                dropped = (variable_rule is not None and variable_rule.action in IDENTIFYING_ACTIONS) or (
                    variable_rule is None
                    and variable
                    and any("free text" not in e for e in name_evidence(variable))
                )
                if dropped:
                    out.append((column.filter(pc.equal(encoded.indices, index)), True))
    return out
