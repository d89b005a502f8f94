"""Hostile-input corpus and reader fuzzing (issue 22).

1. The corpus: hostile and damaged files per format (``corpus()``), each with the outcome it
   must get, ingested through the real pipeline (SQLite, local lake, jobs in limited child
   processes). A case is handled correctly when the job ends in the expected state with the
   expected reason, nothing was half committed, and nothing was written outside the state dir.
2. Fuzzing: seed files of every format mutated (bit flips, cuts, splices, repeated blocks) for
   a bounded time, read by the readers in a memory-limited child; a mutation is handled when
   the reader returns batches or raises ``ReadError`` (or hits the memory limit, which the
   pipeline turns into a quarantine) - never any other exception.

Prints handled-correctly / tried per format, the peak RSS of this process (the "server": it
claims jobs and runs the workers) and of the job children, and files written outside the
state directory.

    .venv/bin/python benchmarks/hostile.py [--fuzz-seconds 60] [--sample]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import multiprocessing
import os
import random
import resource
import sys
import tempfile
import time
import zipfile
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyreadstat

from datalibrary.ingest.isolation import apply_limits

Maker = Callable[[Path], Path]


@dataclass(frozen=True)
class Case:
    format: str
    name: str
    make: Maker
    state: str  # expected final state
    reason: str = ""  # a substring of the reason's message or code


def _write(data: bytes | str, suffix: str) -> Maker:
    raw = data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass")

    def make(folder: Path) -> Path:
        path = folder / f"{hashlib.sha256(raw).hexdigest()[:12]}{suffix}"
        path.write_bytes(raw)
        return path

    return make


def xpt_bytes(rows: int = 300, version: int = 5, table: str = "DM") -> bytes:
    frame = pd.DataFrame(
        {
            "USUBJID": [f"01-701-{i:04d}" for i in range(rows)],
            "AGE": [float(40 + i % 50) for i in range(rows)],
            "ARM": ["Placebo" if i % 2 else "Xanomeline" for i in range(rows)],
        }
    )
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "x.xpt"
        pyreadstat.write_xport(frame, str(path), file_format_version=version, table_name=table)
        return path.read_bytes()


def zip_of(entries: list[tuple[str, bytes]]) -> bytes:
    sink = io.BytesIO()
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return sink.getvalue()


def _cut_xpt() -> bytes:
    data = xpt_bytes()
    return data[: len(data) // 2 // 80 * 80 + 80]


def _two_members() -> bytes:
    return xpt_bytes(20) + xpt_bytes(5, table="AE")[240:]


def _unnamed_xpt() -> bytes:
    data = bytearray(xpt_bytes(3))
    at = data.find(b"USUBJID ")
    data[at : at + 8] = b" " * 8
    return bytes(data)


def _v8_count() -> bytes:
    data = bytearray(xpt_bytes(30, version=8))
    at = data.find(b"HEADER RECORD*******OBSV8")
    data[at + 48 : at + 63] = b"             31"
    return bytes(data)


def _liar_zip() -> bytes:
    data = bytearray(zip_of([("bomb.csv", b"0" * (64 << 20))]))
    central = data.rfind(b"PK\x01\x02")
    data[central + 20 : central + 24] = (1 << 31).to_bytes(4, "little")
    return bytes(data)


def _dup_zip() -> bytes:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return zip_of([("dm.csv", b"A\n1\n"), ("dm.csv", b"A\n2\n")])


def corpus() -> list[Case]:
    good_csv = "ID,AGE\na,40\nb,50\n"
    cases = [
        Case("csv", "good", _write(good_csv, ".csv"), "succeeded"),
        Case(
            "csv",
            "cut last line",
            _write("ID,A,B\n" + "r,1,2\n" * 50 + "r,1", ".csv"),
            "quarantined",
            "ragged",
        ),
        Case("csv", "unclosed quote", _write('ID,A\n"a,1\nb,2\n', ".csv"), "quarantined"),
        Case(
            "csv", "cyrillic lookalike", _write("AGE,\u0410GE\n1,2\n", ".csv"), "quarantined", "look the same"
        ),
        Case(
            "csv",
            "fullwidth lookalike",
            _write("AGE,\uff21\uff27\uff25\n1,2\n", ".csv"),
            "quarantined",
            "look the same",
        ),
        Case(
            "csv", "zero-width joiner", _write("AGE,A\u200dGE\n1,2\n", ".csv"), "quarantined", "look the same"
        ),
        Case(
            "csv",
            "30k columns",
            _write(",".join(f"c{i}" for i in range(30_000)) + "\n" + ",".join("1" * 30_000) + "\n", ".csv"),
            "quarantined",
            "more than the limit",
        ),
        Case("csv", "NUL bytes", _write(b"A,B\n1,\x00\x00\x002\n", ".csv"), "quarantined"),
        Case("xpt", "good", _write(xpt_bytes(), ".xpt"), "succeeded"),
        Case(
            "xpt",
            "cut at an 80-byte boundary",
            _write(_cut_xpt(), ".xpt"),
            "quarantined",
            "truncated SAS XPORT",
        ),
        Case("xpt", "two members", _write(_two_members(), ".xpt"), "quarantined", "more than one dataset"),
        Case("xpt", "unnamed variable", _write(_unnamed_xpt(), ".xpt"), "quarantined", "empty name"),
        Case("xpt", "v8 count", _write(_v8_count(), ".xpt"), "quarantined", "declares 31"),
        Case("xpt", "not a multiple of 80", _write(xpt_bytes()[:-7], ".xpt"), "quarantined", "truncated"),
        Case("json", "good", _write('[{"a": 1}, {"a": 2}]', ".json"), "succeeded"),
        Case("json", "4301-digit integer", _write('[{"a": ' + "9" * 5000 + "}]", ".json"), "quarantined"),
        Case("json", "lone surrogate", _write('[{"a": "x\\ud800"}]', ".json"), "quarantined", "surrogate"),
        Case(
            "json",
            "200k keys",
            _write(json.dumps([{f"k{i}": i for i in range(200_000)}]), ".json"),
            "quarantined",
            "more than the limit",
        ),
        Case(
            "json",
            "deep nesting",
            _write("[" + '{"a":' * 5000 + "1" + "}" * 5000 + "]", ".json"),
            "quarantined",
        ),
        Case("json", "truncated", _write('[{"a": 1}, {"a": ', ".json"), "quarantined"),
        Case("ndjson", "good", _write('{"a": 1}\n{"a": 2}\n', ".ndjson"), "succeeded"),
        Case("ndjson", "bad line", _write('{"a": 1}\n{"a": \n', ".ndjson"), "quarantined"),
        Case(
            "fhir",
            "2000 resource types",
            _write(
                json.dumps(
                    {
                        "resourceType": "Bundle",
                        "entry": [
                            {
                                "resource": {
                                    "resourceType": f"T{i:04d}".replace("0", "a")
                                    .replace("1", "b")
                                    .replace("2", "c")
                                    .replace("3", "d")
                                    .replace("4", "e")
                                    .replace("5", "f")
                                    .replace("6", "g")
                                    .replace("7", "h")
                                    .replace("8", "i")
                                    .replace("9", "j"),
                                    "id": "1",
                                }
                            }
                            for i in range(2000)
                        ],
                    }
                ),
                ".json",
            ),
            "quarantined",
            "fan-out",
        ),
        Case("zip", "over-declared sizes", _write(_liar_zip(), ".zip"), "quarantined"),
        Case("zip", "duplicate member", _write(_dup_zip(), ".zip"), "quarantined", "twice"),
        Case(
            "zip",
            "nested folder collision",
            _write(zip_of([("a.zip", zip_of([("x.csv", b"A\n1\n")])), ("a.zip.d/y.csv", b"A\n2\n")]), ".zip"),
            "quarantined",
            "collides",
        ),
        Case(
            "zip",
            "traversal",
            _write(zip_of([("../../etc/x.csv", b"A\n1\n")]), ".zip"),
            "quarantined",
            "escapes",
        ),
    ]
    return cases


def seeds() -> dict[str, bytes]:
    return {
        "csv": b'ID,AGE,NAME\na,40,x\nb,50,"y, z"\n',
        "xpt": xpt_bytes(40),
        "json": b'[{"a": 1, "b": {"c": "x"}}, {"a": 2, "b": {"c": "y"}}]',
        "ndjson": b'{"a": 1, "b": "x"}\n{"a": 2, "b": "y"}\n',
        "fhir": json.dumps(
            {
                "resourceType": "Bundle",
                "entry": [{"resource": {"resourceType": "Patient", "id": "p1", "gender": "female"}}],
            }
        ).encode(),
        "zip": zip_of([("dm.csv", b"ID,AGE\na,40\n")]),
    }


def mutate(data: bytes, rng: random.Random) -> bytes:
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        kind = rng.randrange(5)
        if not data:
            break
        at = rng.randrange(len(data))
        if kind == 0:
            data[at] ^= 1 << rng.randrange(8)
        elif kind == 1:
            del data[at:]
        elif kind == 2:
            end = min(len(data), at + rng.randint(1, 200))
            data[at:at] = data[at:end] * rng.randint(2, 50)
        elif kind == 3:
            data[at] = rng.choice(b'\x00\xff"{[,\n\\')
        else:
            data[at:at] = rng.choice([b"\xed\xa0\x80", b"9" * 5000, b"\r", "\ufeff".encode()])
    return bytes(data)


def _fuzz_child(format_: str, seed: bytes, seconds: float, folder: str, queue) -> None:  # noqa: ANN001
    from datalibrary.ingest.readers import ReadError, ReadLimits, open_reader
    from datalibrary.ingest.readers.archive import extract

    apply_limits(1024, int(seconds) + 60)
    rng = random.Random(hash(format_) & 0xFFFF)  # noqa: S311
    tried = handled = 0
    problems: Counter[str] = Counter()
    deadline = time.monotonic() + seconds
    suffix = {"fhir": ".json", "zip": ".zip"}.get(format_, f".{format_}")
    while time.monotonic() < deadline:
        path = Path(folder) / f"f{tried}{suffix}"
        path.write_bytes(mutate(seed, rng))
        tried += 1
        try:
            if format_ == "zip":
                extract(path, Path(folder) / f"out{tried}")
            else:
                reader = open_reader(
                    path, format=format_, limits=ReadLimits(max_columns=4096, max_record_bytes=1 << 20)
                )
                for _ in reader.batches():
                    pass
            handled += 1
        except (ReadError, MemoryError):
            handled += 1
        except Exception as exc:  # noqa: BLE001 - what the fuzzer is looking for
            problems[f"{type(exc).__name__}: {str(exc)[:80]}"] += 1
        finally:
            path.unlink(missing_ok=True)
    queue.put((format_, tried, handled, dict(problems.most_common(5))))


def fuzz(seconds: float) -> dict[str, tuple[int, int, dict[str, int]]]:
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for format_, seed in seeds().items():
            sub = Path(folder) / format_
            sub.mkdir()
            child = context.Process(target=_fuzz_child, args=(format_, seed, seconds, str(sub), queue))
            child.start()
            child.join(seconds + 120)
            if child.exitcode != 0 and queue.empty():
                results[format_] = (1, 0, {f"reader process died: exit {child.exitcode}": 1})
                continue
            name, tried, handled, problems = queue.get(timeout=10)
            results[name] = (tried, handled, problems)
    return results


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def run_corpus(cases: list[Case]) -> tuple[dict[str, list[int]], list[str], list[str]]:
    from tests.lake_helpers import KEEP_ALL, SYSTEM

    from datalibrary.bootstrap import initialize
    from datalibrary.config import Settings
    from datalibrary.db import Database
    from datalibrary.ingest.models import IngestJob
    from datalibrary.ingest.submit import submit_file
    from datalibrary.ingest.worker import run_tree
    from datalibrary.privacy.store import save_policy
    from datalibrary.wiring import register_handlers

    register_handlers()  # as every entry point does: a job's lineage
    scores: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    misses: list[str] = []
    with tempfile.TemporaryDirectory() as top:
        root = Path(top)
        home, sources = root / "home", root / "sources"
        sources.mkdir()
        settings = Settings(home=home, database_url=f"sqlite:///{home / 'state.db'}")
        db = Database(settings.connect_url())
        initialize(settings, db)
        settings = Settings(home=home, database_url=f"sqlite:///{home / 'state.db'}")
        with db.session() as session:
            save_policy(session, SYSTEM, KEEP_ALL)
        files = [case.make(sources) for case in cases]
        before = _files(root) - _files(home)
        for index, (case, path) in enumerate(zip(cases, files, strict=True)):
            scores[case.format][1] += 1
            with db.session() as session:
                job_id = submit_file(
                    session,
                    SYSTEM,
                    settings,
                    path,
                    table=f"c{index}.{'*' if case.format in ('fhir', 'zip') else 't'}",
                    policy="keep-all",
                ).id
            states = run_tree(settings, db, "bench", job_id)
            with db.session() as session:
                job = session.get(IngestJob, job_id)
                reason = json.dumps(job.reason or {})
            final = states[0][1] if states else "none"
            if case.state == "succeeded":
                final = "succeeded" if states and all(s == "succeeded" for _, s in states) else final
            ok = final == case.state and case.reason.lower() in reason.lower()
            if ok:
                scores[case.format][0] += 1
            else:
                misses.append(f"{case.format}/{case.name}: {final} {reason[:160]}")
        outside = sorted(str(p) for p in (_files(root) - _files(home)) - before)
        db.dispose()
    return scores, misses, outside


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fuzz-seconds", type=float, default=30.0, help="per format")
    parser.add_argument("--sample", action="store_true", help="a few cases, 3 s of fuzzing (CI)")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    cases = corpus()
    if args.sample:
        cases = [c for i, c in enumerate(cases) if i % 3 == 0]
        args.fuzz_seconds = 3.0
    started = time.monotonic()
    scores, misses, outside = run_corpus(cases)
    print("corpus (through the pipeline): handled correctly / tried")
    for format_, (good, tried) in sorted(scores.items()):
        print(f"  {format_:8s} {good}/{tried}")
    for miss in misses:
        print(f"  MISS {miss}")
    print(f"files written outside the state dir: {len(outside)}")
    for path in outside[:10]:
        print(f"  {path}")
    print(f"fuzzing readers ({args.fuzz_seconds:g} s per format): handled / tried")
    for format_, (tried, handled, problems) in sorted(fuzz(args.fuzz_seconds).items()):
        print(f"  {format_:8s} {handled}/{tried}")
        for problem, count in problems.items():
            print(f"    {count}x {problem}")
    server = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peak RSS: server (this process) {server:.0f} MB, largest job child {children:.0f} MB")
    print(f"total {time.monotonic() - started:.0f} s")
    if misses or outside:
        raise SystemExit(1)


if __name__ == "__main__":
    os.environ.setdefault("DATALIBRARY_LOG__LEVEL", "WARNING")
    main()
