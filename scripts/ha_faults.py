#!/usr/bin/env python3
"""The reference deployment under faults, on this machine only (127.0.0.1).

Starts a private PostgreSQL cluster, a local S3-protocol server (moto), two ``datalibrary up``
replicas (own state directories, shared database, warehouse and keys) and HAProxy terminating
TLS in front of them with health checks on ``/readyz``. Then it runs a bounded load (sign-ins,
catalog reads, queries; a fixed number of client threads for a fixed time) and:

1. kills one replica with SIGKILL mid-load: requests sent / failed / p50 / p95 before, during
   (the first seconds after the kill) and after failover;
2. restarts PostgreSQL mid-load: the same figures, and whether the replicas recover without a
   restart of their own;
3. measures query throughput through HAProxy with 1 and with 2 replicas;
4. kills one of two ``datalibrary worker`` processes with SIGKILL while it runs an ingestion
   job: every queued file must end up in the lake exactly once (rows counted and checked
   unique through HAProxy), the dead worker's job finished by another one.

Every address is 127.0.0.1 with ports the kernel picks. Nothing outlives the script.

    .venv/bin/python scripts/ha_faults.py [--phase-seconds 20] [--clients 6] [--json out.json]
                                          [--only worker-kill]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

VENV_BIN = Path(sys.executable).parent
PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"))), None)
PASSWORD = "Load-Test-Password-42"  # noqa: S105 - a throw-away local user
QUERIES = ["SELECT count(*) FROM demo.dm", "SELECT sex, count(*) FROM demo.dm GROUP BY sex"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(check, timeout: float, what: str) -> float:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if check():
                return time.monotonic() - started
        except Exception:  # noqa: S110 - not up yet
            pass
        time.sleep(0.25)
    raise RuntimeError(f"{what} not ready within {timeout} s")


# --- the parts ------------------------------------------------------------------------------


class Postgres:
    """A private PostgreSQL cluster (never the machine's shared server), restartable at will."""

    def __init__(self, root: Path) -> None:
        if PG_BIN is None:
            raise SystemExit("PostgreSQL server binaries not found (apt-get install postgresql)")
        self.data, self.port = root / "pgdata", free_port()
        self.data.mkdir()
        shutil.chown(self.data, "postgres", "postgres")
        self._as_postgres([str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres"])
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/datalibrary"

    def _as_postgres(self, args: list[str]) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *args], check=True, capture_output=True)  # noqa: S603

    def start(self) -> None:
        options = f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.data}"
        self._as_postgres(
            [
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(self.data),
                "-o",
                options,
                "-l",
                str(self.data / "log"),
                "-w",
                "start",
            ]
        )

    def stop(self, mode: str = "fast") -> None:
        self._as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"])

    def create_database(self) -> None:
        self._as_postgres([str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "datalibrary"])


class S3Server:
    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self.port = free_port()
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        import boto3

        boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id="ha",
            aws_secret_access_key="ha-secret",  # noqa: S106
            region_name="us-east-1",
        ).create_bucket(Bucket="lake")

    def stop(self) -> None:
        self.server.stop()


class Replica:
    def __init__(self, env: dict[str, str], home: Path, name: str, demo: bool) -> None:
        self.env, self.home, self.name, self.demo = env, home, name, demo
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        log = (self.home.parent / f"{self.name}.log").open("ab")
        args = [str(VENV_BIN / "datalibrary"), "up", "--port", str(self.port)]
        if not self.demo:
            args.append("--no-demo")
        self.process = subprocess.Popen(  # noqa: S603
            args, env={**self.env, "DATALIBRARY_HOME": str(self.home)}, stdout=log, stderr=subprocess.STDOUT
        )
        wait_for(
            lambda: httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=2).status_code == 200,
            300,
            self.name,
        )

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


HAPROXY_CFG = """
global
    maxconn 512
defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout check 5s
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response response-timeout 503
    option httplog
frontend https_in
    bind 127.0.0.1:{port} ssl crt {pem}
    http-request set-header X-Forwarded-Proto https
    default_backend replicas
backend replicas
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 1s fall 3 rise 2 on-marked-down shutdown-sessions
{servers}
"""


