"""The six acceptance tests of #5 (anonymization), on the real shared data and planted canaries.

One installation (SQLite, local lake) is built for the module: the CDISC pilot SDTM domains
through the built-in ``sdtm`` policy, the Synthea CSV export through ``ehr``, and canary
files in every input format. The tests then inspect what the platform wrote.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from sqlalchemy import inspect, text

from datalibrary.ingest.models import IngestJob
from datalibrary.ingest.readers import open_reader
from datalibrary.lake.catalog import open_lake
from datalibrary.lake.files import avro_payload
from datalibrary.privacy.builtin import BUILTIN
from datalibrary.privacy.policy import parse_policy
from tests.helpers import Platform, make_platform
from tests.lake_helpers import ingest, read_table

SDTM_DOMAINS = ["dm", "ae", "cm", "ds", "ex", "mh", "sv", "se", "sc", "suppdm", "relrec", "ts"]

# Canaries: values no anonymized byte may contain, raw or normalized.
SSN, FIRST, LAST = "987-65-4329", "Zebulon", "Quackenbush"
EMAIL, PHONE, MRN = "zebulon.quackenbush@example.org", "(617) 555-0199", "MRN0049217733"
ADDRESS, BIRTH = "4242 Quackenbush Lane", "1931-02-17"
# an SDTM interval (its halves would reveal the subject's offset) and dates in other notations
INTERVAL, NOTATIONS = "2014-01-03/2014-01-09", ["12MAR2014", "March 12, 2014", "2014/03/12"]
CANARIES = [SSN, FIRST, LAST, EMAIL, PHONE, MRN, ADDRESS, BIRTH, INTERVAL, *NOTATIONS]
NORMALIZED = ["987654329", "6175550199", "617-555-0199", "0049217733", "19310217", "1931-02"]
NOTE = (
    f"Patient {FIRST} {LAST} ({MRN}) seen; SSN {SSN}; lives at {ADDRESS}; call {PHONE} or "
    f"write to {EMAIL}; born {BIRTH}. Visits {NOTATIONS[0]}, {NOTATIONS[1]} and {NOTATIONS[2]}."
)


class LogCapture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record) + repr(record.args) + str(record.exc_info or ""))


@dataclass
class Built:
    platform: Platform
    root: Path
    sources: Path
    logs: LogCapture
    jobs: dict[str, tuple[str, str]] = field(default_factory=dict)
    # the canary scan of what ingestion wrote, taken when the module's installation is built:
    # tests that add to the installation later (queries, exports) cannot change its result
    ingestion_hits: list[tuple[str, str]] = field(default_factory=list)
    ingestion_searched: int = 0


def _canary_patients(count: int = 12) -> pa.Table:
    """A Synthea-shaped patients table whose first row carries every canary."""
    rows = {
        "Id": [MRN] + [f"p-{i:03d}" for i in range(1, count)],
        "BIRTHDATE": [BIRTH] + [f"19{50 + i}-0{1 + i % 9}-1{i % 9}" for i in range(1, count)],
        "SSN": [SSN] + [f"999-00-{1000 + i}" for i in range(1, count)],
        "FIRST": [FIRST] + [f"Ann{i}" for i in range(1, count)],
        "LAST": [LAST] + [f"Lee{i}" for i in range(1, count)],
        "ADDRESS": [ADDRESS] + [f"{i} Main Street" for i in range(1, count)],
        "PHONE": [PHONE] + [f"555-010{i % 10}" for i in range(1, count)],
        "ZIP": ["03601"] + [f"{10000 + i * 7:05d}" for i in range(1, count)],
        "GENDER": ["M", "F"] * (count // 2),
        "NOTES": [NOTE] + [f"follow-up {i}" for i in range(1, count)],
    }
    return pa.table(rows)


def _write_sources(directory: Path) -> dict[str, Path]:
    import pandas as pd
    import pyarrow.csv as pacsv
    import pyreadstat

    patients = _canary_patients()
    paths: dict[str, Path] = {}
    paths["csv"] = directory / "patients.csv"
    pacsv.write_csv(patients, paths["csv"])
    paths["parquet"] = directory / "patients.parquet"
    pq.write_table(patients, paths["parquet"])
    records = patients.to_pylist()
    paths["json"] = directory / "patients.json"
    paths["json"].write_text(json.dumps(records))
    paths["ndjson"] = directory / "patients.ndjson"
    paths["ndjson"].write_text("\n".join(json.dumps(r) for r in records) + "\n")
    frame = pd.DataFrame(
        {
            "STUDYID": ["CANARY"] * 3,
            "DOMAIN": ["DM"] * 3,
            "USUBJID": [MRN, "CAN-002", "CAN-003"],
            "SUBJID": [SSN, "002", "003"],
            "INVNAM": [f"{FIRST} {LAST}", "Dr Who", "Dr No"],
            "BRTHDTC": [BIRTH, "1950-05", "1962"],
            "AGE": [95.0, 40.0, 89.0],
            "SEX": ["M", "F", "M"],
            "RFSTDTC": ["2014-03-05", "2014-03", "2014"],
            "RFXSTDTC": [INTERVAL, "2014-03", "2014"],
            "DMDY": [1.0, 2.0, 3.0],
        }
    )
    paths["xpt"] = directory / "dm.xpt"
    labels = list(frame.columns)  # a label that names the investigator and an SSN
    labels[list(frame.columns).index("INVNAM")] = f"Investigator {FIRST} {LAST} SSN {SSN}"
    pyreadstat.write_xport(frame, str(paths["xpt"]), table_name="DM", column_labels=labels)
    supp = pd.DataFrame(
        {
            "STUDYID": ["CANARY"],
            "RDOMAIN": ["DM"],
            "USUBJID": [MRN],
            "IDVAR": [""],
            "IDVARVAL": [""],
            "QNAM": ["CONTACT"],
            "QLABEL": ["Contact"],
            "QVAL": [f"SSN {SSN}, {EMAIL}, {PHONE}, born {BIRTH}"],
            "QORIG": ["CRF"],
            "QEVAL": [""],
        }
    )
    paths["suppxpt"] = directory / "suppdm.xpt"
    pyreadstat.write_xport(supp, str(paths["suppxpt"]), table_name="SUPPDM")
    relrec = pd.DataFrame(  # RELID holding the subject's identifier: a pseudonym-to-identity map
        {
            "STUDYID": ["CANARY"],
            "RDOMAIN": ["DM"],
            "USUBJID": [MRN],
            "IDVAR": ["USUBJID"],
            "IDVARVAL": [MRN],
            "RELTYPE": [""],
            "RELID": [MRN],
        }
    )
    paths["relxpt"] = directory / "relrec.xpt"
    pyreadstat.write_xport(relrec, str(paths["relxpt"]), table_name="RELREC")
    return paths


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[Built]:
    shared = Path(__import__("tests.conftest", fromlist=["SHARED_DATA"]).SHARED_DATA)
    if not shared.is_dir():
        pytest.skip(f"shared test data not found at {shared}")
    root = tmp_path_factory.mktemp("written")
    sources = tmp_path_factory.mktemp("sources")
    shutil.copy(sqlite_template, root / "state.db")
    logs = LogCapture()
    logging.getLogger().addHandler(logs)
    previous = logging.getLogger().level
    logging.getLogger().setLevel(logging.DEBUG)
    try:
        with make_platform(root / "home", f"sqlite:///{root / 'state.db'}") as platform:
            result = Built(platform, root, sources, logs)
            for domain in SDTM_DOMAINS:
                path = shared / "cdiscpilot01-sdtm" / f"{domain}.xpt"
                result.jobs[f"pilot.{domain}"] = ingest(platform, path, f"pilot.{domain}", policy="sdtm")
            # the same DM again into a second study: different tokens
            result.jobs["other.dm"] = ingest(
                platform, shared / "cdiscpilot01-sdtm" / "dm.xpt", "other.dm", policy="sdtm"
            )
            for name in ["patients", "encounters", "observations", "conditions", "claims_transactions"]:
                path = shared / "synthea-sample" / f"{name}.csv"
                result.jobs[f"ehr.{name}"] = ingest(platform, path, f"ehr.{name}", policy="ehr")
            for fmt, path in _write_sources(sources).items():
                policy = "sdtm" if fmt.endswith("xpt") else "ehr"
                result.jobs[f"canary.{fmt}"] = ingest(platform, path, f"canary.{fmt}", policy=policy)
            result.ingestion_searched, result.ingestion_hits = _scan(_written_texts(result))
            yield result
    finally:
        logging.getLogger().removeHandler(logs)
        logging.getLogger().setLevel(previous)


def _source(path: Path) -> pa.Table:
    reader = open_reader(path)
    return pa.Table.from_batches(list(reader.batches()))


# 1. canaries ---------------------------------------------------------------------------------


def _read_bytes(path: Path) -> bytes:
    """Closing a file descriptor drops every POSIX lock this process holds on that file, the
    SQLite connections' too (SQLite's documented hazard): open database files are read by a
    child process, so the platform's connections keep their locks."""
    if path.name.startswith("state.db"):
        return subprocess.run(["cat", str(path)], capture_output=True, check=True).stdout
    return path.read_bytes()


