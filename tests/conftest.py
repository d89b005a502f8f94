"""Fixtures shared by the suite.

Every test that touches the database runs once on SQLite and once on PostgreSQL
(when ``DATALIBRARY_TEST_POSTGRES_URL`` is set): the ``database_url`` fixture is
parametrized, and each test gets a fresh, migrated database copied from a template.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from datalibrary.db import Database, upgrade
from datalibrary.db.engine import normalize_url
from datalibrary.wiring import register_handlers
from tests.ci_guard import pytest_sessionfinish  # noqa: F401 - the hook: a skip fails a CI run
from tests.helpers import Platform, make_platform

POSTGRES_URL = os.environ.get("DATALIBRARY_TEST_POSTGRES_URL")
SHARED_DATA = Path(
    os.environ.get("DATALIBRARY_TEST_SHARED_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data"
)
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if POSTGRES_URL:
        return
    skip = pytest.mark.skip(reason="DATALIBRARY_TEST_POSTGRES_URL is not set")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def wired() -> None:
    """Every entry point calls the wiring; so does the test session, so a test that drives a
    domain service without a platform does not depend on which test built one first."""
    register_handlers()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared test data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    db = Database(f"sqlite:///{path}")
    upgrade(db.engine)
    db.dispose()
    return path


class PostgresServer:
    """Creates throw-away databases on the test server, cloned from a migrated template."""

    def __init__(self, url: str) -> None:
        self.url = make_url(normalize_url(url))
        self.admin = create_engine(self.url, isolation_level="AUTOCOMMIT")
        self.template = f"dl_tpl_{uuid.uuid4().hex[:10]}"
        self.created: list[str] = []
        self._execute(f'CREATE DATABASE "{self.template}"')
        db = Database(self.url_for(self.template))
        upgrade(db.engine)
        db.dispose()

    def _execute(self, sql: str) -> None:
        with self.admin.connect() as connection:
            connection.execute(text(sql))

    def url_for(self, name: str) -> str:
        return self.url.set(database=name).render_as_string(hide_password=False)

    def new_database(self) -> str:
        name = f"dl_t_{uuid.uuid4().hex[:12]}"
        self._execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        self.created.append(name)
        return self.url_for(name)

    def drop(self, name: str) -> None:
        self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        for name in [*self.created, self.template]:
            self.drop(name)
        self.admin.dispose()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    if not POSTGRES_URL:
        pytest.skip("DATALIBRARY_TEST_POSTGRES_URL is not set")
    server = PostgresServer(POSTGRES_URL)
    yield server
    server.close()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> Iterator[str]:
    """A fresh, migrated, empty database on each backend."""
    if request.param == "sqlite":
        path = tmp_path / "state.db"
        shutil.copy(sqlite_template, path)
        yield f"sqlite:///{path}"
    else:
        server: PostgresServer = request.getfixturevalue("postgres_server")
        url = server.new_database()
        yield url
        server.drop(make_url(url).database or "")


@pytest.fixture
def platform(database_url: str, tmp_path: Path) -> Iterator[Platform]:
    """An initialized installation (state dir, schema, first admin) and its app."""
    with make_platform(tmp_path / "home", database_url) as built:
        yield built


@pytest.fixture
def sqlite_platform(tmp_path: Path, sqlite_template: Path) -> Iterator[Platform]:
    """The same on SQLite only, for tests whose subject is not the database."""
    path = tmp_path / "state.db"
    shutil.copy(sqlite_template, path)
    with make_platform(tmp_path / "home", f"sqlite:///{path}") as built:
        yield built


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Debian's Chromium driven by Playwright (Playwright's own browsers cannot be downloaded).

    Per module: Playwright's sync API keeps an event loop running on the main thread while it
    is open, and later tests that call ``asyncio.run`` must not find one."""
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def live_platform(sqlite_platform: Platform) -> Iterator[tuple[Platform, str]]:
    from tests.helpers import LiveServer

    with LiveServer(sqlite_platform.app) as server:
        yield sqlite_platform, server.url
