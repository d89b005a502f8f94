"""What the front ends show of file collections: one shape for the API and the CLI's ``--json``.

``CollectionIn`` stays in the API router: its name and policy fields use the API's own
request types (``api.fields``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from datalibrary.files.models import FileCollection
    from datalibrary.files.service import IngestReport


class ClassificationIn(BaseModel):
    classification: str = Field(max_length=500, description="Empty clears it")


class ApprovalIn(BaseModel):
    grant_id: int = Field(ge=1, le=2**31 - 1, description="A live grant that names the collection itself")
    reason: str = Field(
        min_length=1, max_length=1000, pattern=r"\S", description="Why this grant may read restricted data"
    )


class CollectionOut(BaseModel):
    name: str = Field(description="NAMESPACE.COLLECTION")
    owner: str
    description: str
    policy: str
    subject_template: str
    private_allow: list[str]
    burned_in_reviewed: dict[str, str]
    classification: str
    tier: str
    approved_grants: int = Field(description="Grants a steward approved for a restricted tier")
    created_at: str | None

    @classmethod
    def of(cls, collection: FileCollection) -> CollectionOut:
        return cls(
            name=collection.full_name,
            owner=collection.owner,
            description=collection.description,
            policy=collection.policy_name,
            subject_template=collection.subject_template,
            private_allow=list(collection.private_allow or []),
            burned_in_reviewed=dict(collection.burned_in_reviewed or {}),
            classification=collection.classification or "",
            tier=collection.tier or "standard",
            # how many grants a steward approved for a restricted tier (who and why: the audit log)
            approved_grants=len(collection.approved_grants or {}),
            created_at=collection.created_at.isoformat() if collection.created_at else None,
        )


class FilesAddedOut(BaseModel):
    """What an upload did: files added, unchanged (same content) and quarantined (with the reason)."""

    added: list[dict[str, Any]]
    unchanged: list[str]
    quarantined: list[dict[str, Any]]
    snapshot_id: int | None

    @classmethod
    def of(cls, report: IngestReport) -> FilesAddedOut:
        return cls(
            added=report.added,
            unchanged=report.unchanged,
            quarantined=report.quarantined,
            snapshot_id=report.snapshot_id,
        )
