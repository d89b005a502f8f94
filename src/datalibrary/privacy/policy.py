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
import functools
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import pyarrow as pa
import pyarrow.compute as pc
import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator

from datalibrary.errors import InvalidInput
from datalibrary.privacy.identifiers import identifying_values

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


TIERS = ("internal", "shared")


class Policy(BaseModel):
    """A parsed policy; ``sha256`` identifies the exact document it came from."""

    name: str
    version: str
    description: str = ""
    rules: list[Rule]
    # Columns naming the data subject, first present wins (date shifting, names to scrub).
    subject: list[str] = Field(default_factory=list)
    # Output columns on which the risk report computes equivalence classes.
    quasi_identifiers: list[str] = Field(default_factory=list)
    tier: str = "internal"
    risk_threshold: float = Field(0.09, gt=0, le=1)
    sha256: str = ""
    document: str = ""

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not POLICY_NAME_RE.match(value):
            raise ValueError("a policy name uses letters, digits, '_', '.', '-' (at most 100)")
        return value

    def rule_for(self, column: str) -> Rule | None:
        exact = self._exact()
        if column in exact:
            return exact[column]
        return next((rule for rule in self.rules if rule.kind != "exact" and rule.matches(column)), None)

    def _exact(self) -> dict[str, Rule]:
        index = self.__dict__.get("_exact_index")
        if index is None:
            index = {}
            for rule in self.rules:
                if rule.kind == "exact":
                    index.setdefault(rule.match, rule)
            self.__dict__["_exact_index"] = index
        return index

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_policy(yaml_text: str) -> Policy:
    """Parse and check a policy document; raises ``PolicyError`` saying what is wrong.

    Parsed documents are cached by content (the built-in ``sdtm`` policy has thousands of
    rules); each call returns its own copy."""
    return _parse_cached(yaml_text).model_copy()


