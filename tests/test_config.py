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
