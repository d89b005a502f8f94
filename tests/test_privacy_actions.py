"""Unit tests of the anonymization actions, keys, policy parsing and the risk report."""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

import pyarrow as pa
import pytest

from datalibrary.config import Settings
from datalibrary.errors import InvalidInput, Unavailable
from datalibrary.privacy.actions import RESTRICTED_ZIP3
from datalibrary.privacy.builtin import BUILTIN
from datalibrary.privacy.detect import scan_column
from datalibrary.privacy.keys import derive_study_key, ensure_master_key_file, load_master_key
from datalibrary.privacy.policy import PolicyContext, PolicyError, PolicyStep, parse_policy
from datalibrary.privacy.risk import RiskCounter

KEY = derive_study_key(b"k" * 32, "study-a")


def run(policy_text: str, columns: dict, key=KEY, prepass: bool = True) -> pa.RecordBatch:
    policy = parse_policy(policy_text)
    batch = pa.RecordBatch.from_pydict(columns)
    step = PolicyStep(policy, PolicyContext("study-a", "t", "", {"key": key}))
    step.plan(batch)
    if prepass and step.needs_prepass:
        step.observe(batch)
    return step.apply(batch)


def policy(columns: str, extra: str = "") -> str:
    return f"name: t\nversion: 1\n{extra}columns:\n{columns}"


# keys ----------------------------------------------------------------------------------------


def test_master_key_from_env_file_and_errors(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, master_key="ab" * 32)
    assert load_master_key(settings) == bytes.fromhex("ab" * 32)
    missing = Settings(home=tmp_path / "none")
    with pytest.raises(Unavailable, match="no master key.*DATALIBRARY_MASTER_KEY"):
        load_master_key(missing)
    key_file = tmp_path / "k" / "master.key"
    assert ensure_master_key_file(key_file) and not ensure_master_key_file(key_file)
    assert key_file.stat().st_mode & 0o777 == 0o600
    from_file = Settings(home=tmp_path, master_key_file=key_file)
    secret = load_master_key(from_file)
    assert len(secret) == 32
    key_file.chmod(0o644)
    with pytest.raises(Unavailable, match="chmod 600") as caught:
        load_master_key(from_file)
    assert key_file.read_text().strip() not in str(caught.value)
    with pytest.raises(Unavailable, match="too short"):
        load_master_key(Settings(home=tmp_path, master_key="short"))


def test_study_keys_are_independent_and_never_printed() -> None:
    a1, a2, b = (derive_study_key(b"m" * 32, ns) for ns in ("a", "a", "b"))
    assert a1.secret == a2.secret and a1.key_id == a2.key_id
    assert a1.secret != b.secret and a1.key_id != b.key_id
    assert derive_study_key(b"m" * 32, "a", 2).secret != a1.secret
    assert a1.secret.hex() not in repr(a1) and str(a1.secret) not in repr(a1)


# pseudonymize --------------------------------------------------------------------------------


def test_pseudonyms_normalize_are_stable_keyed_and_not_plain_hashes() -> None:
    text = policy("  ID: pseudonymize\n")
    out = run(text, {"ID": ["ab-1", " AB-1 ", "ab  2", None, ""]}).column("ID").to_pylist()
    assert out[0] == out[1] and out[2] != out[0] and out[3] is None and out[4] == ""
    assert len(out[0]) == 16
    again = run(text, {"ID": ["ab-1"]}).column("ID").to_pylist()
    assert again[0] == out[0], "same key, same token"
    other = run(text, {"ID": ["ab-1"]}, key=derive_study_key(b"k" * 32, "study-b")).column("ID")
    assert other.to_pylist()[0] != out[0], "another study, another token"
    for value in ("ab-1", "AB-1"):
        for algorithm in ("md5", "sha1", "sha256"):
            assert out[0] not in hashlib.new(algorithm, value.encode()).hexdigest()
    numeric = run(text, {"ID": pa.array([1.0, 2.0], pa.float64())}).column("ID").to_pylist()
    assert numeric[0] == run(text, {"ID": ["1"]}).column("ID").to_pylist()[0]


def test_pseudonymize_runs_hmac_once_per_distinct_value(monkeypatch: pytest.MonkeyPatch) -> None:
    from datalibrary.privacy import actions

    calls: list[int] = []
    real = actions._token_step

    def counting(secret, scope, values, length):  # type: ignore[no-untyped-def]
        calls.append(len(values))
        return real(secret, scope, values, length)

    monkeypatch.setattr(actions, "_token_step", counting)
    run(policy("  ID: pseudonymize\n"), {"ID": ["a", "b"] * 50_000})
    assert sum(calls) == 2


# date_shift ----------------------------------------------------------------------------------


