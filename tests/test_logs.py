"""Structured logs: JSON lines carrying the request id of the request that logged them."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from datalibrary.logs import CHATTY_LIBRARIES, JsonFormatter, RequestIdFilter, configure_logging
from tests.helpers import Platform


@pytest.fixture
def configured() -> Iterator[logging.Handler]:
    """The handler ``configure_logging`` installs, writing to a buffer, with pytest's own
    capture handlers put back beside it at once: they are missing only for the two statements
    that look at what ``configure_logging`` left, where nothing logs."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    saved_chatty = {name: logging.getLogger(name).level for name in CHATTY_LIBRARIES}
    configure_logging("INFO", "json")
    installed = root.handlers[:]
    root.handlers[:] = [*saved_handlers, *installed]
    try:
        assert len(installed) == 1, "configure_logging leaves exactly one handler on the root"
        handler = installed[0]
        assert isinstance(handler, logging.StreamHandler) and isinstance(handler.formatter, JsonFormatter)
        assert any(isinstance(f, RequestIdFilter) for f in handler.filters)
        assert root.level == logging.INFO
        handler.setStream(io.StringIO())
        yield handler
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        for name, level in saved_chatty.items():
            logging.getLogger(name).setLevel(level)


def test_json_logs_carry_the_request_id(
    sqlite_platform: Platform, configured: logging.StreamHandler, caplog: pytest.LogCaptureFixture
) -> None:
    app = sqlite_platform.app

    @app.get("/api/v1/log-something")
    def log_something() -> dict[str, str]:
        logging.getLogger("datalibrary.test").info("hello", extra={"rows": 3})
        return {}

    sqlite_platform.anonymous.get("/api/v1/log-something", headers={"X-Request-ID": "req-abcdef12"})
    stream = configured.stream
    assert isinstance(stream, io.StringIO)
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]
    record = next(line for line in lines if line["message"] == "hello")
    assert record["request_id"] == "req-abcdef12"
    assert record["level"] == "INFO" and record["rows"] == 3
    # pytest's capture kept working while the platform's handler was installed
    assert any(r.getMessage() == "hello" for r in caplog.records)


def test_chatty_libraries_speak_from_warning_up(configured: logging.Handler) -> None:
    for name in CHATTY_LIBRARIES:
        assert logging.getLogger(name).level == logging.WARNING, name
