"""The data-leak guard: Git's pre-receive hook for every project repository.

``git receive-pack`` runs it after the pushed objects arrived (still in quarantine) and
before any ref moves; a non-zero exit refuses the whole push and Git shows our message to
the person pushing ("remote: ..."). Only the objects the push adds are scanned: those in
Git's quarantine, listed by one ``cat-file`` (the history they extend is walked, ``rev-list
<new> --not --all``, only to name the files of a finding). A push is refused when it adds a
lake extract:

- a tabular data file (CSV, Parquet, XPT, ...) above ``max_data_file_bytes``, or any file
  above ``max_file_bytes``;
- a notebook (recognized by its content, whatever its name) whose outputs show more than
  ``notebook_max_rows`` rows of a table;
- any text file carrying ``identifying_min_values`` or more distinct values of the lake's
  identifying or pseudonymized columns (matched by keyed fingerprints, see
  ``repos.fingerprints``; the values themselves are never stored here).

The platform's own Git runs ``scan`` inside the process serving the push
(``repos.push_guard``). ``main`` runs it as a stand-alone pre-receive hook, for an external
Git server (``python -S -c "from datalibrary.repos.guard import main; ..."``), with the
standard library only; its settings come from ``DL_GUARD_*`` variables (one each, see
``GuardConfig``) and it writes what it refused to ``DL_GUARD_REPORT`` if set. For that use
it starts light: no ``site`` (``-S``), no ``runpy`` (``-m``), no
``dataclasses``/``pathlib``/``subprocess``/``typing``, and ``json``, ``re`` (with
``enum``) and ``hashlib`` only when there is a notebook, a lake fingerprint or a finding to
handle.
"""

from __future__ import annotations

import os
import posixpath
import sys

TYPE_CHECKING = False  # the constant, without importing ``typing`` at start-up
if TYPE_CHECKING:
    from collections.abc import Iterator

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


