"""Peak RSS of one large DICOM upload through the REST API (issue #20): the body is spooled to
disk, de-identified with pixel data copied in chunks, and stored; memory should stay far below
the file's size.

    .venv/bin/python benchmarks/dicom_upload_rss.py [--mib 1024]

Builds a multi-frame CT of about ``--mib`` MiB (512x512 16-bit frames, written frame by frame),
starts the app with uvicorn in this process on a temporary home (SQLite), streams the file to
``POST /api/v1/collections/{name}/files`` with httpx, and prints the process's peak RSS before
and after (``ru_maxrss``) next to the file size: the ratio is the figure to watch."""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def current_rss() -> int:
    """Resident bytes now (ru_maxrss only gives the peak so far)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize()


def main() -> None:
    import httpx
    from tests.helpers import LiveServer, make_platform
    from tests.lake_helpers import SYSTEM
    from tests.test_files_governance import big_ct

    from datalibrary.files import service

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=1024)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        source = big_ct(root / "big.dcm", frames=max(1, args.mib * 2))  # 0.5 MiB per frame
        size = source.stat().st_size
        with make_platform(root / "home", f"sqlite:///{root}/state.db") as platform:
            with platform.db.session() as session:
                service.create_collection(session, SYSTEM, platform.settings, "bench.big")
            platform.as_user("admin")
            before = current_rss()
            with LiveServer(platform.app) as server, source.open("rb") as body:
                start = time.perf_counter()
                sent = httpx.post(
                    f"{server.url}/api/v1/collections/bench.big/files",
                    params={"filename": "big.dcm"},
                    content=iter(lambda: body.read(1 << 20), b""),
                    headers={"Authorization": f"Bearer {platform.tokens['admin']}"},
                    timeout=3600,
                )
                seconds = time.perf_counter() - start
            sent.raise_for_status()
            assert [a["path"] for a in sent.json()["added"]] == ["big.dcm"], sent.text
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss << 10
    print(f"file {size / 2**20:.0f} MiB uploaded, de-identified and stored in {seconds:.1f} s")
    mib = 2**20
    print(f"RSS just before the upload {before / mib:.0f} MiB; peak RSS of the process {peak / mib:.0f} MiB")
    print(f"upload cost at most {(peak - before) / mib:.0f} MiB = {(peak - before) / size:.3f} x the file")


if __name__ == "__main__":
    main()
