"""What a snapshot records about its anonymization: key id, actions, risk report.

Stored as Iceberg snapshot summary properties (``datalibrary.study-key-id``,
``datalibrary.risk``), so the report travels with the snapshot it describes and is expired
with it."""

from __future__ import annotations

import json
from typing import Any

from datalibrary.privacy.policy import PolicyStep

VERBS = {
    "keep": "kept",
    "drop": "dropped",
    "pseudonymize": "pseudonymized",
    "surrogate": "pseudonymized",
    "date_shift": "shifted",
    "generalize": "generalized",
    "suppress": "generalized",
    "scrub_text": "scrubbed",
    "by_variable": "per variable",
}
TEXT_ACTIONS = ("scrub_text", "by_variable")


def column_actions(step: PolicyStep) -> dict[str, str]:
    """Every source column -> what the policy did to it (dropped columns included)."""
    return {name: VERBS.get(action, action) for name, action in step.all_actions().items()}


def privacy_properties(step: PolicyStep) -> dict[str, str]:
    props: dict[str, str] = {}
    if step.key_id:
        props["study-key-id"] = step.key_id
    props["policy-tier"] = step.policy.tier
    props["column-actions"] = json.dumps(column_actions(step), sort_keys=True)
    props["scrubbed-columns"] = json.dumps(
        sorted(name for name, action in step.actions().items() if action in TEXT_ACTIONS)
    )
    if step.subject:
        props["subject-column"] = step.subject
    risk = step.risk()
    if risk is not None:
        props["risk"] = json.dumps(risk.as_dict(), sort_keys=True)
    return props


def actions_from_summary(summary: dict[str, str]) -> dict[str, str]:
    """The per-column "what the policy did" of a snapshot ({} for snapshots before #14)."""
    try:
        return json.loads(summary.get("datalibrary.column-actions") or "{}")
    except ValueError:
        return {}


def risk_from_summary(summary: dict[str, str]) -> dict[str, Any] | None:
    raw = summary.get("datalibrary.risk")
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None
