"""Where a workspace's files live on the platform's side (all inside the state directory)."""

from __future__ import annotations

import hashlib
import hmac
import os
import shutil
from pathlib import Path

from datalibrary.config import Settings
from datalibrary.errors import Unavailable
from datalibrary.workspaces.models import Workspace

SDK_SOURCE = Path(__file__).resolve().parent.parent / "sdk"
INSIDE_SOURCE = Path(__file__).resolve().parent / "inside"  # JupyterLab's identity provider
R_CLIENT_SOURCE = INSIDE_SOURCE / "r" / "datalibrary"  # the R client package
LABEXTENSIONS = "labextensions"  # the platform's JupyterLab plugins, in JupyterLab's layout
LABEXTENSIONS_SOURCE = INSIDE_SOURCE / LABEXTENSIONS  # (copied into the staged SDK)
JUPYTER_CONFIG_SOURCE = INSIDE_SOURCE / "jupyter-config"  # the server's while it starts
API_SOCKET_NAME = "api.sock"


def root(settings: Settings) -> Path:
    return settings.home / "workspaces"


def home_dir(settings: Settings, workspace_id: int) -> Path:
    return root(settings) / "homes" / str(workspace_id)


def run_dir(settings: Settings, workspace_id: int) -> Path:
    return root(settings) / "run" / str(workspace_id)


def socket_path(settings: Settings, workspace_id: int) -> Path:
    return run_dir(settings, workspace_id) / "jupyter.sock"


def archive_path(settings: Settings, workspace_id: int) -> Path:
    return root(settings) / "archives" / f"workspace-{workspace_id}.tar.gz"


def api_socket_dir(settings: Settings) -> Path:
    """The directory of the platform's API socket, mounted into every sandbox."""
    return settings.home / "run" / "api"


def api_socket(settings: Settings) -> Path:
    return api_socket_dir(settings) / API_SOCKET_NAME


def environments_dir(settings: Settings) -> Path:
    return Path(settings.workspaces.environments_dir or settings.home / "environments")


def installation_id(settings: Settings) -> str:
    """Short and stable per state directory, so two installations on one host never collide."""
    return "dl" + hashlib.sha256(str(settings.home).encode()).hexdigest()[:8]


def base_url(workspace_id: int) -> str:
    return f"/workspaces/{workspace_id}/"


def jupyter_token(settings: Settings, workspace: Workspace) -> str:
    """Derived, never stored: only the platform (holding the secret key) can compute it."""
    if settings.secret_key is None:
        raise Unavailable("the platform has no secret key; run 'datalibrary init'")
    message = f"workspace-jupyter:{workspace.id}:{workspace.created_at.isoformat()}".encode()
    return hmac.new(settings.secret_key.get_secret_value().encode(), message, hashlib.sha256).hexdigest()


def staged_sdk(settings: Settings) -> Path:
    """A copy of the SDK (stdlib only) to put on workspaces' PYTHONPATH as ``datalibrary.sdk``,
    with the platform's JupyterLab plugins (``labextensions/``) and the R client's source."""
    digest = hashlib.sha256()
    files = sorted(SDK_SOURCE.glob("*.py"))
    inside = sorted(p for p in INSIDE_SOURCE.glob("*.py") if p.name != "__init__.py")
    r_files = sorted(p for p in R_CLIENT_SOURCE.rglob("*") if p.is_file())
    lab_files = sorted(p for p in LABEXTENSIONS_SOURCE.rglob("*") if p.is_file())
    lab_files += sorted(p for p in JUPYTER_CONFIG_SOURCE.rglob("*") if p.is_file())
    for file in files + inside + r_files + lab_files:
        digest.update(file.name.encode() + file.read_bytes())
    target = root(settings) / "sdk" / digest.hexdigest()[:12]
    if not (target / "datalibrary" / "sdk" / "__init__.py").exists():
        package = target / "datalibrary"
        (package / "sdk").mkdir(parents=True, exist_ok=True)
        (package / "__init__.py").write_text(
            '"""DataLibrary SDK as installed in workspaces."""\n\nfrom datalibrary.sdk import connect\n'
        )
        for file in files:
            shutil.copy(file, package / "sdk" / file.name)
        for file in inside:
            shutil.copy(file, target / file.name)
        shutil.copytree(LABEXTENSIONS_SOURCE, target / LABEXTENSIONS, dirs_exist_ok=True)
        shutil.copytree(JUPYTER_CONFIG_SOURCE, target / JUPYTER_CONFIG_SOURCE.name, dirs_exist_ok=True)
    _install_r_client(target / "rlib")
    return target


def _install_r_client(library: Path) -> None:
    """``library(datalibrary)`` for R kernels (R_LIBS points here); skipped without R."""
    import subprocess

    if (library / "datalibrary" / "DESCRIPTION").exists() or not shutil.which("R"):
        return
    library.mkdir(parents=True, exist_ok=True)
    subprocess.run(  # noqa: S603
        ["R", "CMD", "INSTALL", "--no-test-load", "-l", str(library), str(R_CLIENT_SOURCE)],  # noqa: S607
        capture_output=True, check=False, timeout=300,
    )  # fmt: skip


class PinnedSocket:
    """A workspace's JupyterLab socket, opened without following links and pinned by inode.

    The sandbox can write to the directory the socket lives in, so checking the path and then
    connecting to it could be raced (swap in a symlink to another socket of the host between the
    two). Instead the socket file itself is opened with ``O_PATH | O_NOFOLLOW``, checked with
    ``fstat`` on that handle, and connections go to ``/proc/self/fd/N``, which is that inode and
    nothing else, whatever happens to the path afterwards. The proxy and the idle checker both
    connect this way."""

    def __init__(self, path: Path) -> None:
        import stat

        self.fd: int | None = None
        try:
            fd = os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError as exc:
            raise Unavailable("the workspace is not listening (yet)") from exc
        except OSError as exc:  # ELOOP: a symlink was planted there
            raise Unavailable(
                "the workspace's socket was replaced by something else; stop and start it"
            ) from exc
        info = os.fstat(fd)
        if not stat.S_ISSOCK(info.st_mode):
            os.close(fd)
            raise Unavailable("the workspace's socket was replaced by something else; stop and start it")
        self.fd = fd
        self.identity = (info.st_dev, info.st_ino)

    @property
    def address(self) -> str:
        return f"/proc/self/fd/{self.fd}"

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __del__(self) -> None:
        self.close()


def checked_socket(path: Path) -> Path:
    """``path`` if it is a real socket. The sandbox can write to the directory it lives in, so a
    symlink planted there must never make the platform connect to another socket of the host."""
    import stat

    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError as exc:
        raise Unavailable("the workspace is not listening (yet)") from exc
    if not stat.S_ISSOCK(mode):
        raise Unavailable("the workspace's socket was replaced by something else; stop and start it")
    return path
