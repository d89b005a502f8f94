"""File collections from a notebook: ``lake.files("study1.ct")`` lists the files your grant
shows, reads one (bytes or a stream for pydicom) or downloads it; every read goes through the
platform (authorized, audited, traced), so a revoked grant stops it at once."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datalibrary.sdk.client import Client

DEFAULT_MAX_BYTES = 1 << 30


class FileCollection:
    def __init__(self, client: Client, name: str) -> None:
        self.client = client
        self.name = name.lower()

    def __repr__(self) -> str:
        return f"FileCollection({self.name!r})"

    def list(self) -> list[dict[str, Any]]:
        """The newest version of each file, with its metadata (modality, subject, dates...)."""
        return self.client.request("GET", f"/collections/{self.name}/files")

    def read(self, path: str, version: int | None = None) -> bytes:
        """The de-identified bytes of one file."""
        suffix = f"?version={int(version)}" if version is not None else ""
        # the client quotes the path
        raw, _ = self.client.request_bytes("GET", f"/collections/{self.name}/files/{path}{suffix}")
        return raw

    def actions(self, path: str, version: int | None = None) -> dict[str, Any]:
        """What the de-identification profile did to each attribute of the file: tag, keyword,
        the Table E.1-1 code and the action applied (D, Z, X, K, C, U); no values."""
        suffix = f"?version={int(version)}" if version is not None else ""
        return self.client.request("GET", f"/collections/{self.name}/actions/{path}{suffix}")

    def thumbnail(self, path: str, version: int | None = None) -> bytes:
        """A PNG thumbnail of an image (refused where burned-in text may be); metered."""
        suffix = f"?version={int(version)}" if version is not None else ""
        raw, _ = self.client.request_bytes("GET", f"/collections/{self.name}/thumbnails/{path}{suffix}")
        return raw

    def open(self, path: str, version: int | None = None) -> io.BytesIO:
        """A binary stream of the file (``pydicom.dcmread(collection.open(path))``)."""
        return io.BytesIO(self.read(path, version))

    def download(
        self, path: str, target: str | Path, version: int | None = None, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> Path:
        """Write the file to ``target`` (a file, or a directory keeping the file's name); refuses
        files larger than ``max_bytes``."""
        data = self.read(path, version)
        if len(data) > max_bytes:
            raise ValueError(f"{path} is {len(data)} bytes, more than max_bytes={max_bytes}")
        destination = Path(target)
        if destination.is_dir():
            destination = destination / path.rsplit("/", 1)[-1]
        destination.write_bytes(data)
        return destination
