"""Compliance report for a period and a dataset (``NS.TABLE``) or a study namespace (``NS``):
every access by user with purpose and project, every export, every erasure, the
anonymization policy versions in force, and the audit chain's verification result."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from datalibrary.access.models import AccessRequest
from datalibrary.audit.service import verify
from datalibrary.auth.permissions import Permission, Principal, require
from datalibrary.db.base import utcnow
from datalibrary.errors import InvalidInput
from datalibrary.lake.models import Dataset
from datalibrary.lineage.graph import ACCESS_JOBS, _actor, _payloads
from datalibrary.lineage.models import ExportRequest, LineageEdge
from datalibrary.lineage.service import TERMINAL

SCOPE_RE = re.compile(r"^[A-Za-z0-9_\-]{1,64}(\.[A-Za-z0-9_\-]{1,64})?$")
MAX_ROWS = 50_000


def compliance_report(
    session: Session, principal: Principal, scope: str, start: datetime, end: datetime
) -> dict[str, Any]:
    require(principal, Permission.LINEAGE_READ)
    if not SCOPE_RE.match(scope or ""):
        raise InvalidInput("name a dataset (NAMESPACE.TABLE) or a namespace", field="scope")
    if end <= start:
        raise InvalidInput("the period must end after it starts", field="end")
    namespace, _, table = scope.partition(".")
    in_scope = LineageEdge.dataset_name == scope if table else LineageEdge.dataset_name.like(f"{namespace}.%")
    in_period = (LineageEdge.event_time >= start, LineageEdge.event_time < end)
    edges = list(
        session.scalars(
            select(LineageEdge)
            .where(in_scope, *in_period, LineageEdge.event_type.in_(TERMINAL))
            .order_by(LineageEdge.event_time, LineageEdge.id)
            .limit(MAX_ROWS)
        )
    )
    payloads = _payloads(session, [e.event_id for e in edges])
    justification = _justifications(session, namespace)
    accesses, erasures, policies = [], [], {}
    for edge in edges:
        payload = payloads.get(edge.event_id, {})
        actor = _actor(payload)
        if edge.direction == "input" and edge.job_name in ACCESS_JOBS:
            _, _, name = edge.dataset_name.partition(".")
            granted = justification.get((edge.user, name)) or justification.get((edge.user, None))
            accesses.append(
                {
                    "at": edge.event_time,
                    "user": edge.user,
                    "kind": edge.job_name,
                    "dataset": edge.dataset_name,
                    "project": actor.get("project"),
                    "purpose": actor.get("purpose") or granted,
                    "via": actor.get("via"),
                    "outcome": edge.event_type,
                    "rows": edge.rows,
                    "run_id": payload["run"]["runId"],
                }
            )
        elif edge.direction == "output" and edge.job_name == "erasure":
            erasures.append(
                {
                    "at": edge.event_time,
                    "user": edge.user,
                    "dataset": edge.dataset_name,
                    "outcome": edge.event_type,
                    "request": actor.get("purpose"),
                }
            )
        elif edge.direction == "output" and edge.job_name == "ingest":
            output = next((d for d in payload.get("outputs") or [] if d.get("name") == edge.dataset_name), {})
            policy = (output.get("facets") or {}).get("datalibrary_policy") or {}
            if policy.get("name"):
                key = (edge.dataset_name, policy["name"], policy.get("version"))
                entry = policies.setdefault(
                    key,
                    {
                        "dataset": edge.dataset_name,
                        "policy": policy["name"],
                        "version": policy.get("version"),
                        "sha256": policy.get("sha256"),
                        "first_used": edge.event_time,
                        "last_used": edge.event_time,
                    },
                )
                entry["last_used"] = edge.event_time
    current = session.scalars(
        select(Dataset).where(Dataset.namespace == namespace, *([Dataset.name == table] if table else []))
    ).all()
    for dataset in current:  # the version in force at the end of the period, even if ingested earlier
        if dataset.policy_name:
            key = (dataset.full_name, dataset.policy_name, dataset.policy_version)
            policies.setdefault(
                key,
                {
                    "dataset": dataset.full_name,
                    "policy": dataset.policy_name,
                    "version": dataset.policy_version,
                    "sha256": dataset.policy_hash,
                    "first_used": None,
                    "last_used": None,
                },
            )
    exports = session.scalars(
        select(ExportRequest)
        .where(ExportRequest.created_at >= start, ExportRequest.created_at < end)
        .order_by(ExportRequest.id)
    ).all()
    in_exports = [
        {
            "id": x.id,
            "requester": x.requester,
            "project": x.project,
            "purpose": x.purpose,
            "destination": x.destination,
            "state": x.state,
            "reviewer": x.reviewer,
            "datasets": x.datasets,
            "created_at": x.created_at,
            "decided_at": x.decided_at,
            "downloaded_at": x.downloaded_at,
            "k": ((x.summary or {}).get("risk") or {}).get("k"),
        }
        for x in exports
        if any(d == scope or (not table and d.startswith(f"{namespace}.")) for d in x.datasets)
    ]
    chain = verify(session).as_dict()
    return {
        "scope": scope,
        "start": start,
        "end": end,
        "generated_at": utcnow(),
        "generated_by": principal.name,
        "accesses": accesses,
        "exports": in_exports,
        "erasures": erasures,
        "policies": sorted(policies.values(), key=lambda p: (p["dataset"], str(p["version"]))),
        "audit_chain": chain,
        "truncated": len(edges) >= MAX_ROWS,
    }


def _justifications(session: Session, namespace: str) -> dict[tuple[str, str | None], str]:
    """The purpose a user gave when access was granted: (user, table or None) -> justification."""
    rows = session.scalars(
        select(AccessRequest)
        .where(AccessRequest.namespace == namespace, AccessRequest.state == "approved")
        .order_by(AccessRequest.id)
    )
    return {(r.requester, r.table_name): r.justification[:500] for r in rows}


CSV_COLUMNS = ["section", "at", "user", "kind", "dataset", "project", "purpose", "outcome", "detail"]
# A cell starting with one of these is a formula to spreadsheets (OWASP "CSV injection"),
# including the full-width forms some spreadsheets also accept.
FORMULA_START = tuple("=+-@\t\r\n|%") + ("\uff1d", "\uff0b", "\uff0d", "\uff20")


def neutralize(value: Any) -> Any:
    """Text a spreadsheet shows as text: a leading formula character gets a ``'`` before it."""
    if isinstance(value, str) and value.lstrip(" ").startswith(FORMULA_START):
        return "'" + value
    return value


