"""Server basics: health, readiness, metrics, problems, request ids, OpenAPI and docs."""

from __future__ import annotations

from alembic import command

from datalibrary.db.migrate import alembic_config
from tests.helpers import Platform


def test_healthz_and_readyz(platform: Platform) -> None:
    client = platform.anonymous
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "migrations": "ok"}


def test_readyz_reports_pending_migrations(platform: Platform) -> None:
    command.downgrade(alembic_config(platform.db.engine), "base")
    response = platform.anonymous.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["migrations"] == "pending"


def test_readyz_reports_unreachable_database(sqlite_platform: Platform) -> None:
    from datalibrary.api import create_app
    from datalibrary.db import Database
    from tests.helpers import ApiClient

    nowhere = Database("postgresql://postgres@127.0.0.1:1/none?connect_timeout=2")
    response = ApiClient(create_app(sqlite_platform.settings, nowhere)).get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"].startswith("unreachable")
    nowhere.dispose()


def test_metrics_count_requests_per_route(sqlite_platform: Platform) -> None:
    client = sqlite_platform.anonymous
    for _ in range(3):
        client.get("/healthz")
    text = client.get("/metrics").text
    assert 'datalibrary_http_requests_total{method="GET",route="/healthz",status="200"} 3.0' in text
    assert "datalibrary_http_request_duration_seconds_bucket" in text


def test_errors_are_problem_documents(sqlite_platform: Platform) -> None:
    client = sqlite_platform.anonymous
    missing = client.get("/api/v1/does-not-exist")
    assert missing.status_code == 404
    assert missing.json()["type"] == "/problems/not-found"
    unauthenticated = client.get("/api/v1/me")
    assert unauthenticated.status_code == 401
    assert unauthenticated.headers["WWW-Authenticate"] == "Bearer"
    invalid = sqlite_platform.as_user("ada").post("/api/v1/tokens", json={"expires_days": "soon"})
    assert invalid.status_code == 422
    body = invalid.json()
    assert body["type"] == "/problems/invalid-input"
    assert body["errors"][0]["field"] == "body.expires_days"


def test_unexpected_errors_never_leak_a_stack_trace(sqlite_platform: Platform) -> None:
    app = sqlite_platform.app

    @app.get("/api/v1/boom")
    def boom() -> None:
        raise RuntimeError("secret internal detail")

    response = sqlite_platform.anonymous.get("/api/v1/boom")
    assert response.status_code == 500
    assert response.json()["type"] == "/problems/internal-error"
    assert "secret internal detail" not in response.text


def test_request_id_is_propagated(sqlite_platform: Platform) -> None:
    client = sqlite_platform.anonymous
    assert (
        client.get("/healthz", headers={"X-Request-ID": "abc-12345678"}).headers["X-Request-ID"]
        == "abc-12345678"
    )
    hostile = client.get("/healthz", headers={"X-Request-ID": "x\r\nSet-Cookie: y"})
    assert hostile.headers["X-Request-ID"] != "x\r\nSet-Cookie: y"
    problem = client.get("/api/v1/me", headers={"X-Request-ID": "req-00000001"})
    assert problem.json()["request_id"] == "req-00000001"


def test_openapi_and_docs_are_served(sqlite_platform: Platform) -> None:
    client = sqlite_platform.anonymous
    spec = client.get("/api/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    assert "/api/v1/me" in spec["paths"]
    assert "/readyz" in spec["paths"]
    docs = client.get("/api/docs")
    assert docs.status_code == 200
    assert "/api/docs-static/swagger-ui-bundle.js" in docs.text
    assert client.get("/api/docs-static/swagger-ui-bundle.js").status_code == 200


def test_config_endpoint_redacts_secrets(sqlite_platform: Platform) -> None:
    response = sqlite_platform.as_user("root").get("/api/v1/config")
    assert response.status_code == 403  # a scientist may not read the configuration
    sqlite_platform.add_user("ops", "admin")
    data = sqlite_platform.as_user("ops").get("/api/v1/config").json()
    assert data["secret_key"] == "**********"


def test_config_endpoint_hides_every_secret_setting(sqlite_platform: Platform) -> None:
    """Every setting typed as a secret, set to a marked value, is absent from the answer."""
    from datalibrary.api import create_app
    from datalibrary.config import Settings
    from tests.helpers import ApiClient
    from tests.test_config import every_secret_set

    arguments, markers = every_secret_set(sqlite_platform.settings.home)
    sqlite_platform.add_user("ops", "admin")
    sqlite_platform.as_user("ops")  # issues the token
    app = create_app(Settings(**arguments), sqlite_platform.db)
    response = ApiClient(app, sqlite_platform.tokens["ops"]).get("/api/v1/config")
    assert response.status_code == 200
    assert response.json()["lineage"]["forward_url"] == "https://host.example:1234/**********"
    for marker in markers:
        assert marker not in response.text, marker
