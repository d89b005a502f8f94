"""The layers of DESIGN.md hold: import-linter checks the contract in pyproject.toml (a layer
imports only layers below it; front ends never import each other; the known exceptions are
listed there one by one, and an exception that no longer matches fails too)."""

from __future__ import annotations

import importlib.util
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


def test_the_documented_diagram_is_drawn_from_the_contracts() -> None:
    """docs/architecture.md's layer picture is generated: a contract changed without
    re-drawing it (or a hand edit of the picture) fails here."""
    spec = importlib.util.spec_from_file_location("diagram", ROOT / "scripts" / "architecture_diagram.py")
    assert spec is not None and spec.loader is not None
    diagram = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(diagram)
    document = (ROOT / "docs" / "architecture.md").read_text()
    expected = diagram.render(document, diagram.diagram(diagram.contracts()))
    assert document == expected, "run: python scripts/architecture_diagram.py --write"
    assert "L0 --> L1" in document and "independent of each other" in document
