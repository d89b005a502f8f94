"""Lineage pages (dataset graph, user page, printable compliance report) and the exports
airlock pages (request, review, download once)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup
from pydantic import BaseModel

from datalibrary.auth.permissions import Permission, Principal
from datalibrary.bounds import RecordId
from datalibrary.db.base import utcnow
from datalibrary.errors import DataLibraryError, InvalidInput
from datalibrary.http.deps import DbSession, SettingsDep
from datalibrary.lineage import compliance, exports, graph
from datalibrary.web.forms import Decided, Posted, attempt, posted
from datalibrary.web.guards import DENIED, PageDenied, SignedIn, allowed
from datalibrary.web.lineage_svg import render_svg
from datalibrary.web.pages import page_for, page_with
from datalibrary.web.rendering import render

router = APIRouter(include_in_schema=False)
Text = Annotated[str, Form()]


def _error(request: Request, page, status: int, detail: str) -> Response:  # type: ignore[no-untyped-def]
    page.title = "Not allowed" if status == 403 else ("Not found" if status == 404 else "Cannot show this")
    return render(request, "error.html", page_with(page, detail=detail), status_code=status)


@router.get("/lineage")
def index(request: Request, session: DbSession, principal: SignedIn) -> Response:
    page = page_for(request, session, principal, "Lineage", active="lineage")
    if not principal.can(Permission.LINEAGE_READ):
        return RedirectResponse(f"/lineage/users/{principal.name}", status_code=303)
    datasets = graph.traced_datasets(session, principal)
    namespaces = sorted({d.namespace for d in datasets})
    return render(request, "lineage/index.html", page_with(page, datasets=datasets, namespaces=namespaces))


@router.get("/lineage/datasets/{name}")
def dataset_page(request: Request, name: str, session: DbSession, principal: SignedIn) -> Response:
    page = page_for(request, session, principal, f"Lineage of {name}", active="lineage")
    try:
        data = graph.dataset_lineage(session, principal, name)
    except DataLibraryError as exc:
        return _error(request, page, exc.status, exc.detail)
    svg = Markup(render_svg(data["graph"], f"Lineage graph of {name}"))  # noqa: S704 - every value escaped
    return render(request, "lineage/dataset.html", page_with(page, d=data, svg=svg))


@router.get("/lineage/users")
def user_lookup(request: Request, name: str = "") -> Response:
    return RedirectResponse(f"/lineage/users/{name.strip() or 'unknown'}", status_code=303)


@router.get("/lineage/users/{name}")
def user_page(request: Request, name: str, session: DbSession, principal: SignedIn) -> Response:
    page = page_for(request, session, principal, f"Lineage of {name}", active="lineage")
    try:
        data = graph.user_lineage(session, principal, name)
    except DataLibraryError as exc:
        return _error(request, page, exc.status, exc.detail)
    return render(request, "lineage/user.html", page_with(page, u=data))


def _moment(value: str, default: datetime) -> datetime:
    if not value.strip():
        return default
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(f"'{value[:40]}' is not a date (YYYY-MM-DD)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@router.get("/lineage/report")
def report_page(
    request: Request,
    session: DbSession,
    principal: SignedIn,
    scope: str = "",
    start: str = "",
    end: str = "",
) -> Response:
    page = page_for(request, session, principal, f"Compliance report: {scope}", active="lineage")
    try:
        begin = _moment(start, datetime(1970, 1, 1, tzinfo=UTC))
        finish = _moment(end, utcnow())
        data = compliance.compliance_report(session, principal, scope, begin, finish)
    except DataLibraryError as exc:
        return _error(request, page, exc.status, exc.detail)
    return render(request, "lineage/report.html", page_with(page, r=data, start=start, end=end))


# exports ------------------------------------------------------------------------------------


def _exports_page(request: Request, session: DbSession, principal, status: int = 200, **extra) -> Response:  # type: ignore[no-untyped-def]
    page = page_for(request, session, principal, "Exports", active="exports")
    mine = exports.list_exports(session, principal) if principal.can(Permission.EXPORTS_REQUEST) else []
    pending = (
        exports.list_exports(session, principal, everyone=True, state="pending")
        if principal.can(Permission.EXPORTS_REVIEW)
        else []
    )
    page.errors = extra.pop("errors", {})
    return render(
        request,
        "exports/index.html",
        page_with(page, mine=mine, pending=pending, form=extra.pop("form", {}), **extra),
        status_code=status,
    )


@router.get("/exports")
def exports_index(request: Request, session: DbSession, principal: SignedIn) -> Response:
    if not (principal.can(Permission.EXPORTS_REQUEST) or principal.can(Permission.EXPORTS_REVIEW)):
        raise PageDenied(page_for(request, session, principal, "Not allowed"), DENIED)
    return _exports_page(request, session, principal)


class ExportForm(BaseModel):
    """The export request form: a query's result or a workspace file, and why it leaves."""

    kind: str = "query"
    sql: str = ""
    path: str = ""
    purpose: str = ""
    destination: str = ""
    format: str = "csv"
    workspace: str = ""


