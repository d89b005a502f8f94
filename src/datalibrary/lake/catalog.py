"""The Iceberg SQL catalog in the app database and the ``Lake`` handle the services share.

pyiceberg's ``SqlCatalog`` keeps its tables (``iceberg_*``) in the same database as the app
(Alembic ignores them). We hand it our own engine so SQLite gets the same busy timeout and
WAL mode as the rest of the app.
"""

from __future__ import annotations

import threading

from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import NamespaceAlreadyExistsError, NoSuchTableError
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from datalibrary.config import Settings, reveal
from datalibrary.db.engine import make_engine, normalize_url
from datalibrary.errors import NotFound
from datalibrary.lake.names import NAME_RE as NAME_RE
from datalibrary.lake.names import TableName as TableName
from datalibrary.lake.names import check_name as check_name
from datalibrary.lake.names import parse_table_name as parse_table_name
from datalibrary.lake.storage import fileio_properties, open_storage

CATALOG_NAME = "datalibrary"
# Properties every table gets: zstd Parquet, bounded metadata history.
TABLE_PROPERTIES = {
    "write.parquet.compression-codec": "zstd",
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "20",
    "format-version": "2",
    # lake.tables retries itself (reload, re-check the guard, re-apply)
    "commit.retry.num-retries": "0",
}


def _open_catalog(url: str, settings: Settings) -> SqlCatalog:
    """pyiceberg creates its tables on first use by checking, then creating: two processes
    doing it at once (ingestion children, workers) make the loser fail with "already exists"
    (SQLite) or a unique violation (PostgreSQL). The loser opens the catalog again."""

    def open_once() -> SqlCatalog:
        return SqlCatalog(
            CATALOG_NAME, uri=url, warehouse=settings.warehouse, init_catalog_tables="true",
            **fileio_properties(settings),
        )  # fmt: skip

    for _ in range(2):
        try:
            return open_once()
        except (OperationalError, ProgrammingError, IntegrityError) as exc:
            text = str(exc).lower()
            if "already exists" not in text and "duplicate" not in text:
                raise
    return open_once()


class Lake:
    """The catalog, the FileIO and the storage of one installation."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.storage = open_storage(settings)
        url = normalize_url(settings.connect_url())
        self.catalog = _open_catalog(url, settings)
        self.catalog.engine.dispose()
        self.catalog.engine = make_engine(url)

    def ensure_namespace(self, namespace: str) -> None:
        """Create ``namespace`` unless it exists. pyiceberg checks, then inserts: when two
        workers create it at once the loser gets the database's unique violation instead."""
        try:
            self.catalog.create_namespace(namespace)
        except NamespaceAlreadyExistsError:
            return
        except IntegrityError:
            if not self.catalog.namespace_exists(namespace):
                raise

    def namespaces(self) -> list[str]:
        return sorted(".".join(ns) for ns in self.catalog.list_namespaces())

    def tables(self, namespace: str) -> list[TableName]:
        if not self.catalog.namespace_exists(namespace):
            return []
        return [TableName(namespace, ident[-1]) for ident in self.catalog.list_tables(namespace)]

    def load(self, name: TableName) -> Table:
        try:
            return self.catalog.load_table(name.ident)
        except NoSuchTableError as exc:
            raise NotFound(f"no table {name} in the lake") from exc

    def exists(self, name: TableName) -> bool:
        return self.catalog.table_exists(name.ident)

    def create(self, name: TableName, schema: Schema) -> Table:
        """Create the table (idempotent under races: a concurrent creator wins, we load it)."""
        from pyiceberg.exceptions import TableAlreadyExistsError

        self.ensure_namespace(name.namespace)
        properties = {
            **TABLE_PROPERTIES,
            "schema.name-mapping.default": schema.name_mapping.model_dump_json(),
        }
        try:
            return self.catalog.create_table(name.ident, schema=schema, properties=properties)
        except TableAlreadyExistsError:
            return self.load(name)

    def close(self) -> None:
        self.catalog.engine.dispose()


_cache: dict[tuple[str, str, str], Lake] = {}
_cache_lock = threading.Lock()


_inherited: list[Lake] = []


def forget_inherited_lakes() -> None:
    """In a forked child: stop using the parent's cached catalogs, without closing (or letting
    the garbage collector close) their database connections. Closing an inherited SQLite
    connection in the child can checkpoint and delete the parent's WAL under it (the parent
    then reads "file is not a database"); the child opens its own on first use."""
    with _cache_lock:
        _inherited.extend(_cache.values())  # kept alive, never used, gone with the process
        _cache.clear()


def open_lake(settings: Settings) -> Lake:
    """The shared ``Lake`` of these settings (one catalog engine per database and warehouse)."""
    key = (settings.connect_url(), settings.warehouse, reveal(settings.lake.s3_endpoint) or "")
    with _cache_lock:
        lake = _cache.get(key)
        if lake is None:
            lake = _cache[key] = Lake(settings)
        return lake


def forget_lakes() -> None:
    """Dispose cached catalogs (tests and shutdown)."""
    with _cache_lock:
        for lake in _cache.values():
            lake.close()
        _cache.clear()