def _written_texts(built: Built) -> Iterator[tuple[str, bytes]]:
    """Every byte the platform wrote, decoded where it is compressed."""
    for path in sorted(p for p in built.root.rglob("*") if p.is_file()):
        data = _read_bytes(path)
        yield str(path), data
        if path.suffix == ".parquet":
            parquet = pq.ParquetFile(path)
            yield f"{path} (values)", json.dumps(parquet.read().to_pylist(), default=str).encode()
            meta = parquet.metadata
            stats = []
            for group in range(meta.num_row_groups):
                for column in range(meta.num_columns):
                    s = meta.row_group(group).column(column).statistics
                    if s is not None and s.has_min_max:
                        stats += [str(s.min), str(s.max)]
            yield f"{path} (statistics)", "\n".join(stats).encode()
            yield f"{path} (footer)", str(meta.metadata).encode() + str(parquet.schema_arrow).encode()
        elif path.suffix == ".avro":
            yield f"{path} (avro)", avro_payload(data)
        elif path.suffix == ".gz" or path.name.endswith(".gz.metadata.json"):
            yield f"{path} (gunzip)", gzip.decompress(data)
    with built.platform.db.engine.connect() as connection:
        for table in inspect(connection).get_table_names():
            rows = connection.execute(text(f'SELECT * FROM "{table}"')).fetchall()
            yield f"db:{table}", "\n".join(map(repr, rows)).encode()
    yield "logs", "\n".join(built.logs.lines).encode()


