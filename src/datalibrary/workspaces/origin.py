"""Each workspace is served from its own origin, never the console's.

JupyterLab, its extensions and notebooks' HTML output are user-controlled content; anything
served on the console's origin could act as whoever looks at it (an administrator opening a
scientist's workspace included). So workspace ``N`` lives at ``ws-N.<app_domain>`` (a
per-workspace host name under a wildcard domain, as JupyterHub's subdomain mode and Coder's
wildcard app hosts do). The console's session cookie is host-only and never sent there.

Entering a workspace: the console (where the person is signed in) mints a *grant* - signed,
valid ``GRANT_SECONDS``, for one workspace and one console session, redeemable once - and
redirects to ``<workspace origin>/_dl/enter?grant=...``. The workspace origin redeems it for
its own cookie (HttpOnly, SameSite=Strict, host-only, signed, bound to that console session:
signing out of the console ends it too). A cross-site request to a workspace carries no cookie.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from datalibrary.config import Settings
from datalibrary.db.base import utcnow
from datalibrary.errors import NotAuthenticated, Unavailable
from datalibrary.workspaces.models import WorkspaceGrantUse

GRANT_SECONDS = 60
COOKIE = "dl_ws"
COOKIE_HOURS = 12
ENTER_PATH = "/_dl/enter"


def _key(settings: Settings, purpose: str) -> bytes:
    if settings.secret_key is None:
        raise Unavailable("the platform has no secret key; run 'datalibrary init'")
    return hmac.new(
        settings.secret_key.get_secret_value().encode(), purpose.encode(), hashlib.sha256
    ).digest()


def _sign(settings: Settings, purpose: str, payload: dict[str, object]) -> str:
    body = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")
    mac = hmac.new(_key(settings, purpose), body.encode(), hashlib.sha256).hexdigest()
    return f"{body}.{mac}"


def _verify(settings: Settings, purpose: str, value: str) -> dict[str, object]:
    body, _, mac = value.partition(".")
    expected = hmac.new(_key(settings, purpose), body.encode(), hashlib.sha256).hexdigest()
    if not body or not hmac.compare_digest(mac.encode(), expected.encode()):
        raise NotAuthenticated("this workspace link is not valid; open the workspace from the console")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    if float(payload.get("exp", 0)) < time.time():
        raise NotAuthenticated("this workspace link has expired; open the workspace from the console again")
    return payload


# --- host names -----------------------------------------------------------------------------


def _host_pattern(settings: Settings) -> re.Pattern[str]:
    domain = re.escape(settings.workspaces.app_domain.lower().strip("."))
    return re.compile(rf"^ws-(\d{{1,12}})\.{domain}(?::\d+)?$")


def workspace_of_host(settings: Settings, host: str | None) -> int | None:
    """The workspace whose origin ``host`` (a Host header) is; None for the console's hosts."""
    match = _host_pattern(settings).match((host or "").lower())
    return int(match.group(1)) if match else None


def is_static_host(settings: Settings, host: str | None) -> bool:
    """Whether ``host`` is ``static.<app_domain>``, where JupyterLab's own files are served."""
    domain = re.escape(settings.workspaces.app_domain.lower().strip("."))
    return re.match(rf"^static\.{domain}(?::\d+)?$", (host or "").lower()) is not None


def workspace_origin(settings: Settings, workspace_id: int, console_port: int | None) -> str:
    """``http://ws-12.ws.localhost:8000``: the scheme of the console, the configured domain,
    and the configured port (default: the port the console itself was reached on)."""
    return _origin(settings, f"ws-{workspace_id}", console_port)


def static_origin(settings: Settings, port: int | None) -> str:
    """``http://static.ws.localhost:8000``: one origin for every workspace's JupyterLab files,
    so that a browser, which keeps files per site, fetches them once for all workspaces."""
    return _origin(settings, "static", port)


def static_source(settings: Settings) -> str:
    """The static origin as a CSP source (any port: the one a request came in on)."""
    scheme = "https" if settings.server.https else "http"
    return f"{scheme}://static.{settings.workspaces.app_domain.strip('.')}:*"


def _origin(settings: Settings, label: str, console_port: int | None) -> str:
    scheme = "https" if settings.server.https else "http"
    port = settings.workspaces.app_port or console_port
    default = 443 if scheme == "https" else 80
    suffix = f":{port}" if port and port != default else ""
    return f"{scheme}://{label}.{settings.workspaces.app_domain.strip('.')}{suffix}"


# --- grants and the workspace-origin cookie ---------------------------------------------------


def mint_grant(settings: Settings, workspace_id: int, session_id: str) -> str:
    payload = {
        "w": workspace_id,
        "s": session_id,
        "n": secrets.token_urlsafe(12),
        "exp": time.time() + GRANT_SECONDS,
    }
    return _sign(settings, "workspace-grant", payload)


def redeem_grant(session: Session, settings: Settings, workspace_id: int, grant: str) -> str:
    """The console session the grant was minted for. Each grant works once, on every replica:
    its nonce is recorded in the database (spent ones are forgotten when they expire)."""
    payload = _verify(settings, "workspace-grant", grant)
    if payload.get("w") != workspace_id:
        raise NotAuthenticated("this link is for another workspace")
    nonce = str(payload.get("n"))[:32]
    expires = datetime.fromtimestamp(float(payload["exp"]), UTC)  # type: ignore[arg-type]
    session.execute(delete(WorkspaceGrantUse).where(WorkspaceGrantUse.expires_at < utcnow()))
    try:
        with session.begin_nested():
            session.add(WorkspaceGrantUse(nonce=nonce, expires_at=expires))
    except IntegrityError as exc:
        raise NotAuthenticated(
            "this workspace link was already used; open the workspace from the console again"
        ) from exc
    session.commit()
    return str(payload["s"])


@dataclass(frozen=True)
class Entry:
    workspace_id: int
    session_id: str


def cookie_value(settings: Settings, workspace_id: int, session_id: str) -> str:
    payload = {"w": workspace_id, "s": session_id, "exp": time.time() + COOKIE_HOURS * 3600}
    return _sign(settings, "workspace-cookie", payload)


def read_cookie(settings: Settings, workspace_id: int, value: str) -> Entry:
    payload = _verify(settings, "workspace-cookie", value)
    if payload.get("w") != workspace_id:
        raise NotAuthenticated("sign in to open a workspace")
    return Entry(workspace_id, str(payload["s"]))
