"""The data-leak guard of one push, run inside the platform process that serves it.

Git runs the platform's pre-receive hook (``hooks.PRE_RECEIVE``, a few lines of ``sh``)
after the pushed objects arrived in quarantine and before any ref moves. The hook hands
the push (its quarantine directory and the ref updates) to this process through a named
pipe in a private directory made for this one push, and relays the verdict it reads back
from a second pipe: exit 0 lets the push in, anything else refuses it with our message.

Why not a Python hook: a fresh interpreter on every push cost more than the scan itself
(start-up, imports, loading the lake's fingerprints again); here the process is warm and
the fingerprints stay loaded until their file changes (``benchmarks/git_repos.py``,
docs/performance.md). No verdict (this process gone, a timeout) refuses the push.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import shutil
import tempfile
import threading
import time
from pathlib import Path

from datalibrary.repos import guard
from datalibrary.repos.guard import GuardConfig

log = logging.getLogger(__name__)
REPLY_WAIT_SECONDS = 10.0  # for the hook to open the reply pipe once the scan is done
_fingerprints: dict[str, tuple[tuple[int, int], set[bytes]]] = {}
_fingerprints_lock = threading.Lock()


def known_fingerprints(path: str | None) -> set[bytes]:
    """The fingerprint file's digests, loaded again only when the file changed."""
    if not path:
        return set()
    try:
        stat = os.stat(path)
    except OSError:
        return set()
    stamp = (stat.st_mtime_ns, stat.st_size)
    with _fingerprints_lock:
        cached = _fingerprints.get(path)
        if cached is None or cached[0] != stamp:
            cached = (stamp, guard.load_fingerprints(path))
            _fingerprints[path] = cached
        return cached[1]


def git_environment(repo: Path, quarantine: str) -> dict[str, str]:
    """Git's variables to read the push: the repository with its quarantine in front. The
    quarantine must be one of the repository's own directories (it comes through a pipe)."""
    env = {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "HOME": str(repo),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_DIR": str(repo),
    }
    objects = (repo / "objects").resolve()
    if quarantine:
        where = Path(quarantine).resolve()
        if where.parent != objects or not where.is_dir():
            raise ValueError("the push's quarantine is not inside its repository")
        env |= {
            "GIT_QUARANTINE_PATH": str(where),
            "GIT_OBJECT_DIRECTORY": str(where),
            "GIT_ALTERNATE_OBJECT_DIRECTORIES": str(objects),
        }
    return env


class PushGuard:
    """Serves the pre-receive hook of one push: ``environment()`` goes to the backend,
    ``start()`` before it runs, ``close()`` once it exited; ``findings`` is what the guard
    refused (None when no hook ran: nothing to update, or the push failed before)."""

    def __init__(self, run_dir: Path, repo: Path, config: GuardConfig) -> None:
        run_dir.mkdir(parents=True, exist_ok=True)
        self.directory = Path(tempfile.mkdtemp(prefix="push-", dir=run_dir))  # 0700
        self.request = self.directory / "request"
        self.reply = self.directory / "reply"
        os.mkfifo(self.request, 0o600)
        os.mkfifo(self.reply, 0o600)
        self.repo = repo
        self.config = config
        self.findings: list[dict[str, str]] | None = None
        self._cancel_read, self._cancel_write = os.pipe()
        self._closing = False
        self._thread = threading.Thread(target=self._serve, name="push-guard", daemon=True)

    def environment(self) -> dict[str, str]:
        return {"DL_GUARD_DIR": str(self.directory)}

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        """Stop waiting for a hook that will not come, then remove the pipes."""
        self._closing = True
        with contextlib.suppress(OSError):
            os.write(self._cancel_write, b"x")
        self._thread.join(timeout=REPLY_WAIT_SECONDS + 5)
        for descriptor in (self._cancel_read, self._cancel_write):
            with contextlib.suppress(OSError):
                os.close(descriptor)
        shutil.rmtree(self.directory, ignore_errors=True)

    def _serve(self) -> None:
        try:
            received = self._receive()
            if received is None:
                return
            code, message = self._verdict(received)
            self._answer(code, message)
        except Exception:  # a thread's exception would vanish: log it; the hook then refuses
            log.exception("the push guard failed")

    def _receive(self) -> bytes | None:
        """The hook's whole request, or None if cancelled first. The pipe is opened without
        blocking (so ``close`` can stop the wait) and read once the hook writes."""
        chunks: list[bytes] = []
        descriptor = os.open(self.request, os.O_RDONLY | os.O_NONBLOCK)
        try:
            poller = select.poll()
            poller.register(descriptor, select.POLLIN)
            poller.register(self._cancel_read, select.POLLIN)
            while True:
                ready = dict(poller.poll())
                if descriptor not in ready:
                    return None  # cancelled: the backend exited without running the hook
                try:
                    chunk = os.read(descriptor, 1 << 16)
                except BlockingIOError:
                    continue
                if not chunk:
                    return b"".join(chunks)
                chunks.append(chunk)
        finally:
            os.close(descriptor)

    def _verdict(self, received: bytes) -> tuple[int, str]:
        quarantine, _, updates = received.decode(errors="replace").partition("\n")
        try:
            env = git_environment(self.repo, quarantine.strip())
            known = known_fingerprints(self.config.fingerprints)
            findings = guard.scan(guard.parse_updates(updates), self.config, env=env, known=known)
        except Exception:
            log.exception("the push guard could not scan a push to %s", self.repo.name)
            self.findings = [{"path": "-", "blob": "", "reason": "the guard could not scan this push"}]
            return 1, "DataLibrary could not check this push for lake extracts; try again later.\n"
        self.findings = findings
        return (1, guard.refusal(findings)) if findings else (0, "")

    def _answer(self, code: int, message: str) -> None:
        """Write the verdict once the hook listens (it opens the reply pipe right after its
        request; a hook gone meanwhile gets no answer and its push fails)."""
        deadline = time.monotonic() + REPLY_WAIT_SECONDS
        while True:
            try:
                descriptor = os.open(self.reply, os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError as error:
                if error.errno != errno.ENXIO or self._closing or time.monotonic() > deadline:
                    return
                time.sleep(0.002)
        try:
            os.set_blocking(descriptor, True)
            payload = memoryview(f"{code}\n{message}".encode())
            while payload:
                payload = payload[os.write(descriptor, payload) :]
        except BrokenPipeError:
            pass
        finally:
            os.close(descriptor)
