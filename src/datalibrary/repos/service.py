"""Project repositories: who may read, push and manage them, and the record of every
clone, fetch and push (audit + lineage).

Members of a project (holding ``repos.use``) read and push its repositories; holders of
``repos.manage`` (stewards, admins) create and archive them and may browse any project's.
Anyone else gets "not found", so the names of other projects' repositories never leak.
"""

from __future__ import annotations

from typing import Any, Literal

from openlineage.client.facet_v2 import dataset_version_dataset
from sqlalchemy import select
from sqlalchemy.orm import Session

from datalibrary.audit import service as audit
from datalibrary.auth.models import Project
from datalibrary.auth.permissions import Permission, Principal, require
from datalibrary.auth.projects import get_project
from datalibrary.config import Settings
from datalibrary.errors import InvalidInput, NotFound, PermissionDenied
from datalibrary.lineage.naming import naming_for
from datalibrary.lineage.service import DatasetRef, RunState, emit, new_run_id
from datalibrary.repos import storage
from datalibrary.repos.storage import RepoFacts

Access = Literal["read", "write"]


def _may_browse_all(actor: Principal) -> bool:
    return actor.can(Permission.REPOS_MANAGE)


def _check_project(session: Session, actor: Principal, project: str) -> None:
    if project in actor.projects and actor.can(Permission.REPOS_USE):
        get_project(session, project)
        return
    if _may_browse_all(actor):
        get_project(session, project)
        return
    require(actor, Permission.REPOS_USE)
    raise NotFound(f"no project named '{project}' among yours")


def visible_projects(session: Session, actor: Principal) -> list[str]:
    """The projects whose repositories ``actor`` may list: their own (with ``repos.use``),
    every active project for holders of ``repos.manage``."""
    if _may_browse_all(actor):
        return list(session.scalars(select(Project.name).where(Project.is_active).order_by(Project.name)))
    require(actor, Permission.REPOS_USE)
    return sorted(actor.projects)


def list_repos(session: Session, settings: Settings, actor: Principal, project: str) -> list[RepoFacts]:
    _check_project(session, actor, project)
    return [storage.facts(settings, project, name) for name in storage.list_names(settings, project)]


def get_repo(session: Session, settings: Settings, actor: Principal, project: str, name: str) -> RepoFacts:
    _check_project(session, actor, project)
    return storage.facts(settings, project, name)


def authorize(
    session: Session, settings: Settings, actor: Principal, project: str, name: str, access: Access
) -> RepoFacts:
    """The repository if ``actor`` may read it (clone, fetch) or write it (push).

    Only project members read and push; a manager who is not a member may browse through
    the API but neither clone nor push."""
    require(actor, Permission.REPOS_USE)
    if project not in actor.projects:
        raise NotFound(f"no repository '{name}' in a project of yours named '{project}'")
    repo = storage.facts(settings, project, name)
    if access == "write" and repo.archived:
        raise PermissionDenied(f"repository '{project}/{repo.name}' is archived: it is read-only")
    return repo


def create_repo(
    session: Session, settings: Settings, actor: Principal, project: str, name: str, description: str = ""
) -> RepoFacts:
    require(actor, Permission.REPOS_MANAGE)
    get_project(session, project)
    if len(description) > 500:
        raise InvalidInput("description must be at most 500 characters", field="description")
    repo = storage.create(settings, project, name, description)
    audit.record(
        session,
        actor=actor,
        action="repo.create",
        target=f"repo:{project}/{repo.name}",
        details={"description": description[:200]},
    )
    return repo


def set_archived(
    session: Session, settings: Settings, actor: Principal, project: str, name: str, archived: bool
) -> RepoFacts:
    require(actor, Permission.REPOS_MANAGE)
    get_project(session, project)
    repo = storage.set_archived(settings, project, name, archived)
    audit.record(
        session,
        actor=actor,
        action="repo.archive" if archived else "repo.unarchive",
        target=f"repo:{project}/{repo.name}",
    )
    return repo


def _lineage(
    session: Session,
    *,
    job: str,
    actor: Principal,
    repo: RepoFacts,
    commit: str | None,
    ok: bool,
    via: str | None,
    inputs: bool,
) -> str:
    """One START + COMPLETE/FAIL run: a push writes the repository, a clone reads it."""
    namespace, clone_path = naming_for(session.get_bind()).api(f"/git/{repo.project}/{repo.name}.git")
    dataset = DatasetRef(
        clone_path,
        namespace=namespace,
        facets={"version": dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion=commit or "")},
    )
    run_id = new_run_id()
    common: dict[str, Any] = {
        "job_name": job,
        "user": actor.name,
        "project": repo.project,
        "via": via,
        "inputs": [dataset] if inputs else [],
        "outputs": [] if inputs else [dataset],
    }
    emit(session, event_type=RunState.START, run_id=run_id, **common)
    emit(session, event_type=RunState.COMPLETE if ok else RunState.FAIL, run_id=run_id, **common)
    return run_id


def record_fetch(
    session: Session, actor: Principal, repo: RepoFacts, *, wants: list[str], clone: bool, via: str | None
) -> None:
    action = "repo.clone" if clone else "repo.fetch"
    audit.record(
        session,
        actor=actor,
        action=action,
        target=f"repo:{repo.project}/{repo.name}",
        details={"commits": wants[:20], "via": via},
        client=via,
    )
    _lineage(
        session,
        job=f"git.{action.split('.')[1]}",
        actor=actor,
        repo=repo,
        commit=wants[0] if wants else None,
        ok=True,
        via=via,
        inputs=True,
    )


def record_push(
    session: Session,
    actor: Principal,
    repo: RepoFacts,
    *,
    before: dict[str, str],
    after: dict[str, str],
    refusal: dict[str, Any] | None,
    via: str | None,
) -> list[dict[str, str | None]]:
    """Audit the refs a push changed (or the guard's refusal) and record it in lineage."""
    changes = [
        {"ref": ref, "old": before.get(ref), "new": after.get(ref)}
        for ref in sorted(set(before) | set(after))
        if before.get(ref) != after.get(ref)
    ]
    ok = refusal is None
    details: dict[str, Any] = {"refs": changes[:50], "via": via}
    if refusal:
        details["refused"] = refusal
    audit.record(
        session,
        actor=actor,
        action="repo.push" if ok else "repo.push_refused",
        target=f"repo:{repo.project}/{repo.name}",
        outcome="success" if ok else "denied",
        details=details,
        client=via,
    )
    head = next((c["new"] for c in changes if c["new"]), None)
    if ok and not changes:
        return changes
    _lineage(session, job="git.push", actor=actor, repo=repo, commit=head, ok=ok, via=via, inputs=False)
    return changes
