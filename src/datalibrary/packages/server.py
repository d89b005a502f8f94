"""The devpi-server process behind the mirror: started on first use, on a Unix socket in
the state directory, configured once (``root/pypi`` mirrors ``packages.upstream_url``,
``root/internal`` holds uploaded wheels and inherits the mirror). With no upstream it runs
in devpi's offline mode: only cached and internal files are served.

Several platform processes (replicas, tests) on one state directory share one server: a
live socket is reused, never started twice."""

from __future__ import annotations

import atexit
import base64
import contextlib
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from datalibrary.config import Settings, reveal
from datalibrary.errors import Unavailable

log = logging.getLogger(__name__)
MIRROR = "root/pypi"
INTERNAL = "root/internal"
OFFLINE_PLACEHOLDER = "http://127.0.0.1:9/simple/"  # never contacted: devpi runs offline
START_TIMEOUT = 240.0
_locks: dict[str, threading.Lock] = {}


def server_dir(settings: Settings) -> Path:
    return Path(settings.packages.server_dir or settings.home / "packages")


def socket_path(settings: Settings) -> Path:
    return server_dir(settings) / "devpi.sock"


def _root_password(settings: Settings) -> str:
    """Random, made once per server directory (mode 0600): shared by every platform process
    using that mirror, never derived from or stored with anything else."""
    path = server_dir(settings) / "root.secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


def _alive(path: Path) -> bool:
    if not path.exists():
        return False
    with socket.socket(socket.AF_UNIX) as probe:
        probe.settimeout(2)
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def _devpi(tool: str) -> str:
    return str(Path(sys.executable).with_name(tool))


def client(settings: Settings, timeout: float = 60) -> httpx.Client:
    return httpx.Client(
        transport=httpx.HTTPTransport(uds=str(socket_path(settings))),
        base_url="http://devpi",
        timeout=httpx.Timeout(timeout, connect=5),
    )


def async_client(settings: Settings) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.AsyncHTTPTransport(uds=str(socket_path(settings))),
        base_url="http://devpi",
        timeout=httpx.Timeout(300, connect=5),
    )


def auth_header(settings: Settings) -> dict[str, str]:
    with client(settings) as http:
        response = http.post(
            "/+login",
            json={"user": "root", "password": _root_password(settings)},
            headers={"Accept": "application/json"},
        )
    if response.status_code != 200:
        raise Unavailable(f"the package mirror refused the platform's login ({response.status_code})")
    token = response.json()["result"]["password"]
    return {"X-Devpi-Auth": base64.b64encode(f"root:{token}".encode()).decode()}


def _configure(settings: Settings) -> None:
    headers = {**auth_header(settings), "Accept": "application/json", "Content-Type": "application/json"}
    upstream = reveal(settings.packages.upstream_url) or OFFLINE_PLACEHOLDER
    with client(settings) as http:
        mirror = {
            "type": "mirror",
            "mirror_url": upstream,
            "mirror_cache_expiry": settings.packages.upstream_cache_seconds,
            "title": "upstream",
        }
        http.patch(f"/{MIRROR}", json=mirror, headers=headers).raise_for_status()
        if http.get(f"/{INTERNAL}", headers={"Accept": "application/json"}).status_code == 404:
            index = {"type": "stage", "bases": [MIRROR], "volatile": True, "title": "internal packages"}
            http.put(f"/{INTERNAL}", json=index, headers=headers).raise_for_status()


def ensure_running(settings: Settings) -> Path:
    """The socket of a live, configured devpi-server for this state directory."""
    directory = server_dir(settings)
    path = socket_path(settings)
    lock = _locks.setdefault(str(directory), threading.Lock())
    with lock:
        if _alive(path):
            return path
        directory.mkdir(parents=True, exist_ok=True)
        data = directory / "server"
        if not (data / ".nodeinfo").exists():
            subprocess.run(  # noqa: S603
                [_devpi("devpi-init"), "--serverdir", str(data), f"--root-passwd={_root_password(settings)}"],
                check=True,
                capture_output=True,
                timeout=START_TIMEOUT,
            )
        path.unlink(missing_ok=True)
        command = [
            _devpi("devpi-server"),
            "--serverdir",
            str(data),
            "--unix-socket",
            str(path),
            "--threads",
            "8",
        ]
        if not settings.packages.upstream_url:
            command.append("--offline-mode")
        with open(directory / "devpi.log", "ab") as output:
            process = subprocess.Popen(  # noqa: S603
                command, stdout=output, stderr=output, stdin=subprocess.DEVNULL, start_new_session=True
            )
        (directory / "devpi.pid").write_text(str(process.pid))
        atexit.register(_terminate, process)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None:
                raise Unavailable(f"the package mirror (devpi-server) exited; see {directory / 'devpi.log'}")
            if _alive(path):
                with contextlib.suppress(httpx.HTTPError), client(settings, 5) as http:
                    if http.get("/+api").status_code == 200:
                        break
            if time.monotonic() > deadline:
                _terminate(process)
                raise Unavailable("the package mirror (devpi-server) did not start in time")
            time.sleep(0.2)
        _configure(settings)
        log.info("package mirror started (pid %s)", process.pid)
        return path


def _terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


def stop(settings: Settings) -> None:
    """Stop the server this state directory started (by its recorded pid)."""
    pid_file = server_dir(settings) / "devpi.pid"
    if pid_file.exists():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
        pid_file.unlink(missing_ok=True)


def start_in_background(settings: Settings) -> None:
    """Warm the mirror up at the platform's start (devpi takes seconds to start), so the first
    ``pip install`` does not wait for it; a failure is logged and retried on first use."""

    def run() -> None:
        try:
            ensure_running(settings)
        except Exception:  # noqa: BLE001 - retried on first use; the log says why
            log.exception("the package mirror did not start")

    threading.Thread(target=run, name="package-mirror-start", daemon=True).start()