def _scan(texts: Iterable[tuple[str, bytes]]) -> tuple[int, list[tuple[str, str]]]:
    """How many texts were searched, and where a canary (raw or normalized) was found."""
    needles = _needles()
    searched, hits = 0, []
    for where, data in texts:
        searched += 1
        hits += [(where, needle) for needle in needles if needle.encode() in data]
    return searched, hits


def test_canaries_never_reach_any_written_byte(built: Built) -> None:
    """What ingestion wrote, scanned when the installation was built (whatever ran since)."""
    for name, (_, state) in built.jobs.items():
        assert state == "succeeded", name
    assert built.ingestion_searched > 20
    assert not built.ingestion_hits, built.ingestion_hits[:10]
    # the canary rows are there, anonymized
    notes = read_table(built.platform, "canary.csv").column("NOTES").to_pylist()
    assert notes[0].startswith("Patient [NAME] [NAME] ([MRN]) seen; SSN [SSN]")
    assert "[PHONE]" in notes[0] and "[EMAIL]" in notes[0] and "[DATE]" in notes[0]


def _needles() -> set[str]:
    needles = set(CANARIES + NORMALIZED)
    return needles | {n.upper() for n in needles} | {n.lower() for n in needles}


def test_canaries_never_leave_through_queries_caches_logs_and_exports(built: Built) -> None:
    """After ingestion, every exit a scientist has: query results (JSON pages and file
    downloads routed to the airlock), error messages, the query caches the engine writes, the
    query history, audit and lineage rows, the logs, and exports approved and downloaded. No
    planted identifier may appear in any of them (the rescan covers every byte written since;
    the S3 query cache is covered in test_lake_behaviour, a local lake has none)."""
    platform = built.platform
    platform.add_user("canary-stew", "steward")
    platform.add_user("canary-sci", "scientist")
    stew, sci = platform.as_user("canary-stew"), platform.as_user("canary-sci")
    tables = sorted(built.jobs)
    for table in tables:
        granted = stew.post("/api/v1/grants", json={"principal": "user:canary-sci", "table": table})
        assert granted.status_code == 201, granted.text
    seen: list[tuple[str, bytes]] = []
    exports = []
    for table in tables:
        page = sci.post("/api/v1/query", json={"sql": f"SELECT * FROM {table}", "limit": 1000})
        assert page.status_code == 200, (table, page.text)
        seen.append((f"query {table}", page.content))
        routed = sci.post("/api/v1/query", json={"sql": f"SELECT * FROM {table}", "format": "csv"})
        assert routed.status_code == 202, (table, routed.text)
        seen.append((f"routed {table}", routed.content))
        exports.append(routed.json()["export"]["id"])
        # an error that quotes a value (a failed cast) is an exit too: into the answer and the logs
        columns = [c["name"] for c in page.json()["columns"]]
        texts = [c for c in ("NOTES", "QVAL", "INVNAM", "USUBJID", "Id") if c in columns] or columns
        cast = f'SELECT CAST("{texts[0]}" AS INTEGER) FROM {table}'
        seen.append((f"error {table}", sci.post("/api/v1/query", json={"sql": cast}).content))
    # an ungranted read is refused, and the refusal names the tables
    outsider = platform.as_user("canary-outsider")
    seen.append(("refused", outsider.post("/api/v1/query", json={"sql": "SELECT * FROM canary.csv"}).content))
    for export_id in exports:
        decided = stew.post(
            f"/api/v1/exports/{export_id}/decision",
            json={"decision": "approve", "override_reason": "canary test: every byte is checked"},
        )
        assert decided.status_code == 200, decided.text
        got = sci.post(f"/api/v1/exports/{export_id}/download")
        assert got.status_code == 200, got.text
        seen.append((f"export {export_id}", got.content))
    for path in ("/api/v1/queries", "/api/v1/exports"):
        seen.append((path, sci.get(path).content))
    seen.append(("review", stew.get("/api/v1/exports/review").content))
    _, hits = _scan([*seen, *_written_texts(built)])
    assert not hits, hits[:10]
    assert any(b"[NAME]" in data for _, data in seen), "the canary rows were read, anonymized"


