"""CLI start-up: wall time of ``datalibrary --help``, ``version`` and simple data commands,
against two baselines measured in the same run: a bare interpreter (the floor) and importing
every CLI module eagerly (what each command cost before the commands loaded lazily).

    .venv/bin/python benchmarks/cli.py [--repeat 5]

Each case runs ``--repeat`` times in a fresh process against a throw-away installation
(SQLite); the median is printed with its ratio to the floor. Targets (issue #15, quiet
machine): ``--help`` < 0.3 s, simple data commands < 0.6 s. Tests never assert times."""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PYTHON = sys.executable
CLI = [PYTHON, "-c", "from datalibrary.cli import main; main()"]
EAGER = (
    "import datalibrary.cli.core, datalibrary.cli.query, datalibrary.cli.users, datalibrary.cli.groups, "
    "datalibrary.cli.projects, datalibrary.cli.tokens, datalibrary.cli.audit, datalibrary.cli.access, "
    "datalibrary.cli.ingest, datalibrary.cli.datasets, datalibrary.cli.lake, datalibrary.cli.policies, "
    "datalibrary.cli.workspaces, datalibrary.cli.lineage, datalibrary.cli.keys, datalibrary.cli.costs, "
    "datalibrary.costs.storage, datalibrary.lake.datasets"
)
CASES: list[tuple[str, list[str], float | None]] = [
    ("floor: python -c pass", [PYTHON, "-c", "pass"], None),
    ("baseline: import every CLI module", [PYTHON, "-c", EAGER], None),
    ("datalibrary --help", [*CLI, "--help"], 0.3),
    ("datalibrary version", [*CLI, "version"], 0.6),
    ("datalibrary config show --json", [*CLI, "config", "show", "--json"], 0.6),
    ("datalibrary users list --json", [*CLI, "users", "list", "--json"], 0.6),
    ("datalibrary audit verify --json", [*CLI, "audit", "verify", "--json"], 0.6),
    ("datalibrary jobs list --json", [*CLI, "jobs", "list", "--json"], 0.6),
]


def timed(command: list[str], env: dict[str, str], repeat: int) -> tuple[float, float]:
    """Median wall time and median CPU time (user + system) of ``command``; CPU time is the
    steadier number on a shared machine."""
    walls, cpus = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def bytecode_state() -> str:
    """An installed package has its bytecode compiled (pip does it); a checkout run with
    PYTHONDONTWRITEBYTECODE=1 and no __pycache__ compiles every module of every command
    again (about 1 s of CPU for a data command here). Say which case is measured."""
    import sqlalchemy

    import datalibrary.cli

    cached = [
        Path(module.__file__).parent / "__pycache__"
        for module in (datalibrary.cli, sqlalchemy)
        if module.__file__
    ]
    if all(path.is_dir() and any(path.iterdir()) for path in cached):
        return "cached (as installed)"
    hint = " (PYTHONDONTWRITEBYTECODE is set)" if os.environ.get("PYTHONDONTWRITEBYTECODE") else ""
    return f"NOT cached{hint}: every run compiles (python -m compileall the venv and src first)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    bytecode = bytecode_state()
    print(f"bytecode: {bytecode}")
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "DATALIBRARY_HOME": str(Path(home) / "home")}
        env.pop("DATALIBRARY_DATABASE_URL", None)
        subprocess.run([*CLI, "init", "--json"], env=env, check=True, stdout=subprocess.DEVNULL)
        floor = None
        eager = None
        print(f"{'case':36} {'wall s':>7} {'cpu s':>6} {'x floor':>8} {'/ eager':>8}  target (wall)")
        for label, command, target in CASES:
            seconds, cpu = timed(command, env, args.repeat)
            floor = floor or seconds
            if label.startswith("baseline"):
                eager = seconds
            share = f"{seconds / eager:8.2f}" if eager and not label.startswith("baseline") else " " * 8
            verdict = "" if target is None else (f"< {target} s " + ("ok" if seconds < target else "MISSED"))
            print(f"{label:36} {seconds:7.3f} {cpu:6.3f} {seconds / floor:8.1f} {share}  {verdict}")
        print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (run on a quiet machine)")


if __name__ == "__main__":
    main()
