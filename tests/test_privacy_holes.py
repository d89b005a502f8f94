"""Attack tests of #21 (anonymization holes) and #14 (free text): each one failed before its fix.

Date shifting over the whole ISO 8601 grammar SDTM allows (an interval half left unshifted
reveals the subject's offset), SUPPQUAL/RELREC handled per QNAM/IDVAR, other notations of
identifiers in free text. Generated files only: no shared data needed.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyreadstat
import pytest

from datalibrary.ingest.models import IngestJob
from datalibrary.privacy.actions import SCRUB_PATTERNS
from datalibrary.privacy.isodates import DateValueError, shift_iso_strings, shift_value
from tests.helpers import Platform
from tests.lake_helpers import ingest, read_table

# date grammar ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2014-01-03/2014-01-09", "2014-01-13/2014-01-19"),
        ("2014-01-03T08:00/2014-01-09T09:30", "2014-01-13T08:00/2014-01-19T09:30"),
        ("2014-01-03/P6D", "2014-01-13/P6D"),
        ("P6D/2014-01-09", "P6D/2014-01-19"),
        ("P3D", "P3D"),
        ("PT2H30M", "PT2H30M"),
        ("2014", "2014"),
        ("2014-03", "2014-03"),
        ("2014-03-05T10:30:15.5+01:00", "2014-03-15T10:30:15.5+01:00"),
        ("2014---15", "2014"),
        ("2014-03-15T-:30", "2014-03-25"),
        ("2014-12-28", "2015-01-07"),
    ],
)
def test_every_date_component_is_shifted(value: str, expected: str) -> None:
    assert shift_value(value, 10) == expected
    assert shift_iso_strings(pa.array([value]), pa.array([10], pa.int32())).to_pylist() == [expected]


def test_interval_halves_keep_the_subjects_offset_secret() -> None:
    """Both halves move by the same offset: their difference is the real interval, nothing more."""
    dates = pa.array(["2014-01-03/2014-01-09", "2014-01-03", "2014-01-09"])
    out = shift_iso_strings(dates, pa.array([-123] * 3, pa.int32())).to_pylist()
    start, end = out[0].split("/")
    assert start == out[1] and end == out[2]
    assert "2014-01-03" not in out[0] and "2014-01-09" not in out[0]


@pytest.mark.parametrize(
    "bad",
    [
        "2014-01-03 extra text",
        "12MAR1950",
        "March 12, 2014",
        "2014/03/12",
        "2014-02-30",
        "2014-13",
        "P1D/P2D",
        "2014-01-03/",
        "UNKNOWN",
    ],
)
def test_a_value_that_is_not_a_date_is_refused_with_its_position(bad: str) -> None:
    with pytest.raises(DateValueError) as caught:
        shift_iso_strings(pa.array(["2014-01-01", None, bad]), pa.array([5, 5, 5], pa.int32()))
    assert caught.value.extra["batch_row"] == 2
    assert bad not in caught.value.detail


def _xpt(path: Path, frame: pd.DataFrame, name: str) -> Path:
    pyreadstat.write_xport(frame, str(path), table_name=name)
    return path


def test_unparseable_date_quarantines_the_file_naming_row_and_column(
    platform: Platform, tmp_path: Path
) -> None:
    frame = pd.DataFrame(
        {
            "STUDYID": ["S"] * 3,
            "DOMAIN": ["AE"] * 3,
            "USUBJID": ["S-1", "S-2", "S-3"],
            "AESEQ": [1.0, 1.0, 1.0],
            "AETERM": ["HEADACHE", "NAUSEA", "RASH"],
            "AESTDTC": ["2014-01-03/2014-01-09", "2014-01-05", "12MAR1950 per patient"],
        }
    )
    job_id, state = ingest(platform, _xpt(tmp_path / "ae.xpt", frame, "AE"), "study.ae", policy="sdtm")
    assert state == "quarantined"
    with platform.db.session() as session:
        reason = session.get(IngestJob, job_id).reason
    assert reason["code"] == "invalid-date"
    assert reason["row"] == 3 and reason["column"] == "AESTDTC"
    assert "12MAR1950" not in str(reason)


# SUPPQUAL / RELREC -------------------------------------------------------------------------


NAME_FORMS = ["Dr. John Smith", "SMITH, JOHN"]


@pytest.fixture
def study(platform: Platform, tmp_path: Path) -> Platform:
    dm = pd.DataFrame(
        {
            "STUDYID": ["S"] * 2,
            "DOMAIN": ["DM"] * 2,
            "USUBJID": ["S-701-1015", "S-701-1023"],
            "SUBJID": ["1015", "1023"],
            "RFSTDTC": ["2014-01-02", "2013-08-05"],
            "AGE": [63.0, 64.0],
            "SEX": ["F", "M"],
        }
    )
    supp = pd.DataFrame(
        {
            "STUDYID": ["S"] * 7,
            "RDOMAIN": ["DM", "DM", "DM", "DM", "AE", "DM", "DM"],
            "USUBJID": ["S-701-1015"] * 5 + ["S-701-1023"] * 2,
            "IDVAR": ["", "", "", "", "USUBJID", "", "AESEQ"],
            "IDVARVAL": ["", "", "", "", "S-701-1015", "", "3"],
            "QNAM": ["INVNAM", "RFSTDTC", "COMMENT", "CONTACT", "AESOSP", "INVNAM", "RACEOTH"],
            "QLABEL": ["Investigator Name", "Start", "Comment", "Contact", "Other", "Investigator", "Race"],
            "QVAL": [
                NAME_FORMS[0],
                "2014-01-02",
                "born 12MAR1950, seen March 12, 2014 and 2014/03/12",
                "SSN 987654329 phone 6175550199 at 4242 Quackenbush Lane",
                "FALL AT HOME",
                NAME_FORMS[1],
                "MIXED",
            ],
            "QORIG": ["CRF"] * 7,
            "QEVAL": [""] * 7,
        }
    )
    relrec = pd.DataFrame(
        {
            "STUDYID": ["S"] * 2,
            "RDOMAIN": ["AE", "CM"],
            "USUBJID": ["S-701-1015", "S-701-1015"],
            "IDVAR": ["AESEQ", "CMSEQ"],
            "IDVARVAL": ["1", "2"],
            "RELTYPE": ["", ""],
            "RELID": ["S-701-1015", "S-701-1015"],
        }
    )
    for name, frame in [("dm", dm), ("suppdm", supp), ("relrec", relrec)]:
        _, state = ingest(
            platform, _xpt(tmp_path / f"{name}.xpt", frame, name.upper()), f"s.{name}", policy="sdtm"
        )
        assert state == "succeeded", name
    return platform


def test_suppqual_values_get_the_action_of_their_qnam(study: Platform) -> None:
    supp = read_table(study, "s.suppdm").to_pylist()
    dm = read_table(study, "s.dm").to_pylist()
    by_qnam = {(r["QNAM"], r["USUBJID"]): r for r in supp}
    token = dm[0]["USUBJID"]
    # names dropped, whatever their form
    assert by_qnam[("INVNAM", token)]["QVAL"] is None
    assert by_qnam[("INVNAM", dm[1]["USUBJID"])]["QVAL"] is None
    # a date shifted with the subject's own offset (the same as in DM)
    assert by_qnam[("RFSTDTC", token)]["QVAL"] == dm[0]["RFSTDTC"] != "2014-01-02"
    # free text scrubbed of other date notations, numbers without separators, addresses
    comment = by_qnam[("COMMENT", token)]["QVAL"]
    contact = by_qnam[("CONTACT", token)]["QVAL"]
    for leaked in ["12MAR1950", "March 12", "2014/03/12", "987654329", "6175550199", "Quackenbush"]:
        assert leaked not in comment + contact
    # IDVARVAL per IDVAR: a USUBJID gets the parent's pseudonym, a sequence number stays
    ae_row = by_qnam[("AESOSP", token)]
    assert ae_row["IDVARVAL"] == token
    assert by_qnam[("RACEOTH", dm[1]["USUBJID"])]["IDVARVAL"] == "3"
    assert ae_row["QVAL"] == "FALL AT HOME"


def test_relrec_relid_holds_no_subject_identifier(study: Platform) -> None:
    relrec = read_table(study, "s.relrec")
    dm = read_table(study, "s.dm")
    assert "S-701-1015" not in relrec.column("RELID").to_pylist()
    assert set(relrec.column("RELID").to_pylist()) <= set(dm.column("USUBJID").to_pylist())


# free text: other notations ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "leaked"),
    [
        ("born 12MAR1950", "12MAR1950"),
        ("born 12-MAR-1950", "MAR-1950"),
        ("seen March 12, 2014", "March 12"),
        ("seen on 2014/03/12", "2014/03/12"),
        ("SSN 987654329", "987654329"),
        ("SSN 987 65 4329", "987 65 4329"),
        ("call 6175550199", "6175550199"),
        ("call +1 617 555 0199", "555 0199"),
        ("lives at 4242 Quackenbush Lane", "Quackenbush"),
        ("PO Box 1234", "1234"),
        ("seen by Dr. John Smith", "Smith"),
        ("seen by DR SMITH", "SMITH"),
    ],
)
def test_scrub_patterns_cover_other_notations(text: str, leaked: str) -> None:
    array = pa.array([text])
    for label, pattern in SCRUB_PATTERNS:
        array = pc.replace_substring_regex(array, pattern, f"[{label}]")
    assert leaked not in array.to_pylist()[0]


# names in free text, whatever the delivery order; names in labels and file names ------------

FIRST, LAST, LABEL_SSN = "Zebulon", "Quackenbush", "987-65-4329"
RESTRICTED_TABLES = {"ingest_jobs", "audit_events", "lineage_events", "lineage_edges", "lineage_outbox"}


def _study_files(tmp_path: Path) -> dict[str, Path]:
    dm = pd.DataFrame(
        {
            "STUDYID": ["S"] * 2,
            "DOMAIN": ["DM"] * 2,
            "USUBJID": ["S-1", "S-2"],
            "INVNAM": [f"{LAST}, {FIRST}", "Jones, Ann"],
            "AGE": [50.0, 60.0],
            "SEX": ["F", "M"],
        }
    )
    ae = pd.DataFrame(
        {
            "STUDYID": ["S"] * 2,
            "DOMAIN": ["AE"] * 2,
            "USUBJID": ["S-1", "S-2"],
            "AESEQ": [1.0, 1.0],
            "AETERM": [f"HEADACHE AFTER CALL FROM {FIRST.upper()} {LAST.upper()}", "NAUSEA"],
            "AESTDTC": ["2014-01-03/2014-01-09", "2014-02-01"],
        }
    )
    paths = {}
    paths["dm"] = tmp_path / f"MRN1234567_{LAST.upper()}_{FIRST.upper()}_dm.xpt"
    pyreadstat.write_xport(dm, str(paths["dm"]), table_name="DM")
    paths["ae"] = tmp_path / "ae.xpt"
    pyreadstat.write_xport(
        ae,
        str(paths["ae"]),
        table_name="AE",
        column_labels=["Study", "Domain", "Subject", "Seq", f"Term (SSN {LABEL_SSN})", "Start"],
    )
    return paths


def _every_byte(platform: Platform) -> list[tuple[str, bytes]]:
    import gzip
    import json

    import pyarrow.parquet as pq
    from sqlalchemy import inspect, text

    from datalibrary.lake.files import avro_payload

    found = []
    for path in sorted(p for p in Path(platform.settings.home).rglob("*") if p.is_file()):
        data = path.read_bytes()
        found.append((str(path), data))
        if path.suffix == ".parquet":
            found.append(
                (f"{path} values", json.dumps(pq.read_table(path).to_pylist(), default=str).encode())
            )
        elif path.suffix == ".avro":
            found.append((f"{path} avro", avro_payload(data)))
        elif path.name.endswith(".gz.metadata.json"):
            found.append((f"{path} gunzip", gzip.decompress(data)))
    with platform.db.engine.connect() as connection:
        for table in inspect(connection).get_table_names():
            if table in RESTRICTED_TABLES:
                continue
            rows = connection.execute(text(f'SELECT * FROM "{table}"')).fetchall()
            found.append((f"db:{table}", "\n".join(map(repr, rows)).encode()))
    return found


@pytest.mark.parametrize("order", [("dm", "ae"), ("ae", "dm")])
def test_a_name_from_one_domain_never_survives_in_free_text_of_another(
    platform: Platform, tmp_path: Path, order: tuple[str, str]
) -> None:
    paths = _study_files(tmp_path)
    for domain in order:
        _, state = ingest(platform, paths[domain], f"study.{domain}", policy="sdtm")
        assert state == "succeeded", domain
    terms = read_table(platform, "study.ae").column("AETERM").to_pylist()
    assert terms[0] == "HEADACHE AFTER CALL FROM [NAME] [NAME]"
    assert terms[1] == "NAUSEA"
    needles = {FIRST, LAST, "MRN1234567", LABEL_SSN}
    needles |= {n.upper() for n in needles}
    hits = [(where, n) for where, data in _every_byte(platform) for n in needles if n.encode() in data]
    assert not hits, hits[:5]


def test_column_actions_are_recorded_per_column(platform: Platform, tmp_path: Path) -> None:
    from datalibrary.lake.catalog import open_lake, parse_table_name
    from datalibrary.lake.tables import actions_from_summary, summary_of

    paths = _study_files(tmp_path)
    ingest(platform, paths["dm"], "study.dm", policy="sdtm")
    table = open_lake(platform.settings).load(parse_table_name("study.dm"))
    actions = actions_from_summary(summary_of(table.current_snapshot()))
    assert actions["INVNAM"] == "dropped" and actions["USUBJID"] == "pseudonymized"
    assert actions["AGE"] == "generalized" and actions["SEX"] == "kept"


def test_subject_column_is_declared_per_dataset_and_checked_on_every_delivery(
    platform: Platform, tmp_path: Path
) -> None:
    from tests.lake_helpers import add_policy, write_csv

    add_policy(
        platform,
        "name: visits\nversion: 1\nsubject: [PATIENT, Id]\ncolumns:\n"
        "  're:^(Id|ID|PATIENT)$': pseudonymize\n  START: date_shift\n  CODE: keep\n",
    )
    first = write_csv(
        tmp_path / "v1.csv", {"PATIENT": ["p1", "p2"], "START": ["2014-01-01"] * 2, "CODE": [1, 2]}
    )
    assert ingest(platform, first, "ehr.visits", policy="visits")[1] == "succeeded"
    # the same data with the subject column spelled differently: refused, not study-wide shifted
    second = write_csv(tmp_path / "v2.csv", {"ID": ["p1", "p2"], "START": ["2014-01-01"] * 2, "CODE": [1, 2]})
    job_id, state = ingest(platform, second, "ehr.visits", policy="visits")
    assert state == "quarantined"
    with platform.db.session() as session:
        reason = session.get(IngestJob, job_id).reason
    assert reason["code"] == "subject-column-missing" and "PATIENT" in reason["message"]
    # a first delivery with dates but no subject column at all is refused too
    third = write_csv(tmp_path / "v3.csv", {"ID": ["p1"], "START": ["2014-01-01"], "CODE": [1]})
    assert ingest(platform, third, "ehr.other", policy="visits")[1] == "quarantined"


def test_top_coded_age_keeps_no_field_that_implies_it() -> None:
    from datalibrary.privacy.policy import PolicyContext, PolicyStep, parse_policy

    policy = parse_policy(
        "name: t\nversion: 1\ncolumns:\n"
        "  AGE: {action: generalize, method: top_code, max: 89, to: 90}\n"
        "  BRTHDTC: {action: generalize, method: year, age: AGE}\n"
        "  AGEGR1: {action: generalize, method: age_group, age: AGE}\n"
    )
    batch = pa.RecordBatch.from_pydict(
        {"AGE": [101.0, 64.0], "BRTHDTC": ["1912-05-01", "1950-02-03"], "AGEGR1": [">=100", "<65"]}
    )
    step = PolicyStep(policy, PolicyContext("s", "dm", "", {}))
    step.plan(batch)
    out = step.apply(batch).to_pydict()
    assert out["AGE"] == [90.0, 64.0] and out["AGE_TOPCODED"] == [True, False]
    assert out["BRTHDTC"] == [None, "1950"]
    assert out["AGEGR1"] == [">89", "<65"]


def test_dataset_page_shows_what_the_policy_did(platform: Platform, tmp_path: Path) -> None:
    paths = _study_files(tmp_path)
    ingest(platform, paths["dm"], "study.dm", policy="sdtm")
    from tests.test_web import sign_in

    client = sign_in(platform, "admin", platform.admin_password)
    detail = platform.as_user("admin").get("/api/v1/datasets/study/dm").json()
    actions = {c["name"]: c["policy_action"] for c in detail["columns"]}
    assert actions["USUBJID"] == "pseudonymized" and actions["SEX"] == "kept"
    assert actions["AGE"] == "generalized" and actions["AGE_TOPCODED"] == "generalized"
    assert detail["dropped_columns"] == ["INVNAM"]
    page = client.get("/catalog/study/dm").text
    assert "pseudonymized" in page and "Dropped by the policy" in page
    # the snapshot names the source file by a pseudonym, not its name
    assert all(s["source_file"].startswith("file-") for s in detail["snapshots"])


def test_table_names_come_from_the_declared_table_never_the_file_name(
    platform: Platform, tmp_path: Path
) -> None:
    from datalibrary.errors import InvalidInput
    from tests.lake_helpers import write_csv

    paths = _study_files(tmp_path)  # dm.xpt is named MRN1234567_QUACKENBUSH_ZEBULON_dm.xpt
    job_id, state = ingest(platform, paths["dm"], "study.*", policy="sdtm")
    assert state == "succeeded"
    with platform.db.session() as session:
        assert session.get(IngestJob, job_id).table_name == "dm"
    named = write_csv(tmp_path / "MRN1234567_SMITH_JOHN.csv", {"A": [1]})
    with pytest.raises(InvalidInput, match="looks identifying"):
        ingest(platform, named, "other.*", policy="sdtm")


def test_identifier_digests_are_stored_in_bulk_once_each(database_url: str) -> None:
    """Tens of thousands of subject digests in one go; a second delivery stores none again,
    and digests a parallel job stored first are no error (ON CONFLICT DO NOTHING)."""
    from datalibrary.db import Database
    from datalibrary.privacy.models import IdentifierDigest
    from datalibrary.privacy.service import known_digests, remember_digests

    db = Database(database_url)
    try:
        first = {f"{n:032x}" for n in range(12_000)}
        assert remember_digests(db, "study", first) == first
        assert known_digests(db, "study") == first
        assert remember_digests(db, "study", first) == set()
        with db.session() as session:  # a parallel job stores one between our read and write
            session.add(IdentifierDigest(namespace="study", digest="f" * 32))
        racing = {"f" * 32, "e" * 32}
        with pytest.MonkeyPatch.context() as patch:
            import datalibrary.privacy.service as service

            patch.setattr(service, "known_digests", lambda db, namespace: set(first))
            assert remember_digests(db, "study", racing) == racing
        assert known_digests(db, "study") == first | racing
        assert known_digests(db, "other") == set()
    finally:
        db.dispose()