@functools.lru_cache(maxsize=64)
def _parse_cached(yaml_text: str) -> Policy:
    try:
        data = yaml.load(yaml_text, Loader=_LOADER)  # noqa: S506 (a safe loader)
    except yaml.YAMLError as exc:
        raise PolicyError(f"the policy is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise PolicyError("a policy is a YAML mapping with name, version and columns")
    unknown = set(data) - {
        "name",
        "version",
        "description",
        "columns",
        "subject",
        "quasi_identifiers",
        "tier",
        "risk_threshold",
    }
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
    subject = data.get("subject") or []
    subject = [subject] if isinstance(subject, str) else subject
    qis = data.get("quasi_identifiers") or []
    if not isinstance(subject, list) or not all(isinstance(c, str) for c in subject):
        raise PolicyError("'subject' is a column name or a list of column names")
    if not isinstance(qis, list) or not all(isinstance(c, str) for c in qis):
        raise PolicyError("'quasi_identifiers' is a list of (output) column names")
    tier = str(data.get("tier") or "internal")
    if tier not in TIERS:
        raise PolicyError(f"'tier' is one of {', '.join(TIERS)}, not {tier!r}")
    for rule in rules:
        check = getattr(ACTIONS[rule.action], "check_params", None)
        if check is not None:
            problem = check(rule.params)
            if problem:
                raise PolicyError(f"column {rule.match!r}: {problem}")
    try:
        return Policy(
            name=str(data.get("name") or ""),
            version=str(data["version"]),
            description=str(data.get("description") or ""),
            rules=rules,
            subject=subject,
            quasi_identifiers=qis,
            tier=tier,
            risk_threshold=data.get("risk_threshold", 0.09),
            sha256=hashlib.sha256(yaml_text.encode()).hexdigest(),
            document=yaml_text,
        )
    except ValidationError as exc:
        raise PolicyError(f"invalid policy: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}") from exc


class PolicyStep:
    """Applies a policy to record batches: ``plan`` once, then ``apply`` every batch.

    Actions that need to see the whole file first (``suppress`` counts class sizes,
    ``scrub_text`` collects the dataset's names) implement ``observe``; the pipeline then
    makes a first pass over the landed file calling ``observe`` on every batch
    (``needs_prepass``), so both passes stream and memory holds only per-value counts.
    When ``quasi_identifiers`` are declared, ``apply`` also counts equivalence classes for
    the risk report.
    """

    def __init__(self, policy: Policy, context: PolicyContext) -> None:
        self.policy = policy
        self.context = context
        self._plan: list[tuple[str, Any, pa.Field, list[pa.Field]]] = []
        self.schema: pa.Schema | None = None
        self.classes: RiskCounter | None = None
        self.rows_applied = 0
        self.subject: str | None = None
        self._observed = False
        self._columns: list[str] = []

    def plan(self, first_batch: pa.RecordBatch) -> pa.Schema:
        """Resolve every column's action; refuse (naming the columns) when any is uncovered."""
        uncovered = [name for name in first_batch.schema.names if self.policy.rule_for(name) is None]
        if uncovered:
            raise uncovered_error(self.policy, first_batch, uncovered)
        self.subject = self._subject(first_batch.schema.names)
        self._columns = list(first_batch.schema.names)
        context = PolicyContext(
            self.context.namespace,
            self.context.table,
            self.context.job_id,
            {
                **self.context.extra,
                "policy": self.policy,
                "columns": first_batch.schema.names,
                "subject_column": self.subject,
            },
        )
        self._plan = []
        fields: list[pa.Field] = []
        for input_field in first_batch.schema:
            rule = self.policy.rule_for(input_field.name)
            assert rule is not None
            action = ACTIONS[rule.action](rule.params, context)
            outputs = action.outputs(input_field) if hasattr(action, "outputs") else None
            if outputs is None:
                single = action.output_field(input_field)
                outputs = [] if single is None else [single]
            if outputs:
                self._plan.append((input_field.name, action, input_field, outputs))
                fields.extend(outputs)
        if not fields:
            raise PolicyError(f"policy {self.policy.label} drops every column: nothing would be stored")
        names = [f.name for f in fields]
        if len(set(names)) != len(names):
            raise PolicyError(f"policy {self.policy.label} produces a column twice: {sorted(names)}")
        self.schema = pa.schema(fields)
        missing = [q for q in self.policy.quasi_identifiers if q not in names]
        if self.policy.quasi_identifiers and not missing:
            self.classes = RiskCounter(self.policy.quasi_identifiers)
        return self.schema

    def _subject(self, columns: list[str]) -> str | None:
        """The dataset's declared subject column (checked), else the policy's first present.

        A dataset whose subject column was declared (on its first delivery, or by its owner)
        must carry it in every delivery: without it every row would get the study-wide date
        offset and no subject list, so the file is refused."""
        declared = self.context.extra.get("subject_column")
        if declared:
            if declared not in columns:
                raise PolicyError(
                    f"the dataset's subject column {declared!r} is not in this delivery (columns: "
                    f"{', '.join(columns[:20])}): deliver it with that column, or change the "
                    "dataset's subject column",
                    code="subject-column-missing",
                    column=declared,
                )
            return str(declared)
        found = next((c for c in self.policy.subject if c in columns), None)
        if found is None and self.policy.subject:
            shifted = [c for c in columns if (r := self.policy.rule_for(c)) and r.action == "date_shift"]
            if shifted:
                raise PolicyError(
                    f"no subject column ({' or '.join(self.policy.subject)}) in a file whose dates "
                    f"{', '.join(shifted[:5])} are shifted per subject: declare the dataset's subject "
                    "column, or deliver the file with it",
                    code="subject-column-missing",
                )
        return found

    def identifiers(self, batch: pa.RecordBatch) -> None:
        """Feed the study-wide identifier dictionary with this batch's identifying values."""
        dictionary = self.context.extra.get("identifier_dictionary")
        if dictionary is None:
            return
        for values, words in identifying_values(self._plan, self.policy, batch, self.subject):
            dictionary.collect(pc.unique(values).cast(pa.string()).to_pylist(), words=words)

    @property
    def needs_prepass(self) -> bool:
        """A first pass over the file is needed when an action counts the whole file
        (``suppress``, ``scrub_text`` with ``names_from``), or when free text must be scrubbed
        of identifiers that other columns of the same file bring (a dropped name column, a
        SUPPQUAL value whose variable is dropped). The subject column alone needs none: a
        batch's subjects are collected before that batch is scrubbed."""
        for _, action, _, _ in self._plan:
            if not hasattr(action, "observe"):
                continue
            if action.name == "scrub_text" and not getattr(action, "name_columns", None):
                continue
            return True
        actions = {name: action.name for name, action, _, _ in self._plan}
        scrubs = any(a in ("scrub_text", "by_variable") for a in actions.values())
        feeds = any(a == "by_variable" for a in actions.values()) or any(
            (rule := self.policy.rule_for(name)) is not None and rule.action == "drop"
            for name in self._columns
        )
        return scrubs and feeds

    def observe(self, batch: pa.RecordBatch) -> None:
        """First pass: let actions that need the whole file count what they need."""
        self._observed = True
        self.identifiers(batch)
        for name, action, input_field, _ in self._plan:
            if hasattr(action, "observe"):
                action.observe(_column(batch, name), input_field, batch)

    def apply(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        if self.schema is None:
            self.plan(batch)
        assert self.schema is not None
        if not self._observed:
            self.identifiers(batch)
        arrays: list[pa.Array] = []
        for name, action, input_field, outputs in self._plan:
            column = _column(batch, name)
            try:
                if hasattr(action, "transform"):
                    produced = action.transform(column, input_field, batch)
                else:
                    produced = [action.apply(column, input_field)]
            except InvalidInput as exc:  # name the value's position in the file (never the value)
                if "batch_row" in exc.extra:
                    row = self.rows_applied + int(exc.extra.pop("batch_row")) + 1
                    exc.extra.update(row=row, column=name)
                    exc.detail = f"column {name!r}, row {row}: {exc.detail}"
                    exc.args = (exc.detail,)
                raise
            for array, out_field in zip(produced, outputs, strict=True):
                arrays.append(array if array.type == out_field.type else array.cast(out_field.type))
        out = pa.RecordBatch.from_arrays(arrays, schema=self.schema)
        self.rows_applied += batch.num_rows
        if self.classes is not None:
            self.classes.add(out)
        return out

    def actions(self) -> dict[str, str]:
        """Column -> action name, for reports (columns that are stored)."""
        return {name: action.name for name, action, _, _ in self._plan}

    def all_actions(self) -> dict[str, str]:
        """Every input column -> its rule's action, dropped columns included."""
        return {name: rule.action for name in self._columns if (rule := self.policy.rule_for(name))}

    @property
    def key_id(self) -> str | None:
        """The id of the study key the actions used (None when no action needed one)."""
        provider = self.context.extra.get("key_provider")
        key = getattr(provider, "used", None) or self.context.extra.get("key")
        return key.key_id if key is not None else None

    def risk(self) -> RiskReport | None:
        """The risk report of everything applied so far (None without quasi-identifiers)."""
        if self.classes is None:
            return None
        return self.classes.report(self.policy.risk_threshold)


def _column(batch: pa.RecordBatch, name: str) -> pa.Array:
    index = batch.schema.get_field_index(name)
    if index < 0:
        raise PolicyError(f"column {name!r} disappeared from the input after the first batch")
    return batch.column(index)


def uncovered_error(policy: Policy, batch: pa.RecordBatch, uncovered: list[str]) -> PolicyError:
    """Fail closed: identifying-looking columns quarantine with evidence, others ask for a rule."""
    evidence = {
        name: scan_column(name, batch.column(batch.schema.get_field_index(name))) for name in uncovered
    }
    identifying = {name: found for name, found in evidence.items() if found}
    if identifying:
        described = "; ".join(f"{name}: {', '.join(found)}" for name, found in identifying.items())
        return PolicyError(
            f"column(s) {', '.join(identifying)} look identifying and policy {policy.label} has no rule for "
            f"them ({described}): add a rule (drop, pseudonymize, ...) and submit the file again",
            columns=uncovered,
            code="policy-identifying-column",
            evidence=identifying,
        )
    return PolicyError(
        f"policy {policy.label} names no action for column(s) {', '.join(uncovered)}: "
        "add a rule (keep, drop, ...) for each one",
        columns=uncovered,
        code="policy-uncovered-columns",
    )


from datalibrary.privacy import actions as _actions  # noqa: E402,F401  (registers the actions)
from datalibrary.privacy import pervariable as _pervariable  # noqa: E402,F401
from datalibrary.privacy.detect import scan_column  # noqa: E402
from datalibrary.privacy.risk import RiskCounter, RiskReport  # noqa: E402
