"""A local PEP 503 index (the "upstream" of the mirror in tests) and tiny wheels built here.

Tests never reach the public index: the mirror's upstream is this server on loopback."""

from __future__ import annotations

import base64
import hashlib
import html
import http.server
import os
import threading
import zipfile
from pathlib import Path


def make_wheel(directory: Path, name: str, version: str, *, pad_bytes: int = 0) -> Path:
    """A valid pure-Python wheel whose module says its version (``pad_bytes`` of random data)."""
    module = name.replace("-", "_")
    dist = f"{module}-{version}.dist-info"
    files = {
        f"{module}/__init__.py": f"VERSION = {version!r}\n".encode(),
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: datalibrary-tests\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    if pad_bytes:
        files[f"{module}/blob.bin"] = os.urandom(pad_bytes)
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{dist}/RECORD,,")
    files[f"{dist}/RECORD"] = ("\n".join(record) + "\n").encode()
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED if pad_bytes else zipfile.ZIP_DEFLATED) as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return target


def write_simple_index(root: Path) -> None:
    """simple/<name>/index.html for every wheel under root/files (with sha256 fragments)."""
    projects: dict[str, list[Path]] = {}
    for wheel in sorted((root / "files").glob("*.whl")):
        projects.setdefault(wheel.name.split("-")[0].replace("_", "-").lower(), []).append(wheel)
    for name, wheels in projects.items():
        page = root / "simple" / name / "index.html"
        page.parent.mkdir(parents=True, exist_ok=True)
        links = [
            f'<a href="../../files/{w.name}#sha256={hashlib.sha256(w.read_bytes()).hexdigest()}">'
            f"{html.escape(w.name)}</a><br/>"
            for w in wheels
        ]
        page.write_text("<!DOCTYPE html><html><body>\n" + "\n".join(links) + "\n</body></html>\n")
    listing = "".join(f'<a href="{name}/">{name}</a><br/>\n' for name in sorted(projects))
    (root / "simple" / "index.html").write_text(f"<!DOCTYPE html><html><body>\n{listing}</body></html>\n")


class StaticIndex:
    """A PEP 503 index served from a directory on a free loopback port, in a thread."""

    def __init__(self, root: Path) -> None:
        handler = lambda *a, **kw: _Quiet(*a, directory=str(root), **kw)  # noqa: E731
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/simple/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.requests: list[str] = _Quiet.seen

    def __enter__(self) -> StaticIndex:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    seen: list[str] = []

    def log_message(self, *args: object) -> None:
        _Quiet.seen.append(self.path)
