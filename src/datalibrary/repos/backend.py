"""Run Debian's ``git http-backend`` as a CGI program for one smart-HTTP request.

The platform has already authenticated and authorized the caller; the backend gets the
user as ``REMOTE_USER``, a minimal environment (none of the platform's secrets) and the
platform's hooks directory through ``core.hooksPath`` (so no hook stored in a repository,
and none a user could push, ever runs). Bodies stream both ways, so a large clone or push
is never held in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import tempfile
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

HTTP_BACKEND = "/usr/lib/git-core/git-http-backend"
CHUNK = 64 * 1024


@dataclass
class CgiResponse:
    status: int
    headers: list[tuple[str, str]]
    body: AsyncIterator[bytes]
    done: asyncio.Future[int]  # the backend's exit code, once its output is read


def cgi_environment(
    *,
    project_root: Path,
    path_info: str,
    method: str,
    query: str,
    content_type: str | None,
    content_length: str | None,
    content_encoding: str | None,
    git_protocol: str | None,
    remote_user: str,
    remote_addr: str,
    config: Mapping[str, str],
    extra: Mapping[str, str],
) -> dict[str, str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "HOME": str(project_root),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_PROJECT_ROOT": str(project_root),
        "GIT_HTTP_EXPORT_ALL": "1",
        "GATEWAY_INTERFACE": "CGI/1.1",
        "PATH_INFO": path_info,
        "REQUEST_METHOD": method,
        "QUERY_STRING": query,
        "REMOTE_USER": remote_user,
        "REMOTE_ADDR": remote_addr,
        **extra,
    }
    if content_type:
        env["CONTENT_TYPE"] = content_type
    if content_length:
        env["CONTENT_LENGTH"] = content_length
    if content_encoding:
        env["HTTP_CONTENT_ENCODING"] = content_encoding
    if git_protocol:
        env["GIT_PROTOCOL"] = git_protocol
    env["GIT_CONFIG_COUNT"] = str(len(config))
    for index, (key, value) in enumerate(config.items()):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    return env


def _start(env: dict[str, str], stdin: BinaryIO) -> subprocess.Popen[bytes]:
    # CPython's subprocess (vfork + exec), not the event loop's: a loop that forks a
    # multi-threaded server (uvloop's spawn) crashed the child now and then under load.
    stderr = tempfile.TemporaryFile()  # noqa: SIM115 - owned by the process object
    process = subprocess.Popen(  # noqa: S603 - a fixed program with no shell
        [HTTP_BACKEND], env=env, stdin=stdin, stdout=subprocess.PIPE, stderr=stderr, close_fds=True
    )
    process.stderr = stderr  # type: ignore[assignment] - read back when the backend fails
    return process


def _stderr(process: subprocess.Popen[bytes]) -> str:
    errors = process.stderr
    assert errors is not None
    errors.seek(0)
    text = errors.read(4096).decode(errors="replace")
    errors.close()
    return text


async def run(env: dict[str, str], stdin: BinaryIO) -> CgiResponse:
    """Start the backend on the spooled request body and return once its CGI headers are read.

    The body is spooled first (to memory or a temporary file) because a streaming response
    and a still-streaming request body cannot share the ASGI receive channel. The output is
    read by the event loop from the pipe (no thread hop per chunk)."""
    loop = asyncio.get_running_loop()
    process = _start(env, stdin)  # vfork + exec: shorter than a hop to a worker thread
    output = process.stdout
    assert output is not None
    reader = asyncio.StreamReader(limit=CHUNK, loop=loop)
    protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
    transport, _ = await loop.connect_read_pipe(lambda: protocol, output)
    raw = b""
    while b"\r\n\r\n" not in raw and b"\n\n" not in raw:
        chunk = await reader.read(CHUNK)
        if not chunk:
            break
        raw += chunk
    separator = b"\r\n\r\n" if b"\r\n\r\n" in raw else b"\n\n"
    head, _, rest = raw.partition(separator)
    if not head:
        transport.close()
        code = await _exit_code(process)
        raise RuntimeError(f"git http-backend failed ({code}): {_stderr(process).strip()[:500]}")
    status = 200
    headers: list[tuple[str, str]] = []
    for line in head.decode("latin-1").splitlines():
        name, _, value = line.partition(":")
        if name.lower() == "status":
            status = int(value.strip().split(" ", 1)[0] or 500)
        elif name:
            headers.append((name.strip(), value.strip()))
    done: asyncio.Future[int] = loop.create_future()

    async def stream() -> AsyncIterator[bytes]:
        complete = False
        try:
            if rest:
                yield rest
            while chunk := await reader.read(CHUNK):
                yield chunk
            complete = True
        finally:
            if not complete and process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()  # the client went away mid-response
            transport.close()
            code = await _exit_code(process)
            _stderr(process)
            if not done.done():
                done.set_result(code)

    return CgiResponse(status, headers, stream(), done)


async def _exit_code(process: subprocess.Popen[bytes]) -> int:
    """Its exit code: at once when it already exited (the usual case once its output
    ended), else waited for in a worker thread."""
    code = process.poll()
    return code if code is not None else await asyncio.to_thread(process.wait)
