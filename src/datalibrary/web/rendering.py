"""Template rendering with a typed page context shared by every page."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from datalibrary import __version__
from datalibrary.auth.permissions import Principal
from datalibrary.web.sections import SECTIONS, Section

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


@dataclass
class PageContext:
    """What every page's layout needs; ``data`` carries the page's own content."""

    title: str
    principal: Principal | None = None
    csrf_token: str = ""
    active: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    notice: str = ""
    version: str = __version__

    @property
    def nav(self) -> list[Section]:
        if self.principal is None:
            return []
        return [s for s in SECTIONS if s.visible_to(self.principal)]


def render(request: Request, template: str, page: PageContext, status_code: int = 200) -> HTMLResponse:
    return templates.TemplateResponse(request, template, {"page": page, **page.data}, status_code=status_code)
