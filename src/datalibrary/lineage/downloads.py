"""The download policy: which query downloads may leave directly and which become export
requests for a steward to review.

A download (a query result as CSV, Parquet or Arrow) leaves directly when
- it is read inside a workspace (a workspace-scoped token: the data stays in the sandbox,
  whose own exits go through the airlock), or
- no dataset it reads has a sensitivity listed in ``lineage.download_review`` (a per-dataset
  setting, edited on the dataset page), or
- it is an aggregate (see :mod:`datalibrary.lineage.aggregates`) whose every cell counts at
  least the minimum class size of ``lineage.export_max_risk``.
Everything else becomes an export request holding exactly the computed result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from sqlalchemy import select
from sqlalchemy.orm import Session

from datalibrary.auth.permissions import Principal
from datalibrary.config import Settings
from datalibrary.lake.models import Dataset
from datalibrary.lineage import exports
from datalibrary.lineage.models import ExportRequest
from datalibrary.privacy import risk

DEFAULT_PURPOSE = "Download of a query result, routed to the airlock by the download policy"
DEFAULT_DESTINATION = "the requester's computer"


@dataclass(frozen=True)
class Decision:
    direct: bool
    reason: str
    smallest_cell: int | None = None
    cells: list[int] | None = None


def _sensitivities(session: Session, datasets: list[str]) -> dict[str, str]:
    found = {d.full_name: d.sensitivity for d in session.scalars(select(Dataset)) if d.full_name in datasets}
    return {name: found.get(name, "confidential") for name in datasets}


def decide(
    session: Session,
    principal: Principal,
    settings: Settings,
    *,
    sql: str,
    datasets: list[str],
    runner: exports.QueryRunner,
    project: str | None,
) -> Decision:
    """Whether this download may go directly, and why."""
    if (principal.token_scope or "").startswith("workspace:"):
        return Decision(True, "read inside a workspace: the data stays in the sandbox")
    reviewed = set(settings.lineage.download_review)
    sensitive = sorted(name for name, level in _sensitivities(session, datasets).items() if level in reviewed)
    if not sensitive:
        return Decision(True, "no dataset read needs review for downloads")
    cells = exports.group_sizes(session, principal, settings, sql, runner, project)
    if cells is not None:
        check = risk.smallest_cell(cells, threshold=settings.lineage.export_max_risk, column="COUNT(*)")
        if check["passes"]:
            return Decision(
                True, f"aggregate whose smallest cell is {check['smallest_cell']}", check["smallest_cell"]
            )
        return Decision(
            False,
            f"aggregate with a cell of {check['smallest_cell']} (< {check['threshold_k']})",
            check["smallest_cell"],
            cells,
        )
    return Decision(False, f"row-level data of {', '.join(sensitive)}")


def route(
    session: Session,
    principal: Principal,
    settings: Settings,
    *,
    sql: str,
    datasets: list[str],
    table: pa.Table,
    format: str,
    runner: exports.QueryRunner,
    project: str | None,
    purpose: str | None = None,
    destination: str | None = None,
) -> tuple[Decision, ExportRequest | None]:
    """Apply the policy: None to download directly, else the export request it became."""
    decision = decide(
        session, principal, settings, sql=sql, datasets=datasets, runner=runner, project=project
    )
    if decision.direct:
        return decision, None
    export = exports.request_export_of_table(
        session,
        principal,
        settings,
        table=table,
        sql=sql,
        datasets=datasets,
        purpose=(purpose or "").strip() or DEFAULT_PURPOSE,
        destination=(destination or "").strip() or DEFAULT_DESTINATION,
        format=format,
        project=project,
        aggregate_cells=decision.cells,
    )
    return decision, export


def routed_body(decision: Decision, export: ExportRequest) -> dict[str, Any]:
    return {
        "routed_to_airlock": True,
        "reason": decision.reason,
        "detail": (
            f"this download needs a steward's review ({decision.reason}): it became export request "
            f"#{export.id}; download it from /exports once approved"
        ),
        "export": exports.export_dict(export),
    }
