"""Forwarding of stored lineage events to an external OpenLineage HTTP endpoint (Marquez...).

The append-only ``lineage_events`` table is the outbox; ``lineage_forwarding`` keeps, per
endpoint, the id of the last event the endpoint acknowledged. A background thread sends the
next events in order (one POST each, as the OpenLineage HTTP transport does); on an error it
stops, keeps the cursor and retries after an exponential backoff. Emitting never waits for
the endpoint, so the platform keeps working while it is down. Delivery is at least once.

Authentication (``forward_token``, sent as ``<forward_auth_header>: <scheme> <token>``) and
TLS verification (on by default, against ``forward_ca_bundle`` when set) come from the
settings; neither the token nor the endpoint's path is ever logged.
"""

from __future__ import annotations

import hashlib
import logging
import ssl
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from datalibrary.config import LineageSettings, origin_only, reveal
from datalibrary.db import Database
from datalibrary.db.base import utcnow
from datalibrary.lineage import facets
from datalibrary.lineage.exports import expire_exports
from datalibrary.lineage.models import LineageEvent, LineageForwarding

log = logging.getLogger(__name__)


def endpoint_key(endpoint: str) -> str:
    """What identifies an endpoint's outbox state in the database: a digest of its URL, never
    the URL, whose path or query may be a credential (a ``TokenUrl``, like the setting)."""
    return "sha256:" + hashlib.sha256(endpoint.encode()).hexdigest()


def _state(session: Session, endpoint: str) -> LineageForwarding:
    key = endpoint_key(endpoint)
    state = session.get(LineageForwarding, key)
    if state is None:
        state = LineageForwarding(endpoint=key, last_event_id=0, failures=0, updated_at=utcnow())
        session.add(state)
        session.flush()
    return state


def auth_headers(settings: LineageSettings) -> dict[str, str]:
    """The endpoint's authentication header, if a token is configured."""
    if settings.forward_token is None:
        return {}
    token = settings.forward_token.get_secret_value()
    scheme = settings.forward_auth_scheme.strip()
    return {settings.forward_auth_header: f"{scheme} {token}" if scheme else token}


def tls_verify(settings: LineageSettings) -> ssl.SSLContext | bool:
    """Verify the endpoint's certificate: against the CA bundle if one is set, else the
    system's trust store; ``False`` only when verification was turned off."""
    if not settings.forward_verify_tls:
        return False
    if settings.forward_ca_bundle is not None:
        return ssl.create_default_context(cafile=str(settings.forward_ca_bundle))
    return True


def make_client(settings: LineageSettings) -> httpx.Client:
    """The HTTP client of the forwarder, with its authentication and TLS settings."""
    return httpx.Client(
        timeout=settings.forward_timeout_seconds,
        headers=auth_headers(settings),
        verify=tls_verify(settings),
        follow_redirects=False,
    )


def forward_once(
    db: Database, settings: LineageSettings, client: httpx.Client | None = None
) -> dict[str, Any]:
    """Send the next batch; returns ``{"sent": n, "error": ..., "backlog": ...}``."""
    endpoint = reveal(settings.forward_url)
    if not endpoint:
        return {"sent": 0, "error": None, "skipped": "no endpoint"}
    with db.session() as session:
        state = _state(session, endpoint)
        if state.next_attempt_at and state.next_attempt_at > utcnow():
            return {"sent": 0, "error": state.last_error, "skipped": "backing off"}
        cursor = state.last_event_id
        batch = session.execute(
            select(LineageEvent.id, LineageEvent.payload)
            .where(LineageEvent.id > cursor)
            .order_by(LineageEvent.id)
            .limit(settings.forward_batch)
        ).all()
    sent, last, error = 0, cursor, None
    owns = client is None
    http = client or make_client(settings)
    try:
        for event_id, payload in batch:
            try:
                response = http.post(endpoint, json=facets.outgoing(payload, settings.forward_sql))
                if response.status_code >= 300:
                    error = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}".replace(endpoint, origin_only(endpoint))[:400]
            if error:
                break
            sent, last = sent + 1, event_id
    finally:
        if owns:
            http.close()
    with db.session() as session:
        state = _state(session, endpoint)
        values: dict[str, Any] = {"updated_at": utcnow()}
        if last > cursor:
            values.update(last_event_id=last)
        if error:
            failures = state.failures + 1
            delay = min(
                settings.forward_interval_seconds * 2 ** min(failures, 20),
                settings.forward_max_backoff_seconds,
            )
            values.update(
                failures=failures, last_error=error, next_attempt_at=utcnow() + timedelta(seconds=delay)
            )
        else:
            values.update(failures=0, last_error=None, next_attempt_at=None)
        # Compare-and-swap on the cursor: two forwarders never move it backwards.
        key = endpoint_key(endpoint)
        session.execute(
            update(LineageForwarding)
            .where(LineageForwarding.endpoint == key, LineageForwarding.last_event_id == cursor)
            .values(**values)
        )
    if error:
        log.warning(
            "lineage forwarding to %s paused after %d event(s): %s", origin_only(endpoint), sent, error
        )
    return {"sent": sent, "error": error}


def status(session: Session, endpoint: str | None) -> dict[str, Any]:
    if not endpoint:
        return {"enabled": False}
    state = session.get(LineageForwarding, endpoint_key(endpoint))
    last = state.last_event_id if state else 0
    newest = session.scalar(select(LineageEvent.id).order_by(LineageEvent.id.desc()).limit(1)) or 0
    return {
        "enabled": True,
        "endpoint": origin_only(endpoint),  # its path may carry a secret (a TokenUrl, like the setting)
        "last_event_id": last,
        "backlog": max(newest - last, 0),
        "failures": state.failures if state else 0,
        "last_error": state.last_error if state else None,
    }


class LineageWorker:
    """The lineage background thread of one server process: forwards events when
    ``forward_url`` is set, and deletes the files of expired exports every minute."""

    EXPIRE_EVERY = 60.0

    def __init__(
        self, db: Database, settings: LineageSettings, gate: Callable[[str], bool] | None = None
    ) -> None:
        self.db, self.settings = db, settings
        # with several replicas: does this one hold the task's lease (db.leases)?
        self.gate = gate or (lambda _task: True)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="lineage-worker", daemon=True)
        self._expired_at = 0.0

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _expire(self) -> None:
        now = time.monotonic()
        if now - self._expired_at >= self.EXPIRE_EVERY and self.gate("lineage.expire_exports"):
            self._expired_at = now
            with self.db.session() as session:
                expire_exports(session)

    def _loop(self) -> None:
        with make_client(self.settings) as client:
            while not self._stop.is_set():
                result: dict[str, Any] = {"sent": 0}
                try:
                    self._expire()
                    if self.settings.forward_url and self.gate("lineage.forward"):
                        result = forward_once(self.db, self.settings, client)
                except Exception:  # the database may be briefly unavailable: try again later
                    log.exception("lineage background round failed")
                if result.get("sent", 0) < self.settings.forward_batch or result.get("error"):
                    self._stop.wait(self.settings.forward_interval_seconds)