def _spawn(args: list[str], stdin: int, stdout: int, env: dict[str, str] | None = None) -> int:
    """``git ARGS`` on the given descriptors (stderr discarded); its pid. ``os.posix_spawnp``
    because ``subprocess`` imports ``re``, ``enum``, ``locale``, ``selectors`` and
    ``threading`` (a quarter of the hook's start-up). Every other descriptor of ours is
    close-on-exec (PEP 446), so the child holds only these."""
    return os.posix_spawnp(
        "git",
        ["git", *args],
        os.environ if env is None else env,
        file_actions=[
            (os.POSIX_SPAWN_DUP2, stdin, 0),
            (os.POSIX_SPAWN_DUP2, stdout, 1),
            (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
        ],
    )


def _wait(pids: list[int], what: str) -> None:
    for pid in pids:
        code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        if code != 0:
            raise RuntimeError(f"git {what} failed ({code})")


def _input(data: bytes | None) -> int:
    """A descriptor to read ``data`` from: a memory file (no deadlock, no thread)."""
    if data is None:
        return os.open(os.devnull, os.O_RDONLY)
    source = os.memfd_create("guard-input")
    view = memoryview(data)
    while view:
        view = view[os.write(source, view) :]
    os.lseek(source, 0, os.SEEK_SET)
    return source


def _git(*args: str, input: bytes | None = None, env: dict[str, str] | None = None) -> bytes:  # noqa: A002
    """``git ARGS`` with ``input`` on stdin; its stdout."""
    source = _input(input)
    read_end, write_end = os.pipe()
    try:
        pid = _spawn(list(args), source, write_end, env)
    finally:
        os.close(write_end)
        os.close(source)
    with os.fdopen(read_end, "rb") as output:
        data = output.read()
    _wait([pid], args[0])
    return data


def quarantined_blobs(env: dict[str, str] | None = None) -> list[tuple[str, int]] | None:
    """(blob id, size) of every blob the push brought, read from Git's quarantine (the
    directory ``receive-pack`` keeps the pushed objects in until the hook accepts them):
    one ``cat-file`` over the push's own objects, instead of walking the history they
    extend. None outside a quarantine (Git before 2.11, or called directly).

    The quarantine may also hold a few objects the repository already had (bases a thin
    pack was completed with); ``scan`` keeps a finding only for a blob the push adds."""
    env = dict(os.environ if env is None else env)
    quarantine = env.get("GIT_QUARANTINE_PATH")
    if not quarantine or not os.path.isdir(quarantine):
        return None
    env.pop("GIT_ALTERNATE_OBJECT_DIRECTORIES", None)  # the quarantine's own objects only
    env["GIT_OBJECT_DIRECTORY"] = quarantine
    check = "--batch-check=%(objecttype) %(objectsize) %(objectname)"
    listed = _git("cat-file", "--batch-all-objects", "--unordered", check, env=env)
    blobs = []
    for line in listed.decode(errors="replace").splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "blob":
            size, _, oid = rest.partition(" ")
            blobs.append((oid, int(size)))
    return blobs


def added_paths(tips: list[str], env: dict[str, str] | None = None) -> dict[str, str]:
    """Blob id -> path of every blob only the new tips reach (``rev-list --objects TIPS
    --not --all``): the walk of the pushed history, done only when a path is needed."""
    listed = _git("rev-list", "--objects", *tips, "--not", "--all", env=env).decode(errors="replace")
    paths: dict[str, str] = {}
    for line in listed.splitlines():
        oid, _, path = line.partition(" ")
        if path and oid not in paths:
            paths[oid] = path
    return paths


def new_blobs(
    updates: list[tuple[str, str, str]], env: dict[str, str] | None = None
) -> list[tuple[str, str, int]]:
    """(blob id, path, size) of every blob the push adds, once per blob, from the walk:
    the objects only the new tips reach, typed and sized by ``cat-file``."""
    tips = [new for _, new, _ in updates if new != ZERO]
    if not tips:
        return []
    paths = added_paths(tips, env)
    if not paths:
        return []
    checked = _git(
        "cat-file", "--batch-check=%(objecttype) %(objectsize) %(objectname)",
        input=("\n".join(paths) + "\n").encode(), env=env,
    ).decode(errors="replace")  # fmt: skip
    blobs = []
    for line in checked.splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "blob":
            size, _, oid = rest.partition(" ")
            blobs.append((oid, paths[oid], int(size)))
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


def looks_like_notebook(content: bytes) -> bool:
    """A Jupyter notebook by its content, whatever the file is called (a renamed notebook
    carries the same outputs)."""
    return content[:256].lstrip()[:1] == b"{" and b'"cells"' in content


def scan(
    updates: list[tuple[str, str, str]],
    config: GuardConfig,
    *,
    env: dict[str, str] | None = None,
    known: set[bytes] | None = None,
) -> list[dict[str, str]]:
    """Every finding in the blobs the push adds: path, blob and why.

    Sizes come first (no content read); then every text blob small enough to scan is read
    once, checked as a notebook if it is one, and matched against the lake's fingerprints
    if there are any. Paths (for the data-file rule and the message) come from a walk of
    the pushed history, done only when a large blob or a finding needs one.

    ``env``: Git's variables for the push (its quarantine; default: this process's, as in a
    hook). ``known``: the fingerprints already loaded (default: read ``config.fingerprints``)."""
    tips = [new for _, new, _ in updates if new != ZERO]
    if not tips:
        return []
    known = load_fingerprints(config.fingerprints) if known is None else known
    key = config.fingerprint_key.encode()
    walked: dict[str, str] | None = None
    listed = quarantined_blobs(env)
    if listed is None:
        found = new_blobs(updates, env)
        walked = {oid: path for oid, path, _ in found}
        listed = [(oid, size) for oid, _, size in found]

    def paths() -> dict[str, str]:
        nonlocal walked
        if walked is None:
            walked = added_paths(tips, env)
        return walked

    suspects: list[tuple[str, str]] = []  # (blob, reason), before the walk confirms the blob is new
    to_read: list[str] = []
    for oid, size in listed:
        if size > config.max_file_bytes:
            suspects.append((oid, f"file of {size} bytes (limit {config.max_file_bytes})"))
        elif size > config.max_data_file_bytes and _is_data_file(paths().get(oid, "")):
            limit = config.max_data_file_bytes
            suspects.append(
                (oid, f"data file of {size} bytes (data files above {limit} bytes are lake extracts)")
            )
        elif size <= config.scan_text_bytes:
            to_read.append(oid)
    for oid, content in read_blobs(to_read, env):
        if b"\0" in content[:8000]:
            continue  # binary: only the size rules apply
        notebook = looks_like_notebook(content)
        if not notebook and not known:
            continue
        text = content.decode(errors="replace")
        if notebook:
            rows = notebook_rows(text)
            if rows > config.notebook_max_rows:
                limit = config.notebook_max_rows
                suspects.append(
                    (oid, f"notebook output with {rows} rows of data (limit {limit}); clear the outputs")
                )
                continue
        if known:
            matches = identifying_matches(text, known, key)
            if matches >= config.identifying_min_values:
                suspects.append(
                    (oid, f"carries {matches} values of identifying or pseudonymized lake columns")
                )
    if not suspects:
        return []
    added = paths()  # only blobs the push adds count (not a thin pack's bases)
    return [{"path": added[oid], "blob": oid, "reason": reason} for oid, reason in suspects if oid in added]


def read_blobs(oids: list[str], env: dict[str, str] | None = None) -> Iterator[tuple[str, bytes]]:
    """Each blob's content, one at a time, from one ``git cat-file --batch`` (one process,
    not one per blob; never the whole push in memory)."""
    if not oids:
        return
    source = _input(("\n".join(oids) + "\n").encode())
    read_end, write_end = os.pipe()
    try:
        pid = _spawn(["cat-file", "--batch"], source, write_end, env)
    finally:
        os.close(write_end)
        os.close(source)
    with os.fdopen(read_end, "rb") as output:
        for oid in oids:
            header = output.readline().split()
            if len(header) != 3:
                continue  # "<oid> missing"
            content = output.read(int(header[2]))
            output.read(1)
            yield oid, content
    _wait([pid], "cat-file")


def parse_updates(text: str) -> list[tuple[str, str, str]]:
    """pre-receive's input: one ``<old> <new> <ref>`` line per ref the push moves."""
    return [(p[0], p[1], p[2]) for p in (line.split() for line in text.splitlines()) if len(p) == 3]


def refusal(findings: list[dict[str, str]]) -> str:
    """What the person pushing reads (Git prefixes each line with "remote:")."""
    lines = ["", "DataLibrary refused this push: it adds what looks like a lake extract."]
    lines += [f"  {f['path']}: {f['reason']}" for f in findings[:20]]
    if len(findings) > 20:
        lines.append(f"  ... and {len(findings) - 20} more")
    lines += ["", AIRLOCK, ""]
    return "\n".join(lines) + "\n"


def main() -> int:
    """The guard as a stand-alone pre-receive hook (an external Git server's, see
    docs/explanation/git-and-packages.md); the platform's own Git runs it in-process."""
    findings = scan(parse_updates(sys.stdin.read()), GuardConfig.from_env())
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
    sys.stderr.write(refusal(findings))
    return 1


if __name__ == "__main__":
    sys.exit(main())
