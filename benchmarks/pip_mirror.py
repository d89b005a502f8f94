"""Package mirror speed: ``pip install`` of a cached 20 MB wheel through the path a workspace
uses (pip -> the loopback forwarder ``python -m datalibrary.sdk.forward`` -> the platform's
Unix socket -> token check, policy, install record -> devpi-server's cache) against
``pip install`` of the same wheel from a local file, measured in the same run.

    .venv/bin/python benchmarks/pip_mirror.py [--megabytes 20] [--runs 5]

The mirror's upstream is a local index started here (never the public one); the first
install fills devpi's cache and is not timed. Target from issue #16: mirror / file <= 2.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.helpers import make_platform  # noqa: E402
from tests.package_helpers import StaticIndex, make_wheel, write_simple_index  # noqa: E402
from tests.workspace_helpers import UnixServer  # noqa: E402

from datalibrary.auth import service as auth_service  # noqa: E402
from datalibrary.auth.permissions import Principal  # noqa: E402
from datalibrary.packages import server  # noqa: E402

PIP = ["/usr/bin/python3", "-m", "pip", "--isolated", "install", "--no-cache-dir", "--no-deps",
       "--disable-pip-version-check", "--no-compile", "--quiet"]  # fmt: skip


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def install(target: Path, *args: str) -> float:
    shutil.rmtree(target, ignore_errors=True)
    started = time.perf_counter()
    subprocess.run(  # noqa: S603
        [*PIP, "--target", str(target), *args],
        check=True,
        capture_output=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(target.parent), "LANG": "C.UTF-8"},
    )
    return time.perf_counter() - started


def wait_for_port(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit("the forwarder did not start")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--megabytes", type=int, default=20)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="dl-bench-pip-"))
    wheel = make_wheel(tmp / "upstream" / "files", "bigpkg", "1.0", pad_bytes=args.megabytes * 1_000_000)
    write_simple_index(tmp / "upstream")
    os.environ["DATALIBRARY_PACKAGES__SERVER_DIR"] = str(tmp / "mirror")
    os.environ["DATALIBRARY_PACKAGES__UPSTREAM_CACHE_SECONDS"] = "3600"
    forwarder = None
    with StaticIndex(tmp / "upstream") as upstream:
        os.environ["DATALIBRARY_PACKAGES__UPSTREAM_URL"] = upstream.url
        with make_platform(tmp / "home", f"sqlite:///{tmp / 'state.db'}") as platform:
            system = Principal.system("bench")
            with platform.db.session() as session:
                auth_service.create_user(session, system, "bench", roles={"scientist"})
                token = auth_service.create_token(session, system, "bench").secret
            server.ensure_running(platform.settings)
            api_socket = tmp / "api.sock"
            port = free_port()
            try:
                with UnixServer(platform.app, api_socket):
                    forwarder = subprocess.Popen(  # noqa: S603 - the workspace's forwarder, as in a sandbox
                        [sys.executable, "-m", "datalibrary.sdk.forward"],
                        env={**os.environ, "DATALIBRARY_URL": f"unix://{api_socket}",
                             "DATALIBRARY_LOCAL_PORT": str(port)},
                    )  # fmt: skip
                    wait_for_port(port)
                    index = f"http://workspace:{token}@127.0.0.1:{port}/pypi/simple/"
                    install(tmp / "warm", "--index-url", index, "bigpkg")  # fills devpi's cache
                    ours, theirs = [], []
                    for _ in range(args.runs):
                        ours.append(install(tmp / "a", "--index-url", index, "bigpkg"))
                        theirs.append(install(tmp / "b", str(wheel)))
            finally:
                if forwarder is not None:
                    forwarder.terminate()
                server.stop(platform.settings)
    mine, base = statistics.median(ours), statistics.median(theirs)
    print(f"pip install of a cached {args.megabytes} MB wheel, median of {args.runs}:")
    print(f"  through the workspace path (forwarder, platform, devpi)  {mine:6.2f} s")
    print(f"  from a local file                                        {base:6.2f} s")
    print(f"  ratio                                                    {mine / base:6.2f}  (target <= 2)")
    print(f"  load average: {open('/proc/loadavg').read().split()[:3]}")  # noqa: SIM115
    shutil.rmtree(tmp, ignore_errors=True)
    os._exit(0)


if __name__ == "__main__":
    main()
