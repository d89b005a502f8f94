"""Workspace speed: create-to-ready (median and p95 over N), stop, start, pause/resume, and how
many idle workspaces fit in 24 GiB (extrapolated from the measured memory of idle ones).

    .venv/bin/python benchmarks/workspaces.py [--runs 10] [--provisioner sandbox|process]

Targets from issue #7: ready < 5 s median with a built environment, stop < 2 s, pause/resume
< 200 ms. The environment is built (or reused) before timing starts.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.workspace_helpers import CACHE, CATALOG, build_test_environment  # noqa: E402

from datalibrary.auth import service as auth_service  # noqa: E402
from datalibrary.auth.permissions import Principal  # noqa: E402
from datalibrary.bootstrap import initialize  # noqa: E402
from datalibrary.config import Settings  # noqa: E402
from datalibrary.db import Database  # noqa: E402
from datalibrary.workspaces import service  # noqa: E402
from datalibrary.workspaces.models import Workspace  # noqa: E402

GIB = 1024**3


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def verb(db: Database, settings: Settings, wid: int, name: str) -> float:
    with db.session() as session:
        service.request(session, Principal.system("bench"), wid, name)
    started = time.perf_counter()
    state = await service.execute(db, settings, wid)
    elapsed = time.perf_counter() - started
    assert state not in ("failed",), f"{name} failed"
    return elapsed


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--provisioner", default="sandbox")
    args = parser.parse_args()
    build_test_environment()
    with tempfile.TemporaryDirectory() as tmp:
        catalog = Path(tmp) / "catalog.yaml"
        catalog.write_text(CATALOG)
        os.environ["DATALIBRARY_WORKSPACES__CATALOG"] = str(catalog)
        os.environ["DATALIBRARY_WORKSPACES__PROVISIONER"] = args.provisioner
        os.environ["DATALIBRARY_WORKSPACES__ENVIRONMENTS_DIR"] = str(CACHE)
        os.environ["DATALIBRARY_WORKSPACES__MAX_PER_USER"] = str(args.runs + 1)
        settings = Settings(home=Path(tmp) / "home")
        db = Database(str(settings.database_url))
        initialize(settings, db)
        settings = Settings(home=Path(tmp) / "home")
        with db.session() as session:
            auth_service.create_user(session, Principal.system("bench"), "benchuser", roles={"scientist"})
        product = "notebook" if args.provisioner == "sandbox" else "open-notebook"
        ready: list[float] = []
        ids: list[int] = []
        try:
            for _ in range(args.runs):
                started = time.perf_counter()
                with db.session() as session:
                    workspace = service.request_create(
                        session,
                        Principal.system("bench"),
                        settings,
                        product=product,
                        instance_type="tiny",
                        user="benchuser",
                    )
                    wid = workspace.id
                state = await service.execute(db, settings, wid)
                assert state == "running", state
                ready.append(time.perf_counter() - started)
                ids.append(wid)
            await asyncio.sleep(5)  # let the servers settle to idle
            memory = []
            with db.session() as session:
                for wid in ids:
                    provisioner = service.build_provisioner(settings, session.get(Workspace, wid))
                    measured = provisioner.memory_bytes()
                    if measured:
                        memory.append(measured)
            stops, starts, pauses, resumes = [], [], [], []
            for wid in ids[:3]:
                stops.append(await verb(db, settings, wid, "stop"))
                starts.append(await verb(db, settings, wid, "start"))
                pauses.append(await verb(db, settings, wid, "pause"))
                resumes.append(await verb(db, settings, wid, "resume"))
        finally:
            for wid in ids:
                with db.session() as session:
                    workspace = session.get(Workspace, wid)
                    await service.build_provisioner(settings, workspace).stop()
            db.dispose()
    print(f"provisioner: {args.provisioner}, runs: {args.runs}, host: {os.cpu_count()} cores")
    print(f"create -> ready JupyterLab: median {statistics.median(ready):.2f} s, p95 {percentile(ready, 0.95):.2f} s "  # noqa: E501
          f"(min {min(ready):.2f}, max {max(ready):.2f})")  # fmt: skip
    print(
        f"stop: median {statistics.median(stops) * 1000:.0f} ms; start: median {statistics.median(starts):.2f} s"  # noqa: E501
    )
    print(
        f"pause: median {statistics.median(pauses) * 1000:.1f} ms; resume: median {statistics.median(resumes) * 1000:.1f} ms"  # noqa: E501
    )
    if memory:
        idle = statistics.median(memory)
        print(f"idle workspace memory (cgroup, JupyterLab server, no kernel): median {idle / 2**20:.0f} MiB")
        print(
            f"EXTRAPOLATED idle workspaces in 24 GiB: {int(24 * GIB // idle)} (24 GiB / median idle memory; not measured)"  # noqa: E501
        )


if __name__ == "__main__":
    asyncio.run(main())
