"""What a sandboxed workspace needs to use the platform's Git and package mirror with no
network and no typed credentials (kept apart from ``sandbox`` so that module stays small).

- A loopback forwarder (``datalibrary.sdk.forward``) started beside JupyterLab inside the
  sandbox's own network namespace: ``127.0.0.1:8790`` -> the platform's Unix socket.
- Git: a system-level gitconfig (lowest precedence, so a user's own settings win) with a
  credential helper that answers with the workspace's token from ``$DATALIBRARY_TOKEN``,
  ``datalibrary:`` as a short URL prefix and a default identity.
- pip and uv: the platform's index (``/pypi/simple/``) with the workspace's token, and a
  writable prefix in the persistent home (``~/.local``), since the shared environment is
  read-only; the prefix's site-packages is on ``PYTHONPATH`` so kernels import what was
  installed there.
- R: a site profile (``R_PROFILE``) pointing ``install.packages()`` at the platform's
  CRAN-like repository (``/cran``, with the workspace's token) and a user library in the
  persistent home (``~/R/library``); upstream CRAN is not reachable.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from datalibrary.workspaces.provisioners import WorkspaceSpec

LOCAL_PORT = 8790
LOCAL_URL = f"http://127.0.0.1:{LOCAL_PORT}"
FORWARDER = "datalibrary.sdk.forward"
# The forwarder never holds JupyterLab's proxy secret, and runs nothing of the user's: it starts
# beside the server, as its child, while the server's environment still holds the secret. So
# -I (no PYTHONPATH with ~/.local's site-packages, no user site, not the working directory -
# the home - on sys.path) and the staged SDK ($2) put first on sys.path explicitly.
FORWARDER_CODE = (
    "import runpy, sys; sys.path.insert(0, sys.argv[1]); "
    f"runpy.run_module({FORWARDER!r}, run_name='__main__')"
)
LAUNCH = '(unset DATALIBRARY_PROXY_SECRET; exec "$1" -I -c "$3" "$2") & shift 3; exec "$@"'
CREDENTIAL_HELPER = (
    '!f() { test "$1" = get && echo username=workspace && echo "password=$DATALIBRARY_TOKEN"; }; f'
)


def gitconfig(spec: WorkspaceSpec) -> str:
    helper = CREDENTIAL_HELPER.replace("\\", "\\\\").replace('"', '\\"')
    return (
        "# Written by DataLibrary at each start; your ~/.gitconfig overrides any of it.\n"
        f'[credential "{LOCAL_URL}"]\n\thelper = "{helper}"\n'
        f'[url "{LOCAL_URL}/git/"]\n\tinsteadOf = datalibrary:\n'
        f"[user]\n\tname = workspace {spec.workspace_id}\n"
        f"\temail = jovyan@workspace-{spec.workspace_id}.datalibrary\n"
        "[init]\n\tdefaultBranch = main\n"
    )


RPROFILE = """# Written by DataLibrary at each start; your ~/.Rprofile runs after it.
local({
  repo <- Sys.getenv("DATALIBRARY_CRAN_URL")
  if (nzchar(repo)) options(repos = c(DataLibrary = repo))
  lib <- Sys.getenv("R_LIBS_USER")
  if (nzchar(lib)) {
    dir.create(lib, recursive = TRUE, showWarnings = FALSE)
    .libPaths(c(lib, .libPaths()))
  }
})
"""


def python_site(environment_dir: Path, home: str) -> str | None:
    """``~/.local/lib/pythonX.Y/site-packages`` for the environment's Python version."""
    found = sorted((environment_dir / "venv" / "lib").glob("python3*"))
    return f"{home}/.local/lib/{found[0].name}/site-packages" if found else None


def replace_file(path: Path, text: str) -> None:
    """Write ``path`` in a directory the workspace owns without following anything planted
    there: a fresh file made with O_EXCL under a random name, renamed over whatever ``path``
    is (a symbolic link planted as ``path`` is replaced, its target never written)."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".dl-")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def token_env(token: str | None) -> dict[str, str]:
    """The variables that carry the workspace's token (a warm-pool sandbox gets them only at
    assignment, see ``jupyter.assign``)."""
    base = f"http://workspace:{token}@127.0.0.1:{LOCAL_PORT}" if token else LOCAL_URL
    env = {
        "PIP_INDEX_URL": f"{base}/pypi/simple/",
        "UV_DEFAULT_INDEX": f"{base}/pypi/simple/",
        "DATALIBRARY_CRAN_URL": f"{base}/cran",
    }
    if token:
        env["DATALIBRARY_TOKEN"] = token
    return env


def prepare(spec: WorkspaceSpec, run: str, home: str, env_dir: str) -> dict[str, str]:
    """Write the workspace's gitconfig and uv config into its run directory; the environment
    variables that point git, pip and uv at them."""
    spec.run_dir.mkdir(parents=True, exist_ok=True)
    replace_file(spec.run_dir / "gitconfig", gitconfig(spec))
    replace_file(spec.run_dir / "uv.toml", f'[pip]\nprefix = "{home}/.local"\n')
    replace_file(spec.run_dir / "Rprofile.site", RPROFILE)
    env = {
        "DATALIBRARY_LOCAL_URL": LOCAL_URL,
        "GIT_CONFIG_SYSTEM": f"{run}/gitconfig",
        **token_env(spec.env.get("DATALIBRARY_TOKEN")),
        "PIP_PREFIX": f"{home}/.local",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_DEFAULT_TIMEOUT": "120",  # a first fetch goes to the mirror's upstream
        "PIP_NO_CACHE_DIR": "1",  # every install goes through the mirror, so every install is recorded
        "UV_NO_CACHE": "1",
        "UV_CONFIG_FILE": f"{run}/uv.toml",
        "VIRTUAL_ENV": f"{env_dir}/venv",
        "R_PROFILE": f"{run}/Rprofile.site",
        "R_LIBS_USER": f"{home}/R/library",
    }
    return env


def extend(env: dict[str, str], spec: WorkspaceSpec, *, run: str, home: str, env_dir: str) -> dict[str, str]:
    """``env`` plus the platform services' variables; ``~/.local`` first on PATH and PYTHONPATH."""
    extended = {**env, **prepare(spec, run, home, env_dir)}
    extended["PATH"] = f"{home}/.local/bin:{env.get('PATH', '/usr/bin:/bin')}"
    site = python_site(spec.environment_dir, home)
    if site:
        extended["PYTHONPATH"] = ":".join(p for p in (env.get("PYTHONPATH"), site) if p)
    return extended


def wrap(command: list[str], python: str, sdk_dir: str) -> list[str]:
    """Start the forwarder in the background, then become ``command`` (JupyterLab)."""
    return ["/bin/sh", "-c", LAUNCH, "sh", python, sdk_dir, FORWARDER_CODE, *command]