# 2. pseudonyms -------------------------------------------------------------------------------


def test_pseudonyms_join_count_and_differ_by_study(built: Built, shared_data: Path) -> None:
    dm_src = _source(shared_data / "cdiscpilot01-sdtm" / "dm.xpt")
    ae_src = _source(shared_data / "cdiscpilot01-sdtm" / "ae.xpt")
    dm = read_table(built.platform, "pilot.dm")
    ae = read_table(built.platform, "pilot.ae")
    assert (
        pc.count_distinct(dm.column("USUBJID")).as_py() == pc.count_distinct(dm_src.column("USUBJID")).as_py()
    )
    assert (
        pc.count_distinct(ae.column("USUBJID")).as_py() == pc.count_distinct(ae_src.column("USUBJID")).as_py()
    )
    joined_src = ae_src.select(["USUBJID"]).join(dm_src.select(["USUBJID", "SEX"]), "USUBJID")
    joined = ae.select(["USUBJID"]).join(dm.select(["USUBJID", "SEX"]), "USUBJID")
    assert joined.num_rows == joined_src.num_rows == ae_src.num_rows
    assert sorted(joined.column("SEX").to_pylist()) == sorted(joined_src.column("SEX").to_pylist())
    # same key -> same token (every domain agrees); other study -> other tokens
    assert set(ae.column("USUBJID").to_pylist()) <= set(dm.column("USUBJID").to_pylist())
    other = read_table(built.platform, "other.dm")
    assert not set(other.column("USUBJID").to_pylist()) & set(dm.column("USUBJID").to_pylist())
    # no token is an unkeyed hash of the value (raw or normalized), in hex or any prefix of it
    tokens = set(dm.column("USUBJID").to_pylist())
    for value in dm_src.column("USUBJID").to_pylist():
        for candidate in {value, value.strip(), value.strip().upper(), value.strip().lower()}:
            for algorithm in ("md5", "sha1", "sha256"):
                digest = hashlib.new(algorithm, candidate.encode()).hexdigest()
                assert not any(digest.startswith(t) or t in digest for t in tokens)
    assert not tokens & set(dm_src.column("USUBJID").to_pylist())


