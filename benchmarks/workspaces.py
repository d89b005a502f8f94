"""Workspace speed: create-to-ready (median and p95 over N), stop, start, pause/resume, how
many idle workspaces fit in 24 GiB (extrapolated from the measured memory of idle ones), and
what a person sees: in Chromium, from clicking Launch on the console's Workspaces page (which
opens JupyterLab in a new tab when it is ready) to JupyterLab's launcher rendered on the
workspace's origin (median and p95 over M), cold (no pool member ready) and warm (a warm-pool
member ready), next to the backend times of both, and opening a running workspace again.

    .venv/bin/python benchmarks/workspaces.py [--runs 10] [--browser-runs 10] [--provisioner sandbox|process]

Targets from issue #7: ready < 5 s median with a built environment, stop < 2 s, pause/resume
< 200 ms; from issue #13: Launch -> JupyterLab rendered < 3 s cold, < 1 s warm (medians).
The environment is built (or reused) before timing starts. The pool is refilled by this
script between runs (what the server's background loop does), never while a run is timed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
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


def fill_pool(db: Database, settings: Settings) -> None:
    """One ready pool member (what the background loop keeps); waits for it, untimed."""
    from datalibrary.workspaces import pool
    from datalibrary.workspaces.sync import run_sync

    for _ in range(5):
        run_sync(pool.refill(db, settings))  # Playwright's sync API holds this thread's loop
        with db.session() as session:
            status = pool.status(session, Principal.system("bench"), settings)
        if any(t["ready"] for t in status["targets"]):  # type: ignore[union-attr]
            return
    raise RuntimeError(f"the pool did not fill: {status}")


# JupyterLab rendered and usable: its launcher showing a notebook card (a kernel to start)
RENDERED = '.jp-Launcher .jp-LauncherCard[data-category="Notebook"]'


def browser_timings(
    settings: Settings, db: Database, runs: int, product: str, warm: bool = False
) -> dict[str, list[float]]:
    """In Chromium against the app served on loopback: click Launch (with "open JupyterLab
    when it is ready", the default) -> the new tab reaches the workspace's origin -> JupyterLab's
    launcher rendered there; then, the workspace running, its card's Open JupyterLab ->
    rendered again (a second visit). Each workspace is terminated afterwards. ``warm``: a pool
    member is ready before each launch."""
    from playwright.sync_api import sync_playwright
    from tests.conftest import CHROMIUM, CHROMIUM_ARGS
    from tests.helpers import PASSWORD, LiveServer
    from tests.workspace_helpers import UnixServer

    from datalibrary.app import create_app
    from datalibrary.workspaces import paths

    name = "warmuser" if warm else "browseruser"
    with db.session() as session:
        auth_service.create_user(
            session, Principal.system("bench"), name, roles={"scientist"}, password=PASSWORD
        )
    app = create_app(settings, db)
    timings: dict[str, list[float]] = {"entered": [], "total": [], "reopen": []}
    workspace_origin = re.compile(r"^https?://ws-\d+\.")
    with (
        UnixServer(app, paths.api_socket(settings)),
        LiveServer(app) as server,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        page.goto(f"{server.url}/login")
        page.fill("#name", name)
        page.fill("#password", PASSWORD)
        page.press("#password", "Enter")
        page.wait_for_url(f"{server.url}/")
        for _ in range(runs):
            if warm:
                fill_pool(db, settings)
            page.goto(f"{server.url}/workspaces")
            page.select_option("#product", product)
            page.select_option("#instance-type", "tiny")
            card = page.locator(".workspace").first
            started = time.perf_counter()
            with context.expect_page() as opened:
                page.click("#launch")
            lab = opened.value
            lab.wait_for_url(workspace_origin, wait_until="commit", timeout=240_000)
            entered = time.perf_counter()
            lab.wait_for_selector(RENDERED, timeout=240_000)
            rendered = time.perf_counter()
            timings["entered"].append(entered - started)
            timings["total"].append(rendered - started)
            lab.close()
            card.locator(".state", has_text="running").wait_for(timeout=60_000)
            reopened = time.perf_counter()
            with context.expect_page() as opened:
                card.locator("a", has_text="Open JupyterLab").click()
            lab = opened.value
            lab.wait_for_selector(RENDERED, timeout=240_000)
            timings["reopen"].append(time.perf_counter() - reopened)
            lab.close()
            page.once("dialog", lambda dialog: dialog.accept())
            card.locator("button", has_text="Terminate").click()
            page.locator(".workspace").wait_for(state="detached", timeout=120_000)
        browser.close()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--browser-runs", type=int, default=5)
    parser.add_argument("--provisioner", default="sandbox")
    parser.add_argument("--no-pool", action="store_true", help="skip the warm-pool measurements")
    args = parser.parse_args()
    build_test_environment()
    with tempfile.TemporaryDirectory() as tmp:
        catalog = Path(tmp) / "catalog.yaml"
        catalog.write_text(CATALOG)
        os.environ["DATALIBRARY_WORKSPACES__CATALOG"] = str(catalog)
        os.environ["DATALIBRARY_WORKSPACES__PROVISIONER"] = args.provisioner
        os.environ["DATALIBRARY_WORKSPACES__ENVIRONMENTS_DIR"] = str(CACHE)
        os.environ["DATALIBRARY_WORKSPACES__MAX_PER_USER"] = str(args.runs + 1)
        os.environ["DATALIBRARY_WORKSPACES__WARM_POOL"] = '{"r/tiny": 0}'  # one python/tiny member
        settings = Settings(home=Path(tmp) / "home")
        db = Database(settings.connect_url())
        initialize(settings, db)
        settings = Settings(home=Path(tmp) / "home")
        with db.session() as session:
            auth_service.create_user(session, Principal.system("bench"), "benchuser", roles={"scientist"})
        product = "notebook" if args.provisioner == "sandbox" else "open-notebook"
        from datalibrary.workspaces import pool

        pooled = pool.disabled_because(settings) is None and not args.no_pool
        try:
            ready, memory, stops, starts, pauses, resumes = asyncio.run(
                backend(db, settings, args.runs, product)
            )
            warm_ready = asyncio.run(warm_backend(db, settings, args.runs, product)) if pooled else []
            browser = browser_timings(settings, db, args.browser_runs, product) if args.browser_runs else None
            warm = (
                browser_timings(settings, db, args.browser_runs, product, warm=True)
                if args.browser_runs and pooled
                else None
            )
        finally:
            stop_leftovers(db, settings)
            db.dispose()
    report(args, ready, memory, stops, starts, pauses, resumes, browser)
    if pooled:
        print(f"backend create -> ready, warm pool (service, no HTTP): {_spread(warm_ready)}")
    if warm:
        runs = len(warm["total"])
        print(f"browser (Chromium, {runs} runs, warm pool: a member ready before each launch):")
        _browser_lines(warm)
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


async def backend(db: Database, settings: Settings, runs: int, product: str) -> tuple[list[float], ...]:
    """Create -> running ``runs`` times through the service (no HTTP, no browser), then the
    verbs on three of them; every workspace is stopped at the end."""
    ready: list[float] = []
    ids: list[int] = []
    memory: list[float] = []
    stops: list[float] = []
    starts: list[float] = []
    pauses: list[float] = []
    resumes: list[float] = []
    try:
        for _ in range(runs):
            started = time.perf_counter()
            with db.session() as session:
                workspace = service.request_create(
                    session, Principal.system("bench"), settings, product=product, instance_type="tiny",
                    user="benchuser",
                )  # fmt: skip
                wid = workspace.id
            state = await service.execute(db, settings, wid)
            assert state == "running", state
            ready.append(time.perf_counter() - started)
            ids.append(wid)
        await asyncio.sleep(5)  # let the servers settle to idle
        with db.session() as session:
            for wid in ids:
                provisioner = service.build_provisioner(settings, session.get(Workspace, wid))
                measured = provisioner.memory_bytes()
                if measured:
                    memory.append(measured)
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
            with db.session() as session:
                service.request(session, Principal.system("bench"), wid, "terminate")
            await service.execute(db, settings, wid)
    return ready, memory, stops, starts, pauses, resumes


async def warm_backend(db: Database, settings: Settings, runs: int, product: str) -> list[float]:
    """Create -> running through the service when a pool member is ready (refilled, untimed,
    before each); each workspace is terminated afterwards."""
    from datalibrary.workspaces import pool

    ready: list[float] = []
    for _ in range(runs):
        await pool.refill(db, settings)
        started = time.perf_counter()
        with db.session() as session:
            workspace = service.request_create(
                session, Principal.system("bench"), settings, product=product, instance_type="tiny",
                user="benchuser",
            )  # fmt: skip
            wid = workspace.id
            assert "warm pool" in workspace.state_reason, "no pool member was ready"
        state = await service.execute(db, settings, wid)
        assert state == "running", state
        ready.append(time.perf_counter() - started)
        with db.session() as session:
            service.request(session, Principal.system("bench"), wid, "terminate")
        await service.execute(db, settings, wid)
    return ready


def stop_leftovers(db: Database, settings: Settings) -> None:
    """Stop what outlives the runs (a pool member the server's background loop started after
    the last launch): the sandboxes would otherwise keep running after this script exits."""
    from sqlalchemy import select

    from datalibrary.workspaces.sync import run_sync

    with db.session() as session:
        for row in session.scalars(select(Workspace).where(Workspace.state != "terminated")):
            run_sync(service.build_provisioner(settings, row).stop())


def _spread(values: list[float]) -> str:
    return (
        f"median {statistics.median(values):.2f} s, p95 {percentile(values, 0.95):.2f} s "
        f"(min {min(values):.2f}, max {max(values):.2f})"
    )


def report(args, ready, memory, stops, starts, pauses, resumes, browser) -> None:  # type: ignore[no-untyped-def]
    print(f"provisioner: {args.provisioner}, runs: {args.runs}, host: {os.cpu_count()} cores")
    print(f"backend create -> ready JupyterLab (service, no HTTP): {_spread(ready)}")
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
    if browser:
        runs = len(browser["total"])
        print(f"browser (Chromium, {runs} runs, no warm pool):")
        _browser_lines(browser)


def _browser_lines(timings: dict[str, list[float]]) -> None:
    print(f"  click Launch -> the new tab on the workspace's origin: {_spread(timings['entered'])}")
    print(f"  click Launch -> JupyterLab rendered (a notebook card shown): {_spread(timings['total'])}")
    print(f"  running workspace, click Open JupyterLab -> rendered: {_spread(timings['reopen'])}")


if __name__ == "__main__":
    main()
