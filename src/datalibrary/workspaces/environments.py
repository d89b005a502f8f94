"""Environments: one virtual environment per catalog environment, built once with uv and
shared read-only by every workspace that uses it.

A build goes to a temporary directory and is renamed into place when complete, under a file
lock, so concurrent launches wait for one build instead of racing. The directory name is the
environment's key (a hash of its kernels and packages): changing the package list builds a
new environment and leaves running workspaces on the old one.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from datalibrary.errors import Unavailable
from datalibrary.workspaces.products import Environment

log = logging.getLogger(__name__)
R_KERNEL = {
    "argv": ["R", "--slave", "-e", "IRkernel::main()", "--args", "{connection_file}"],
    "display_name": "R",
    "language": "R",
}


def uv_binary() -> str:
    found = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
    if not Path(found).exists():
        raise Unavailable("uv is not installed; install it (pip install uv) to build workspace environments")
    return found


def r_available() -> bool:
    """Debian's R with IRkernel (apt-get install r-base-core r-cran-irkernel)."""
    return Path("/usr/lib/R/site-library/IRkernel").is_dir() and shutil.which("R") is not None


def environment_path(root: Path, environment: Environment) -> Path:
    return root / environment.key


def is_built(root: Path, environment: Environment) -> bool:
    return (environment_path(root, environment) / ".ready").exists()


def build(root: Path, environment: Environment, *, python: str, index_url: str | None = None) -> Path:
    """The environment's directory, built first if needed (idempotent, safe to race)."""
    target = environment_path(root, environment)
    if (target / ".ready").exists():
        return target
    if "r" in environment.kernels and not r_available():
        raise Unavailable(
            f"environment '{environment.name}' needs R with IRkernel: apt-get install r-base-core r-cran-irkernel"  # noqa: E501
        )
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f".{environment.key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / ".ready").exists():
            return target
        log.info("building workspace environment %s", environment.key)
        scratch = Path(tempfile.mkdtemp(prefix=f".{environment.key}-", dir=root))
        try:
            _build_into(scratch, environment, python=python, index_url=index_url)
            if target.exists():
                shutil.rmtree(target)
            scratch.rename(target)
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        (target / ".ready").write_text(json.dumps(environment.model_dump()))
        target.chmod(0o755)
    return target


def _build_into(directory: Path, environment: Environment, *, python: str, index_url: str | None) -> None:
    uv = uv_binary()
    venv = directory / "venv"
    run = [uv, "venv", "--quiet", "--relocatable", "--python", python, str(venv)]
    _run(run, environment)
    # Bytecode is compiled now: inside the sandbox the environment is read-only, so Python
    # would otherwise compile every module it imports at every start (seconds of JupyterLab's).
    install = [
        uv,
        "pip",
        "install",
        "--quiet",
        "--compile-bytecode",
        "--python",
        str(venv / "bin" / "python"),
    ]
    # the index's address may hold credentials: in uv's environment, never on its command
    # line (which every user of the host can read in /proc), and masked in any error shown
    secret_env = {"UV_INDEX_URL": index_url} if index_url else {}
    _run([*install, *environment.install], environment, secret_env)
    _leave_out_slow_optional_modules(venv, environment)
    if "r" in environment.kernels:
        kernel_dir = venv / "share" / "jupyter" / "kernels" / "ir"
        kernel_dir.mkdir(parents=True, exist_ok=True)
        (kernel_dir / "kernel.json").write_text(json.dumps(R_KERNEL))
    if "python" not in environment.kernels:
        shutil.rmtree(venv / "share" / "jupyter" / "kernels" / "python3", ignore_errors=True)


# Optional modules whose import costs seconds at every JupyterLab start and that nothing
# needs: rfc3987-syntax builds a full RFC 3987 parser when imported (4.5 s measured here), and
# jsonschema (through jupyter_events) imports it only if present, to check the rarely used
# "iri" format; without it that format goes unchecked, as jsonschema documents.
SLOW_OPTIONAL = ("rfc3987-syntax",)


def _leave_out_slow_optional_modules(venv: Path, environment: Environment) -> None:
    unwanted = [name for name in SLOW_OPTIONAL if name not in environment.package_names]
    if unwanted:
        uninstall = [uv_binary(), "pip", "uninstall", "--quiet", "--python", str(venv / "bin" / "python")]
        _run([*uninstall, *unwanted], environment)


def _run(command: list[str], environment: Environment, secret_env: dict[str, str] | None = None) -> None:
    secret_env = secret_env or {}
    result = subprocess.run(  # noqa: S603
        command, capture_output=True, text=True, timeout=1800, check=False, env={**os.environ, **secret_env}
    )
    if result.returncode != 0:
        error = result.stderr.strip()
        for value in secret_env.values():
            error = error.replace(value, _masked(value))
        raise Unavailable(f"building environment '{environment.name}' failed: {error[-800:]}")


def _masked(url: str) -> str:
    """``url`` with its password (and any token in the user part) replaced by ``****``."""
    parts = urlsplit(url)
    if not parts.username and not parts.password:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"****@{host}"))
