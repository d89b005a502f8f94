"""The forwarding outbox never stores the endpoint's URL (its path or query may be a
credential): its state is keyed by a digest, and an upgrade re-keys existing rows in place,
cursor kept. On SQLite and PostgreSQL."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text

from datalibrary.config import LineageSettings
from datalibrary.db import Database, upgrade
from datalibrary.db.migrate import alembic_config
from datalibrary.lineage import forward
from tests.helpers import Platform

SECRET_URL = "http://127.0.0.1:1/hooks/T0KEN-0f-the-hook/lineage?key=K3Y"


def test_the_outbox_state_holds_no_part_of_the_url(platform: Platform) -> None:
    # an event to forward: a query (refused, still traced)
    platform.as_user("ada").post("/api/v1/query", json={"sql": "SELECT * FROM nothing.here"})
    settings = LineageSettings(forward_url=SECRET_URL, forward_timeout_seconds=1)
    assert forward.forward_once(platform.db, settings)["error"]  # nobody listens there: kept
    with platform.db.engine.connect() as connection:
        rows = connection.execute(text("SELECT endpoint, failures FROM lineage_forwarding")).all()
    assert [row.endpoint for row in rows] == [forward.endpoint_key(SECRET_URL)]
    assert not any(part in rows[0].endpoint for part in ("T0KEN", "K3Y", "127.0.0.1"))
    with platform.db.session() as session:
        state = forward.status(session, SECRET_URL)
    assert "T0KEN" not in state["endpoint"] and state["failures"] == rows[0].failures == 1


def test_the_upgrade_rekeys_existing_rows_and_keeps_their_cursor(database_url: str) -> None:
    db = Database(database_url)
    try:
        config = alembic_config(db.engine)
        command.downgrade(config, "2003_files_reads")
        with db.engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO lineage_forwarding (endpoint, last_event_id, failures, updated_at) "
                    "VALUES (:endpoint, 41, 0, CURRENT_TIMESTAMP)"
                ),
                {"endpoint": SECRET_URL},
            )
        upgrade(db.engine)
        with db.engine.connect() as connection:
            rows = connection.execute(text("SELECT endpoint, last_event_id FROM lineage_forwarding")).all()
        assert [(row.endpoint, row.last_event_id) for row in rows] == [(forward.endpoint_key(SECRET_URL), 41)]
        with db.session() as session:
            assert forward.status(session, SECRET_URL)["last_event_id"] == 41
    finally:
        db.dispose()
