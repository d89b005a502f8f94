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
    """List, read and delete files of the warehouse by URI (``file://`` or ``s3://``)."""

    def __init__(self, settings: Settings) -> None:
        self.root = settings.warehouse
        self.is_s3 = self.root.startswith("s3://")
        if self.is_s3:
            lake = settings.lake
            endpoint = urlparse(lake.s3_endpoint.get_secret_value()) if lake.s3_endpoint else None
            self.fs: pafs.FileSystem = pafs.S3FileSystem(
                access_key=lake.s3_access_key_id,
                secret_key=lake.s3_secret_access_key.get_secret_value()
                if lake.s3_secret_access_key
                else None,
                region=lake.s3_region,
                endpoint_override=endpoint.netloc if endpoint else None,
                scheme=endpoint.scheme if endpoint else "https",
                force_virtual_addressing=False,
            )
        else:
            self.fs = pafs.LocalFileSystem()

    def path(self, uri: str) -> str:
        """The filesystem path of a URI (bucket/key for S3, absolute path locally)."""
        parsed = urlparse(uri)
        if parsed.scheme == "s3":
            return f"{parsed.netloc}{parsed.path}"
        if parsed.scheme in ("file", ""):
            return unquote(parsed.path)
        raise ValueError(f"unsupported storage URI scheme in {uri!r}")

    def uri(self, path: str) -> str:
        return f"s3://{path}" if self.is_s3 else f"file://{path}"

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
        if not self.is_s3:
            self.fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
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
        if not self.is_s3:
            with contextlib.suppress(FileNotFoundError, OSError):
                self.fs.delete_dir(self.path(prefix_uri))
        return len(files)

    def copy(self, source_uri: str, target_uri: str) -> None:
        target = self.path(target_uri)
        if not self.is_s3:
            self.fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
        self.fs.copy_file(self.path(source_uri), target)

    def size(self, uri: str) -> int:
        return self.fs.get_file_info(self.path(uri)).size or 0
