"""What the platform hands ``git http-backend`` so every push passes the guard: the hooks
directory (outside every repository, written by the platform), where each push's guard
listens, and the guard's settings."""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

from datalibrary.config import Settings
from datalibrary.repos.guard import GuardConfig

PRE_RECEIVE = r"""#!/bin/sh
# Written by DataLibrary: the data-leak guard of every project repository. Hands the push
# (its quarantine and ref updates) to the platform process serving it, which scans it
# (datalibrary.repos.push_guard), and relays the verdict. No verdict, no push.
dir=${DL_GUARD_DIR:?the DataLibrary push guard is not configured: push refused}
if [ ! -p "$dir/request" ]; then
  echo "DataLibrary: the push guard is not running: push refused" >&2
  exit 1
fi
{ printf '%s\n' "${GIT_QUARANTINE_PATH:-}"; cat; } >"$dir/request" || exit 1
verdict=$(timeout 600 cat "$dir/reply")
code=${verdict%%[!0-9]*}
[ "$code" = 0 ] && exit 0
message=${verdict#"$code"}
printf '%s\n' "${message:-DataLibrary could not check this push (the guard did not answer); try again.}" >&2
exit 1
"""


_checked: set[Path] = set()  # hooks directories this process wrote or found current


def hooks_dir(settings: Settings) -> Path:
    """Written on first use by a process, so a new release's hook replaces the old one."""
    directory = settings.home / "run" / "git-hooks"
    hook = directory / "pre-receive"
    if directory in _checked and hook.is_file():  # a missing hook would let pushes pass unchecked
        return directory
    if not hook.exists() or hook.read_text() != PRE_RECEIVE:
        directory.mkdir(parents=True, exist_ok=True)
        temporary = hook.with_suffix(".tmp")
        temporary.write_text(PRE_RECEIVE)
        temporary.chmod(0o755)
        os.replace(temporary, hook)
    _checked.add(directory)
    return directory


def fingerprint_key(settings: Settings) -> str:
    """Keyed, so the fingerprint file never lets anyone test guesses of identifiers."""
    secret = settings.secret_key.get_secret_value() if settings.secret_key else "datalibrary"
    return hmac.new(secret.encode(), b"repo-guard-fingerprints", hashlib.sha256).hexdigest()


def fingerprints_path(settings: Settings) -> Path:
    return settings.home / "run" / "git-guard" / "fingerprints.bin"


def push_dir(settings: Settings) -> Path:
    """Where each push's pipes to its guard live (one private directory per push)."""
    return settings.home / "run" / "git-push"


def guard_config(settings: Settings) -> GuardConfig:
    config = settings.repos
    fingerprints = fingerprints_path(settings)
    return GuardConfig(
        max_data_file_bytes=config.max_data_file_bytes,
        max_file_bytes=config.max_file_bytes,
        notebook_max_rows=config.notebook_max_rows,
        identifying_min_values=config.identifying_min_values,
        fingerprints=str(fingerprints) if fingerprints.exists() else None,
        fingerprint_key=fingerprint_key(settings),
    )