def test_date_shift_keeps_precision_time_and_intervals() -> None:
    text = policy("  USUBJID: keep\n  '*DTC': date_shift\n  '*DY': keep\n", "subject: USUBJID\n")
    values = ["2014", "2014-03", "2014-03-05", "2014-03-05T10:00", "2014-03-09T10:00:30", "", None]
    out = run(text, {"USUBJID": ["S1"] * len(values), "AESTDTC": values, "AESTDY": list(range(len(values)))})
    shifted = out.column("AESTDTC").to_pylist()
    assert [len(v) if v is not None else None for v in shifted[:6]] == [4, 7, 10, 16, 19, 0]
    assert shifted[3].endswith("T10:00") and shifted[4].endswith("T10:00:30")
    assert shifted[6] is None
    with pytest.raises(InvalidInput, match="row 2"):  # unparseable dates stop the file (#21)
        run(text, {"USUBJID": ["S1", "S1"], "AESTDTC": ["2014", "garbage"], "AESTDY": [1, 2]})
    from datetime import date

    gap = date.fromisoformat(shifted[4][:10]) - date.fromisoformat(shifted[2][:10])
    assert gap.days == 4
    assert out.column("AESTDY").to_pylist() == list(range(len(values)))
    typed = run(
        text,
        {
            "USUBJID": ["S1"],
            "AESTDTC": pa.array([date(2014, 3, 5)], pa.date32()),
            "AESTDY": [1],
        },
    ).column("AESTDTC")
    assert typed.type == pa.date32()
    assert typed.to_pylist()[0].isoformat() == shifted[2]


def test_date_shift_range_is_configurable() -> None:
    text = policy("  S: keep\n  D: {action: date_shift, min_days: 10, max_days: 12}\n", "subject: S\n")
    out = run(text, {"S": [f"s{i}" for i in range(200)], "D": ["2020-01-01"] * 200}).column("D")
    from datetime import date

    shifts = {abs((date.fromisoformat(v) - date(2020, 1, 1)).days) for v in out.to_pylist()}
    assert shifts == {10, 11, 12}
    with pytest.raises(PolicyError, match="min_days"):
        parse_policy(policy("  D: {action: date_shift, min_days: 5, max_days: 1}\n"))


# generalize ----------------------------------------------------------------------------------


def test_generalize_methods() -> None:
    text = policy(
        "  AGE: {action: generalize, method: top_code}\n"
        "  AGE2: {action: generalize, method: age_band, width: 10}\n"
        "  ZIP: {action: generalize, method: zip3}\n"
        "  ZIPN: {action: generalize, method: zip3}\n"
        "  BD: {action: generalize, method: year}\n"
        "  C: {action: generalize, method: continent}\n"
        "  W: {action: generalize, method: band, edges: [0, 50, 100]}\n"
    )
    restricted = sorted(RESTRICTED_ZIP3)[0]
    out = run(
        text,
        {
            "AGE": [95, 89, 40],
            "AGE2": [95.0, 89.0, 4.0],
            "ZIP": [f"{restricted}12", "12345-6789", "bad"],
            "ZIPN": [2118, 90210, None],
            "BD": ["1931-02-17", "1950", ""],
            "C": ["us", "France", "Atlantis"],
            "W": [10, 75, 150],
        },
    ).to_pydict()
    assert out["AGE"] == [90, 89, 40] and out["AGE_TOPCODED"] == [True, False, False]
    assert out["AGE2"] == ["90+", "80-90", "0-10"]
    assert out["ZIP"] == ["000", "123", None]
    assert out["ZIPN"] == ["021", "902", None]
    assert out["BD"] == ["1931", "1950", None]
    assert out["C"] == ["North America", "Europe", "Unknown"]
    assert out["W"] == ["0-50", "50-100", ">=100"]


# suppress and scrub_text --------------------------------------------------------------------


def test_suppress_uses_counts_of_the_first_pass() -> None:
    text = policy("  SITE: {action: suppress, k: 3}\n")
    out = run(text, {"SITE": ["a"] * 3 + ["b"] * 2 + [None]}).column("SITE").to_pylist()
    assert out == ["a"] * 3 + [None, None, None]
    policy_ = parse_policy(text)
    step = PolicyStep(policy_, PolicyContext("s", "t"))
    first = pa.RecordBatch.from_pydict({"SITE": ["a", "a", "b"]})
    second = pa.RecordBatch.from_pydict({"SITE": ["a", "b", "b"]})
    step.plan(first)
    assert step.needs_prepass
    step.observe(first)
    step.observe(second)
    assert step.apply(first).column(0).to_pylist() == ["a", "a", "b"], "classes span batches"


