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
    yield from _demo_users(settings)
    from datalibrary.lake.demo import load_demo_study

    yield from load_demo_study(settings)


def _demo_users(settings: Settings) -> Iterator[str]:
    db = Database(str(settings.database_url))
    try:
        with db.session() as session:
            if session.scalar(select(User.id).where(User.name.in_(DEMO_USERS))) is not None:
                return
            operator = Principal.system("demo")
            created = []
            for name, role in DEMO_USERS.items():
                password = generate_password(name)
                auth_service.create_user(session, operator, name, roles={role}, password=password)
                created.append((name, role, password))
        yield "Demo users created (passwords shown once):"
        for name, role, password in created:
            yield f"  {name:<10} {role:<10} {password}"
    finally:
        db.dispose()
