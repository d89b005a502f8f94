"""The OpenAPI document describes the real API: checked by schemathesis against the live
server, and by walking the document for the rules every operation must follow."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from datalibrary.auth import service as auth_service
from datalibrary.auth.permissions import Principal
from datalibrary.bounds import MAX_INT
from tests.helpers import Platform

CONFIG = Path(__file__).parent / "schemathesis.toml"
# fixed, so CI is repeatable; DATALIBRARY_CONTRACT_SEED=<n> explores with another seed
SEED = os.environ.get("DATALIBRARY_CONTRACT_SEED", "20261203")


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict)
    ]


def _numbers(schema: Any, where: str) -> list[tuple[str, dict[str, Any]]]:
    """Every integer or number schema inside ``schema``, with where it sits."""
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(schema, dict):
        if schema.get("type") in ("integer", "number"):
            found.append((where, schema))
        for key, value in schema.items():
            found += _numbers(value, f"{where}/{key}")
    elif isinstance(schema, list):
        for index, value in enumerate(schema):
            found += _numbers(value, f"{where}[{index}]")
    return found


def test_errors_are_documented_as_problems(live_platform: tuple[Platform, str]) -> None:
    platform, _ = live_platform
    document = platform.anonymous.get("/api/openapi.json").json()
    assert "HTTPValidationError" not in str(document), "FastAPI's error schema is not what we send"
    for method, path, operation in _operations(document):
        responses = operation["responses"]
        assert "500" in responses and "default" in responses, f"{method} {path}"
        if operation.get("security"):
            assert {"401", "403"} <= responses.keys(), f"{method} {path} does not list 401/403"
        if operation.get("parameters") or operation.get("requestBody"):
            assert "422" in responses, f"{method} {path} takes input but does not list 422"
        for status, response in responses.items():
            if status.startswith(("4", "5")) or status == "default":
                assert list(response["content"]) == ["application/problem+json"], f"{method} {path} {status}"


def test_problems_carry_only_declared_members(live_platform: tuple[Platform, str]) -> None:
    """An error may carry a refused value for the server's own records; a client never sees it."""
    from fastapi import APIRouter

    from datalibrary.errors import InvalidInput

    platform, _ = live_platform
    router = APIRouter()

    @router.get("/api/v1/test-leaky-error")
    def leaky() -> None:
        raise InvalidInput("a value is not a date", field="BRTHDTC", row=7, value="1950-03-12 SMITH")

    platform.app.include_router(router)
    body = platform.anonymous.get("/api/v1/test-leaky-error").json()
    assert body["field"] == "BRTHDTC" and body["row"] == 7
    assert "value" not in body and "SMITH" not in str(body)
    document = platform.anonymous.get("/api/openapi.json").json()
    assert document["components"]["schemas"]["Problem"]["additionalProperties"] is False


def test_every_input_number_is_bounded(live_platform: tuple[Platform, str]) -> None:
    """Unbounded integers reached the database driver and overflowed (500): every integer and
    number a client may send has a minimum and a maximum that 64-bit storage can hold."""
    platform, _ = live_platform
    document = platform.anonymous.get("/api/openapi.json").json()
    inputs: list[tuple[str, dict[str, Any]]] = []
    for method, path, operation in _operations(document):
        for parameter in operation.get("parameters", []):
            inputs += _numbers(parameter["schema"], f"{method} {path} {parameter['name']}")
        body = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
        if body:
            inputs += _numbers(_resolve(document, body["schema"]), f"{method} {path} body")
    assert inputs, "the walk found the numeric inputs"
    unbounded = [
        where
        for where, schema in inputs
        if "minimum" not in schema or schema.get("maximum", MAX_INT + 1) > MAX_INT
    ]
    assert unbounded == []


def _resolve(document: dict[str, Any], schema: Any) -> Any:
    """Inline ``$ref``s (the request schemas here are not recursive)."""
    if isinstance(schema, dict):
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            return _resolve(document, document["components"]["schemas"][name])
        return {key: _resolve(document, value) for key, value in schema.items()}
    if isinstance(schema, list):
        return [_resolve(document, value) for value in schema]
    return schema


def test_out_of_range_ids_are_invalid_input_not_server_errors(live_platform: tuple[Platform, str]) -> None:
    platform, _ = live_platform
    admin = platform.as_user("admin")
    huge = 2**70
    for method, path in [
        ("GET", f"/api/v1/workspaces/{huge}"),
        ("POST", f"/api/v1/workspaces/{huge}/pause"),
        ("DELETE", f"/api/v1/grants/{huge}"),
        ("DELETE", f"/api/v1/tokens/{huge}"),
        ("GET", f"/api/v1/audit/events?offset={huge}"),
        ("GET", f"/api/v1/ingest/jobs?offset={huge}"),
    ]:
        response = admin.request(method, path)
        assert response.status_code == 422, (method, path, response.text)
    response = admin.post("/api/v1/lake/maintain", json={"retention_hours": 1.25e308})
    assert response.status_code == 422


def test_405_lists_every_allowed_method(live_platform: tuple[Platform, str]) -> None:
    platform, _ = live_platform
    response = platform.as_user("admin").request("PATCH", "/api/v1/grants")
    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) == {"GET", "POST"}
    assert response.json()["detail"] != response.json()["title"]
    assert "PATCH is not allowed" in response.json()["detail"]


def test_malformed_json_says_so(live_platform: tuple[Platform, str]) -> None:
    platform, _ = live_platform
    response = platform.as_user("admin").post(
        "/api/v1/groups", content=b'{"name": "x"', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert "not valid JSON" in response.json()["detail"]
    assert "body.1" not in response.json()["detail"]


def test_schemathesis_finds_no_failure_against_the_live_api(live_platform: tuple[Platform, str]) -> None:
    """schemathesis generates requests from the document and checks every response: no 5xx, only
    documented status codes, content types and headers, bodies that match their schemas, valid
    input accepted (exceptions, with their reasons, in tests/schemathesis.toml)."""
    platform, url = live_platform
    with platform.db.session() as session:
        token = auth_service.create_token(session, Principal.system("test"), "admin", name="contract").secret
    st = Path(sys.executable).with_name("st")
    result = subprocess.run(
        [
            str(st),
            "--config-file",
            str(CONFIG),
            "--no-color",
            "run",
            f"{url}/api/openapi.json",
            "--phases",
            "examples,coverage,fuzzing",
            "--seed",
            SEED,
            "--workers",
            "1",
            "--header",
            f"Authorization: Bearer {token}",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "SCHEMATHESIS_TELEMETRY": "false"},
    )
    summary = result.stdout[-6000:]
    assert result.returncode == 0, summary
    assert "Tested:" in result.stdout, summary
