"""JupyterLab's own front end (``static/lab/``: about 300 content-hashed scripts, styles and
fonts), served by the platform from the read-only environment instead of through the
workspace.

Why: opening JupyterLab fetches about 50 of these files. Through the proxy each one waits for
the workspace's single-threaded server, inside a CPU quota as small as the instance type
(a "tiny" workspace has one vCPU), after a database check of the caller. These bytes are the
same for every workspace of an environment, were built by the platform (never by the user:
the environment is mounted read-only), and are the public JupyterLab release; so they are
read once into memory and answered from there. Names are flat, content-hashed file names;
anything else, and any file the environment does not have (a lab the user rebuilt in their
home), goes through the proxy as before.

Where: a browser keeps files per *site* (Chromium partitions its cache by the top-level
site), and the same URL is needed for a cache hit. So the JupyterLab page a workspace serves
is pointed at one shared origin, ``static.<app_domain>``, with the environment in the path
(``/lab/<environment key>/<file>``): every workspace under ``app_domain`` is one site, and a
browser fetches JupyterLab's files once for all of them instead of once per workspace. The
static origin serves these public files only, to anyone, with no cookie.
"""

from __future__ import annotations

import mimetypes
import re
import threading
from pathlib import Path

from datalibrary.config import Settings
from datalibrary.workspaces import paths
from datalibrary.workspaces.models import Workspace
from datalibrary.workspaces.products import load_catalog

PREFIX = "static/lab/"
NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,200}$")
CACHE_BYTES = 96 * 1024**2  # a lab's front end is ~17 MB per environment
IMMUTABLE = "public, max-age=31536000, immutable"
_files: dict[Path, bytes] = {}
_size = 0
_lock = threading.Lock()


KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,100}$")
STATIC_PATH = re.compile(r"^/lab/(?P<key>[^/]+)/(?P<name>[^/]+)$")
MAIN_SCRIPT = re.compile(rb'<script[^>]* src="[^"]*/static/lab/(main\.[0-9a-f]+\.js)\?')


def location(settings: Settings, workspace: Workspace) -> tuple[str, Path]:
    """The workspace's environment key and where it keeps JupyterLab's built front end."""
    environment = load_catalog(settings.workspaces.catalog).environment(workspace.environment)
    return environment.key, _static_of(paths.environments_dir(settings) / environment.key)


def static_dir(settings: Settings, workspace: Workspace) -> Path:
    return location(settings, workspace)[1]


def directory_of(settings: Settings, key: str) -> Path | None:
    """The static folder of the *built* environment ``key``; None for anything else."""
    root = paths.environments_dir(settings)
    if not KEY.match(key) or not (root / key / ".ready").is_file():
        return None
    return _static_of(root / key)


def _static_of(environment_dir: Path) -> Path:
    return environment_dir / "venv" / "share" / "jupyter" / "lab" / "static"


def point_page_at(page: bytes, base_url: str, shared: str, directory: Path) -> bytes:
    """JupyterLab's page with its front end loaded from ``shared`` (the static origin's URL
    of this environment) instead of ``<base_url>static/lab``: the page's config
    (``fullStaticUrl``, from which every later file is fetched) and its first script. The page
    is left as it is when its main script is not the environment's (a lab the user rebuilt)."""
    own = f"{base_url}static/lab".encode()
    main = MAIN_SCRIPT.search(page)
    if main is None or read(directory, main.group(1).decode()) is None:
        return page
    config, script = b'"fullStaticUrl": "' + own + b'"', b'src="' + own + b"/"
    if page.count(config) != 1 or page.count(script) != 1:
        return page
    page = page.replace(config, b'"fullStaticUrl": "' + shared.encode() + b'"')
    return page.replace(script, b'src="' + shared.encode() + b"/")


def asset_name(path: str) -> str | None:
    """The file name when ``path`` (relative to the workspace's base URL) is a lab asset."""
    if not path.startswith(PREFIX):
        return None
    name = path[len(PREFIX) :]
    return name if NAME.match(name) and ".." not in name else None


def read(directory: Path, name: str) -> tuple[bytes, str] | None:
    """The file's bytes and media type, from memory after the first read; None when the
    environment has no such regular file (symbolic links are not followed)."""
    path = directory / name
    with _lock:
        data = _files.get(path)
    if data is None:
        if path.is_symlink() or not path.is_file():
            return None
        data = path.read_bytes()
        _remember(path, data)
    media = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if media.startswith("text/") or media in ("application/javascript", "application/json"):
        media += "; charset=utf-8"
    return data, media


def _remember(path: Path, data: bytes) -> None:
    global _size
    with _lock:
        if path in _files or _size + len(data) > CACHE_BYTES:
            return
        _files[path] = data
        _size += len(data)
