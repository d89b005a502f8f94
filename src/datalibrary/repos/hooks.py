"""What the platform hands ``git http-backend`` so every push passes the guard: the hooks
directory (outside every repository, written by the platform) and the guard's settings."""

from __future__ import annotations

import hashlib
import hmac
import os
import sys
from pathlib import Path

from datalibrary.config import Settings
from datalibrary.repos.guard import GuardConfig

PRE_RECEIVE = """#!/bin/sh
# Written by DataLibrary: the data-leak guard of every project repository.
exec "$DL_PYTHON" -S -c 'import sys; from datalibrary.repos.guard import main; sys.exit(main())'
"""


def hooks_dir(settings: Settings) -> Path:
    """Written on use, so a new release's hook replaces the old one."""
    directory = settings.home / "run" / "git-hooks"
    hook = directory / "pre-receive"
    if not hook.exists() or hook.read_text() != PRE_RECEIVE:
        directory.mkdir(parents=True, exist_ok=True)
        temporary = hook.with_suffix(".tmp")
        temporary.write_text(PRE_RECEIVE)
        temporary.chmod(0o755)
        os.replace(temporary, hook)
    return directory


def fingerprint_key(settings: Settings) -> str:
    """Keyed, so the fingerprint file never lets anyone test guesses of identifiers."""
    secret = settings.secret_key.get_secret_value() if settings.secret_key else "datalibrary"
    return hmac.new(secret.encode(), b"repo-guard-fingerprints", hashlib.sha256).hexdigest()


def fingerprints_path(settings: Settings) -> Path:
    return settings.home / "run" / "git-guard" / "fingerprints.bin"


def guard_environment(settings: Settings, report: Path) -> dict[str, str]:
    config = settings.repos
    fingerprints = fingerprints_path(settings)
    guard_config = GuardConfig(
        max_data_file_bytes=config.max_data_file_bytes,
        max_file_bytes=config.max_file_bytes,
        notebook_max_rows=config.notebook_max_rows,
        identifying_min_values=config.identifying_min_values,
        fingerprints=str(fingerprints) if fingerprints.exists() else None,
        fingerprint_key=fingerprint_key(settings),
    )
    package_root = str(Path(__file__).resolve().parents[2])
    return {
        "DL_PYTHON": sys.executable,
        **guard_config.environment(),
        "DL_GUARD_REPORT": str(report),
        "PYTHONPATH": package_root,
    }
