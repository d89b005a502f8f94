"""The data-leak guard: Git's pre-receive hook for every project repository.

``git receive-pack`` runs it after the pushed objects arrived (still in quarantine) and
before any ref moves; a non-zero exit refuses the whole push and Git shows our message to
the person pushing ("remote: ..."). Only the objects the push adds are scanned (``rev-list
<new> --not --all``). A push is refused when it adds a lake extract:

- a tabular data file (CSV, Parquet, XPT, ...) above ``max_data_file_bytes``, or any file
  above ``max_file_bytes``;
- a notebook whose outputs show more than ``notebook_max_rows`` rows of a table;
- any text file carrying ``identifying_min_values`` or more distinct values of the lake's
  identifying or pseudonymized columns (matched by keyed fingerprints, see
  ``repos.fingerprints``; the values themselves are never stored here).

Runs as ``python -S -c "from datalibrary.repos.guard import main; ..."`` (the hook) with
the standard library only; its settings come from ``DL_GUARD_*`` variables (one each, see
``GuardConfig``) and it writes what it refused to ``DL_GUARD_REPORT``. Every push starts
it, so it starts light: no ``site`` (``-S``), no ``runpy`` (``-m``), no compiling (a
script file has no cached ``.pyc``), no ``dataclasses``/``pathlib``/``subprocess``, and
``json``, ``re`` (with ``enum``) and ``hashlib`` only when there is a notebook, a lake
fingerprint or a finding to handle. That start-up was most of the platform's cost over
plain Git on a push (``benchmarks/git_repos.py``).
"""

from __future__ import annotations

import os
import posixpath
import sys

ZERO = "0" * 40
DATA_SUFFIXES = {
    ".csv", ".tsv", ".txt.gz", ".csv.gz", ".parquet", ".pq", ".xpt", ".sas7bdat", ".feather",
    ".arrow", ".ipc", ".orc", ".avro", ".xlsx", ".xls", ".dta", ".sav", ".rds", ".rdata", ".pkl",
    ".pickle", ".h5", ".hdf5", ".db", ".sqlite", ".duckdb", ".jsonl", ".ndjson",
}  # fmt: skip
WORD_SEPARATORS = r"[\s,;|\t\"'<>\[\]{}()=:]+"
HTML_ROW = r"<tr[\s>]"
_compiled: dict = {}  # type: ignore[type-arg] - "re" is not imported at start-up


def _pattern(source: str):  # type: ignore[no-untyped-def]
    """Compiled on first use: importing ``re`` costs the hook ~10 ms a push."""
    if source not in _compiled:
        import re

        _compiled[source] = re.compile(source, re.IGNORECASE if source == HTML_ROW else 0)
    return _compiled[source]


AIRLOCK = (
    "Data from the lake leaves only through the export airlock: request an export of the result "
    "(console: Exports; CLI: datalibrary exports request), which a steward reviews. Remove the "
    "file(s) from your commits (git rm --cached FILE; git commit --amend, or rewrite the branch) "
    "and push again."
)


class GuardConfig:
    """The guard's settings (a plain class: ``dataclasses`` costs the hook ~25 ms a push)."""

    __slots__ = (
        "max_data_file_bytes", "max_file_bytes", "notebook_max_rows", "identifying_min_values",
        "scan_text_bytes", "fingerprints", "fingerprint_key",
    )  # fmt: skip

    def __init__(
        self,
        max_data_file_bytes: int = 1_000_000,
        max_file_bytes: int = 50_000_000,
        notebook_max_rows: int = 50,
        identifying_min_values: int = 3,
        scan_text_bytes: int = 20_000_000,
        fingerprints: str | None = None,  # file of sorted 8-byte digests
        fingerprint_key: str = "",
    ) -> None:
        self.max_data_file_bytes = max_data_file_bytes
        self.max_file_bytes = max_file_bytes
        self.notebook_max_rows = notebook_max_rows
        self.identifying_min_values = identifying_min_values
        self.scan_text_bytes = scan_text_bytes
        self.fingerprints = fingerprints
        self.fingerprint_key = fingerprint_key

    @classmethod
    def from_env(cls) -> GuardConfig:
        """From ``DL_GUARD_<SETTING>`` (upper case; unset = the default): no JSON to import."""
        values: dict[str, object] = {}
        for name in cls.__slots__:
            raw = os.environ.get(f"DL_GUARD_{name.upper()}")
            if raw is not None:
                values[name] = raw if name in ("fingerprints", "fingerprint_key") else int(raw)
        return cls(**values)  # type: ignore[arg-type]

    def environment(self) -> dict[str, str]:
        """The variables ``from_env`` reads back."""
        return {
            f"DL_GUARD_{name.upper()}": str(getattr(self, name))
            for name in self.__slots__
            if getattr(self, name) is not None
        }