class HaProxy:
    def __init__(self, root: Path, replicas: list[Replica]) -> None:
        self.port = free_port()
        self.pem = root / "tls.pem"
        self.ca = root / "ca.pem"
        self._certificate()
        servers = "\n".join(f"    server {r.name} 127.0.0.1:{r.port} check" for r in replicas)
        self.config = root / "haproxy.cfg"
        self.config.write_text(HAPROXY_CFG.format(port=self.port, pem=self.pem, servers=servers))
        self.process: subprocess.Popen[bytes] | None = None
        self.url = f"https://127.0.0.1:{self.port}"

    def _certificate(self) -> None:
        """A self-signed certificate for 127.0.0.1 (TLS terminates at HAProxy)."""
        import ipaddress

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
            )
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256())
        )
        cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        self.pem.write_bytes(cert_pem + key_pem)
        self.pem.chmod(0o600)
        self.ca.write_bytes(cert_pem)

    def start(self) -> None:
        haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
        self.process = subprocess.Popen(  # noqa: S603
            [haproxy, "-db", "-f", str(self.config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for(
            lambda: httpx.get(f"{self.url}/readyz", verify=str(self.ca), timeout=2).status_code == 200,
            30,
            "haproxy",
        )

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


# --- the load -------------------------------------------------------------------------------


@dataclass
class Sample:
    at: float
    op: str
    status: int  # 0 = no response (connection error, timeout)
    seconds: float


@dataclass
class Load:
    url: str
    ca: str
    token: str
    clients: int
    ops: tuple[str, ...] = ("login", "catalog", "query", "query")
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _client(self, index: int) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(base_url=self.url, verify=self.ca, timeout=30) as http:
            step = index
            while not self._stop.is_set():
                op = self.ops[step % len(self.ops)]
                step += 1
                started = time.monotonic()
                try:
                    if op == "login":
                        response = http.post(
                            "/api/v1/auth/login", json={"name": "loader", "password": PASSWORD}
                        )
                        http.cookies.clear()
                    elif op == "catalog":
                        response = http.get("/api/v1/datasets", headers=headers)
                    else:
                        sql = QUERIES[step % len(QUERIES)]
                        response = http.post("/api/v1/query", json={"sql": sql}, headers=headers)
                    status = response.status_code
                except httpx.HTTPError:
                    status = 0
                with self._lock:
                    self.samples.append(Sample(started, op, status, time.monotonic() - started))

    def run(self, seconds: float) -> tuple[float, float]:
        """Run the load for ``seconds``; returns (start, end) on the monotonic clock."""
        self._stop.clear()
        threads = [threading.Thread(target=self._client, args=(i,), daemon=True) for i in range(self.clients)]
        start = time.monotonic()
        for thread in threads:
            thread.start()
        time.sleep(seconds)
        self._stop.set()
        for thread in threads:
            thread.join(60)
        return start, time.monotonic()


def summarize(samples: list[Sample], start: float, end: float) -> dict[str, object]:
    window = [s for s in samples if start <= s.at < end]
    latencies = sorted(s.seconds for s in window if 0 < s.status < 500)
    failed = [s for s in window if s.status == 0 or s.status >= 400]
    quantiles = statistics.quantiles(latencies, n=20) if len(latencies) >= 20 else None
    return {
        "sent": len(window),
        "failed": len(failed),
        "failed_pct": round(100 * len(failed) / len(window), 3) if window else 0.0,
        "5xx": sum(1 for s in window if s.status >= 500),
        "no_response": sum(1 for s in window if s.status == 0),
        "p50_ms": round(1000 * statistics.median(latencies), 1) if latencies else None,
        "p95_ms": round(1000 * quantiles[18], 1) if quantiles else None,
        "rps": round(len(window) / max(end - start, 1e-9), 1),
        "errors": _errors(failed),
    }


def _errors(failed: list[Sample]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for sample in failed:
        key = f"{sample.op}:{sample.status or 'no-response'}"
        counts[key] = counts.get(key, 0) + 1
    return counts


def print_table(title: str, rows: dict[str, dict[str, object]]) -> None:
    print(f"\n{title}")
    print(
        f"{'phase':<28}{'sent':>7}{'failed':>8}{'fail %':>8}{'5xx':>6}{'p50 ms':>9}{'p95 ms':>9}{'req/s':>8}"
    )
    for phase, r in rows.items():
        print(
            f"{phase:<28}{r['sent']:>7}{r['failed']:>8}{r['failed_pct']:>8}{r['5xx']:>6}"
            f"{r['p50_ms'] or '-':>9}{r['p95_ms'] or '-':>9}{r['rps']:>8}  {r['errors'] or ''}"
        )


# --- the scenario ---------------------------------------------------------------------------


def cli(env: dict[str, str], home: Path, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(  # noqa: S603
        [str(VENV_BIN / "datalibrary"), *args],
        env={**env, "DATALIBRARY_HOME": str(home)},
        capture_output=True,
        text=True,
        input=stdin,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"datalibrary {' '.join(args)}: {done.stderr[-1000:]}")
    return done.stdout


KEEP_ALL = "name: keep-all\nversion: 1\ncolumns:\n  '*': keep\n"


def worker_kill(env: dict[str, str], root: Path, home: Path, db_url: str, base: str, ca: str,
                token: str, files: int, rows: int) -> dict[str, object]:  # fmt: skip
    """Queue ``files`` CSV files, start two workers, SIGKILL the first while it runs a job,
    then check that every file's rows are in the lake exactly once."""
    import psycopg
    import pyarrow as pa
    import pyarrow.csv as pacsv

    policy = root / "keep-all.yaml"
    policy.write_text(KEEP_ALL)
    paths = []
    for k in range(files):
        ids = pa.array([f"f{k}-r{i}" for i in range(rows)])
        path = root / f"faults{k}.csv"
        pacsv.write_csv(pa.table({"ID": ids, "N": pa.array(range(rows))}), path)
        paths.append(str(path))
    queued = json.loads(cli(env, home, "ingest", *paths, "--table", "faults.*", "--policy", str(policy),
                            "--queue", "--json"))  # fmt: skip
    job_ids = [job["id"] for job in queued]
    worker_env = {**env, "DATALIBRARY_INGEST__JOB_LEASE_SECONDS": "10"}
    workers = []
    for name in ("w1", "w2"):
        (root / name).mkdir()
        log = (root / f"{name}.log").open("ab")
        workers.append(subprocess.Popen(  # noqa: S603
            [str(VENV_BIN / "datalibrary"), "worker"],
            env={**worker_env, "DATALIBRARY_HOME": str(root / name)}, stdout=log, stderr=subprocess.STDOUT,
        ))  # fmt: skip
    victim = workers[0]
    started = time.monotonic()
    killed_job = None
    with psycopg.connect(db_url, autocommit=True) as connection:
        while killed_job is None and time.monotonic() - started < 300:
            found = connection.execute(
                "SELECT id FROM ingest_jobs WHERE state = 'running' AND worker LIKE %s",
                (f"%:{victim.pid}:%",),
            ).fetchone()
            if found:
                time.sleep(0.5)  # mid-job, not at its first step
                victim.send_signal(signal.SIGKILL)
                victim.wait(10)
                killed_job = found[0]
                state = connection.execute("SELECT state FROM ingest_jobs WHERE id = %s", (killed_job,))
                if state.fetchone()[0] != "running":
                    raise RuntimeError("the job ended before the kill: run with more --rows")
            time.sleep(0.1)
        if killed_job is None:
            raise RuntimeError("the first worker never ran a job")
        deadline = time.monotonic() + 600
        states: dict[str, str] = {}
        while time.monotonic() < deadline:
            states = dict(connection.execute(
                "SELECT id, state FROM ingest_jobs WHERE id = ANY(%s)", (job_ids,)
            ).fetchall())  # fmt: skip
            if all(state in ("succeeded", "failed", "quarantined", "cancelled") for state in states.values()):
                break
            time.sleep(1)
        finished_by = connection.execute(
            "SELECT worker, attempts FROM ingest_jobs WHERE id = %s", (killed_job,)
        ).fetchone()
    for worker in workers:
        if worker.poll() is None:
            worker.terminate()
            worker.wait(20)
    headers = {"Authorization": f"Bearer {token}"}
    counts = {}
    for k in range(files):
        response = httpx.post(
            f"{base}/api/v1/query",
            json={"sql": f"SELECT count(*) AS n, count(DISTINCT id) AS d FROM faults.faults{k}"},
            headers=headers, verify=ca, timeout=120,
        )  # fmt: skip
        response.raise_for_status()
        row = response.json()["rows"][0]
        counts[f"faults{k}"] = (row[0], row[1])
    expected = files * rows
    total = sum(n for n, _ in counts.values())
    distinct = sum(d for _, d in counts.values())
    result = {
        "files": files,
        "rows_per_file": rows,
        "job_states": sorted(states.values()),
        "killed_job_attempts": finished_by[1] if finished_by else None,
        "killed_worker_pid": victim.pid,
        "killed_job_last_worker": finished_by[0] if finished_by else None,
        "rows_expected": expected,
        "rows_in_lake": total,
        "rows_lost": expected - distinct,
        "rows_duplicated": total - distinct,
        "seconds": round(time.monotonic() - started, 1),
    }
    print("\nkill -9 of a worker mid-ingestion")
    for key, value in result.items():
        print(f"  {key}: {value}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--phase-seconds", type=float, default=20.0, help="length of each measured phase")
    parser.add_argument("--clients", type=int, default=6, help="concurrent load clients")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--only", choices=["worker-kill"], help="run only this fault")
    parser.add_argument("--files", type=int, default=6, help="files queued for the worker fault")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows per file for the worker fault")
    args = parser.parse_args()
    phase = args.phase_seconds
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the S3 server's request log

    root = Path(tempfile.mkdtemp(prefix="dl-ha-"))
    root.chmod(0o755)
    parts: list = []  # type: ignore[type-arg]
    results: dict[str, object] = {"phase_seconds": phase, "clients": args.clients, "cores": os.cpu_count()}
    try:
        postgres = Postgres(root)
        postgres.start()
        parts.append(postgres)
        postgres.create_database()
        s3 = S3Server()
        parts.append(s3)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DATALIBRARY_")}
        env.update(
            DATALIBRARY_ENVIRONMENT="production",
            DATALIBRARY_DATABASE_URL=postgres.url,
            DATALIBRARY_SECRET_KEY=uuid.uuid4().hex + uuid.uuid4().hex,
            DATALIBRARY_MASTER_KEY=os.urandom(32).hex(),
            DATALIBRARY_LAKE__WAREHOUSE="s3://lake/warehouse",
            DATALIBRARY_LAKE__S3_ENDPOINT=s3.endpoint,
            DATALIBRARY_LAKE__S3_ACCESS_KEY_ID="ha",
            DATALIBRARY_LAKE__S3_SECRET_ACCESS_KEY="ha-secret",  # noqa: S106 - the local S3 server
            DATALIBRARY_SERVER__HTTPS="true",
            DATALIBRARY_INGEST__WORKERS="1",
            DATALIBRARY_LOG__LEVEL="WARNING",
        )
        replicas = [Replica(env, root / "a", "a", demo=True), Replica(env, root / "b", "b", demo=False)]
        for replica in replicas:
            replica.start()
            parts.append(replica)
        home = root / "a"
        password_file = root / "password"
        password_file.write_text(PASSWORD)
        cli(env, home, "users", "add", "loader", "--role", "scientist", "--password-file", str(password_file))
        cli(env, home, "grants", "add", "--principal", "user:loader", "--table", "demo.*")
        cli(env, home, "grants", "add", "--principal", "user:loader", "--table", "faults.*")
        token = json.loads(cli(env, home, "tokens", "create", "--user", "loader", "--json"))["token"]
        proxy = HaProxy(root, replicas)
        proxy.start()
        parts.append(proxy)
        print(
            f"deployment up in {root}: HAProxy {proxy.url} -> "
            f"replicas :{replicas[0].port} :{replicas[1].port}"
        )

        if args.only == "worker-kill":
            results["worker_kill"] = worker_kill(
                env, root, home, postgres.url, proxy.url, str(proxy.ca), token, args.files, args.rows
            )
            return

        # 1. kill -9 one replica mid-load
        load = Load(proxy.url, str(proxy.ca), token, args.clients)
        timer = threading.Timer(phase, replicas[1].kill)
        timer.start()
        start, end = load.run(3 * phase)
        killed = start + phase
        failover = min(10.0, phase)
        rows = {
            "before (2 replicas)": summarize(load.samples, start, killed),
            f"during (first {failover:.0f} s after kill)": summarize(load.samples, killed, killed + failover),
            "after failover (1 replica)": summarize(load.samples, killed + failover, end),
        }
        print_table("kill -9 of one replica under load (through HAProxy, TLS)", rows)
        results["replica_kill"] = rows
        replicas[1].start()
        wait_for(
            lambda: httpx.get(f"{proxy.url}/readyz", verify=str(proxy.ca), timeout=2).status_code == 200,
            30,
            "b",
        )
        time.sleep(3)  # HAProxy marks it up after 2 checks

        # 2. restart PostgreSQL mid-load
        load = Load(proxy.url, str(proxy.ca), token, args.clients)
        outage: dict[str, float] = {}

        def restart_postgres() -> None:
            outage["stop"] = time.monotonic()
            postgres.stop("fast")
            time.sleep(3)
            postgres.start()
            outage["start"] = time.monotonic()

        timer = threading.Timer(phase, restart_postgres)
        timer.start()
        start, end = load.run(3 * phase)
        timer.join()
        recovered = next((s.at for s in load.samples if s.at > outage["start"] and 0 < s.status < 400), None)
        rows = {
            "before": summarize(load.samples, start, outage["stop"]),
            "during (PostgreSQL down)": summarize(load.samples, outage["stop"], outage["start"]),
            "after (PostgreSQL back)": summarize(load.samples, outage["start"], end),
        }
        print_table("PostgreSQL restart under load (3 s down)", rows)
        tail = summarize(load.samples, outage["start"] + 5, end)
        results["postgres_restart"] = {
            **rows,
            "first_success_after_restart_s": round(recovered - outage["start"], 2) if recovered else None,
            "failed_from_5s_after_restart": tail["failed"],
            "replicas_restarted": False,
            "replicas_alive": all(r.process and r.process.poll() is None for r in replicas),
        }
        restart = results["postgres_restart"]
        print(
            f"first success {restart['first_success_after_restart_s']} s after PostgreSQL was back; "
            f"failures from 5 s after: {tail['failed']}; replicas alive without restart: "
            f"{restart['replicas_alive']}"
        )

        # 3. query throughput: 1 vs 2 replicas
        throughput = {}
        for count in (2, 1):
            if count == 1:
                replicas[1].stop()
                time.sleep(3)
            load = Load(proxy.url, str(proxy.ca), token, args.clients, ops=("query",))
            start, end = load.run(phase)
            throughput[f"{count} replica(s)"] = summarize(load.samples, start, end)
        print_table("query throughput through HAProxy", throughput)
        ratio = throughput["2 replica(s)"]["rps"] / max(throughput["1 replica(s)"]["rps"], 1e-9)  # type: ignore[operator]
        print(f"2 vs 1 replicas: {ratio:.2f}x on {os.cpu_count()} cores")
        results["throughput"] = {**throughput, "ratio_2_vs_1": round(ratio, 2)}

        # 4. kill -9 a worker mid-ingestion
        results["worker_kill"] = worker_kill(
            env, root, home, postgres.url, proxy.url, str(proxy.ca), token, args.files, args.rows
        )
    finally:
        for part in reversed(parts):
            try:
                part.stop()
            except Exception as exc:  # keep cleaning up
                print(f"cleanup of {type(part).__name__}: {exc}", file=sys.stderr)
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
