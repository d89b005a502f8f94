"""The layers of DESIGN.md hold: import-linter checks the contract in pyproject.toml (a layer
imports only layers below it; front ends never import each other; the known exceptions are
listed there one by one, and an exception that no longer matches fails too), and no domain
module hides an import of another inside a function to dodge a cycle."""

from __future__ import annotations

import ast
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


PACKAGE = ROOT / "src" / "datalibrary"
# The front ends and the composition modules import lazily on purpose (CLI start, hooks).
OUTSIDE = {"api", "web", "cli", "sdk", "app.py", "wiring.py", "demo.py"}
# Each one is lazy because importing it at the top would load something slow for every caller.
LAZY = {
    ("__init__.py", "datalibrary.sdk"),  # http.client + ssl for every ``import datalibrary``
    ("db/__init__.py", "datalibrary.db"),  # its ``migrate``: Alembic for every caller of ``datalibrary.db``
}


def _type_checking(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
    )


def local_imports(source: str) -> list[tuple[int, str, bool]]:
    """(line, module, marked ``# lazy:``) of every ``datalibrary`` import inside a function or
    class body; module-level ones (``if TYPE_CHECKING:`` blocks included) are not listed."""
    lines = source.splitlines()
    found = []

    def visit(node: ast.AST, nested: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if _type_checking(child) and not nested:
                continue
            if nested and isinstance(child, ast.Import | ast.ImportFrom):
                if isinstance(child, ast.Import):
                    modules = [alias.name for alias in child.names]
                else:
                    modules = ["." * child.level + (child.module or "")]
                for module in modules:
                    if module.split(".")[0] == "datalibrary" or module.startswith("."):
                        text = "\n".join(lines[child.lineno - 1 : child.end_lineno])
                        found.append((child.lineno, module, "# lazy:" in text))
            scope = isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef)
            visit(child, nested or scope)

    visit(ast.parse(source), False)
    return found


def test_the_finder_sees_function_local_imports() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "from datalibrary.config import Settings\n"
        "if TYPE_CHECKING:\n"
        "    from datalibrary.lake.catalog import TableName\n"
        "def f():\n"
        "    from datalibrary.ingest import jobs\n"
        "    import json\n"
        "class C:\n"
        "    def g(self):\n"
        "        if True:\n"
        "            from . import pool  # lazy: a reason\n"
    )
    assert local_imports(source) == [(6, "datalibrary.ingest", False), (11, ".", True)]


def test_domain_modules_import_at_the_top() -> None:
    """A cycle is broken by moving what both sides need to a lower module, not by hiding the
    import in a function. The few imports kept lazy (a slow dependency every caller would
    pay for) say why with ``# lazy: <reason>`` and are listed in ``LAZY``."""
    hidden, marked = [], set()
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] in OUTSIDE:
            continue
        for line, module, lazy in local_imports(path.read_text()):
            if lazy:
                marked.add((relative.as_posix(), module))
            else:
                hidden.append(f"{relative}:{line}: {module}")
    assert hidden == [], "move these imports to the top (a cycle: move what both need lower down)"
    assert marked == LAZY
