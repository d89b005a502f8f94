"""The lineage graph of one dataset (upstream and downstream) and of one user.

Every lookup goes through an index of ``lineage_edges`` (dataset + time, user + time) and
reads at most ``limit`` events' payloads, so the pages stay fast whatever the history
(benchmarks/lineage.py measures it at 100,000 events).
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from datalibrary.auth.permissions import Permission, Principal, require
from datalibrary.errors import InvalidInput
from datalibrary.lake.models import Dataset
from datalibrary.lineage.models import LineageEdge, LineageEvent
from datalibrary.lineage.service import TERMINAL

DATASET_RE = re.compile(r"^[A-Za-z0-9_\-]{1,64}\.[A-Za-z0-9_\-]{1,64}$")
USER_RE = re.compile(r"^[A-Za-z0-9_.@\-]{1,64}$")
ACCESS_JOBS = ("query", "download", "export")


def check_dataset(name: str) -> str:
    if not DATASET_RE.match(name or ""):
        raise InvalidInput(f"'{name[:80]}' is not a dataset name: use NAMESPACE.TABLE", field="dataset")
    return name


def _payloads(session: Session, ids: list[int]) -> dict[int, dict[str, Any]]:
    if not ids:
        return {}
    rows = session.execute(select(LineageEvent.id, LineageEvent.payload).where(LineageEvent.id.in_(ids)))
    return {event_id: payload for event_id, payload in rows}


def _actor(payload: dict[str, Any]) -> dict[str, Any]:
    return (payload.get("run", {}).get("facets") or {}).get("datalibrary_actor") or {}


def _dataset_in(payload: dict[str, Any], key: str, name: str) -> dict[str, Any]:
    return next((d for d in payload.get(key) or [] if d.get("name") == name), {})


def _edges(session: Session, *conditions: Any, limit: int) -> list[LineageEdge]:
    query = (
        select(LineageEdge)
        .where(*conditions, LineageEdge.event_type.in_(TERMINAL))
        .order_by(LineageEdge.event_time.desc(), LineageEdge.id.desc())
        .limit(limit)
    )
    return list(session.scalars(query))


def dataset_lineage(session: Session, principal: Principal, name: str, *, limit: int = 100) -> dict[str, Any]:
    """Upstream (source files, ingestion jobs, policies, erasures) and downstream (queries,
    downloads, exports, workspaces, users) of one dataset."""
    require(principal, Permission.LINEAGE_READ)
    check_dataset(name)
    limit = max(1, min(limit, 1000))
    of_dataset = LineageEdge.dataset_name == name
    writes = _edges(session, of_dataset, LineageEdge.direction == "output", limit=limit)
    reads = _edges(
        session,
        of_dataset,
        LineageEdge.direction == "input",
        LineageEdge.job_name.in_(ACCESS_JOBS),
        limit=limit,
    )
    payloads = _payloads(session, [e.event_id for e in writes + reads])
    ingestions, erasures, policies = [], [], {}
    for edge in writes:
        payload = payloads.get(edge.event_id, {})
        output = _dataset_in(payload, "outputs", name)
        facets = output.get("facets") or {}
        if edge.job_name == "erasure":
            erasures.append(
                {
                    "run_id": payload["run"]["runId"],
                    "at": edge.event_time,
                    "user": edge.user,
                    "outcome": edge.event_type,
                    "request": _actor(payload).get("purpose"),
                }
            )
            continue
        source = next(iter(payload.get("inputs") or []), {})
        file_facet = (source.get("facets") or {}).get("datalibrary_sourceFile") or {}
        policy = facets.get("datalibrary_policy") or {}
        if policy.get("name"):
            key = f"{policy['name']}@{policy.get('version')}"
            policies.setdefault(
                key,
                {
                    "name": policy["name"],
                    "version": policy.get("version"),
                    "sha256": policy.get("sha256"),
                    "last_used": edge.event_time,
                },
            )
        masked = sorted(
            column
            for column, spec in ((facets.get("columnLineage") or {}).get("fields") or {}).items()
            if any(
                t.get("masking") for f in spec.get("inputFields", []) for t in f.get("transformations", [])
            )
        )
        ingestions.append(
            {
                "run_id": payload.get("run", {}).get("runId"),
                "at": edge.event_time,
                "outcome": edge.event_type,
                "user": edge.user,
                "via": _actor(payload).get("via"),
                "note": _actor(payload).get("purpose"),
                "source": source.get("name"),
                "file_name": file_facet.get("fileName"),
                "sha256": file_facet.get("sha256"),
                "size": file_facet.get("size"),
                "delivered_at": file_facet.get("deliveredAt"),
                "snapshot_id": (facets.get("version") or {}).get("datasetVersion") or None,
                "policy": f"{policy['name']}@{policy.get('version')}" if policy.get("name") else None,
                "masked_columns": masked,
                "rows": edge.rows,
                "bytes": edge.bytes,
            }
        )
    accesses = []
    for edge in reads:
        payload = payloads.get(edge.event_id, {})
        actor = _actor(payload)
        output = next(iter(payload.get("outputs") or []), {})
        accesses.append(
            {
                "run_id": payload.get("run", {}).get("runId"),
                "at": edge.event_time,
                "kind": edge.job_name,
                "outcome": edge.event_type,
                "user": edge.user,
                "project": actor.get("project"),
                "via": actor.get("via"),
                "purpose": actor.get("purpose"),
                "output": output.get("name"),
                "rows": edge.rows,
                "bytes": edge.bytes,
            }
        )
    totals = session.execute(
        select(
            LineageEdge.job_name,
            LineageEdge.user,
            func.count(),
            func.max(LineageEdge.event_time),
            func.sum(LineageEdge.rows),
        )
        .where(
            of_dataset,
            LineageEdge.direction == "input",
            LineageEdge.event_type.in_(TERMINAL),
            LineageEdge.job_name.in_(ACCESS_JOBS),
        )
        .group_by(LineageEdge.job_name, LineageEdge.user)
    ).all()
    users: dict[str, dict[str, Any]] = {}
    kinds: dict[str, int] = {}
    for job, user, count, last, rows in totals:
        entry = users.setdefault(
            user or "?", {"user": user, "total": 0, "last": None, "rows": 0, "by_kind": {}}
        )
        entry["total"] += count
        entry["rows"] += int(rows or 0)
        entry["by_kind"][job] = count
        entry["last"] = max(filter(None, [entry["last"], last]), default=None)
        kinds[job] = kinds.get(job, 0) + count
    result = {
        "dataset": name,
        "upstream": {"ingestions": ingestions, "policies": list(policies.values()), "erasures": erasures},
        "downstream": {
            "accesses": accesses,
            "users": sorted(users.values(), key=lambda u: (-u["total"], u["user"] or "")),
            "totals": kinds,
        },
    }
    result["graph"] = dataset_graph(result)
    return result


def dataset_graph(lineage: dict[str, Any], max_nodes: int = 12) -> dict[str, Any]:
    """Nodes in five columns (sources, policies, dataset, activities, users) and their links."""
    nodes: list[dict[str, Any]] = []
    links: list[dict[str, str]] = []
    name = lineage["dataset"]

    def node(node_id: str, column: int, label: str, href: str | None = None, detail: str = "") -> None:
        if not any(n["id"] == node_id for n in nodes):
            nodes.append({"id": node_id, "column": column, "label": label, "href": href, "detail": detail})

    node(f"dataset:{name}", 2, name, f"/lineage/datasets/{name}", "dataset")
    for item in lineage["upstream"]["ingestions"][:max_nodes]:
        if not item.get("sha256"):
            continue
        source = f"file:{item['sha256']}"
        node(
            source,
            0,
            item.get("file_name") or item["sha256"][:12],
            None,
            f"sha256 {item['sha256'][:12]}… · {item.get('delivered_at') or ''}"[:80],
        )
        target = f"dataset:{name}"
        if item.get("policy"):
            node(f"policy:{item['policy']}", 1, item["policy"], None, "anonymization policy")
            links.append({"from": source, "to": f"policy:{item['policy']}", "label": "ingest"})
            links.append({"from": f"policy:{item['policy']}", "to": target, "label": "snapshot"})
        else:
            links.append({"from": source, "to": target, "label": "ingest"})
    for kind, count in sorted(lineage["downstream"]["totals"].items()):
        node(f"job:{kind}", 3, f"{kind} ×{count}", None, kind)
        links.append({"from": f"dataset:{name}", "to": f"job:{kind}", "label": str(count)})
    if any(a.get("via") == "workspace" for a in lineage["downstream"]["accesses"]):
        node("job:workspace", 3, "workspaces", None, "reads from workspaces")
        links.append({"from": f"dataset:{name}", "to": "job:workspace", "label": "sdk"})
    for user in lineage["downstream"]["users"][:max_nodes]:
        user_id = f"user:{user['user']}"
        node(user_id, 4, user["user"] or "?", f"/lineage/users/{user['user']}", f"{user['total']} accesses")
        for kind in user["by_kind"]:
            links.append({"from": f"job:{kind}", "to": user_id, "label": str(user["by_kind"][kind])})
    return {"nodes": nodes, "links": links}


def user_lineage(session: Session, principal: Principal, name: str, *, limit: int = 100) -> dict[str, Any]:
    """Which datasets a user touched, how (query, download, export), when and how much.

    Readers of lineage see anyone's page; every user sees their own."""
    if principal.name != name:
        require(principal, Permission.LINEAGE_READ)
    if not USER_RE.match(name or ""):
        raise InvalidInput("not a user name", field="user")
    limit = max(1, min(limit, 1000))
    by_user = (
        LineageEdge.user == name,
        LineageEdge.direction == "input",
        LineageEdge.event_type.in_(TERMINAL),
    )
    rows = session.execute(
        select(
            LineageEdge.dataset_name,
            LineageEdge.job_name,
            func.count(),
            func.min(LineageEdge.event_time),
            func.max(LineageEdge.event_time),
            func.sum(LineageEdge.rows),
            func.sum(LineageEdge.bytes),
        )
        .where(*by_user, LineageEdge.job_name.in_(ACCESS_JOBS))
        .group_by(LineageEdge.dataset_name, LineageEdge.job_name)
    ).all()
    datasets: dict[str, dict[str, Any]] = {}
    for dataset, job, count, first, last, total_rows, total_bytes in rows:
        entry = datasets.setdefault(
            dataset, {"dataset": dataset, "by_kind": {}, "first": first, "last": last, "rows": 0, "bytes": 0}
        )
        entry["by_kind"][job] = count
        entry["first"] = min(entry["first"], first) if first else entry["first"]
        entry["last"] = max(entry["last"], last) if last else entry["last"]
        entry["rows"] += int(total_rows or 0)
        entry["bytes"] += int(total_bytes or 0)
    recent = _edges(session, *by_user, limit=limit)
    payloads = _payloads(session, [e.event_id for e in recent])
    events = [
        {
            "run_id": payloads.get(e.event_id, {}).get("run", {}).get("runId"),
            "at": e.event_time,
            "kind": e.job_name,
            "dataset": e.dataset_name,
            "outcome": e.event_type,
            "project": _actor(payloads.get(e.event_id, {})).get("project"),
            "via": _actor(payloads.get(e.event_id, {})).get("via"),
            "rows": e.rows,
            "bytes": e.bytes,
        }
        for e in recent
    ]
    return {
        "user": name,
        "datasets": sorted(datasets.values(), key=lambda d: d["last"] or 0, reverse=True),
        "events": events,
    }


def traced_datasets(session: Session, principal: Principal) -> list[Any]:
    """Every catalogued dataset, for the lineage index (lineage readers see all of them)."""
    require(principal, Permission.LINEAGE_READ)
    return list(session.scalars(select(Dataset).order_by(Dataset.namespace, Dataset.name)))
