"""The layers of DESIGN.md hold: import-linter checks the contract in pyproject.toml (a layer
imports only layers below it; front ends never import each other; the known exceptions are
listed there one by one, and an exception that no longer matches fails too)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_layer_contract_is_kept() -> None:
    result = subprocess.run(  # noqa: S603
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "2 kept, 0 broken" in result.stdout
