"""The optional budget webhook: one JSON POST per alert, best effort, never raising."""

from __future__ import annotations

import json
import logging
import urllib.request
from typing import Any

log = logging.getLogger(__name__)


def post(url: str | None, payload: dict[str, Any], timeout: float = 5.0) -> str:
    """POST ``payload``; answer 'sent', 'failed' or 'off' (no URL configured)."""
    if not url:
        return "off"
    if not url.startswith(("http://", "https://")):
        log.warning("costs.webhook_url is not an http(s) URL; budget webhook skipped")
        return "failed"
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json", "User-Agent": "DataLibrary budget alert"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return "sent" if 200 <= response.status < 300 else "failed"
    except Exception as exc:
        log.warning("budget webhook failed: %s", type(exc).__name__)
        return "failed"
