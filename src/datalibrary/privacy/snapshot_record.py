"""What a snapshot records about its anonymization: key id, actions, risk report.

Stored as Iceberg snapshot summary properties (``datalibrary.study-key-id``,
``datalibrary.risk``), so the report travels with the snapshot it describes and is expired
with it. Reading them back is the lake's (``lake.tables.actions_from_summary``)."""

from __future__ import annotations

import json

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
