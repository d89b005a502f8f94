"""The CLI starts fast: ``--help`` and every group's help load no data library (pandas,
pyarrow, pyiceberg, duckdb), nor do simple data commands; the lazily listed commands match
the real ones. Times are printed by ``benchmarks/cli.py``; tests do not assert them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main

from datalibrary.cli import COMMANDS, app

HEAVY = ("pandas", "pyarrow", "pyiceberg", "duckdb")
PROBE = """
import json, os, sys
sys.argv = ["datalibrary", *json.loads(sys.argv[1])]
from datalibrary.cli import main
real = sys.stdout
sys.stdout = open(os.devnull, "w")
code = 0
try:
    main()
except SystemExit as exc:
    code = exc.code or 0
sys.stdout = real
print(json.dumps({"code": code, "modules": sorted({m.split(".")[0] for m in sys.modules})}))
"""


def loaded(args: list[str], home: Path) -> tuple[int, set[str]]:
    """Run the CLI with ``args`` in a fresh interpreter; its exit code and top-level modules."""
    env = {**os.environ, "DATALIBRARY_HOME": str(home)}
    env.pop("DATALIBRARY_DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args)], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout.strip().splitlines()[-1])
    return data["code"], set(data["modules"])


def test_help_loads_no_data_library(tmp_path: Path) -> None:
    code, modules = loaded(["--help"], tmp_path)
    assert code == 0
    assert not modules & set(HEAVY), modules & set(HEAVY)
    # nor the ORM, the web framework or Rich's Markdown renderer: help is plain text
    assert not modules & {"sqlalchemy", "fastapi", "alembic", "pydantic_settings"}


@pytest.mark.parametrize("group", sorted(COMMANDS))
def test_every_group_help_loads_no_data_library(group: str, tmp_path: Path) -> None:
    code, modules = loaded([group, "--help"], tmp_path)
    assert code == 0
    assert not modules & set(HEAVY), f"'{group} --help' loads {sorted(modules & set(HEAVY))}"


SIMPLE = [
    ["version"],
    ["config", "show", "--json"],
    ["users", "list", "--json"],
    ["audit", "verify", "--json"],
    ["groups", "list", "--json"],
    ["jobs", "list", "--json"],
    ["workspaces", "history", "--json"],
    ["packages", "uploads", "--json"],
]


@pytest.mark.parametrize("args", SIMPLE)
def test_simple_commands_load_no_data_library(args: list[str], tmp_path: Path) -> None:
    loaded(["init", "--json"], tmp_path)
    code, modules = loaded(args, tmp_path)
    assert code == 0
    assert not modules & set(HEAVY), f"{args} loads {sorted(modules & set(HEAVY))}"
    if args in (["version"], ["config", "show", "--json"]):
        assert "sqlalchemy" not in modules, "no database: no ORM (a URL's password is hidden without it)"


def test_importing_accounts_hashes_no_password() -> None:
    """argon2's dummy hash (for unknown users) is made on first verify, not at import."""
    probe = (
        "import argon2, time\n"
        "calls = []\n"
        "real = argon2.PasswordHasher.hash\n"
        "argon2.PasswordHasher.hash = lambda self, p, **kw: calls.append(1) or real(self, p, **kw)\n"
        "import datalibrary.auth.passwords as pw\n"
        "assert calls == [], calls\n"
        "assert pw.verify_password(None, 'x') is False and calls == [1]\n"
        "assert pw.verify_password(pw.hash_password('y' * 12), 'y' * 12) and len(calls) == 2\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_listed_help_matches_each_command() -> None:
    root = typer.main.get_command(app)
    for name, entry in COMMANDS.items():
        command = root.commands[name]
        first_line = (command.help or "").strip().splitlines()[0]
        assert entry.help == first_line, f"COMMANDS[{name!r}] says {entry.help!r}, the command {first_line!r}"
    assert list(root.commands) == list(COMMANDS)
