"""Object storage of the lake: a local directory or an S3-compatible store, one interface.

pyiceberg reads and writes through its FileIO; listing and deleting (which FileIO cannot
list) go through the matching ``pyarrow.fs`` filesystem built from the same settings.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import unquote, urlparse

from pyarrow import fs as pafs

from datalibrary import plugins
from datalibrary.config import Settings


def fileio_properties(settings: Settings) -> dict[str, str]:
    """pyiceberg FileIO properties for the configured store (no secrets logged)."""
    props: dict[str, str] = {"py-io-impl": "pyiceberg.io.pyarrow.PyArrowFileIO"}
    lake = settings.lake
    if settings.warehouse.startswith("s3://"):
        props["s3.region"] = lake.s3_region
        if lake.s3_endpoint:
            props["s3.endpoint"] = lake.s3_endpoint.get_secret_value()
        if lake.s3_access_key_id:
            props["s3.access-key-id"] = lake.s3_access_key_id
        if lake.s3_secret_access_key:
            props["s3.secret-access-key"] = lake.s3_secret_access_key.get_secret_value()
        props["s3.force-virtual-addressing"] = "false"
    return props


@dataclass(frozen=True)
class StoredFile:
    uri: str
    size: int
    modified: datetime | None


class Storage:
    """List, read and delete files of the warehouse by URI; one subclass per kind of store,
    chosen by the warehouse's scheme (entry points ``datalibrary.storage``: see :func:`open_storage`)."""

    is_s3 = False  # planners hand remote files to DuckDB differently

    def __init__(self, settings: Settings, fs: pafs.FileSystem) -> None:
        self.root = settings.warehouse
        self.fs = fs

    def path(self, uri: str) -> str:
        """The filesystem path of a URI (bucket/key for S3, absolute path locally)."""
        parsed = urlparse(uri)
        if parsed.scheme == "s3":
            return f"{parsed.netloc}{parsed.path}"
        if parsed.scheme in ("file", ""):
            return unquote(parsed.path)
        raise ValueError(f"unsupported storage URI scheme in {uri!r}")

    def uri(self, path: str) -> str:
        raise NotImplementedError

    def _make_parent(self, path: str) -> None:
        """Object stores have no directories; a file system needs the parent first."""

    def _remove_empty_dir(self, path: str) -> None:
        """What a file system keeps after its files are deleted (nothing in an object store)."""

    def list(self, prefix_uri: str) -> list[StoredFile]:
        selector = pafs.FileSelector(self.path(prefix_uri).rstrip("/"), recursive=True, allow_not_found=True)
        return [
            StoredFile(self.uri(info.path), info.size or 0, info.mtime)
            for info in self.fs.get_file_info(selector)
            if info.type == pafs.FileType.File
        ]

    def read_bytes(self, uri: str) -> bytes:
        with self.fs.open_input_stream(self.path(uri)) as stream:
            return stream.read()

    def open_output(self, uri: str):  # type: ignore[no-untyped-def]
        path = self.path(uri)
        self._make_parent(path)
        return self.fs.open_output_stream(path)

    def delete(self, uri: str) -> bool:
        try:
            self.fs.delete_file(self.path(uri))
        except FileNotFoundError:
            return False
        return True

    def delete_dir(self, prefix_uri: str) -> int:
        files = self.list(prefix_uri)
        for item in files:
            self.delete(item.uri)
        self._remove_empty_dir(self.path(prefix_uri))
        return len(files)

    def copy(self, source_uri: str, target_uri: str) -> None:
        target = self.path(target_uri)
        self._make_parent(target)
        self.fs.copy_file(self.path(source_uri), target)

    def size(self, uri: str) -> int:
        return self.fs.get_file_info(self.path(uri)).size or 0


class LocalStorage(Storage):
    """A warehouse in a local (or mounted) directory: ``file://`` URIs."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, pafs.LocalFileSystem())

    def uri(self, path: str) -> str:
        return f"file://{path}"

    def _make_parent(self, path: str) -> None:
        self.fs.create_dir(path.rsplit("/", 1)[0], recursive=True)

    def _remove_empty_dir(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError, OSError):
            self.fs.delete_dir(path)


class S3Storage(Storage):
    """A warehouse in an S3-compatible store: ``s3://bucket/key`` URIs."""

    is_s3 = True

    def __init__(self, settings: Settings) -> None:
        lake = settings.lake
        endpoint = urlparse(lake.s3_endpoint.get_secret_value()) if lake.s3_endpoint else None
        secret = lake.s3_secret_access_key.get_secret_value() if lake.s3_secret_access_key else None
        super().__init__(
            settings,
            pafs.S3FileSystem(
                access_key=lake.s3_access_key_id,
                secret_key=secret,
                region=lake.s3_region,
                endpoint_override=endpoint.netloc if endpoint else None,
                scheme=endpoint.scheme if endpoint else "https",
                force_virtual_addressing=False,
            ),
        )

    def uri(self, path: str) -> str:
        return f"s3://{path}"


ENTRY_POINTS = "datalibrary.storage"  # by URI scheme; pyproject.toml lists file and s3


def open_storage(settings: Settings) -> Storage:
    """The store the warehouse's scheme names (``file`` when it has none), refused if no
    installed backend handles that scheme."""
    scheme = urlparse(settings.warehouse).scheme or "file"
    try:
        backend = plugins.load(ENTRY_POINTS, scheme, Storage)
    except LookupError as exc:
        raise ValueError(f"no storage backend for '{scheme}://' warehouses; {exc}") from exc
    except TypeError as exc:
        raise ValueError(f"storage backend {exc}") from exc
    return backend(settings)
