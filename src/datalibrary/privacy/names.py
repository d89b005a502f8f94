"""Person names never seen in an identifying column: a dictionary recognizer (no model).

The lexicon comes from the ``names-dataset`` package (first and last names with their
popularity rank in 105 countries, shipped inside the package: nothing is downloaded). We
keep names ranked in the top 1,000 first names / 2,000 last names of 25 countries whose
sites run most trials; the derived lexicon (~43k names) is cached on disk
(``$DATALIBRARY_CACHE_DIR`` or ``~/.cache/datalibrary``) because reading the package's
pickles takes about a minute and 1 GB once.

A single dictionary word is not a name in clinical text (ROSE, MAY, BROWN, HOPE...), so the
recognizer needs a shape: ``FIRST [M.] LAST``, ``LAST, FIRST``, or a word of the lexicon right
after a cue (``from``, ``by``, ``wife``, ``called``...). On the 1,512 distinct verbatim terms
of the CDISC pilot study (AE, CM, MH, DS) it flags none; recall on a labelled sample is
printed by ``benchmarks/scrub.py``.
"""

from __future__ import annotations

import gzip
import json
import os
import pickle  # noqa: S403 - the names-dataset package ships its data as pickles
import re
import threading
from functools import cache
from importlib import metadata, resources
from pathlib import Path

COUNTRIES = frozenset(
    "US GB CA AU IE NZ DE FR ES IT NL BE CH AT SE NO DK FI PL PT MX BR AR IN ZA".split()  # noqa: SIM905
)
FIRST_RANK, LAST_RANK = 1000, 2000
CUES = frozenset(
    "FROM BY WITH CALLED NAMED NAME WIFE HUSBAND SON DAUGHTER MOTHER FATHER BROTHER SISTER FRIEND "  # noqa: SIM905
    "NEIGHBOR NEIGHBOUR PARTNER SPOUSE COUSIN UNCLE AUNT GRANDSON GRANDDAUGHTER".split()
)
# common words that are also names in the lexicon: never a name after a cue alone
COMMON = frozenset(
    "FROM TO THE AND FOR WITH AT ON IN BY OF AS IS IT BE WAS ARE HIS HER HIM SHE HE THEY THEM "  # noqa: SIM905
    "THIS THAT THESE HOME WORK DAY DAYS WEEK NIGHT MORNING EVENING BED BACK LONG SHORT HIGH LOW "
    "OFFICE CLINIC HOSPITAL DOCTOR NURSE PHONE CALL VISIT AGAIN ABOUT AFTER BEFORE OVER UNDER "
    "URL EMAIL IP SSN DATE MRN ID ADDRESS NAME".split()
)
TOKEN = re.compile(r"[A-Za-z][A-Za-z'-]*|[^A-Za-z\s]+")
PLACEHOLDER = "[NAME]"
_lock = threading.Lock()


def cache_dir() -> Path:
    return Path(os.environ.get("DATALIBRARY_CACHE_DIR") or Path.home() / ".cache" / "datalibrary")


def _build() -> dict[str, list[str]]:
    base = resources.files("names_dataset").joinpath("v3")
    out: dict[str, list[str]] = {}
    for kind, limit in (("first", FIRST_RANK), ("last", LAST_RANK)):
        with base.joinpath(f"{kind}_names.pkl.gz").open("rb") as raw, gzip.open(raw) as handle:
            table = pickle.load(handle)  # noqa: S301 - package data, not user input
        keep = []
        for name, info in table.items():
            ranks = info.get("rank") or {}
            best = min((r for c, r in ranks.items() if c in COUNTRIES and r is not None), default=None)
            if best is not None and best <= limit and name.isalpha():
                keep.append(name.upper())
        out[kind] = sorted(set(keep))
        del table
    return out


@cache
def lexicon() -> tuple[frozenset[str], frozenset[str]]:
    """(first names, last names), upper case."""
    version = metadata.version("names-dataset")
    path = cache_dir() / f"names-lexicon-{version}-{FIRST_RANK}-{LAST_RANK}.json.gz"
    with _lock:
        if not path.exists():
            data = _build()
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(f".{os.getpid()}.tmp")
            with gzip.open(partial, "wt") as handle:
                json.dump(data, handle)
            partial.replace(path)
        with gzip.open(path, "rt") as handle:
            data = json.load(handle)
    return frozenset(data["first"]), frozenset(data["last"])


@cache
def _either(first: frozenset[str], last: frozenset[str]) -> frozenset[str]:
    return first | last


def _is_initial(token: str) -> bool:
    return len(token) == 1 and token.isalpha()


def find_names(text: str, first: frozenset[str], last: frozenset[str]) -> list[tuple[int, int]]:
    """Character spans of person names in ``text``."""
    either = _either(first, last)
    words = [word.upper() for word in TOKEN.findall(text)]
    # every shape below needs a lexicon word, and a first name, a comma or a cue: most
    # clinical text has none of them and is done here
    if either.isdisjoint(words) or (first.isdisjoint(words) and "," not in words and CUES.isdisjoint(words)):
        return []
    bounds = [m.span() for m in TOKEN.finditer(text)]
    count = len(words)

    def at(j: int) -> str:
        return words[j] if j < count else ""

    def multiword(i: int) -> int | None:
        """The last token index of a FIRST [M.] LAST or LAST, FIRST name starting at ``i``."""
        word = words[i]
        if word in first:
            second = at(i + 1)
            if second in last:  # JOHN SMITH
                return i + 1
            if _is_initial(second):  # JOHN Q SMITH, JOHN Q. SMITH
                if at(i + 2) in last:
                    return i + 2
                if at(i + 2) == "." and at(i + 3) in last:
                    return i + 3
        if word in last and at(i + 1) == "," and at(i + 2) in first:  # SMITH, JOHN
            return i + 2
        return None

    spans: list[tuple[int, int]] = []
    i = 0  # the first token not yet part of a name
    # only lexicon words (a name starts there) and cues (a name follows) can start a span
    for j in [j for j, word in enumerate(words) if word in either or word in CUES]:
        if j < i:
            continue
        end = multiword(j) if words[j] in either else None
        if end is not None:
            spans.append((bounds[j][0], bounds[end][1]))
            i = end + 1
            continue
        nxt = at(j + 1)
        # CALL FROM SMITH: one lexicon word right after a cue
        if (
            words[j] in CUES
            and len(nxt) >= 3
            and nxt in either
            and nxt not in COMMON
            and multiword(j + 1) is None
        ):
            spans.append(bounds[j + 1])
            i = j + 2
            continue
        i = j + 1
    return spans


def scrub_names(texts: list[str | None]) -> list[str | None]:
    """Replace recognized person names with ``[NAME]``."""
    first, last = lexicon()
    out: list[str | None] = []
    for text in texts:
        if not text:
            out.append(text)
            continue
        spans = find_names(text, first, last)
        for start, end in reversed(spans):
            text = text[:start] + PLACEHOLDER + text[end:]
        out.append(text)
    return out