def test_scrub_text_placeholders() -> None:
    text = policy("  FIRST: drop\n  NOTE: {action: scrub_text, names_from: [FIRST]}\n")
    notes = [
        "Ann called from 617-555-0199 (ann@x.org), SSN 123-45-6789, MRN: A1234567",
        "see https://x.example/a?b=1 from 10.1.2.3 on 03/05/2014 and 2014-03-05",
        None,
    ]
    out = run(text, {"FIRST": ["Ann", "Bob", None], "NOTE": notes}).column("NOTE").to_pylist()
    assert out[0] == "[NAME] called from [PHONE] ([EMAIL]), SSN [SSN], [MRN]"
    assert out[1] == "see [URL] from [IP] on [DATE] and [DATE]"
    assert out[2] is None


# fail closed ---------------------------------------------------------------------------------


def test_uncovered_columns_are_scanned_for_identifiers() -> None:
    assert scan_column("SSN", pa.array(["x"]))
    assert scan_column("X1", pa.array(["123-45-6789", "n"]))
    assert scan_column("CONTACT", pa.array(["a@b.org"]))
    assert not scan_column("LBTESTCD", pa.array(["ALT", "AST"]))
    text = policy("  A: keep\n")
    with pytest.raises(PolicyError) as caught:
        run(text, {"A": ["1"], "X1": ["123-45-6789"]})
    assert caught.value.extra["code"] == "policy-identifying-column"
    assert "123-45-6789" not in caught.value.detail
    with pytest.raises(PolicyError) as caught:
        run(text, {"A": ["1"], "B": ["2"]})
    assert caught.value.extra["code"] == "policy-uncovered-columns"


# policies ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("name: x\nversion: 1\ncolumns:\n  A: {action: generalize}\n", "method"),
        ("name: x\nversion: 1\ncolumns:\n  A: {action: pseudonymize, length: 3}\n", "length"),
        ("name: x\nversion: 1\ntier: public\ncolumns:\n  A: keep\n", "tier"),
        ("name: x\nversion: 1\nsubject: 3\ncolumns:\n  A: keep\n", "subject"),
        ("name: x\nversion: 1\ncolumns:\n  A: {action: suppress, k: 1}\n", "k is"),
    ],
)
def test_policy_parameters_are_checked(document: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        parse_policy(document)


def test_builtin_policies_parse() -> None:
    for name, text in BUILTIN.items():
        parsed = parse_policy(text)
        assert parsed.name == name and parsed.quasi_identifiers


# risk ----------------------------------------------------------------------------------------


def test_risk_report_matches_pycanon() -> None:
    import pandas as pd
    from pycanon import anonymity
    from pycanon.anonymity.utils.aux_anonymity import get_equiv_class

    rng = random.Random(5)
    rows = {
        "AGE": [rng.choice(["20-29", "30-39", "40-49", "90+"]) for _ in range(600)],
        "SEX": [rng.choice("MF") for _ in range(600)],
        "ZIP": [rng.choice(["021", "100", "000", "945", "606"]) for _ in range(600)],
    }
    qis = ["AGE", "SEX", "ZIP"]
    counter = RiskCounter(qis)
    batch = pa.RecordBatch.from_pydict(rows)
    counter.add(batch.slice(0, 250))
    counter.add(batch.slice(250))
    report = counter.report(0.09)
    frame = pd.DataFrame(rows)
    k = anonymity.k_anonymity(frame, qis)
    classes = get_equiv_class(frame, qis)
    sizes = [len(c) for c in classes]
    assert report.k == k
    assert report.classes == len(classes)
    assert report.max_risk == pytest.approx(1 / k)
    assert report.average_risk == pytest.approx(sum(1 / s * s for s in sizes) / len(frame))
    assert report.share_above_threshold == pytest.approx(sum(s for s in sizes if 1 / s > 0.09) / len(frame))
    assert report.records == 600


def test_risk_of_shared_tier_is_reported_per_policy() -> None:
    text = policy("  AGE: keep\n  SEX: keep\n", "quasi_identifiers: [AGE, SEX]\ntier: shared\n")
    policy_ = parse_policy(text)
    step = PolicyStep(policy_, PolicyContext("s", "t"))
    batch = pa.RecordBatch.from_pydict({"AGE": [1] * 11 + [2], "SEX": ["M"] * 12})
    step.apply(batch)
    report = step.risk()
    assert report is not None and report.k == 1 and not report.meets(0.09)


@pytest.mark.skipif(os.name != "posix", reason="file modes")
def test_init_creates_a_private_master_key(tmp_path: Path) -> None:
    from datalibrary.bootstrap import initialize
    from datalibrary.db import Database

    settings = Settings(home=tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'x.db'}")
    db = Database(settings.connect_url())
    try:
        initialize(settings, db)
    finally:
        db.dispose()
    key_file = tmp_path / "home" / "master.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert len(load_master_key(settings)) == 32
