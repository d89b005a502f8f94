"""What the front ends show of privacy policies: stored versions, a policy described, a
preview on sample rows; one shape for the API, the CLI's ``--json`` and pages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from datalibrary.privacy.models import StoredPolicy
from datalibrary.privacy.policy import Policy


class PolicyIn(BaseModel):
    document: str = Field(min_length=1, max_length=200_000, description="The policy YAML.")


class PolicyOut(BaseModel):
    name: str
    version: str
    sha256: str
    created_by: str | None = None
    created_at: datetime | None = None

    @classmethod
    def of(cls, stored: StoredPolicy) -> PolicyOut:
        return cls.model_validate(stored, from_attributes=True)


class PolicyDocument(BaseModel):
    document: str = Field(min_length=1, max_length=200_000, description="The policy YAML.")


class RuleOut(BaseModel):
    match: str
    kind: str
    action: str
    params: dict[str, Any]


class PolicyDescription(BaseModel):
    name: str
    version: str
    sha256: str
    subject: list[str]
    quasi_identifiers: list[str]
    tier: str
    risk_threshold: float
    rules: list[RuleOut]

    @classmethod
    def of(cls, policy: Policy) -> PolicyDescription:
        return cls(
            name=policy.name,
            version=policy.version,
            sha256=policy.sha256,
            subject=policy.subject,
            quasi_identifiers=policy.quasi_identifiers,
            tier=policy.tier,
            risk_threshold=policy.risk_threshold,
            rules=[
                RuleOut(match=r.match, kind=r.kind, action=r.action, params=r.params) for r in policy.rules
            ],
        )


class PreviewIn(PolicyDocument):
    sample_csv: str = Field(min_length=1, max_length=200_000, description="Sample rows as CSV with a header.")
    namespace: str = Field(
        "preview", pattern=r"^[a-z][a-z0-9_]{0,62}$", description="Study whose key is used."
    )
    rows: int = Field(20, ge=1, le=200)


class PreviewOut(BaseModel):
    actions: dict[str, str]
    columns: list[str]
    rows: list[dict[str, Any]]
    risk: dict[str, Any] | None


class PolicyText(BaseModel):
    name: str
    version: str
    sha256: str
    document: str

    @classmethod
    def of(cls, policy: Policy) -> PolicyText:
        return cls(name=policy.name, version=policy.version, sha256=policy.sha256, document=policy.document)
