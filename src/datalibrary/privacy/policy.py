"""Dataset policies: a versioned YAML document naming an action for every column.

```yaml
name: sdtm-basic
version: 1
columns:
  USUBJID: keep            # exact name
  "*DTC": keep             # glob (fnmatch, case-sensitive)
  "re:^(SSN|MRN)$": drop   # regular expression, full match
  BIRTHDATE: {action: drop}
```

Exact names win over patterns; patterns are tried in document order. A column that no
rule covers stops the job (fail closed). Actions are small classes registered by name:
this module ships ``keep`` and ``drop``; the anonymization actions register themselves
with ``register_action`` and receive the ``PolicyContext`` (study keys etc.).
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import pyarrow as pa
import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator

from datalibrary.errors import InvalidInput

POLICY_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


class PolicyError(InvalidInput):
    """A policy document is invalid, or it does not cover the data it is applied to."""


@dataclass(frozen=True)
class PolicyContext:
    """What actions may need to know about the data they transform."""

    namespace: str
    table: str
    job_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class ColumnAction(Protocol):
    """One column's transform. ``output_field`` None means the column is dropped."""

    name: ClassVar[str]

    def __init__(self, params: dict[str, Any], context: PolicyContext) -> None: ...

    def output_field(self, field: pa.Field) -> pa.Field | None: ...

    def apply(self, column: pa.Array, field: pa.Field) -> pa.Array: ...


ACTIONS: dict[str, type[ColumnAction]] = {}


def register_action(cls: type[ColumnAction]) -> type[ColumnAction]:
    """Class decorator: make an action available to policies under ``cls.name``."""
    ACTIONS[cls.name] = cls
    return cls


@register_action
class Keep:
    name: ClassVar[str] = "keep"

    def __init__(self, params: dict[str, Any], context: PolicyContext) -> None:
        self.params = params

    def output_field(self, field: pa.Field) -> pa.Field | None:
        return field

    def apply(self, column: pa.Array, field: pa.Field) -> pa.Array:
        return column


@register_action
class Drop:
    name: ClassVar[str] = "drop"

    def __init__(self, params: dict[str, Any], context: PolicyContext) -> None:
        self.params = params

    def output_field(self, field: pa.Field) -> pa.Field | None:
        return None

    def apply(self, column: pa.Array, field: pa.Field) -> pa.Array:  # never called
        raise AssertionError("dropped columns are not applied")


class Rule(BaseModel):
    """One entry of ``columns``: a name or pattern and the action it gets."""

    match: str
    action: str
    params: dict[str, Any] = Field(default_factory=dict)

    @property
    def kind(self) -> str:
        if self.match.startswith("re:"):
            return "regex"
        if any(ch in self.match for ch in "*?["):
            return "glob"
        return "exact"

    def matches(self, column: str) -> bool:
        if self.kind == "exact":
            return column == self.match
        if self.kind == "glob":
            return fnmatch.fnmatchcase(column, self.match)
        return re.fullmatch(self.match[3:], column) is not None


class Policy(BaseModel):
    """A parsed policy; ``sha256`` identifies the exact document it came from."""

    name: str
    version: str
    description: str = ""
    rules: list[Rule]
    sha256: str = ""
    document: str = ""

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not POLICY_NAME_RE.match(value):
            raise ValueError("a policy name uses letters, digits, '_', '.', '-' (at most 100)")
        return value

    def rule_for(self, column: str) -> Rule | None:
        for rule in self.rules:
            if rule.kind == "exact" and rule.matches(column):
                return rule
        return next((rule for rule in self.rules if rule.kind != "exact" and rule.matches(column)), None)

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"


def parse_policy(yaml_text: str) -> Policy:
    """Parse and check a policy document; raises ``PolicyError`` saying what is wrong."""
    try:
        data = yaml.safe_load(yaml_text)
    except yaml.YAMLError as exc:
        raise PolicyError(f"the policy is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise PolicyError("a policy is a YAML mapping with name, version and columns")
    unknown = set(data) - {"name", "version", "description", "columns"}
    if unknown:
        raise PolicyError(f"unknown policy keys: {', '.join(sorted(map(str, unknown)))}")
    columns = data.get("columns")
    if not isinstance(columns, dict) or not columns:
        raise PolicyError("the policy must map 'columns' (names or patterns) to actions")
    rules = []
    for match, spec in columns.items():
        if isinstance(spec, str):
            action, params = spec, {}
        elif isinstance(spec, dict) and isinstance(spec.get("action"), str):
            params = {k: v for k, v in spec.items() if k != "action"}
            action = spec["action"]
        else:
            raise PolicyError(f"column {match!r}: give an action name or a mapping with 'action'")
        if action not in ACTIONS:
            known = ", ".join(sorted(ACTIONS))
            raise PolicyError(f"column {match!r}: unknown action {action!r} (known: {known})")
        if str(match).startswith("re:"):
            try:
                re.compile(str(match)[3:])
            except re.error as exc:
                raise PolicyError(
                    f"column pattern {match!r} is not a valid regular expression: {exc}"
                ) from exc
        rules.append(Rule(match=str(match), action=action, params=params))
    if data.get("version") is None:
        raise PolicyError("the policy must have a version")
    try:
        return Policy(
            name=str(data.get("name") or ""),
            version=str(data["version"]),
            description=str(data.get("description") or ""),
            rules=rules,
            sha256=hashlib.sha256(yaml_text.encode()).hexdigest(),
            document=yaml_text,
        )
    except ValidationError as exc:
        raise PolicyError(f"invalid policy: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}") from exc


class PolicyStep:
    """Applies a policy to record batches: ``plan`` once, then ``apply`` every batch."""

    def __init__(self, policy: Policy, context: PolicyContext) -> None:
        self.policy = policy
        self.context = context
        self._plan: list[tuple[str, ColumnAction, pa.Field, pa.Field]] = []
        self.schema: pa.Schema | None = None

    def plan(self, first_batch: pa.RecordBatch) -> pa.Schema:
        """Resolve every column's action; raise naming each column no rule covers."""
        uncovered = [name for name in first_batch.schema.names if self.policy.rule_for(name) is None]
        if uncovered:
            raise PolicyError(
                f"policy {self.policy.label} names no action for column(s) {', '.join(uncovered)}: "
                "add a rule (keep, drop, ...) for each one",
                columns=uncovered,
            )
        self._plan = []
        fields = []
        for input_field in first_batch.schema:
            rule = self.policy.rule_for(input_field.name)
            assert rule is not None
            action = ACTIONS[rule.action](rule.params, self.context)
            output = action.output_field(input_field)
            if output is not None:
                self._plan.append((input_field.name, action, input_field, output))
                fields.append(output)
        if not fields:
            raise PolicyError(f"policy {self.policy.label} drops every column: nothing would be stored")
        self.schema = pa.schema(fields)
        return self.schema

    def apply(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        if self.schema is None:
            self.plan(batch)
        assert self.schema is not None
        arrays = []
        for name, action, input_field, _ in self._plan:
            index = batch.schema.get_field_index(name)
            if index < 0:
                raise PolicyError(f"column {name!r} disappeared from the input after the first batch")
            arrays.append(action.apply(batch.column(index), input_field))
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)

    def actions(self) -> dict[str, str]:
        """Column -> action name, for reports."""
        assert self.schema is not None or not self._plan
        return {name: action.name for name, action, _, _ in self._plan}
