"""Project repositories: list, create, archive; browse branches, commits and files.

Cloning and pushing go through Git's own protocol at ``/git/{project}/{repo}.git``."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Query
from pydantic import BaseModel

from datalibrary.api.fields import AccountName, GitRef, RepoFilePath, RepoName, RepoPath
from datalibrary.auth.permissions import Permission
from datalibrary.http.deps import CurrentPrincipal, DbSession, Requires, SettingsDep
from datalibrary.repos import browse, service
from datalibrary.repos.schemas import BranchOut, CommitOut, CommitsOut, EntryOut, RepoIn, RepoOut

router = APIRouter(prefix="/projects/{project}/repos", tags=["repositories"])
USE = [Requires(Permission.REPOS_USE)]
MANAGE = [Requires(Permission.REPOS_MANAGE)]


class FileOut(BaseModel):
    path: str
    ref: str
    size: int
    binary: bool
    text: str | None  # UTF-8 content; None for binary files


@router.get("", summary="List a project's repositories", dependencies=USE)
def list_repos(
    project: AccountName, principal: CurrentPrincipal, session: DbSession, settings: SettingsDep
) -> list[RepoOut]:
    return [RepoOut.of(r) for r in service.list_repos(session, settings, principal, project)]


@router.post("", summary="Create a repository", status_code=201, dependencies=MANAGE)
def create_repo(
    project: AccountName, body: RepoIn, principal: CurrentPrincipal, session: DbSession, settings: SettingsDep
) -> RepoOut:
    return RepoOut.of(service.create_repo(session, settings, principal, project, body.name, body.description))


@router.get("/{repo}", summary="One repository", dependencies=USE)
def read_repo(
    project: AccountName,
    repo: RepoName,
    principal: CurrentPrincipal,
    session: DbSession,
    settings: SettingsDep,
) -> RepoOut:
    return RepoOut.of(service.get_repo(session, settings, principal, project, repo))


@router.post("/{repo}/archive", summary="Archive a repository (read-only)", dependencies=MANAGE)
def archive_repo(
    project: AccountName,
    repo: RepoName,
    principal: CurrentPrincipal,
    session: DbSession,
    settings: SettingsDep,
) -> RepoOut:
    return RepoOut.of(service.set_archived(session, settings, principal, project, repo, True))


@router.post("/{repo}/unarchive", summary="Make an archived repository writable again", dependencies=MANAGE)
def unarchive_repo(
    project: AccountName,
    repo: RepoName,
    principal: CurrentPrincipal,
    session: DbSession,
    settings: SettingsDep,
) -> RepoOut:
    return RepoOut.of(service.set_archived(session, settings, principal, project, repo, False))


@router.get("/{repo}/branches", summary="Branches, most recently updated first", dependencies=USE)
async def list_branches(
    project: AccountName,
    repo: RepoName,
    principal: CurrentPrincipal,
    session: DbSession,
    settings: SettingsDep,
) -> list[BranchOut]:
    facts = service.get_repo(session, settings, principal, project, repo)
    return [BranchOut(**b) for b in await asyncio.to_thread(browse.branches, facts.path)]


@router.get("/{repo}/commits", summary="Commits reachable from a ref", dependencies=USE)
async def list_commits(
    project: AccountName,
    repo: RepoName,
    principal: CurrentPrincipal,
    session: DbSession,
    settings: SettingsDep,
    ref: GitRef | None = None,
    limit: int = Query(50, ge=1, le=1000),
) -> CommitsOut:
    facts = service.get_repo(session, settings, principal, project, repo)
    found = await asyncio.to_thread(browse.commits, facts.path, ref, limit)
    return CommitsOut(ref=ref or browse.default_branch(facts.path), commits=[CommitOut.of(c) for c in found])


@router.get("/{repo}/tree", summary="A directory's entries at a ref", dependencies=USE)
async def list_tree(
    project: AccountName,
    repo: RepoName,
    principal: CurrentPrincipal,
    session: DbSession,
    settings: SettingsDep,
    ref: GitRef | None = None,
    path: RepoPath = "",
) -> list[EntryOut]:
    facts = service.get_repo(session, settings, principal, project, repo)
    return [EntryOut.of(e) for e in await asyncio.to_thread(browse.tree, facts.path, ref, path)]


@router.get("/{repo}/file", summary="A file's content at a ref", dependencies=USE)
async def read_file(
    project: AccountName,
    repo: RepoName,
    path: RepoFilePath,
    principal: CurrentPrincipal,
    session: DbSession,
    settings: SettingsDep,
    ref: GitRef | None = None,
) -> FileOut:
    facts = service.get_repo(session, settings, principal, project, repo)
    content = await asyncio.to_thread(browse.blob, facts.path, ref, path)
    try:
        text: str | None = content.decode()
    except UnicodeDecodeError:
        text = None
    return FileOut(path=path, ref=ref or "HEAD", size=len(content), binary=text is None, text=text)
