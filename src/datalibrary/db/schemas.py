"""What the front ends show of the task leases (which replica runs each background task):
one shape for ``GET /replicas`` and ``datalibrary replicas --json``."""

from __future__ import annotations

from pydantic import BaseModel


class TaskLeaseOut(BaseModel):
    task: str
    holder: str
    acquired_at: str
    expires_at: str
    live: bool


class Replicas(BaseModel):
    this_replica: str | None
    lease_seconds: float
    leases: list[TaskLeaseOut]
