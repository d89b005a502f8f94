"""Make an installation usable: state directory, keys, schema, first admin. Idempotent."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import SecretStr

from datalibrary.auth import service as auth_service
from datalibrary.config import Settings, ensure_secret_key
from datalibrary.db import Database, upgrade
from datalibrary.privacy.keys import default_key_file, ensure_master_key_file
from datalibrary.privacy.store import ensure_builtin_policies


@dataclass(frozen=True)
class InitResult:
    home: str
    database_url: str
    admin_name: str
    admin_password: str | None  # only when the admin was created by this call


def initialize(settings: Settings, database: Database | None = None) -> InitResult:
    settings.home.mkdir(parents=True, exist_ok=True)
    settings.home.chmod(0o700)
    key = ensure_secret_key(settings.home)
    if settings.secret_key is None:
        # the settings were loaded before the key existed (a first run): everything built from
        # them afterwards (the app, its workspaces) must see the key now, not after a restart
        settings.secret_key = SecretStr(key)
    if settings.master_key is None:
        ensure_master_key_file(default_key_file(settings))
    db = database or Database(settings.connect_url())
    try:
        upgrade(db.engine)
        with db.session() as session:
            password = auth_service.ensure_first_admin(session)
            ensure_builtin_policies(session)
    finally:
        if database is None:
            db.dispose()
    return InitResult(
        home=str(settings.home),
        database_url=settings.redacted()["database_url"],
        admin_name=auth_service.FIRST_ADMIN,
        admin_password=password,
    )
