"""How DataLibrary names what its OpenLineage events touch (the OpenLineage naming spec).

- Catalog tables: namespace = this installation (``lineage.namespace``, by default
  ``datalibrary://<database host>[:port]/<database>``, or ``datalibrary://<host><home>`` for a
  SQLite installation, so every replica of one installation agrees and two installations
  never collide), name = ``NS.TABLE``. A ``symlinks`` facet gives the storage location the
  way Spark and Trino name the same Iceberg table (``file`` + path, or ``s3://bucket`` +
  key prefix), so their lineage joins ours.
- Source files: ``file`` + absolute path (the content hash travels in a facet).
- What leaves over HTTP (downloads, exports): the installation's public URL + the API path
  that handed it out; a workspace file: ``file`` + its path under the workspace homes.

Events are built deep inside the services, which get a session but not the settings, so
the settings register themselves per database (``config.installation_for``, as the audit
keyring does) and ``emit`` derives the naming from the session's bind.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from datalibrary.config import Settings, installation_for

FILE_NAMESPACE = "file"
LOCAL_HOSTS = {"", "localhost", "127.0.0.1", "::1"}
_naming: dict[int, tuple[Settings, Naming]] = {}  # per registered settings object
_lock = threading.Lock()


@dataclass(frozen=True)
class Naming:
    """The names of one installation."""

    namespace: str  # of the catalog tables
    warehouse: str | None  # lake root URI, for the storage symlink
    base_url: str  # where clients reach this installation (facet schemas, downloads)
    workspace_homes: str = "workspaces/homes"  # absolute in a registered installation

    def storage(self, table: str) -> tuple[str, str] | None:
        """(namespace, name) of a table's directory in the lake, as engines reading the
        Iceberg table by location name it; pyiceberg's SQL catalog puts ``NS.TABLE`` at
        ``<warehouse>/<NS>/<TABLE>`` (a test compares with the table's own location)."""
        if not self.warehouse:
            return None
        namespace, _, name = table.partition(".")
        return location(f"{self.warehouse.rstrip('/')}/{namespace}/{name}")

    def schema_url(self, facet: str) -> str:
        return f"{self.base_url.rstrip('/')}/api/v1/lineage/facets/{facet}.json"

    def api(self, path: str) -> tuple[str, str]:
        """(namespace, name) of something this installation serves at ``path``."""
        return self.base_url.rstrip("/"), path


def location(uri: str) -> tuple[str, str]:
    """``file:///a/b`` -> (``file``, ``/a/b``); ``s3://bucket/k`` -> (``s3://bucket``, ``k``)."""
    parts = urlsplit(uri)
    if parts.scheme in ("", "file"):
        path = parts.path if parts.scheme else uri
        return FILE_NAMESPACE, str(Path(path))
    return f"{parts.scheme}://{parts.netloc}", parts.path.lstrip("/")


def default_namespace(database_url: str, home: Path) -> str:
    """The installation's identity: its database (shared by all replicas)."""
    if urlsplit(database_url).scheme.split("+")[0] == "sqlite":  # no SQLAlchemy for this (CLI start-up)
        return f"datalibrary://{socket.gethostname()}{Path(home).absolute().as_posix()}"
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    host = url.host or ""
    host = socket.gethostname() if host in LOCAL_HOSTS else host
    port = f":{url.port}" if url.port else ""
    return f"datalibrary://{host}{port}/{url.database or ''}"


def from_settings(settings: Settings) -> Naming:
    """The names of the installation these settings describe."""
    database_url = settings.connect_url()
    scheme = "https" if settings.server.https else "http"
    return Naming(
        namespace=settings.lineage.namespace or default_namespace(database_url, settings.home),
        warehouse=settings.warehouse,
        base_url=settings.lineage.public_url or f"{scheme}://{settings.server.host}:{settings.server.port}",
        workspace_homes=str(settings.home / "workspaces" / "homes"),
    )


def naming_for_url(database_url: str) -> Naming:
    settings = installation_for(database_url)
    if settings is None:
        return Naming(
            namespace=default_namespace(database_url, Path.cwd()), warehouse=None, base_url="http://localhost"
        )
    with _lock:
        cached = _naming.get(id(settings))
        if cached is None or cached[0] is not settings:
            cached = (settings, from_settings(settings))
            _naming[id(settings)] = cached
        return cached[1]


def naming_for(bind: Any) -> Naming:
    """The naming registered for the database behind a session's bind (a fallback derived
    from the database alone when no settings were loaded for it, e.g. a bare script)."""
    engine = getattr(bind, "engine", bind)
    url = getattr(engine, "url", None)
    return naming_for_url(url.render_as_string(hide_password=False) if url is not None else "sqlite://")
