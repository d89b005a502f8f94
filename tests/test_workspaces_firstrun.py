"""First run on a brand-new state directory: settings loaded before ``init`` created the
secret key (what ``datalibrary up`` does) still launch a workspace at once; a stop requested
while starting ends stopped; a workspace that cannot even be built says why, and can leave."""

from __future__ import annotations

from pathlib import Path

import pytest

from datalibrary.api import create_app
from datalibrary.bootstrap import initialize
from datalibrary.config import Settings
from datalibrary.db import Database
from tests.helpers import ApiClient
from tests.workspace_helpers import CATALOG, UnixServer, build_test_environment, wait_state


@pytest.fixture
def fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(CATALOG)
    monkeypatch.setenv("DATALIBRARY_WORKSPACES__CATALOG", str(catalog))
    monkeypatch.setenv("DATALIBRARY_WORKSPACES__PROVISIONER", "process")
    monkeypatch.setenv("DATALIBRARY_WORKSPACES__ENVIRONMENTS_DIR", str(build_test_environment().parent))
    monkeypatch.delenv("DATALIBRARY_SECRET_KEY", raising=False)
    home = tmp_path / "brand-new"
    settings = Settings(home=home, database_url=f"sqlite:///{tmp_path / 'state.db'}")
    assert settings.secret_key is None  # loaded before init, as 'datalibrary up' does
    db = Database(settings.connect_url())
    result = initialize(settings, db)
    assert settings.secret_key is not None
    app = create_app(settings, db)
    with UnixServer(app, settings.home / "run" / "api" / "api.sock"):
        yield settings, db, app, result
    db.dispose()


def admin_client(app, db, settings) -> ApiClient:  # type: ignore[no-untyped-def]
    from datalibrary.auth import service as auth_service
    from datalibrary.auth.permissions import Principal

    with db.session() as session:
        auth_service.create_user(session, Principal.system("test"), "sci", roles={"scientist"})
        secret = auth_service.create_token(session, Principal.system("test"), "sci").secret
    return ApiClient(app, secret)


def test_first_launch_right_after_init_works(fresh) -> None:  # type: ignore[no-untyped-def]
    settings, db, app, _ = fresh
    client = admin_client(app, db, settings)
    launched = client.post("/api/v1/workspaces", json={"product": "open-notebook", "instance_type": "tiny"})
    assert launched.status_code == 202, launched.text
    wid = launched.json()["id"]
    state = wait_state(client, wid, "running", "failed")
    assert state["state"] == "running", state["state_reason"]
    assert client.post(f"/api/v1/workspaces/{wid}/terminate").status_code == 202
    assert wait_state(client, wid, "terminated")["state"] == "terminated"


def test_a_stop_requested_while_starting_ends_stopped(fresh) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    from datalibrary.auth import service as auth_service
    from datalibrary.workspaces import service

    settings, db, app, _ = fresh
    admin_client(app, db, settings)
    with db.session() as session:
        owner = auth_service.principal_for(auth_service.get_user(session, "sci"))
        wid = service.request_create(
            session, owner, settings, product="open-notebook", instance_type="tiny"
        ).id

    async def scenario() -> str:
        start = asyncio.create_task(service.execute(db, settings, wid))
        await asyncio.sleep(0.3)  # the start is in flight
        with db.session() as session:
            assert service.request(session, owner, wid, "stop").state == "stopping"
        return await start

    assert asyncio.run(scenario()) == "stopped"
