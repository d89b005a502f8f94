"""``datalibrary up`` in a real process: quiet start (no pyiceberg INFO lines, no pip
warnings), then one block with the URL and a table of the users created with their
one-time passwords; a second start shows no passwords."""

from __future__ import annotations

import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(home: Path) -> tuple[str, subprocess.Popen[str]]:
    """Run ``up`` until it says it is running; its output so far and the process."""
    env = {**os.environ, "DATALIBRARY_HOME": str(home), "COLUMNS": "120"}
    env.pop("DATALIBRARY_DATABASE_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-c", "from datalibrary.cli import main; main()", "up", "--port", str(free_port())],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    output = ""
    selector = selectors.DefaultSelector()
    assert process.stdout is not None
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if selector.select(timeout=1):
            line = process.stdout.readline()
            output += line
            if line.startswith("=" * 20) and "is running at" in output:
                return output, process
    process.kill()
    raise AssertionError(f"up did not report it was running:\n{output}")


def stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def test_up_prints_a_clear_block(tmp_path: Path) -> None:
    output, process = start(tmp_path / "home")
    stop(process)
    assert "Loaded FileIO" not in output
    assert "INFO pyiceberg" not in output and "WARNING: Running pip" not in output
    block = output[output.index("=" * 20) :]
    assert "is running at http://" in block
    lines = block.splitlines()
    heading = next(i for i, line in enumerate(lines) if "one-time password" in line and "user" in line)
    assert lines[heading].split()[:2] == ["user", "role"]
    users = [line.split() for line in lines[heading + 2 :] if line.strip() and not line.startswith("=")]
    assert {u[0] for u in users} == {"admin", "steward", "scientist", "auditor"}
    assert all(len(u) == 3 for u in users)  # name, role, password

    again, process = start(tmp_path / "home")
    stop(process)
    block = again[again.index("=" * 20) :]
    assert "one-time password" not in block and "is running at" in block