# 3. dates ------------------------------------------------------------------------------------


def _offsets(src: pa.Table, out: pa.Table, column: str) -> Iterator[tuple[str, str, int]]:
    from datetime import date

    for subject, before, after in zip(
        out.column("USUBJID").to_pylist(),
        src.column(column).to_pylist(),
        out.column(column).to_pylist(),
        strict=True,
    ):
        if before and len(before) >= 10:
            shift = (date.fromisoformat(after[:10]) - date.fromisoformat(before[:10])).days
            assert after[10:] == before[10:], "the time part is kept"
            yield subject, column, shift


def test_dates_shift_one_offset_per_subject_across_domains(built: Built, shared_data: Path) -> None:
    per_subject: dict[str, set[int]] = {}
    seen_domains: dict[str, set[str]] = {}
    for domain in ["dm", "ae", "cm", "ds", "ex", "mh", "sv", "se", "sc"]:
        src = _source(shared_data / "cdiscpilot01-sdtm" / f"{domain}.xpt")
        out = read_table(built.platform, f"pilot.{domain}")
        assert out.num_rows == src.num_rows
        for column in src.column_names:
            if column.endswith("DTC"):
                for before, after in zip(
                    src.column(column).to_pylist(), out.column(column).to_pylist(), strict=True
                ):
                    assert len(before or "") == len(after or ""), "partial dates keep their precision"
                for subject, _, shift in _offsets(src, out, column):
                    per_subject.setdefault(subject, set()).add(shift)
                    seen_domains.setdefault(subject, set()).add(domain)
            if column.endswith("DY"):
                assert out.column(column).to_pylist() == src.column(column).to_pylist(), column
    assert len(per_subject) > 200
    assert all(len(shifts) == 1 for shifts in per_subject.values()), "one offset per subject"
    assert all(0 < abs(next(iter(s))) <= 365 for s in per_subject.values())
    assert max(len(d) for d in seen_domains.values()) >= 5, "the same offset in every domain and file"
    # partial precision on the canary file: 2014, 2014-03 stay year / month
    canary = read_table(built.platform, "canary.xpt")
    lengths = [len(v) for v in canary.column("RFSTDTC").to_pylist()]
    assert lengths == [10, 7, 4]


# 4. generalization ---------------------------------------------------------------------------


