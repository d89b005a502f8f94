"""What a snapshot records about its anonymization: key id, actions, risk report.

Stored as Iceberg snapshot summary properties (``datalibrary.study-key-id``,
``datalibrary.risk``), so the report travels with the snapshot it describes and is expired
with it."""

from __future__ import annotations

import json
from typing import Any

from datalibrary.privacy.policy import PolicyStep


def privacy_properties(step: PolicyStep) -> dict[str, str]:
    props: dict[str, str] = {}
    if step.key_id:
        props["study-key-id"] = step.key_id
    props["policy-tier"] = step.policy.tier
    risk = step.risk()
    if risk is not None:
        props["risk"] = json.dumps(risk.as_dict(), sort_keys=True)
    return props


def risk_from_summary(summary: dict[str, str]) -> dict[str, Any] | None:
    raw = summary.get("datalibrary.risk")
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None
