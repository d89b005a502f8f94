"""Real ``datalibrary up`` processes for replica tests: each replica has its own state
directory (as on its own host) and shares the database, the warehouse and the keys."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def shared_env(tmp_path: Path, database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATALIBRARY_")}
    env.update(
        DATALIBRARY_DATABASE_URL=database_url,
        DATALIBRARY_SECRET_KEY="replica-test-secret-key-" + "x" * 32,
        DATALIBRARY_MASTER_KEY="ab" * 32,
        DATALIBRARY_LAKE__WAREHOUSE=str(tmp_path / "warehouse"),
        DATALIBRARY_INGEST__WORKERS="0",
        DATALIBRARY_LOG__LEVEL="INFO",
        **extra,
    )
    return env


def cli(env: dict[str, str], home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "datalibrary"), *args],
        env={**env, "DATALIBRARY_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


class Replica:
    """One ``datalibrary up --no-demo`` process on a free loopback port."""

    def __init__(self, env: dict[str, str], home: Path, name: str) -> None:
        self.home, self.name, self.port = home, name, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = home.parent / f"{name}.log"
        home.mkdir(parents=True, exist_ok=True)
        self.handle = self.log.open("w")
        self.process = subprocess.Popen(  # noqa: S603
            [str(Path(sys.executable).parent / "datalibrary"), "up", "--no-demo", "--port", str(self.port)],
            env={**env, "DATALIBRARY_HOME": str(home)},
            stdout=self.handle,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"{self.name} not ready in {timeout} s: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        """kill -9: no clean shutdown, its leases must expire."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        self.handle.close()
