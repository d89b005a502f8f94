"""Run the whole DuckDB-derived fuzz corpus as a restricted caller; print tried, accepted,
ran and leaked (leaked must be 0). Exit status 1 on any leak.

    .venv/bin/python scripts/fuzz_query_corpus.py [--limit N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fuzz_corpus import load, make_view, run  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    statements = load(args.limit)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as directory:
        counts = run(statements, make_view(Path(directory)))
    seconds = time.perf_counter() - started
    print(
        f"tried {counts.tried}  refused {counts.refused}  accepted {counts.accepted}  "
        f"ran {counts.ran}  failed {counts.failed}  leaked {counts.leaked}  ({seconds:.0f} s)"
    )
    for sql in counts.leaks[:20]:
        print("LEAK:", sql.replace("\n", " ")[:300])
    return 1 if counts.leaked else 0


if __name__ == "__main__":
    sys.exit(main())
