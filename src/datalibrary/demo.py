"""Demo content for a first start: users of each role and a small study in the lake."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import select

from datalibrary.auth import service as auth_service
from datalibrary.auth.models import User
from datalibrary.auth.passwords import generate_password
from datalibrary.auth.permissions import Principal
from datalibrary.config import Settings
from datalibrary.db import Database

DEMO_USERS = {"steward": "steward", "scientist": "scientist", "auditor": "auditor"}


def load_demo(settings: Settings) -> Iterator[str]:
    """Create the demo users and the demo study once; yield what a person should read."""
    users = create_demo_users(settings)
    if users:
        yield "Demo users created (one-time passwords, shown once):"
        yield from users_table(users)
    from datalibrary.lake.demo import load_demo_study

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