class _SafeWriter(csv.DictWriter):
    """A DictWriter whose every cell is neutralized: purposes, names and SQL are user text."""

    def writerow(self, rowdict):  # type: ignore[no-untyped-def,override]
        return super().writerow({k: neutralize(v) for k, v in rowdict.items()})


def to_csv(report: dict[str, Any]) -> str:
    """One flat CSV an inspector can filter: a ``section`` column tells the row's kind."""
    out = io.StringIO()
    writer = _SafeWriter(out, CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()

    def iso(value: Any) -> str:
        return value.isoformat() if hasattr(value, "isoformat") else ("" if value is None else str(value))

    writer.writerow(
        {
            "section": "report",
            "at": iso(report["generated_at"]),
            "user": report["generated_by"],
            "dataset": report["scope"],
            "detail": f"period {iso(report['start'])} .. {iso(report['end'])}",
        }
    )
    chain = report["audit_chain"]
    writer.writerow(
        {
            "section": "audit_chain",
            "outcome": "verified" if chain["ok"] else "BROKEN",
            "detail": f"{chain['entries']} entries",
        }
    )
    for a in report["accesses"]:
        writer.writerow(
            {
                "section": "access",
                "at": iso(a["at"]),
                "user": a["user"],
                "kind": a["kind"],
                "dataset": a["dataset"],
                "project": a["project"],
                "purpose": a["purpose"],
                "outcome": a["outcome"],
                "detail": f"rows={a['rows']} via={a['via']}",
            }
        )
    for x in report["exports"]:
        writer.writerow(
            {
                "section": "export",
                "at": iso(x["created_at"]),
                "user": x["requester"],
                "kind": x["state"],
                "dataset": " ".join(x["datasets"]),
                "project": x["project"],
                "purpose": x["purpose"],
                "outcome": x["state"],
                "detail": f"#{x['id']} to {x['destination']}; reviewer {x['reviewer']}; k={x['k']}",
            }
        )
    for e in report["erasures"]:
        writer.writerow(
            {
                "section": "erasure",
                "at": iso(e["at"]),
                "user": e["user"],
                "dataset": e["dataset"],
                "outcome": e["outcome"],
                "detail": e["request"],
            }
        )
    for p in report["policies"]:
        writer.writerow(
            {
                "section": "policy",
                "at": iso(p["last_used"]),
                "dataset": p["dataset"],
                "kind": p["policy"],
                "detail": f"version {p['version']} sha256 {p['sha256']}",
            }
        )
    return out.getvalue()


__all__ = ["compliance_report", "to_csv"]
