"""Ingestion benchmark: the pipeline and the CSV reader against the floor, same file, same run.

Floor = ``pyarrow.csv.read_csv`` -> ``pyarrow.parquet.write_table`` (zstd): no policy, no
catalog. Each measurement runs in its own subprocess so its peak RSS (``ru_maxrss`` from
``os.wait4``) is its own. Prints MB/s, peak RSS and ratios; never asserts a time.

    python benchmarks/ingest.py                 # ~2 GB LB-like CSV, floor + reader + pipeline
    python benchmarks/ingest.py --size-mb 200   # quicker
    python benchmarks/ingest.py --floor-only    # no pipeline (before the lake lands)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_floor(path: Path, out: Path) -> dict:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    table = pacsv.read_csv(path)
    pq.write_table(table, out, compression="zstd")
    return {"rows": table.num_rows}


def run_reader(path: Path, out: Path) -> dict:
    """The CsvReader alone: sniff, infer, stream every batch (no Parquet writing)."""
    from datalibrary.ingest.readers.csv import CsvReader

    rows = 0
    for batch in CsvReader(path).batches():
        rows += batch.num_rows
    return {"rows": rows}


def run_reader_parquet(path: Path, out: Path) -> dict:
    """The CsvReader streaming into a zstd Parquet writer: what the pipeline's core does."""
    import pyarrow.parquet as pq

    from datalibrary.ingest.readers.csv import CsvReader

    reader = CsvReader(path)
    rows = 0
    with pq.ParquetWriter(out, reader.schema(), compression="zstd") as writer:
        for batch in reader.batches():
            writer.write_batch(batch)
            rows += batch.num_rows
    return {"rows": rows}


def run_pipeline(path: Path, table: str) -> dict:
    """End to end through ``datalibrary.ingest.pipeline.ingest_file`` (the lake branch)."""
    from datalibrary.ingest.pipeline import ingest_file  # noqa: PLC0415 - lands with the lake

    result = ingest_file(path, table)
    return {"rows": getattr(result, "rows", None)}


CASES = {"floor": run_floor, "reader": run_reader, "reader+parquet": run_reader_parquet}


def child(case: str, path: str, out: str) -> None:
    if case == "pipeline":
        result = run_pipeline(Path(path), "bench.lb")
    else:
        result = CASES[case](Path(path), Path(out))
    print(json.dumps(result))


def measure(case: str, path: Path, work: Path) -> dict:
    out = work / f"{case.replace('+', '_')}.parquet"
    env = dict(os.environ, PYTHONPATH=f"{ROOT / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child", case, str(path), str(out)], stdout=subprocess.PIPE, env=env
    )
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    output = proc.stdout.read().decode() if proc.stdout else ""
    if status != 0:
        raise SystemExit(f"{case} failed (status {status})")
    size = path.stat().st_size
    return {
        "case": case,
        "seconds": round(seconds, 2),
        "mb_per_s": round(size / 1e6 / seconds, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        **json.loads(output.strip().splitlines()[-1]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=2000, help="size of the generated CSV")
    parser.add_argument("--floor-only", action="store_true", help="measure the floor and the reader only")
    parser.add_argument("--workdir", type=Path, default=None, help="where to write (default: a temp dir)")
    parser.add_argument("--child", nargs=3, metavar=("CASE", "PATH", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    sys.path.insert(0, str(ROOT / "src"))
    from datalibrary.demo_data import write_lb_csv

    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        work = Path(tmp)
        csv_path = work / "lb.csv"
        started = time.perf_counter()
        rows = write_lb_csv(csv_path, args.size_mb * 1_000_000)
        size = csv_path.stat().st_size
        print(f"generated {size / 1e6:.0f} MB, {rows} rows in {time.perf_counter() - started:.1f} s")
        cases = ["floor", "reader", "reader+parquet"] + ([] if args.floor_only else ["pipeline"])
        results = {case: measure(case, csv_path, work) for case in cases}
        floor = results["floor"]["mb_per_s"]
        print(f"{'case':<16}{'MB/s':>8}{'peak RSS MB':>14}{'x floor':>9}{'rows':>12}")
        for case, result in results.items():
            ratio = result["mb_per_s"] / floor
            print(
                f"{case:<16}{result['mb_per_s']:>8}{result['peak_rss_mb']:>14}{ratio:>9.2f}{result['rows']!s:>12}"
            )


if __name__ == "__main__":
    main()
