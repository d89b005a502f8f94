"""Server-side SVG of a lineage graph: five columns (sources, policies, dataset, activities,
users), nodes as links, curved edges. No script, scales to the page width (viewBox)."""

from __future__ import annotations

from html import escape
from typing import Any

COLUMN_WIDTH, NODE_WIDTH, NODE_HEIGHT, GAP, MARGIN = 210, 180, 46, 14, 16
HEADINGS = ("Source files", "Policies", "Dataset", "Activities", "Users")


def _clip(text: str, size: int = 24) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"


def render_svg(graph: dict[str, Any], title: str) -> str:
    columns: dict[int, list[dict[str, Any]]] = {}
    for node in graph["nodes"]:
        columns.setdefault(node["column"], []).append(node)
    rows = max((len(v) for v in columns.values()), default=1)
    width = MARGIN * 2 + COLUMN_WIDTH * 4 + NODE_WIDTH
    height = MARGIN * 2 + 24 + rows * (NODE_HEIGHT + GAP)
    where: dict[str, tuple[float, float]] = {}
    for column, nodes in columns.items():
        offset = (rows - len(nodes)) * (NODE_HEIGHT + GAP) / 2
        for i, node in enumerate(nodes):
            where[node["id"]] = (
                MARGIN + column * COLUMN_WIDTH,
                MARGIN + 24 + offset + i * (NODE_HEIGHT + GAP),
            )
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height:.0f}" class="lineage-graph" '
        f'role="img" aria-labelledby="graph-title"><title id="graph-title">{escape(title)}</title>'
    ]
    for column, heading in enumerate(HEADINGS):
        parts.append(
            f'<text x="{MARGIN + column * COLUMN_WIDTH}" y="{MARGIN + 8}" class="g-head">{heading}</text>'
        )
    for link in graph["links"]:
        if link["from"] not in where or link["to"] not in where:
            continue
        (x1, y1), (x2, y2) = where[link["from"]], where[link["to"]]
        x1, y1, y2 = x1 + NODE_WIDTH, y1 + NODE_HEIGHT / 2, y2 + NODE_HEIGHT / 2
        middle = (x1 + x2) / 2
        parts.append(
            f'<path d="M{x1:.0f},{y1:.0f} C{middle:.0f},{y1:.0f} {middle:.0f},{y2:.0f} {x2:.0f},{y2:.0f}" '
            f'class="g-link"><title>{escape(link.get("label", ""))}</title></path>'
        )
    for node in graph["nodes"]:
        x, y = where[node["id"]]
        detail = _clip(node.get("detail") or "", 30)
        box = (
            f'<rect x="{x:.0f}" y="{y:.0f}" width="{NODE_WIDTH}" height="{NODE_HEIGHT}" rx="6" '
            f'class="g-node g-col{node["column"]}"/>'
            f'<text x="{x + 8:.0f}" y="{y + 19:.0f}" class="g-label">{escape(_clip(node["label"]))}</text>'
            f'<text x="{x + 8:.0f}" y="{y + 36:.0f}" class="g-detail">{escape(detail)}'
            f"</text><title>{escape(node['label'])} {escape(node.get('detail') or '')}</title>"
        )
        if node.get("href"):
            parts.append(f'<a href="{escape(node["href"])}">{box}</a>')
        else:
            parts.append(f"<g>{box}</g>")
    parts.append("</svg>")
    return "".join(parts)