def test_generalization_ages_and_zip(built: Built) -> None:
    for table in ["pilot.dm", "canary.xpt"]:
        dm = read_table(built.platform, table)
        assert pc.max(dm.column("AGE")).as_py() <= 90
    canary = read_table(built.platform, "canary.xpt")
    assert canary.column("AGE").to_pylist() == [90.0, 40.0, 89.0]
    assert canary.column("AGE_TOPCODED").to_pylist() == [True, False, False]
    # a top-coded age keeps no birth year that would give the real age back (#21)
    assert canary.column("BRTHDTC").to_pylist() == [None, "1950", "1962"]
    for table in ["ehr.patients", "canary.csv", "canary.parquet"]:
        zips = [z for z in read_table(built.platform, table).column("ZIP").to_pylist() if z]
        assert zips and all(len(z) == 3 for z in zips), table
    assert read_table(built.platform, "canary.csv").column("ZIP").to_pylist()[0] == "000", "036 is restricted"
    patients = read_table(built.platform, "ehr.patients")
    assert {"SSN", "FIRST", "LAST", "ADDRESS", "LAT", "LON"}.isdisjoint(patients.column_names)


# 5. fail closed ------------------------------------------------------------------------------


def test_uncovered_identifying_column_is_quarantined_and_nothing_stored(
    sqlite_platform: Platform, tmp_path: Path
) -> None:
    """On an installation of its own: what it stores must not reach the module's canary scans."""
    import pyarrow.csv as pacsv

    platform = sqlite_platform
    path = tmp_path / "contacts.csv"
    pacsv.write_csv(
        pa.table({"Id": ["a", "b"], "GENDER": ["F", "M"], "REACH": [EMAIL, "x.y@example.com"]}), path
    )
    job_id, state = ingest(platform, path, "quarantine.contacts", policy="ehr")
    assert state == "quarantined"
    with platform.db.session() as session:
        job = session.get(IngestJob, job_id)
        assert job.reason["code"] == "policy-identifying-column"
        assert job.reason["columns"] == ["REACH"]
        assert "email" in " ".join(job.reason["evidence"]["REACH"])
        assert EMAIL not in json.dumps(job.reason)
    lake = open_lake(platform.settings)
    assert not lake.tables("quarantine")
    assert not list((platform.settings.home / "lake").rglob("*contacts*"))
    # an uncovered column that looks harmless stops the job and asks for a rule
    harmless = tmp_path / "harmless.csv"
    pacsv.write_csv(pa.table({"Id": ["a"], "WEIGHT_GROUP": ["B"]}), harmless)
    job_id, state = ingest(platform, harmless, "quarantine.harmless", policy="ehr")
    assert state == "quarantined"
    with platform.db.session() as session:
        reason = session.get(IngestJob, job_id).reason
    assert reason["code"] == "policy-uncovered-columns" and "add a rule" in reason["message"]
    assert not lake.tables("quarantine")


# 6. utility ----------------------------------------------------------------------------------


def _frequencies(column: pa.ChunkedArray) -> list[tuple[str | None, int]]:
    counted = pc.value_counts(column.cast(pa.string()) if column.type != pa.string() else column)
    pairs = zip(counted.field("values").to_pylist(), counted.field("counts").to_pylist(), strict=True)
    return sorted(pairs, key=lambda p: (p[0] is None, str(p[0])))


@pytest.mark.parametrize(
    ("table", "source", "policy"),
    [
        ("pilot.ae", "cdiscpilot01-sdtm/ae.xpt", "sdtm"),
        ("pilot.dm", "cdiscpilot01-sdtm/dm.xpt", "sdtm"),
        ("ehr.observations", "synthea-sample/observations.csv", "ehr"),
        ("ehr.encounters", "synthea-sample/encounters.csv", "ehr"),
    ],
)
def test_frequency_tables_of_kept_columns_equal_the_source(
    built: Built, shared_data: Path, table: str, source: str, policy: str
) -> None:
    rules = parse_policy(BUILTIN[policy])
    src = _source(shared_data / source)
    out = read_table(built.platform, table)
    kept = [c for c in src.column_names if (rule := rules.rule_for(c)) and rule.action == "keep"]
    assert len(kept) >= 4
    for column in kept:
        assert _frequencies(out.column(column)) == _frequencies(src.column(column)), column
