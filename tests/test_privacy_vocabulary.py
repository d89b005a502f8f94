"""The built-in ``sdtm`` policy knows every standard variable of SDTMIG 3.1.2-3.4 and ADaMIG.

The vocabulary is data (privacy/data/cdisc_*.csv); these tests expand it for every IG
version and check the policy built from it, and that sponsor variables still fail closed.
"""

from __future__ import annotations

import pyarrow as pa
import pytest

from datalibrary.privacy.builtin import SDTM
from datalibrary.privacy.policy import PolicyContext, PolicyError, PolicyStep, parse_policy
from datalibrary.privacy.vocabulary import (
    ADAMIG_VERSIONS,
    DEFAULT_ACTION,
    SDTMIG_VERSIONS,
    adam_variables,
    sdtm_domain_variables,
)

POLICY = parse_policy(SDTM)
PROTECTIVE = {"identifier": {"pseudonymize", "drop", "by_variable"}, "date": {"date_shift"}}


@pytest.mark.parametrize("version", SDTMIG_VERSIONS)
def test_every_sdtm_variable_of_every_domain_has_a_rule(version: str) -> None:
    found = sdtm_domain_variables(version)
    assert len(found) >= 30 and {"DM", "AE", "LB", "SUPPQUAL", "RELREC", "TS"} <= set(found)
    missing, weak = [], []
    for domain, names in found.items():
        for name, variable in names.items():
            rule = POLICY.rule_for(name)
            if rule is None:
                missing.append(f"{domain}.{name}")
            elif variable.kind in PROTECTIVE and rule.action not in PROTECTIVE[variable.kind]:
                weak.append(f"{domain}.{name}: {rule.action}")
    assert not missing, missing[:20]
    assert not weak, weak[:20]


@pytest.mark.parametrize("version", ADAMIG_VERSIONS)
def test_every_adam_variable_has_a_rule(version: str) -> None:
    for structure, names in adam_variables(version).items():
        assert names, structure
        for name, variable in names.items():
            concrete = name.replace("*", "XY").replace("--", "AE")  # a producer prefix, a domain prefix
            concrete = concrete.replace("xx", "01").replace("zz", "02").replace("y", "1").replace("w", "2")
            rule = POLICY.rule_for(concrete)
            assert rule is not None, f"{structure}.{name}"
            if variable.kind == "date":
                assert rule.action == "date_shift", name


def test_issue_examples_and_classes() -> None:
    for name in ["SVUPDES", "TSVALNF", "TSVALCD", "TSVCDREF", "TSVCDVER"]:
        assert POLICY.rule_for(name) is not None, name
    assert POLICY.rule_for("INVNAM").action == "drop"
    assert POLICY.rule_for("RELID").action == "pseudonymize"
    assert POLICY.rule_for("QVAL").action == "by_variable"
    assert POLICY.rule_for("AETERM").action == DEFAULT_ACTION["free-text"]
    assert POLICY.rule_for("LBDTC").action == "date_shift"
    assert POLICY.rule_for("TRT01P").action == "keep"


def test_sponsor_variables_still_fail_closed() -> None:
    batch = pa.RecordBatch.from_pydict({"USUBJID": ["S1"], "AEXNAME": ["John Smith"], "AESPONS": ["x"]})
    step = PolicyStep(POLICY, PolicyContext("s", "ae", "", {}))
    with pytest.raises(PolicyError) as caught:
        step.plan(batch)
    assert "AEXNAME" in caught.value.detail and "AESPONS" in caught.value.detail
