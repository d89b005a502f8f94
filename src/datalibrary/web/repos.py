"""Repository pages: a project's repositories (create and archive for stewards and admins),
one repository's branches, commits and files with its clone URL and instructions, and a
file view (notebooks rendered read-only). The checks are the domain service's (``repos.use``
for members, ``repos.manage`` to create, archive or browse any project); anyone else gets
the same "not found" as the API, so other projects' repositories never show."""

from __future__ import annotations

import asyncio
from pathlib import PurePosixPath

from fastapi import APIRouter, Request
from fastapi.responses import Response

from datalibrary.auth.permissions import Permission, Principal
from datalibrary.errors import DataLibraryError
from datalibrary.http.deps import DbSession, SettingsDep
from datalibrary.repos import browse, service
from datalibrary.repos.schemas import RepoOut
from datalibrary.web import notebooks
from datalibrary.web.guards import SignedIn
from datalibrary.web.pages import page_for, page_with
from datalibrary.web.rendering import PageContext, render

router = APIRouter(include_in_schema=False)


def _refused(request: Request, page: PageContext, exc: DataLibraryError) -> Response:
    page.title = {403: "Not allowed", 404: "Not found"}.get(exc.status, "Cannot show this")
    return render(request, "error.html", page_with(page, detail=exc.detail), status_code=exc.status)


def _allowed(principal: Principal) -> bool:
    return principal.can(Permission.REPOS_USE) or principal.can(Permission.REPOS_MANAGE)


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


@router.get("/repos")
def repos_page(request: Request, session: DbSession, settings: SettingsDep, principal: SignedIn) -> Response:
    page = page_for(request, session, principal, "Repositories", active="repos")
    if not _allowed(principal):
        page.title = "Not allowed"
        detail = "Your roles do not include project Git repositories."
        return render(request, "error.html", page_with(page, detail=detail), 403)
    projects = []
    for name in service.visible_projects(session, principal):
        repos = [RepoOut.of(r) for r in service.list_repos(session, settings, principal, name)]
        projects.append({"name": name, "member": name in principal.projects, "repos": repos})
    return render(
        request,
        "repos.html",
        page_with(
            page, projects=projects, can_manage=principal.can(Permission.REPOS_MANAGE), base=_base(request)
        ),
    )


@router.get("/repos/{project}/{repo}")
async def repo_page(
    request: Request,
    project: str,
    repo: str,
    session: DbSession,
    settings: SettingsDep,
    principal: SignedIn,
    ref: str = "",
    path: str = "",
) -> Response:
    page = page_for(request, session, principal, f"{project}/{repo}", active="repos")
    try:
        facts = service.get_repo(session, settings, principal, project, repo)
        empty = await asyncio.to_thread(browse.is_empty, facts.path)
        branches = await asyncio.to_thread(browse.branches, facts.path)
        current = ref or browse.default_branch(facts.path)
        commits = [] if empty else await asyncio.to_thread(browse.commits, facts.path, current, 30)
        entries = [] if empty else await asyncio.to_thread(browse.tree, facts.path, current, path)
    except DataLibraryError as exc:
        return _refused(request, page, exc)
    if request.query_params.get("created"):
        page.notice = f"Repository {facts.project}/{facts.name} created."
    parts = PurePosixPath(path.strip("/")).parts if path.strip("/") else ()
    crumbs = [{"name": part, "path": "/".join(parts[: i + 1])} for i, part in enumerate(parts)]
    return render(
        request,
        "repo.html",
        page_with(
            page,
            repo=RepoOut.of(facts),
            empty=empty,
            branches=branches,
            ref=current,
            path=path.strip("/"),
            crumbs=crumbs,
            commits=commits,
            entries=entries,
            member=project in principal.projects and principal.can(Permission.REPOS_USE),
            can_manage=principal.can(Permission.REPOS_MANAGE),
            base=_base(request),
        ),
    )


@router.get("/repos/{project}/{repo}/file")
async def file_page(
    request: Request,
    project: str,
    repo: str,
    session: DbSession,
    settings: SettingsDep,
    principal: SignedIn,
    path: str = "",
    ref: str = "",
) -> Response:
    page = page_for(request, session, principal, f"{project}/{repo}: {path}", active="repos")
    try:
        facts = service.get_repo(session, settings, principal, project, repo)
        current = ref or browse.default_branch(facts.path)
        content = await asyncio.to_thread(browse.blob, facts.path, current, path)
    except DataLibraryError as exc:
        return _refused(request, page, exc)
    text: str | None
    try:
        text = content.decode()
    except UnicodeDecodeError:
        text = None
    notebook, problem = None, ""
    if text is not None and path.endswith(".ipynb"):
        try:
            notebook = notebooks.render(content)
        except ValueError as exc:
            problem = str(exc)
    parts = PurePosixPath(path.strip("/")).parts
    crumbs = [{"name": part, "path": "/".join(parts[: i + 1])} for i, part in enumerate(parts)]
    return render(
        request,
        "repo_file.html",
        page_with(
            page,
            repo=RepoOut.of(facts),
            ref=current,
            path=path.strip("/"),
            crumbs=crumbs,
            size=len(content),
            text=text,
            notebook=notebook,
            problem=problem,
        ),
    )
