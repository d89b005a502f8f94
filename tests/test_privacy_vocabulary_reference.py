"""Our CDISC vocabulary against independent public machine-readable IG metadata.

``privacy/data/cdisc_*.csv`` was written from the implementation guides; the files
``tests/data/cdisc_reference_*.csv`` are variable names extracted from other public sources
(CDISC Library exports, the FDA/PhUSE CDISC standards in RDF, an R package's IG tables; see
``tests/data/README.md``). Every variable they list, per IG version and dataset, must be in
our vocabulary for that version and dataset, and the built-in ``sdtm`` policy must have a
rule for it, as protective as the vocabulary's class.
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from pathlib import Path

import pytest

from datalibrary.privacy.builtin import SDTM
from datalibrary.privacy.policy import parse_policy
from datalibrary.privacy.vocabulary import adam_variables, sdtm_domain_variables

DATA = Path(__file__).parent / "data"
REFERENCES = sorted(DATA.glob("cdisc_reference_*.csv"))
POLICY = parse_policy(SDTM)
PROTECTIVE = {
    "identifier": {"pseudonymize", "drop", "by_variable"},
    "date": {"date_shift"},
    "free-text": {"scrub_text", "drop", "by_variable"},
}


def _reference(path: Path) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """(IG, version) -> [(dataset, variable)]."""
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    out: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for row in csv.DictReader(lines):
        out[(row["ig"], row["version"])].append((row["dataset"], row["variable"]))
    return out


def _concrete(name: str) -> str:
    """A column name an ADaM dataset could carry for a variable written with placeholders."""
    name = name.replace("*", "XY").replace("--", "AE")
    return re.sub(r"xx|zz", "01", name).replace("y", "1").replace("w", "2")


CASES = [
    pytest.param(path, ig, version, id=f"{ig}-{version}-{path.stem.removeprefix('cdisc_reference_')}")
    for path in REFERENCES
    for ig, version in sorted(_reference(path))
]


def test_the_references_cover_every_ig_version() -> None:
    covered = {key for path in REFERENCES for key in _reference(path)}
    for version in ("3.1.2", "3.2", "3.4"):
        assert ("SDTMIG", version) in covered
    for version in ("1.0", "1.1", "1.2", "1.3"):
        assert ("ADaMIG", version) in covered
    # SDTMIG 3.3 is covered for its special-purpose datasets only (see tests/data/README.md)
    assert ("SDTMIG", "3.3") in covered


@pytest.mark.parametrize(("path", "ig", "version"), CASES)
def test_every_reference_variable_is_in_the_vocabulary_and_has_a_rule(
    path: Path, ig: str, version: str
) -> None:
    rows = _reference(path)[(ig, version)]
    assert len(rows) > 50
    ours = sdtm_domain_variables(version) if ig == "SDTMIG" else adam_variables(version)
    not_listed, no_rule, weak = [], [], []
    for dataset, variable in rows:
        if ig == "SDTMIG":
            name = variable.replace("--", "" if dataset == "SUPPQUAL" else dataset)
            column = name
        else:
            name, column = variable, _concrete(variable)
        known = ours.get(dataset, {})
        if name not in known:
            not_listed.append(f"{dataset}.{name}")
        rule = POLICY.rule_for(column)
        if rule is None:
            no_rule.append(f"{dataset}.{column}")
        elif name in known and rule.action not in PROTECTIVE.get(known[name].kind, {rule.action}):
            weak.append(f"{dataset}.{column}: {known[name].kind} but {rule.action}")
    assert not not_listed, f"{ig} {version}: not in privacy/data/cdisc_variables.csv: {not_listed[:30]}"
    assert not no_rule, f"{ig} {version}: no rule in the sdtm policy: {no_rule[:30]}"
    assert not weak, weak[:30]


def test_issue_examples_are_in_the_reference_and_ours() -> None:
    """SVUPDES (SV) and TSVALNF, TSVALCD, TSVCDREF, TSVCDVER (TS): in the reference metadata
    of every IG version that defines them, and classified by ours."""
    seen: dict[str, set[str]] = defaultdict(set)
    for path in REFERENCES:
        for (ig, version), rows in _reference(path).items():
            for dataset, variable in rows:
                if ig == "SDTMIG" and variable in {"SVUPDES", "TSVALNF", "TSVALCD", "TSVCDREF", "TSVCDVER"}:
                    seen[variable].add(version)
                    assert variable in sdtm_domain_variables(version)[dataset], (version, variable)
    assert seen["SVUPDES"] >= {"3.1.2", "3.2", "3.3", "3.4"}
    assert seen["TSVALNF"] >= {"3.2", "3.4"}
    assert POLICY.rule_for("SVUPDES").action == "scrub_text"
