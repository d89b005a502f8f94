"""Draw docs/architecture.md's layer diagram from the import-linter contracts in pyproject.toml,
so the picture cannot drift from what CI enforces.

    python scripts/architecture_diagram.py          # print the diagram
    python scripts/architecture_diagram.py --write  # put it into docs/architecture.md
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "architecture.md"
BEGIN = "<!-- generated from pyproject.toml's contracts by scripts/architecture_diagram.py: begin -->"
END = "<!-- generated: end -->"


def contracts(pyproject: Path = ROOT / "pyproject.toml") -> list[dict]:
    return tomllib.loads(pyproject.read_text())["tool"]["importlinter"]["contracts"]


def diagram(found: list[dict]) -> str:
    """A Mermaid flowchart: one box per layer, top to bottom; an arrow reads "may import"."""
    lines = ["```mermaid", "flowchart TB"]
    for contract in found:
        if contract["type"] != "layers":
            continue
        names = []
        for index, layer in enumerate(contract["layers"]):
            independent = "|" in layer
            modules = [m.strip() for m in re.split(r"[|:]", layer)]
            label = " · ".join(modules) + ("<br/><i>independent of each other</i>" if independent else "")
            names.append(f"L{index}")
            lines.append(f'    L{index}["{label}"]')
        lines += [f"    {upper} --> {lower}" for upper, lower in zip(names, names[1:], strict=False)]
    lines.append("```")
    notes = []
    for contract in found:
        exceptions = contract.get("ignore_imports", [])
        listed = "; ".join(f"`{e}`" for e in exceptions) or "none"
        notes.append(f"- **{contract['name']}** ({contract['type']}); listed exceptions: {listed}.")
    return "\n".join([*lines, "", *notes])


def render(document: str, drawn: str) -> str:
    start, stop = document.index(BEGIN) + len(BEGIN), document.index(END)
    return document[:start] + "\n" + drawn + "\n" + document[stop:]


def main() -> None:
    drawn = diagram(contracts())
    if "--write" in sys.argv[1:]:
        DOC.write_text(render(DOC.read_text(), drawn))
    else:
        print(drawn)


if __name__ == "__main__":
    main()
