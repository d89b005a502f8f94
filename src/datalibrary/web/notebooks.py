"""A Jupyter notebook as read-only HTML for the repository pages.

Everything is escaped: markdown is rendered with raw HTML off (markdown-it-py also refuses
``javascript:``/``vbscript:``/``data:`` links), code and text outputs are text, and HTML,
JavaScript, SVG or widget outputs are never rendered (their plain-text form is shown, or a
note). Only PNG/JPEG/GIF images are embedded, as ``data:`` URLs of validated base64. The
page's Content-Security-Policy forbids inline scripts as a second wall."""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Any

from markdown_it import MarkdownIt
from markupsafe import Markup

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
IMAGES = ("image/png", "image/jpeg", "image/gif")
MAX_CELLS = 2000
MAX_TEXT = 200_000

_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False}).disable("image")


@dataclass
class Output:
    kind: str  # text | error | image | note
    text: str = ""
    mime: str = ""
    data: str = ""  # base64 for images


@dataclass
class Cell:
    kind: str  # markdown | code | raw
    source: str
    html: Markup | None = None  # markdown cells only
    count: int | None = None
    outputs: list[Output] = field(default_factory=list)


@dataclass
class Notebook:
    language: str
    cells: list[Cell]
    truncated: bool = False


def _text(value: Any) -> str:
    text = "".join(value) if isinstance(value, list) else str(value or "")
    return ANSI.sub("", text)[:MAX_TEXT]


def _image(mime: str, value: Any) -> Output | None:
    raw = _text(value).replace("\n", "")
    try:
        base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        return None
    return Output("image", mime=mime, data=raw)


def _output(item: dict[str, Any]) -> Output:
    kind = item.get("output_type")
    if kind == "stream":
        return Output("text", _text(item.get("text")))
    if kind == "error":
        lines = item.get("traceback") or [f"{item.get('ename', '')}: {item.get('evalue', '')}"]
        return Output("error", _text("\n".join(str(line) for line in lines)))
    data = item.get("data") if isinstance(item.get("data"), dict) else {}
    for mime in IMAGES:
        if mime in data and (image := _image(mime, data[mime])) is not None:
            return image
    if "text/plain" in data:
        return Output("text", _text(data["text/plain"]))
    shown = ", ".join(sorted(str(k) for k in data)) or "nothing"
    return Output("note", f"output not shown here ({shown}); open the notebook in JupyterLab")


def render(content: bytes) -> Notebook:
    """Parse an .ipynb (nbformat 4); ``ValueError`` when it is not one."""
    try:
        document = json.loads(content)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not a notebook: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("cells"), list):
        raise ValueError("not a notebook: no list of cells (nbformat 4)")
    metadata = document.get("metadata") if isinstance(document.get("metadata"), dict) else {}
    language = str((metadata.get("kernelspec") or {}).get("language") or "python")[:40]
    cells = []
    for raw in document["cells"][:MAX_CELLS]:
        if not isinstance(raw, dict):
            continue
        kind = raw.get("cell_type")
        source = _text(raw.get("source"))
        if kind == "markdown":
            cells.append(Cell("markdown", source, html=Markup(_markdown.render(source))))  # noqa: S704
        elif kind == "code":
            outputs = [_output(o) for o in raw.get("outputs") or [] if isinstance(o, dict)]
            count = raw.get("execution_count")
            cells.append(
                Cell("code", source, count=count if isinstance(count, int) else None, outputs=outputs)
            )
        else:
            cells.append(Cell("raw", source))
    return Notebook(language, cells, truncated=len(document["cells"]) > MAX_CELLS)
