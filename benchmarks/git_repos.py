"""Project Git speed: clone and push of a repository with 1,000 commits through the platform
(authentication, authorization, guard, audit, lineage) against plain ``git http-backend``
behind a minimal CGI server, both on loopback, measured in the same run.

    .venv/bin/python benchmarks/git_repos.py [--commits 1000] [--runs 7]

Target from issue #16: platform / plain <= 1.5.
"""

from __future__ import annotations

import argparse
import http.server
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.helpers import LiveServer, make_platform  # noqa: E402

from datalibrary.auth import projects  # noqa: E402
from datalibrary.auth import service as auth_service  # noqa: E402
from datalibrary.auth.permissions import Principal  # noqa: E402
from datalibrary.repos import service as repos  # noqa: E402

ENV = {
    "PATH": "/usr/bin:/bin",
    "HOME": "/nonexistent",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_TERMINAL_PROMPT": "0",
    **{
        f"GIT_{who}_{what}": value
        for who in ("AUTHOR", "COMMITTER")
        for what, value in (("NAME", "b"), ("EMAIL", "b@x"))
    },
}


def git(*args: str, cwd: Path | None = None) -> None:
    subprocess.run(["git", *args], cwd=cwd, env=ENV, check=True, capture_output=True)  # noqa: S603, S607


def make_history(work: Path, commits: int) -> None:
    """``commits`` small commits via fast-import (seconds, not minutes)."""
    git("init", "-q", "--initial-branch=main", str(work))
    stream = []
    for i in range(commits):
        content = f"print({i})\n" * 20
        stream.append(
            f"commit refs/heads/main\nmark :{i + 1}\ncommitter b <b@x> {1_700_000_000 + i} +0000\n"
            f"data {len(f'c{i}')}\nc{i}\n"
            + (f"from :{i}\n" if i else "")
            + f"M 644 inline src/file_{i % 50}.py\ndata {len(content)}\n{content}\n"
        )
    subprocess.run(
        ["git", "fast-import", "--quiet"], cwd=work, env=ENV, input="".join(stream).encode(), check=True
    )  # noqa: S603, S607
    git("checkout", "-q", "main", cwd=work)


class CgiHandler(http.server.BaseHTTPRequestHandler):
    """Plain git http-backend: no auth, just CGI (the baseline)."""

    root = ""
    protocol_version = "HTTP/1.0"

    def _run(self) -> None:
        path, _, query = self.path.partition("?")
        length = int(self.headers.get("Content-Length") or 0)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self.rfile.readline().strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    break
                body += self.rfile.read(size)
                self.rfile.readline()
        else:
            body = self.rfile.read(length) if length else b""
        env = {"PATH": "/usr/bin:/bin", "GIT_PROJECT_ROOT": self.root, "GIT_HTTP_EXPORT_ALL": "1",
               "PATH_INFO": path.removeprefix("/git"), "QUERY_STRING": query, "REQUEST_METHOD": self.command,
               "CONTENT_TYPE": self.headers.get("Content-Type", ""), "CONTENT_LENGTH": str(len(body)),
               "REMOTE_USER": "bench", "GIT_PROTOCOL": self.headers.get("Git-Protocol", "")}  # fmt: skip
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        out = subprocess.run(
            ["/usr/lib/git-core/git-http-backend"], env=env, input=body, capture_output=True
        ).stdout  # noqa: S603
        head, _, rest = out.partition(b"\r\n\r\n")
        status = 200
        headers = []
        for line in head.decode().splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            else:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(rest)

    do_GET = do_POST = _run  # noqa: N815

    def log_message(self, *args: object) -> None:
        pass


def _cpu() -> float:
    """CPU seconds of this process (both servers run in it) and its waited-for children
    (the git clients and every http-backend with what it started)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def round_trip(url: str, source: Path, scratch: Path) -> tuple[float, float]:
    """Push the whole history to an empty repository, then clone it: (wall, CPU) seconds.
    CPU does not depend on how busy the machine is, wall time does (a shared machine)."""
    cpu, started = _cpu(), time.perf_counter()
    git("push", "-q", url, "main", cwd=source)
    git("clone", "-q", url, str(scratch / "clone"))
    elapsed = time.perf_counter() - started
    time.sleep(0.05)  # the platform records the clone after answering: count it in this round
    used = _cpu() - cpu
    shutil.rmtree(scratch / "clone")
    return elapsed, used


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--commits", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    started_load = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="dl-bench-git-"))
    source = tmp / "source"
    make_history(source, args.commits)
    plain_root = tmp / "plain"
    CgiHandler.root = str(plain_root)
    plain = http.server.ThreadingHTTPServer(("127.0.0.1", 0), CgiHandler)
    threading.Thread(target=plain.serve_forever, daemon=True).start()
    with (
        make_platform(tmp / "home", f"sqlite:///{tmp / 'state.db'}") as platform,
        LiveServer(platform.app) as live,
    ):
        system = Principal.system("bench")
        with platform.db.session() as session:
            auth_service.create_user(session, system, "bench", roles={"scientist"})
            projects.create_project(session, system, "bench")
            projects.add_member(session, system, "bench", "bench")
            token = auth_service.create_token(session, system, "bench").secret
        ours, theirs = [], []
        for run in range(args.runs):
            with platform.db.session() as session:
                repos.create_repo(session, platform.settings, system, "bench", f"r{run}")
            subprocess.run(
                ["git", "init", "-q", "--bare", str(plain_root / "bench" / f"r{run}.git")], check=True
            )  # noqa: S603, S607
            subprocess.run(
                [
                    "git",
                    "--git-dir",
                    str(plain_root / "bench" / f"r{run}.git"),
                    "config",
                    "http.receivepack",
                    "true",
                ],
                check=True,
            )  # noqa: S603, S607
            host = live.url.removeprefix("http://")
            ours_url = f"http://bench:{token}@{host}/git/bench/r{run}.git"
            plain_url = f"http://127.0.0.1:{plain.server_address[1]}/git/bench/r{run}.git"
            if run % 2:  # alternate who goes first, so neither always meets a warmer machine
                theirs.append(round_trip(plain_url, source, tmp))
                ours.append(round_trip(ours_url, source, tmp))
            else:
                ours.append(round_trip(ours_url, source, tmp))
                theirs.append(round_trip(plain_url, source, tmp))
    plain.shutdown()
    mine, base = statistics.median(w for w, _ in ours), statistics.median(w for w, _ in theirs)
    mine_cpu, base_cpu = statistics.median(c for _, c in ours), statistics.median(c for _, c in theirs)
    print(f"push + clone of {args.commits} commits, median of {args.runs}:")
    print(f"  load average (1 min)    {started_load:6.2f} before, {os.getloadavg()[0]:.2f} after")
    print(f"  through DataLibrary     {mine:6.2f} s   CPU {mine_cpu:5.2f} s")
    print(f"  plain git http-backend  {base:6.2f} s   CPU {base_cpu:5.2f} s")
    print(f"  ratio                   {mine / base:6.2f}  (target <= 1.5)   CPU {mine_cpu / base_cpu:4.2f}")
    shutil.rmtree(tmp, ignore_errors=True)
    os._exit(0)


if __name__ == "__main__":
    main()