@router.post("/exports")
def exports_request(
    form: Annotated[Posted, posted(Permission.EXPORTS_REQUEST)], fields: Annotated[ExportForm, Form()]
) -> Response:
    def create():  # type: ignore[no-untyped-def]
        return exports.request_export(
            form.session, form.principal, form.settings, purpose=fields.purpose,
            destination=fields.destination, sql=fields.sql if fields.kind == "query" else None,
            path=fields.path if fields.kind == "file" else None,
            workspace=int(fields.workspace) if fields.workspace.strip().isdigit() else None,
            format=fields.format, runner=_runner(form.request, form.settings),
        )  # fmt: skip

    return form.submit(create, "/exports?sent=1", form.again(_exports_page, form=fields.model_dump()))


def _runner(request: Request, settings) -> exports.QueryRunner:  # type: ignore[no-untyped-def]
    return exports.QueryRunner(request.app.state.planner, settings.query.limits())


def _review_page(  # type: ignore[no-untyped-def]
    request: Request,
    session,
    principal,
    settings,
    export_id: int,
    quasi: list[str],
    counted: str | None,
    errors: dict[str, str] | None = None,
    status: int = 200,
    override_reason: str = "",
) -> Response:
    page = page_for(request, session, principal, f"Export #{export_id}", active="exports")
    page.errors = errors or {}
    try:
        export = exports.get_export(session, export_id)
        summary = (
            exports.summarize(session, principal, settings, export_id, quasi, counted)
            if export.state == "pending"
            else exports.export_dict(export, reviewer=True)["summary"]
        )
    except DataLibraryError as exc:
        session.rollback()
        return _error(request, page, exc.status, exc.detail)
    return render(
        request,
        "exports/review.html",
        page_with(
            page,
            x=export,
            summary=summary,
            qi=", ".join(quasi),
            count_column=counted or "",
            override_reason=override_reason,
        ),  # fmt: skip
        status_code=status,
    )


@router.get("/exports/{export_id}")
def export_review(
    request: Request,
    export_id: RecordId,
    session: DbSession,
    principal: Annotated[Principal, allowed(Permission.EXPORTS_REVIEW)],
    settings: SettingsDep,
    qi: str = "",
    count_column: str = "",
) -> Response:
    quasi = [q.strip() for q in qi.split(",") if q.strip()][:50]
    return _review_page(
        request, session, principal, settings, export_id, quasi, count_column.strip()[:200] or None
    )


@router.post("/exports/{export_id}/decision")
def export_decision(
    export_id: RecordId,
    form: Annotated[Posted, posted(Permission.EXPORTS_REVIEW)],
    answer: Decided,
    qi: Text = "",
    count_column: Text = "",
    override_reason: Text = "",
) -> Response:
    quasi = [q.strip() for q in qi.split(",") if q.strip()][:50]
    counted = count_column.strip()[:200] or None

    def run():  # type: ignore[no-untyped-def]
        return exports.decide(
            form.session, form.principal, form.settings, export_id, approve=answer.approve, note=answer.note,
            quasi_identifiers=quasi, count_column=counted, override_reason=override_reason,
        )  # fmt: skip

    def again(errors: dict[str, str]) -> Response:
        return _review_page(
            form.request, form.session, form.principal, form.settings, export_id, quasi, counted, errors, 422,
            override_reason,
        )  # fmt: skip

    return form.submit(run, lambda done: f"/exports?decided={export_id}&state={done.state}", again)


@router.post("/exports/{export_id}/download")
def export_download(
    request: Request,
    export_id: RecordId,
    session: DbSession,
    principal: Annotated[Principal, allowed(Permission.EXPORTS_REQUEST)],
    csrf_token: Text = "",
) -> Response:
    errors: dict[str, str] = {}
    taken = attempt(
        session, principal, csrf_token, lambda: exports.download(session, principal, export_id), errors
    )
    if taken is None:
        return _exports_page(request, session, principal, 409, errors=errors)
    content, filename = taken
    return Response(
        content,
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )
