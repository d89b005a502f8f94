"""OpenLineage conformance: naming (installation namespace, symlinks to the real storage
location, files by path, downloads by URL), standard facets (sql, dataset versions,
errorMessage, dataSource, schema), custom facets whose schemas the app serves, no nodes for
tables that do not exist, events stored under the old naming still readable, and
forwarding with authentication over verified TLS to a real HTTPS endpoint."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import logging
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from jsonschema import Draft202012Validator
from sqlalchemy import func, select

from datalibrary.config import MASK, LineageSettings, Settings
from datalibrary.ingest.models import IngestJob
from datalibrary.lake.catalog import open_lake, parse_table_name
from datalibrary.lineage import facets, forward
from datalibrary.lineage.models import LineageEdge, LineageEvent
from datalibrary.lineage.naming import Naming, default_namespace, naming_for_url
from tests.helpers import Platform
from tests.lake_helpers import add_policy, ingest, write_csv
from tests.openlineage_check import validate_event

SCHEMAS = "/api/v1/lineage/facets"


def naming(platform: Platform) -> Naming:
    return naming_for_url(platform.settings.connect_url())


def events(platform: Platform, job: str | None = None) -> list[dict[str, Any]]:
    with platform.db.session() as session:
        query = select(LineageEvent.payload).order_by(LineageEvent.id)
        if job:
            query = query.where(LineageEvent.job_name == job)
        return list(session.scalars(query))


@pytest.fixture
def studied(platform: Platform, tmp_path: Path) -> Platform:
    add_policy(platform)
    write_csv(tmp_path / "dm.csv", {"USUBJID": [f"S{i}" for i in range(20)], "AGE": list(range(20))})
    assert ingest(platform, tmp_path / "dm.csv", "study.dm")[1] == "succeeded"
    platform.add_user("stew", "steward")
    platform.add_user("ada", "scientist")
    granted = platform.as_user("stew").post(
        "/api/v1/grants", json={"principal": "user:ada", "table": "study.dm"}
    )
    assert granted.status_code == 201, granted.text
    public = platform.as_user("stew").request(
        "PATCH", "/api/v1/datasets/study/dm", json={"sensitivity": "public"}
    )
    assert public.status_code == 200, public.text  # its downloads go directly
    return platform


def test_catalog_tables_are_named_in_the_installation_namespace_with_their_storage(studied: Platform) -> None:
    names = naming(studied)
    settings = studied.settings
    assert names.namespace == default_namespace(settings.connect_url(), settings.home)
    assert names.namespace.startswith("datalibrary://") and names.namespace != "datalibrary://"
    ok = studied.as_user("ada").post("/api/v1/query", json={"sql": "SELECT COUNT(*) AS n FROM study.dm"})
    assert ok.status_code == 200, ok.text
    every = events(studied)
    for payload in every:
        validate_event(payload, schema_base=names.base_url + SCHEMAS)
    ingest_done = [e for e in events(studied, "ingest") if e["eventType"] == "COMPLETE"][0]
    table = ingest_done["outputs"][0]
    assert (table["namespace"], table["name"]) == (names.namespace, "study.dm")
    assert table["facets"]["dataSource"]["uri"] == names.namespace
    (link,) = table["facets"]["symlinks"]["identifiers"]
    # the symlink is where the table really is: Spark/Trino name the Iceberg table so
    location = open_lake(settings).load(parse_table_name("study.dm")).location()
    assert link["type"] == "LOCATION" and (link["namespace"], link["name"]) == (
        "file",
        location.removeprefix("file://"),
    )
    assert Path(link["name"]).is_dir()
    # the source file by its path, where it really was landed
    source = ingest_done["inputs"][0]
    assert source["namespace"] == "file" and Path(source["name"]).is_absolute()
    assert source["facets"]["datalibrary_sourceFile"]["fileName"] == "dm.csv"
    assert table["facets"]["columnLineage"]["fields"]["AGE"]["inputFields"][0]["name"] == source["name"]
    # a configured namespace replaces the derived one for the events emitted from then on
    Settings(
        home=settings.home,
        database_url=settings.database_url,
        lineage={"namespace": "datalibrary://clinic-a.example", "public_url": "https://dl.clinic-a.example"},
    )
    try:
        csv = studied.as_user("ada").post(
            "/api/v1/query", json={"sql": "SELECT AGE FROM study.dm", "format": "csv"}
        )
        assert csv.status_code == 200, csv.text
        query, download = events(studied, "query")[-1], events(studied, "download")[-1]
        assert query["inputs"][0]["namespace"] == "datalibrary://clinic-a.example"
        out = download["outputs"][0]
        assert out["namespace"] == "https://dl.clinic-a.example"
        assert out["name"] == f"/api/v1/query#{query['run']['runId']}.csv"
        validate_event(query, schema_base="https://dl.clinic-a.example" + SCHEMAS)
    finally:
        Settings(home=settings.home, database_url=settings.database_url)  # the platform's own naming


def test_query_runs_carry_sql_and_the_snapshots_read_and_failures_their_error(studied: Platform) -> None:
    sql = "SELECT AGE FROM study.dm WHERE AGE > 3"
    assert studied.as_user("ada").post("/api/v1/query", json={"sql": sql}).status_code == 200
    snapshot = open_lake(studied.settings).load(parse_table_name("study.dm")).current_snapshot()
    start, complete = events(studied, "query")
    for payload in (start, complete):
        validate_event(payload)
        assert payload["job"]["facets"]["sql"]["query"] == sql
        assert payload["job"]["facets"]["sql"]["dialect"] == "duckdb"
    assert complete["inputs"][0]["facets"]["version"]["datasetVersion"] == str(snapshot.snapshot_id)
    assert [f["name"] for f in complete["inputs"][0]["facets"]["schema"]["fields"]] == ["USUBJID", "AGE"]
    assert "errorMessage" not in complete["run"]["facets"]
    bad = studied.as_user("ada").post("/api/v1/query", json={"sql": "SELECT no_such_column FROM study.dm"})
    assert bad.status_code >= 400
    failed = events(studied, "query")[-1]
    validate_event(failed)
    assert failed["eventType"] == "FAIL"
    error = failed["run"]["facets"]["errorMessage"]
    assert error["programmingLanguage"] == "PYTHON" and "no_such_column" in error["message"]
    assert [d["name"] for d in failed["inputs"]] == ["study.dm"]  # it exists: the attempt is lineage


def test_no_lineage_node_for_tables_that_do_not_exist(studied: Platform, tmp_path: Path) -> None:
    missing = studied.as_user("ada").post("/api/v1/query", json={"sql": "SELECT * FROM nothing.here"})
    assert missing.status_code == 404
    refused = events(studied, "query")[-2:]
    assert [e["eventType"] for e in refused] == ["START", "FAIL"]
    assert all(e["inputs"] == [] for e in refused)
    assert refused[1]["run"]["facets"]["errorMessage"]["message"]
    bad = tmp_path / "ragged.csv"
    bad.write_bytes(b"USUBJID,AGE\nS-9,70\nS-10\n")
    assert ingest(studied, bad, "study.never")[1] == "quarantined"
    run = events(studied, "ingest")[-2:]
    assert [e["eventType"] for e in run] == ["START", "FAIL"]
    for payload in run:
        validate_event(payload)
        assert payload["outputs"] == [] and payload["inputs"][0]["namespace"] == "file"
    # the reason code, never the reason's message (it may quote the offending values)
    with studied.db.session() as session:
        code = session.scalar(select(IngestJob.reason).where(IngestJob.table_name == "never"))["code"]
    assert run[1]["run"]["facets"]["errorMessage"]["message"] == f"ingestion failed: {code}"
    with studied.db.session() as session:
        for name in ("nothing.here", "study.never"):
            count = session.scalar(select(func.count()).where(LineageEdge.dataset_name == name))
            assert count == 0, name


def test_custom_facet_schemas_are_served_where_the_events_point(studied: Platform) -> None:
    ingested = events(studied, "ingest")[-1]
    urls = {
        ingested["run"]["facets"]["datalibrary_actor"]["_schemaURL"],
        ingested["inputs"][0]["facets"]["datalibrary_sourceFile"]["_schemaURL"],
        ingested["outputs"][0]["facets"]["datalibrary_policy"]["_schemaURL"],
    }
    base = naming(studied).base_url
    assert all(url.startswith(base + SCHEMAS + "/") for url in urls), (base, urls)
    for url in urls:
        served = studied.anonymous.get(url.removeprefix(base))  # public, like the OpenAPI document
        assert served.status_code == 200, served.text
        assert served.headers["content-type"].startswith("application/schema+json")
        schema = served.json()
        Draft202012Validator.check_schema(schema)
        assert schema["$id"] == url
    assert studied.anonymous.get(f"{SCHEMAS}/DataLibraryNopeFacet.json").status_code == 404
    assert studied.anonymous.get(f"{SCHEMAS}/..%2Fsecrets.json").status_code in (404, 422)
    document = studied.as_user("admin").get("/api/openapi.json").json()
    operation = document["paths"][f"{SCHEMAS}/{{name}}.json"]["get"]
    assert "application/schema+json" in operation["responses"]["200"]["content"]


def test_events_stored_under_the_old_naming_stay_readable(studied: Platform) -> None:
    """Rows written before this naming (namespace ``datalibrary``, file ``sha256:<hex>``)."""
    at = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
    sha = "ab" * 32
    legacy = {
        "eventType": "COMPLETE",
        "eventTime": at.isoformat(),
        "run": {
            "runId": "0190b7a4-0000-7000-8000-000000000001",
            "facets": {"datalibrary_actor": {"user": "old"}},
        },
        "job": {"namespace": "datalibrary", "name": "ingest"},
        "inputs": [
            {
                "namespace": "file",
                "name": f"sha256:{sha}",
                "facets": {"datalibrary_sourceFile": {"sha256": sha, "size": 9, "fileName": "old.csv"}},
            }
        ],
        "outputs": [{"namespace": "datalibrary", "name": "study.dm", "facets": {}}],
    }
    with studied.db.session() as session:
        event = LineageEvent(
            event_time=at, event_type="COMPLETE", run_id=legacy["run"]["runId"], job_namespace="datalibrary",
            job_name="ingest", user="old", payload=legacy,
        )  # fmt: skip
        session.add(event)
        session.flush()
        session.add_all(
            LineageEdge(
                event_id=event.id,
                direction=d,
                dataset_namespace=ns,
                dataset_name=n,
                event_time=at,
                event_type="COMPLETE",
                job_name="ingest",
                user="old",
            )  # fmt: skip
            for d, ns, n in (("input", "file", f"sha256:{sha}"), ("output", "datalibrary", "study.dm"))
        )
    got = studied.as_user("admin").get("/api/v1/lineage/datasets/study.dm")
    assert got.status_code == 200, got.text
    ingestions = got.json()["upstream"]["ingestions"]
    assert {i["sha256"] for i in ingestions} >= {sha} and len(ingestions) == 2
    assert {i["file_name"] for i in ingestions} == {"old.csv", "dm.csv"}
    assert studied.as_user("admin").get("/lineage/datasets/study.dm").status_code == 200
    report = studied.as_user("admin").get(
        "/api/v1/lineage/report", params={"scope": "study", "start": "2024-01-01"}
    )
    assert report.status_code == 200, report.text


# --- forwarding over HTTPS with authentication -------------------------------------------


def _certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own CA), and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lineage test endpoint")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "endpoint.pem", folder / "endpoint.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


class _Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[dict[str, str], dict[str, Any]]]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).received.append((dict(self.headers), body))
        self.send_response(201)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def https_endpoint(tmp_path: Path):  # type: ignore[no-untyped-def]
    cert, key = _certificate(tmp_path)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Receiver.received = []
    try:
        yield f"https://127.0.0.1:{server.server_port}/api/v1/lineage/secret-path", cert
    finally:
        server.shutdown()
        server.server_close()


def test_forwarding_authenticates_over_verified_tls(
    sqlite_platform: Platform, https_endpoint: tuple[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    url, cert = https_endpoint
    token = "tok-" + "s3cr3t" * 4
    ada = sqlite_platform.as_user("ada")
    assert ada.post("/api/v1/query", json={"sql": "SELECT 1 AS one"}).status_code == 200
    fast = {"forward_interval_seconds": 0.01, "forward_max_backoff_seconds": 0.01, "forward_token": token}
    # verification against the system's trust store refuses the self-signed endpoint
    caplog.set_level(logging.DEBUG)
    untrusted = forward.forward_once(sqlite_platform.db, LineageSettings(forward_url=url, **fast))
    assert untrusted["sent"] == 0 and "CERTIFICATE_VERIFY_FAILED" in untrusted["error"]
    assert _Receiver.received == []
    # the endpoint's CA bundle: sent, with the bearer token
    trusted = LineageSettings(forward_url=url, forward_ca_bundle=cert, **fast)
    time.sleep(0.02)  # past the backoff
    assert forward.forward_once(sqlite_platform.db, trusted)["sent"] == 2
    headers, body = _Receiver.received[0]
    assert headers["Authorization"] == f"Bearer {token}" and body["job"]["name"] == "query"
    # an API key in a header of its own, without a scheme
    assert ada.post("/api/v1/query", json={"sql": "SELECT 2 AS two"}).status_code == 200
    keyed = LineageSettings(
        forward_url=url,
        forward_ca_bundle=cert,
        forward_auth_header="X-API-Key",
        forward_auth_scheme="",
        **fast,
    )
    assert forward.forward_once(sqlite_platform.db, keyed)["sent"] == 2
    assert (
        _Receiver.received[-1][0]["X-API-Key"] == token and "Authorization" not in _Receiver.received[-1][0]
    )
    # never logged nor shown: neither the token nor the endpoint's path
    # (the token in no log at all, even httpx's DEBUG; the URL's path in none of ours: httpx's
    # own INFO request lines are silenced by datalibrary.logs unless the level is DEBUG)
    assert token not in caplog.text
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("datalibrary")]
    assert ours and not any("secret-path" in m for m in ours)
    with sqlite_platform.db.session() as session:
        state = forward.status(session, url)
        assert "secret-path" not in (state["last_error"] or "") and "secret-path" not in state["endpoint"]
    shown = Settings(
        home=sqlite_platform.settings.home,
        database_url=sqlite_platform.settings.database_url,
        lineage={"forward_url": url, "forward_token": token},
    ).redacted()
    assert shown["lineage"]["forward_token"] == MASK and token not in json.dumps(shown)
    assert token not in repr(keyed)


def test_turning_tls_verification_off_is_refused_in_production(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="forward_verify_tls"):
        Settings(
            home=tmp_path,
            environment="production",
            secret_key="k" * 40,
            lineage={"forward_url": "https://marquez.example/api/v1/lineage", "forward_verify_tls": False},
        )


def test_forwarded_queries_carry_no_literal_by_default(
    sqlite_platform: Platform, https_endpoint: tuple[str, Path]
) -> None:
    """A subject id in a query's WHERE clause stays in the installation: forwarded events carry
    the query with ? for every literal (or no query at all); the stored event keeps it."""
    url, cert = https_endpoint
    ada = sqlite_platform.as_user("ada")
    canary = "SUBJ-CANARY-4711"
    for sql in (
        f"SELECT '{canary}' AS id WHERE 4711 > 1",
        f"SELECT e'{canary}' AS id",  # a string form the redaction does not rewrite: no query sent
    ):
        ada.post("/api/v1/query", json={"sql": sql})
    settings = {"forward_url": url, "forward_ca_bundle": cert}
    assert forward.forward_once(sqlite_platform.db, LineageSettings(**settings))["sent"] >= 4
    sent = [body for _, body in _Receiver.received]
    queries = [b["job"]["facets"]["sql"]["query"] for b in sent if "sql" in b["job"].get("facets", {})]
    assert "SELECT ? AS id WHERE ? > ?" in queries
    assert canary not in json.dumps(sent) and "4711" not in json.dumps(sent)
    for body in sent:
        validate_event(body)  # still a valid OpenLineage event
    with sqlite_platform.db.session() as session:
        stored = [e.payload for e in session.scalars(select(LineageEvent)).all()]
    assert canary in json.dumps(stored), "the installation's own record keeps the query as run"
    # "full" sends it as run (an operator's explicit choice); "none" sends no query
    _Receiver.received = []
    ada.post("/api/v1/query", json={"sql": f"SELECT '{canary}' AS again"})
    full = LineageSettings(**settings, forward_sql="full")
    forward.forward_once(sqlite_platform.db, full)
    assert canary in json.dumps([body for _, body in _Receiver.received])
    assert facets.outgoing({"job": {"facets": {"sql": {"query": "SELECT 1"}}}}, "none") == {
        "job": {"facets": {}}
    }
