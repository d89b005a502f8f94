"""Free-text scrubber benchmark: recall on a labelled sample, and throughput in rows/s.

The sample is generated (seeded): AE/CM/MH verbatim terms and comments with planted
identifiers of five kinds - person names (never seen in any column: only the recognizer can
find them, in the forms ``FIRST LAST``, ``LAST, FIRST``, ``Dr. LAST``, ``FIRST M. LAST``, a
cue + one name), dates in several notations, phone numbers, ids (SSN, MRN), street
addresses - and clean terms. Recall per kind = planted values no longer present in the
scrubbed text; false positives = clean terms the scrubber changed. Names come from a list
kept here (common US/EU names), not from the recognizer's lexicon.

    python benchmarks/scrub.py                  # 20,000 labelled rows
    python benchmarks/scrub.py --rows 100000 --repeat 5
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

FIRST = (
    "James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara Richard Susan "
)
FIRST += "Joseph Jessica Thomas Sarah Charles Karen Daniel Nancy Matthew Lisa Anthony Betty Mark Sandra Paul "
FIRST += "Ashley Steven Kimberly Andrew Donna Kenneth Emily Joshua Michelle Kevin Carol Brian Amanda George "
FIRST += "Melissa Pierre Hans Giulia Sofia Lukas Marta Jan Anna Pedro Lucia"
LAST = "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez Gonzalez "
LAST += "Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris Sanchez Clark "
LAST += "Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill Flores Green Adams "
LAST += "Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Muller Schmidt Rossi Dubois Kowalski Silva"
TERMS = [
    "HEADACHE",
    "NAUSEA",
    "DIZZINESS",
    "APPLICATION SITE ERYTHEMA",
    "PRURITUS",
    "FATIGUE",
    "INSOMNIA",
    "UPPER RESPIRATORY TRACT INFECTION",
    "BACK PAIN",
    "ASPIRIN",
    "METFORMIN 500 MG",
    "HYPERTENSION",
    "TYPE 2 DIABETES",
    "FALL",
    "CHEST PAIN",
    "RASH ON LEFT ARM",
    "SINUS BRADYCARDIA",
    "CONSTIPATION",
]
NAME_FORMS = [
    "{f} {l}",
    "{L}, {F}",
    "Dr. {l}",
    "{f} {m}. {l}",
    "CALL FROM {L}",
    "{F} {L}",
    "wife {f} called",
]
DATES = [
    "12MAR1950",
    "12-MAR-1950",
    "March 12, 2014",
    "2014/03/12",
    "03/12/2014",
    "2014-03-12",
    "12 Mar 2014",
]
PHONES = ["617-555-0142", "(617) 555-0142", "6175550142", "+1 617 555 0142", "555-0142"]
IDS = ["987-65-4329", "987654329", "MRN 00492177", "MRN0049217733"]
STREETS = ["Main Street", "Oak Avenue", "Quackenbush Lane", "Elm Rd", "Park Drive"]
TEMPLATES = [
    "{term} AFTER CALL FROM {x}",
    "{term}; CONTACT {x}",
    "{term} REPORTED BY {x}",
    "{x} - {term}",
    "{term} (SEE NOTE {x})",
]


def sample(rows: int, seed: int = 7) -> list[tuple[str, str | None, str | None]]:
    """(text, kind, planted value) rows; kind None = a clean term."""
    rng = random.Random(seed)
    first, last = FIRST.split(), LAST.split()
    out: list[tuple[str, str | None, str | None]] = []
    for _ in range(rows):
        term = rng.choice(TERMS)
        kind = rng.choice(["name", "name", "date", "phone", "id", "address", None, None])
        if kind is None:
            out.append((term, None, None))
            continue
        if kind == "name":
            given, family = rng.choice(first), rng.choice(last)
            form = rng.choice(NAME_FORMS)
            value = form.format(f=given, l=family, F=given.upper(), L=family.upper(), m=rng.choice("ABCDEJK"))
            planted = family.upper() if "{L}" in form else family
            if "{l}" not in form and "{L}" not in form:
                planted = given
        elif kind == "date":
            value = planted = rng.choice(DATES)
        elif kind == "phone":
            value = planted = rng.choice(PHONES)
        elif kind == "id":
            value = planted = rng.choice(IDS)
        else:
            value = f"{rng.randint(1, 9999)} {rng.choice(STREETS)}"
            planted = value
        out.append((rng.choice(TEMPLATES).format(term=term, x=value), kind, planted))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs, each with a cold cache (median)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    import pyarrow as pa

    from datalibrary.privacy.names import lexicon
    from datalibrary.privacy.policy import PolicyContext, PolicyStep, parse_policy

    rows = sample(args.rows)
    started = time.perf_counter()
    lexicon()
    print(f"names lexicon ready in {time.perf_counter() - started:.1f} s")
    policy = parse_policy("name: bench\nversion: 1\ncolumns:\n  TEXT: scrub_text\n")
    batch = pa.RecordBatch.from_pydict({"TEXT": [r[0] for r in rows]})
    timings = []
    for _ in range(max(1, args.repeat)):  # a new step each time: nothing cached from a run before
        step = PolicyStep(policy, PolicyContext("bench", "t", "", {}))
        step.plan(batch)
        started = time.perf_counter()
        scrubbed = step.apply(batch).column(0).to_pylist()
        timings.append(time.perf_counter() - started)
    seconds = statistics.median(timings)
    distinct = len(set(r[0] for r in rows))
    found, planted, changed, clean = Counter(), Counter(), 0, 0
    for (text, kind, value), out in zip(rows, scrubbed, strict=True):
        if kind is None:
            clean += 1
            changed += out != text
            continue
        planted[kind] += 1
        found[kind] += value not in out
    print(f"{'kind':<10}{'planted':>9}{'removed':>9}{'recall':>9}")
    for kind in sorted(planted):
        print(f"{kind:<10}{planted[kind]:>9}{found[kind]:>9}{found[kind] / planted[kind]:>9.3f}")
    total = sum(planted.values())
    print(f"{'all':<10}{total:>9}{sum(found.values()):>9}{sum(found.values()) / total:>9.3f}")
    print(f"false positives: {changed} of {clean} clean terms changed ({changed / clean:.3%})")
    print(
        f"scrubber: {len(rows)} rows ({distinct} distinct) in {seconds:.2f} s (median of {len(timings)}) = "
        f"{len(rows) / seconds:,.0f} rows/s, {distinct / seconds:,.0f} distinct values/s; "
        f"load average {' '.join(Path('/proc/loadavg').read_text().split()[:3])}"
    )


if __name__ == "__main__":
    main()
