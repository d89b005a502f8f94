"""Structured logs: JSON lines carrying the request id of the request that logged them."""

from __future__ import annotations

import json
import logging

import pytest

from datalibrary.logs import configure_logging
from tests.helpers import Platform


def test_json_logs_carry_the_request_id(
    sqlite_platform: Platform, capsys: pytest.CaptureFixture[str]
) -> None:
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    configure_logging("INFO", "json")
    try:
        app = sqlite_platform.app

        @app.get("/api/v1/log-something")
        def log_something() -> dict[str, str]:
            logging.getLogger("datalibrary.test").info("hello", extra={"rows": 3})
            return {}

        sqlite_platform.anonymous.get("/api/v1/log-something", headers={"X-Request-ID": "req-abcdef12"})
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
        record = next(line for line in lines if line["message"] == "hello")
        assert record["request_id"] == "req-abcdef12"
        assert record["level"] == "INFO" and record["rows"] == 3
    finally:  # give pytest back its own capture handlers
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
