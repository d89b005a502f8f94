"""Settings: environment over TOML over defaults, nested keys, redaction, production rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from datalibrary.config import Settings, ensure_secret_key, redact_url


def test_defaults_put_state_under_home(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    assert settings.database_url == f"sqlite:///{tmp_path / 'datalibrary.db'}"
    assert settings.server.port == 8000


def test_toml_file_in_home_is_read_and_env_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "datalibrary.toml").write_text(
        '[server]\nport = 9100\nhost = "0.0.0.0"\n[log]\nformat = "json"\n'
    )
    monkeypatch.setenv("DATALIBRARY_HOME", str(tmp_path))
    assert Settings().server.port == 9100
    assert Settings().log.format == "json"
    monkeypatch.setenv("DATALIBRARY_SERVER__PORT", "9200")
    settings = Settings()
    assert settings.server.port == 9200
    assert settings.server.host == "0.0.0.0"


def test_database_url_switches_backend(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DATALIBRARY_DATABASE_URL", "postgresql://dl:s3cret@db.example:5432/dl")
    settings = Settings(home=tmp_path)
    assert not settings.is_sqlite
    shown = settings.redacted()
    assert "s3cret" not in str(shown)
    assert shown["database_url"].startswith("postgresql://dl:***@db.example")


def test_secrets_are_redacted(tmp_path: Path) -> None:
    ensure_secret_key(tmp_path)
    settings = Settings(home=tmp_path)
    assert settings.secret_key is not None
    assert settings.secret_key.get_secret_value() not in str(settings.redacted())
    assert settings.redacted()["secret_key"] == "**********"


def test_secret_key_file_is_private(tmp_path: Path) -> None:
    ensure_secret_key(tmp_path)
    assert (tmp_path / "secret.key").stat().st_mode & 0o777 == 0o600


def test_production_refuses_missing_secret(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="secret_key is required in production"):
        Settings(home=tmp_path, environment="production")


def test_invalid_values_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="port"):
        Settings(home=tmp_path, server={"port": 70000})


def test_redact_url_handles_non_sqlalchemy_urls() -> None:
    assert "pw" not in redact_url("s3://key:pw@bucket/prefix")


def test_unknown_keys_are_refused_not_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A typo must not fall back silently to a default (a local lake instead of S3)."""
    monkeypatch.setenv("DATALIBRARY_LAKE__WAREHOUSEE", "s3://bucket/lake")
    with pytest.raises(ValueError, match="warehousee"):
        Settings(home=tmp_path)
    monkeypatch.delenv("DATALIBRARY_LAKE__WAREHOUSEE")
    (tmp_path / "datalibrary.toml").write_text('[query]\nmemory_limitt = "1GB"\n')
    with pytest.raises(ValueError, match="memory_limitt"):
        Settings(home=tmp_path)


def test_a_misspelled_top_level_variable_names_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATALIBRARY_DATABASE_URLL", "postgresql://db/x")
    with pytest.raises(ValueError, match="did you mean DATALIBRARY_DATABASE_URL"):
        Settings(home=tmp_path)


def test_other_programs_variables_are_left_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK's and the test suite's variables share the prefix and are not settings."""
    for name in ("URL", "TOKEN", "USER", "WORKSPACE_ID", "TEST_POSTGRES_URL", "TEST_SHARED_DATA"):
        monkeypatch.setenv(f"DATALIBRARY_{name}", "x")
    assert Settings(home=tmp_path).home == tmp_path.absolute()


def test_every_credential_bearing_setting_is_redacted_by_type(tmp_path: Path) -> None:
    """Secrets are hidden because of their type, so a new one cannot be forgotten in a list."""
    settings = Settings(
        home=tmp_path,
        secret_key="k" * 40,
        master_key="m" * 64,
        database_url="postgresql://app:dbpass@db/x",
        auth={"ldap": {"url": "ldaps://svc:ldappass@dir", "bind_password": "bindpass"}},
        lake={"s3_endpoint": "http://ak:s3pass@127.0.0.1:9000", "s3_secret_access_key": "s3secret"},
        workspaces={"index_url": "https://u:indexpass@mirror/simple"},
        lineage={
            "forward_url": "https://marquez.example/api/v1/lineage?api_key=fwdtoken",
            "forward_token": "olkey",
        },
        costs={"webhook_url": "https://hooks.example/services/T0/B1/hooktoken"},
    )
    shown = str(settings.redacted())
    for secret in ("k" * 40, "m" * 64, "dbpass", "ldappass", "bindpass", "s3pass", "s3secret", "indexpass",
                   "fwdtoken", "olkey", "hooktoken"):  # fmt: skip
        assert secret not in shown, secret
    assert "hooks.example" in shown and "marquez.example" in shown  # where it points stays visible