def fingerprint(key: bytes, value: str) -> bytes:
    """8 bytes of a keyed BLAKE2b of the normalized value (case-folded, trimmed)."""
    import hashlib  # only when the lake has fingerprints: OpenSSL's start-up is not free

    return hashlib.blake2b(value.strip().casefold().encode(), digest_size=8, key=key).digest()


def load_fingerprints(path: str | None) -> set[bytes]:
    if not path or not os.path.exists(path):
        return set()
    with open(path, "rb") as handle:
        data = handle.read()
    return {data[i : i + 8] for i in range(0, len(data) - len(data) % 8, 8)}


def _spawn(args: list[str], stdin: int, stdout: int) -> int:
    """``git ARGS`` on the given descriptors (stderr discarded); its pid. ``os.posix_spawnp``
    because ``subprocess`` imports ``re``, ``enum``, ``locale``, ``selectors`` and
    ``threading`` (a quarter of the hook's start-up). Every other descriptor of ours is
    close-on-exec (PEP 446), so the child holds only these."""
    return os.posix_spawnp(
        "git",
        ["git", *args],
        os.environ,
        file_actions=[
            (os.POSIX_SPAWN_DUP2, stdin, 0),
            (os.POSIX_SPAWN_DUP2, stdout, 1),
            (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
        ],
    )


def _collect(read_end: int, pids: list[int], what: str) -> bytes:
    chunks = []
    with os.fdopen(read_end, "rb", buffering=0) as output:
        while chunk := output.read(1 << 20):
            chunks.append(chunk)
    for pid in pids:
        code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        if code != 0:
            raise RuntimeError(f"git {what} failed ({code})")
    return b"".join(chunks)


def _git(*args: str, input: bytes | None = None) -> bytes:  # noqa: A002
    """``git ARGS`` with ``input`` on stdin (a memory file: no deadlock, no thread); stdout."""
    source = os.memfd_create("guard-input") if input is not None else os.open(os.devnull, os.O_RDONLY)
    if input:
        view = memoryview(input)
        while view:
            view = view[os.write(source, view) :]
        os.lseek(source, 0, os.SEEK_SET)
    read_end, write_end = os.pipe()
    try:
        pid = _spawn(list(args), source, write_end)
    finally:
        os.close(write_end)
        os.close(source)
    return _collect(read_end, [pid], args[0])


def _git_pipeline(first: list[str], second: list[str]) -> bytes:
    """``git FIRST | git SECOND``: both at once, no Python in between; SECOND's stdout."""
    nothing = os.open(os.devnull, os.O_RDONLY)
    middle_read, middle_write = os.pipe()
    read_end, write_end = os.pipe()
    try:
        pids = [_spawn(first, nothing, middle_write), _spawn(second, middle_read, write_end)]
    finally:
        for descriptor in (nothing, middle_read, middle_write, write_end):
            os.close(descriptor)
    return _collect(read_end, pids, f"{first[0]} | git {second[0]}")


def new_blobs(updates: list[tuple[str, str, str]]) -> list[tuple[str, str, int]]:
    """(blob id, path, size) of every blob the push adds, once per blob: the objects only
    the new tips reach, typed and sized by ``cat-file`` (``%(rest)`` carries the path)."""
    tips = [new for _, new, _ in updates if new != ZERO]
    if not tips:
        return []
    checked = _git_pipeline(
        ["rev-list", "--objects", *tips, "--not", "--all"],
        ["cat-file", "--batch-check=%(objecttype) %(objectsize) %(objectname) %(rest)"],
    ).decode(errors="replace")
    blobs, seen = [], set()
    for line in checked.splitlines():
        kind, _, rest = line.partition(" ")
        size, _, rest = rest.partition(" ")
        oid, _, path = rest.partition(" ")
        if kind == "blob" and path and oid not in seen:
            seen.add(oid)
            blobs.append((oid, path, int(size)))
    return blobs


def _is_data_file(path: str) -> bool:
    name = posixpath.basename(path).lower()
    return any(name.endswith(suffix) for suffix in DATA_SUFFIXES)


def _text(value: object) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def notebook_rows(text: str) -> int:
    """The largest number of table rows shown by one output of a notebook."""
    import json

    html_row = _pattern(HTML_ROW)
    try:
        notebook = json.loads(text)
    except ValueError:
        return 0
    largest = 0
    for cell in notebook.get("cells", []) if isinstance(notebook, dict) else []:
        for output in cell.get("outputs", []) if isinstance(cell, dict) else []:
            data = output.get("data", {}) if isinstance(output, dict) else {}
            rows = 0
            html = data.get("text/html")
            if html:
                rows = max(rows, len(html_row.findall("".join(html) if isinstance(html, list) else html)) - 1)
            resource = data.get("application/vnd.dataresource+json")
            if isinstance(resource, dict):
                rows = max(rows, len(resource.get("data", [])))
            plain = data.get("text/plain")
            if plain:
                rows = max(rows, len(_text(plain).splitlines()) - 1)
            if output.get("output_type") == "stream":  # print(df): count the lines that look tabular
                rows = max(
                    rows, sum(1 for ln in _text(output.get("text", "")).splitlines() if len(ln.split()) >= 3)
                )
            largest = max(largest, rows)
    return largest


def identifying_matches(text: str, known: set[bytes], key: bytes) -> int:
    from hashlib import blake2b  # see fingerprint(); the same digest, without a call per token

    tokens = {token for token in _pattern(WORD_SEPARATORS).split(text) if 2 < len(token) <= 128}
    return sum(
        1
        for token in tokens
        if blake2b(token.strip().casefold().encode(), digest_size=8, key=key).digest() in known
    )


def scan(updates: list[tuple[str, str, str]], config: GuardConfig) -> list[dict[str, str]]:
    """Every finding in the objects the push adds: path, blob and why."""
    findings: list[dict[str, str]] = []
    known = load_fingerprints(config.fingerprints)
    key = config.fingerprint_key.encode()
    to_read: list[tuple[str, str]] = []
    for oid, path, size in new_blobs(updates):
        if size > config.max_file_bytes:
            findings.append(
                {"path": path, "blob": oid, "reason": f"file of {size} bytes (limit {config.max_file_bytes})"}
            )
        elif _is_data_file(path) and size > config.max_data_file_bytes:
            limit = config.max_data_file_bytes
            reason = f"data file of {size} bytes (data files above {limit} bytes are lake extracts)"
            findings.append({"path": path, "blob": oid, "reason": reason})
        elif size <= config.scan_text_bytes and (known or path.lower().endswith(".ipynb")):
            to_read.append((oid, path))
    for (oid, path), content in zip(to_read, read_blobs([oid for oid, _ in to_read]), strict=True):
        if b"\0" in content[:8000]:
            continue  # binary: only the size rules apply
        text = content.decode(errors="replace")
        if path.lower().endswith(".ipynb"):
            rows = notebook_rows(text)
            if rows > config.notebook_max_rows:
                limit = config.notebook_max_rows
                reason = f"notebook output with {rows} rows of data (limit {limit}); clear the outputs"
                findings.append({"path": path, "blob": oid, "reason": reason})
                continue
        if known:
            matches = identifying_matches(text, known, key)
            if matches >= config.identifying_min_values:
                reason = f"carries {matches} values of identifying or pseudonymized lake columns"
                findings.append({"path": path, "blob": oid, "reason": reason})
    return findings


def read_blobs(oids: list[str]) -> list[bytes]:
    """Every blob's content from one ``git cat-file --batch`` (one process, not one per blob)."""
    if not oids:
        return []
    raw = _git("cat-file", "--batch", input=("\n".join(oids) + "\n").encode())
    contents, offset = [], 0
    for _ in oids:
        header_end = raw.index(b"\n", offset)
        size = int(raw[offset:header_end].split()[2])
        contents.append(raw[header_end + 1 : header_end + 1 + size])
        offset = header_end + 1 + size + 1
    return contents


def main() -> int:
    updates = []
    for line in sys.stdin.read().splitlines():
        parts = line.split()
        if len(parts) == 3:
            updates.append((parts[0], parts[1], parts[2]))
    findings = scan(updates, GuardConfig.from_env())
    report = os.environ.get("DL_GUARD_REPORT")
    if report:
        with open(report, "w") as handle:
            if findings:
                import json

                json.dump({"findings": findings}, handle)
            else:
                handle.write('{"findings": []}')
    if not findings:
        return 0
    lines = ["", "DataLibrary refused this push: it adds what looks like a lake extract."]
    lines += [f"  {f['path']}: {f['reason']}" for f in findings[:20]]
    if len(findings) > 20:
        lines.append(f"  ... and {len(findings) - 20} more")
    lines += ["", AIRLOCK, ""]
    sys.stderr.write("\n".join(lines) + "\n")
    return 1


if __name__ == "__main__":
    sys.exit(main())
