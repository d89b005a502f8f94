"""What the API, CLI and console show of repositories."""

from __future__ import annotations

from pydantic import BaseModel, Field

from datalibrary.repos.browse import Commit, Entry
from datalibrary.repos.storage import REPO_NAME_PATTERN, RepoFacts


class RepoIn(BaseModel):
    name: str = Field(pattern=REPO_NAME_PATTERN, description="lower-case letters, digits, '.', '_', '-'")
    description: str = Field("", max_length=500)


class RepoOut(BaseModel):
    project: str
    name: str
    description: str
    archived: bool
    clone_path: str  # append to the platform's URL: http(s)://host/git/PROJECT/REPO.git

    @classmethod
    def of(cls, repo: RepoFacts) -> RepoOut:
        return cls(
            project=repo.project,
            name=repo.name,
            description=repo.description,
            archived=repo.archived,
            clone_path=f"/git/{repo.project}/{repo.name}.git",
        )


class CommitOut(BaseModel):
    id: str
    author: str
    authored_at: str
    message: str
    parents: list[str]

    @classmethod
    def of(cls, commit: Commit) -> CommitOut:
        return cls(**commit.__dict__)


class CommitsOut(BaseModel):
    ref: str
    commits: list[CommitOut]


class BranchOut(BaseModel):
    name: str
    commit: str
    updated_at: str


class EntryOut(BaseModel):
    name: str
    path: str
    kind: str
    size: int | None

    @classmethod
    def of(cls, entry: Entry) -> EntryOut:
        return cls(**entry.__dict__)
