"""Demo content for a first start: users of each role and a small study in the lake.

The study is loaded through the real pipeline (land, policy, commit); the synthetic
generator (``datalibrary.demo_data``) is imported lazily: without it the demo simply has no
study."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import select

from datalibrary.auth import service as auth_service
from datalibrary.auth.models import User
from datalibrary.auth.passwords import generate_password
from datalibrary.auth.permissions import Principal
from datalibrary.config import Settings
from datalibrary.db import Database

DEMO_USERS = {"steward": "steward", "scientist": "scientist", "auditor": "auditor"}
NAMESPACE = "demo"
DEMO_SUBJECTS = 40
# Demo only: drops what looks identifying and keeps the rest. Real policies name every column.
DEMO_POLICY = """\
name: demo-study
version: 1
description: Demo only - drops direct identifiers by pattern and keeps every other column.
columns:
  "re:(?i).*(first|last|maiden|prefix|suffix)?_?name.*": drop
  "re:(?i).*(ssn|passport|drivers|license|mrn).*": drop
  "re:(?i).*(address|street|phone|email|zip|postal).*": drop
  "*": keep
"""


def load_demo(settings: Settings) -> Iterator[str]:
    """Create the demo users and the demo study once; yield what a person should read."""
    users = create_demo_users(settings)
    if users:
        yield "Demo users created (one-time passwords, shown once):"
        yield from users_table(users)
    yield from load_demo_study(settings)


def users_table(users: list[tuple[str, str, str]]) -> list[str]:
    """Aligned lines with headings: user, role, one-time password."""
    rows = [("user", "role", "one-time password"), *users]
    width = [max(len(r[i]) for r in rows) for i in range(2)]
    lines = [f"  {n:<{width[0]}}  {r:<{width[1]}}  {p}" for n, r, p in rows]
    lines.insert(1, f"  {'-' * width[0]}  {'-' * width[1]}  {'-' * len(rows[0][2])}")
    return lines


def create_demo_users(settings: Settings) -> list[tuple[str, str, str]]:
    """Create the demo users once; (name, role, one-time password) of those created now."""
    db = Database(settings.connect_url())
    try:
        with db.session() as session:
            if session.scalar(select(User.id).where(User.name.in_(DEMO_USERS))) is not None:
                return []
            operator = Principal.system("demo")
            created = []
            for name, role in DEMO_USERS.items():
                password = generate_password(name)
                auth_service.create_user(session, operator, name, roles={role}, password=password)
                created.append((name, role, password))
        return created
    finally:
        db.dispose()


def table_name_for(path: Path) -> str:
    name = re.sub(r"[^a-z0-9_]", "_", path.name.split(".")[0].lower()).strip("_") or "data"
    return name if name[0].isalpha() else f"t_{name}"


def load_demo_study(settings: Settings, subjects: int = DEMO_SUBJECTS) -> Iterator[str]:
    """Generate a small study and ingest it into the ``demo`` namespace (once)."""
    try:
        from datalibrary.demo_data import generate_study  # type: ignore[import-not-found]
    except ImportError:
        yield "Demo study skipped: the synthetic data generator (datalibrary.demo_data) is not installed yet."
        return
    # The lake and the pipeline load pyarrow and pyiceberg: the CLI imports this module for
    # the users table, only a study being loaded needs them.
    from datalibrary.ingest.submit import submit_file
    from datalibrary.ingest.worker import run_one, worker_name
    from datalibrary.lake.catalog import open_lake
    from datalibrary.privacy.store import save_policy

    if open_lake(settings).tables(NAMESPACE):
        return

    operator = Principal.system("demo")
    db = Database(settings.connect_url())
    try:
        with db.session() as session:
            save_policy(session, operator, DEMO_POLICY)
        with tempfile.TemporaryDirectory() as scratch:
            files = [Path(f) for f in generate_study(Path(scratch), subjects=subjects)]
            loaded = []
            for path in files:
                table = f"{NAMESPACE}.{table_name_for(path)}"
                with db.session() as session:
                    job = submit_file(session, operator, settings, path, table=table, policy="demo-study")
                    job_id = job.id
                result = run_one(settings, db, worker_name("demo"), job_id)
                loaded.append(f"  {table:<24} {result[1] if result else 'not run'}")
        yield f"Demo study loaded into namespace '{NAMESPACE}' ({subjects} subjects):"
        yield from loaded
    finally:
        db.dispose()
