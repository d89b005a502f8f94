"""The CDISC vocabulary the built-in ``sdtm`` policy knows, kept as data.

``data/cdisc_domains.csv`` lists the SDTMIG domains of each observation class per IG
version (3.1.2, 3.2, 3.3, 3.4); ``data/cdisc_variables.csv`` lists every variable of each
class (``--`` = the domain prefix), special-purpose, trial-design and relationship dataset,
and of ADaM's ADSL, BDS and OCCDS structures (ADaMIG 1.0-1.3), with its de-identification
class: identifier, quasi-identifier, date, free-text or keep. This module expands the
tables (prefixes resolved per domain, ADaM's numbered ``xx``/``y``/``zz`` variables as
patterns) and writes the policy's rules from them, most protective rule first, so a name
two scopes classify differently gets the safer action. A variable no table lists (a
sponsor's own) has no rule: the job fails closed, as before.

The tables are cross-checked against public machine-readable IG metadata kept under
``tests/data/cdisc_reference_*.csv`` (``tests/test_privacy_vocabulary_reference.py``).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

SDTMIG_VERSIONS = ("3.1.2", "3.2", "3.3", "3.4")
ADAMIG_VERSIONS = ("1.0", "1.1", "1.2", "1.3")
GENERAL = {
    "INTERVENTIONS": ("IDENTIFIERS", "TIMING", "INTERVENTIONS"),
    "EVENTS": ("IDENTIFIERS", "TIMING", "EVENTS"),
    "FINDINGS": ("IDENTIFIERS", "TIMING", "FINDINGS"),
    "FINDINGS_ABOUT": ("IDENTIFIERS", "TIMING", "FINDINGS", "FINDINGS_ABOUT"),
}
ADAM_STRUCTURES = ("ADSL", "BDS", "OCCDS")
DEFAULT_ACTION = {
    "identifier": "pseudonymize",
    "date": "date_shift",
    "free-text": "scrub_text",
    "quasi-identifier": "keep",
    "keep": "keep",
}
# lower = more protective: when two scopes give one name different rules, the first wins
PROTECTION = {
    "drop": 0,
    "by_variable": 1,
    "pseudonymize": 2,
    "date_shift": 3,
    "scrub_text": 4,
    "generalize": 5,
}


@dataclass(frozen=True)
class Variable:
    scope: str
    name: str
    kind: str
    versions: tuple[str, ...]
    rule: str  # YAML flow value of the action ('' = the class default)

    @property
    def action(self) -> str:
        return self.rule if self.rule else DEFAULT_ACTION[self.kind]

    @property
    def action_name(self) -> str:
        rule = self.action
        match = re.search(r"action:\s*([a-z_]+)", rule)
        return match.group(1) if match else rule


def _rows(name: str) -> list[dict[str, str]]:
    text = resources.files("datalibrary.privacy").joinpath("data", name).read_text()
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    return list(csv.DictReader(lines))


@cache
def domains() -> dict[str, tuple[str, tuple[str, ...]]]:
    """SDTM domain -> (class, IG versions)."""
    return {r["domain"]: (r["class"], tuple(r["versions"].split())) for r in _rows("cdisc_domains.csv")}


@cache
def variables() -> tuple[Variable, ...]:
    return tuple(
        Variable(r["scope"], r["variable"], r["class"], tuple(r["versions"].split()), r["rule"].strip())
        for r in _rows("cdisc_variables.csv")
    )


def sdtm_domain_variables(version: str) -> dict[str, dict[str, Variable]]:
    """Every SDTM dataset of an IG version -> its variables (prefixes resolved)."""
    out: dict[str, dict[str, Variable]] = {}
    for domain, (kind, versions) in domains().items():
        if version not in versions:
            continue
        scopes = GENERAL.get(kind, ())
        found: dict[str, Variable] = {}
        for variable in variables():
            if version not in variable.versions:
                continue
            if variable.scope in scopes or variable.scope == domain:
                name = variable.name.replace("--", domain if domain != "SUPPQUAL" else "")
                if name not in found or variable.scope == domain:
                    found[name] = variable
        out[domain] = found
    return out


def adam_variables(version: str) -> dict[str, dict[str, Variable]]:
    """ADaM structure -> its variables (numbered names as written in the IG: TRTxxP)."""
    return {
        structure: {v.name: v for v in variables() if v.scope == structure and version in v.versions}
        for structure in ADAM_STRUCTURES
    }


def is_adam_pattern(name: str) -> bool:
    """TRTxxP, *DT (a producer-chosen prefix), --TERM (an SDTM domain prefix in OCCDS)."""
    return any(c.islower() for c in name) or "*" in name or "--" in name


def adam_pattern(name: str) -> str:
    """TRTxxP -> a regular expression with the IG's placeholders resolved: numbers (xx, y,
    zz, w), ``*`` (the prefix of a producer-defined timing variable such as *DT: 1-6
    characters, the whole name at most 8) and ``--`` (an SDTM domain prefix)."""
    pattern = re.escape(name).replace(r"\*", "[A-Z][A-Z0-9]{0,5}").replace(r"\-\-", "[A-Z]{2}")
    for placeholder, digits in (
        ("xx", "[0-9][0-9]"),
        ("zz", "[0-9][0-9]"),
        ("y", "[0-9]{1,2}"),
        ("w", "[0-9]"),
    ):
        pattern = pattern.replace(placeholder, digits)
    return pattern


def _protection(action: str) -> int:
    return PROTECTION.get(action, 9)


def _pick(current: Variable | None, candidate: Variable) -> Variable:
    if current is None:
        return candidate
    if (_protection(candidate.action_name), candidate.rule != "") < (
        _protection(current.action_name),
        current.rule != "",
    ):
        return candidate
    return current


def policy_rules() -> list[tuple[str, str]]:
    """(column name or pattern, YAML flow action) for every variable of every IG version."""
    exact: dict[str, Variable] = {}
    for version in SDTMIG_VERSIONS:
        for found in sdtm_domain_variables(version).values():
            for name, variable in found.items():
                exact[name] = _pick(exact.get(name), variable)
    patterns: dict[str, Variable] = {}
    for version in ADAMIG_VERSIONS:
        for found in adam_variables(version).values():
            for name, variable in found.items():
                if is_adam_pattern(name):  # xx, y, zz, w, *, --
                    patterns[adam_pattern(name)] = _pick(patterns.get(adam_pattern(name)), variable)
                else:
                    exact[name] = _pick(exact.get(name), variable)
    rules = [(name, exact[name].action) for name in sorted(exact)]
    ordered = sorted(patterns.items(), key=lambda item: (_protection(item[1].action_name), item[0]))
    rules += [(f"re:^{pattern}$", variable.action) for pattern, variable in ordered]
    return rules


def policy_columns_yaml(indent: str = "  ") -> str:
    """The ``columns:`` entries of the built-in policy, one line per rule."""
    lines = []
    for match, action in policy_rules():
        key = f"'{match}'" if not re.fullmatch(r"[A-Z0-9_]+", match) else match
        lines.append(f"{indent}{key}: {action}")
    return "\n".join(lines) + "\n"
