"""``by_variable``: one column whose rows hold values of different variables (SUPPQUAL, RELREC).

SUPP-- ``QVAL`` holds, row by row, the value of the variable named in ``QNAM``; ``IDVARVAL``
holds the value of the parent-domain variable named in ``IDVAR``. One blanket action cannot
be right for both an investigator's name and a sequence number, so each row gets the action
the same policy gives the named variable: ``QNAM=INVNAM`` is dropped (null), ``QNAM=xxDTC``
is shifted with the subject's offset, ``IDVAR=USUBJID`` is pseudonymized with the key and
scope of the parent's ``USUBJID`` (so it still joins), ``IDVAR=AESEQ`` is kept. A variable
the policy does not know gets ``default`` (``scrub_text``), or is dropped when its name looks
identifying (the fail-closed scan of :mod:`datalibrary.privacy.detect`).

Work is per distinct variable name: the rows of each name are taken, transformed by that
variable's action as a column of their own, and put back in place.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.compute as pc

from datalibrary.errors import InvalidInput
from datalibrary.privacy.columns import as_strings
from datalibrary.privacy.detect import name_evidence
from datalibrary.privacy.policy import ACTIONS, PolicyContext, PolicyError, Rule, register_action

STRING = pa.string()


def _first_output(action: Any, field: pa.Field, column: pa.Array, batch: pa.RecordBatch) -> pa.Array | None:
    outputs = action.outputs(field) if hasattr(action, "outputs") else None
    if outputs is None:
        single = action.output_field(field)
        outputs = [] if single is None else [single]
    if not outputs:
        return None
    if hasattr(action, "transform"):
        produced = action.transform(column, field, batch)[0]
    else:
        produced = action.apply(column, field)
    return as_strings(produced)


@register_action
class ByVariable:
    """Each row gets the action the policy names for the variable its ``key`` column names."""

    name: ClassVar[str] = "by_variable"

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> str | None:
        unknown = set(params) - {"key", "default"}
        if unknown:
            return f"unknown parameter(s) {sorted(unknown)}"
        if not isinstance(params.get("key"), str):
            return "by_variable needs key: the column naming each row's variable (QNAM, IDVAR)"
        default = params.get("default", "scrub_text")
        if default not in ACTIONS or default == cls.name:
            return f"default is an action name other than by_variable, not {default!r}"
        return None

    def __init__(self, params: dict[str, Any], context: PolicyContext) -> None:
        problem = self.check_params(params)
        if problem:
            raise PolicyError(f"action {self.name}: {problem}")
        self.params, self.context = params, context
        self.key = str(params["key"])
        self.default = str(params.get("default", "scrub_text"))
        self.policy = context.extra.get("policy")
        if self.key not in context.extra.get("columns", [self.key]):
            raise PolicyError(f"by_variable: the column {self.key!r} naming each row's variable is missing")
        self._actions: dict[str, Any] = {}

    def output_field(self, field: pa.Field) -> pa.Field | None:
        return pa.field(field.name, STRING, nullable=True)

    def _rule(self, variable: str) -> Rule:
        rule = self.policy.rule_for(variable) if (self.policy and variable) else None
        if rule is not None and rule.action != self.name:
            return rule
        if variable and any("free text" not in e for e in name_evidence(variable)):
            return Rule(match=variable, action="drop")
        return Rule(match=variable or "(none)", action=self.default)

    def _action(self, variable: str) -> Any:
        rule = self._rule(variable)
        cache_key = f"{rule.match}\x00{rule.action}"
        if cache_key not in self._actions:
            self._actions[cache_key] = ACTIONS[rule.action](rule.params, self.context)
        return self._actions[cache_key]

    def variable_actions(self) -> dict[str, str]:
        """Variable -> action seen so far, for the report of what the policy did."""
        return {k.split("\x00")[0]: k.split("\x00")[1] for k in self._actions}

    def transform(self, column: pa.Array, field: pa.Field, batch: pa.RecordBatch) -> list[pa.Array]:
        names = batch.column(batch.schema.get_field_index(self.key))
        names = pc.fill_null(pc.utf8_upper(pc.utf8_trim_whitespace(as_strings(names))), "")
        encoded = pc.dictionary_encode(names)
        parts: list[pa.Array] = []
        places: list[pa.Array] = []
        for index, variable in enumerate(encoded.dictionary.to_pylist()):
            positions = pc.indices_nonzero(pc.equal(encoded.indices, index))
            action = self._action(variable)
            sub_batch = batch.take(positions)
            sub_field = pa.field(variable or field.name, STRING, nullable=True)
            try:
                values = _first_output(action, sub_field, as_strings(column).take(positions), sub_batch)
            except InvalidInput as exc:
                if "batch_row" in exc.extra:
                    exc.extra["batch_row"] = positions[int(exc.extra["batch_row"])].as_py()
                raise
            parts.append(pa.nulls(len(positions), STRING) if values is None else values.cast(STRING))
            places.append(positions)
        if not parts:
            return [pa.nulls(len(column), STRING)]
        order = pc.sort_indices(pa.concat_arrays([p.cast(pa.int64()) for p in places]))
        return [pa.concat_arrays(parts).take(order)]
