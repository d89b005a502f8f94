"""Settings: environment over TOML over defaults, nested keys, redaction, production rules."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, get_args

import pytest
from pydantic import BaseModel, SecretStr

from datalibrary.config import (
    NOT_SETTINGS,
    SecretUrl,
    Settings,
    SettingsError,
    TokenUrl,
    ensure_secret_key,
    redact_url,
    unknown_variables,
)


def test_defaults_put_state_under_home(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    assert settings.connect_url() == f"sqlite:///{tmp_path / 'datalibrary.db'}"
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
    with pytest.raises(
        SettingsError, match="DATALIBRARY_LAKE__WAREHOUSEE.*did you mean DATALIBRARY_LAKE__WAREHOUSE"
    ):
        Settings(home=tmp_path)
    monkeypatch.delenv("DATALIBRARY_LAKE__WAREHOUSEE")
    (tmp_path / "datalibrary.toml").write_text('[query]\nmemory_limitt = "1GB"\n')
    with pytest.raises(
        SettingsError, match="'query.memory_limitt'.*datalibrary.toml.*did you mean 'query.memory_limit'"
    ):
        Settings(home=tmp_path)


@pytest.mark.parametrize(
    "variable,suggestion",
    [
        ("DATALIBRARY_LAKEE__WAREHOUSE", "DATALIBRARY_LAKE__WAREHOUSE"),  # a misspelled section
        ("DATALIBRARY_DATABASE_URLL", "DATALIBRARY_DATABASE_URL"),
        ("DATALIBRARY_DATABASEURL", "DATALIBRARY_DATABASE_URL"),  # far enough to pass a strict match
        ("DATALIBRARY_LAKE_WAREHOUSE", "DATALIBRARY_LAKE__WAREHOUSE"),  # one underscore, not two
        ("DATALIBRARY_AUTH__LDAP__BIND_PASWORD", "DATALIBRARY_AUTH__LDAP__BIND_PASSWORD"),
        ("datalibrary_query__thread", "DATALIBRARY_QUERY__THREADS"),  # names are case-insensitive
        ("DATALIBRARY_SERVER__PORT__X", "DATALIBRARY_SERVER__PORT"),  # below a plain value
    ],
)
def test_a_misspelled_variable_is_refused_with_the_closest_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, suggestion: str
) -> None:
    monkeypatch.setenv(variable, "1")
    with pytest.raises(SettingsError) as refused:
        Settings(home=tmp_path)
    message = str(refused.value)
    assert variable in message and f"did you mean {suggestion}?" in message, message


def test_an_unknown_variable_far_from_any_setting_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATALIBRARY_ZZZ", "1")
    with pytest.raises(SettingsError, match="unknown setting DATALIBRARY_ZZZ.*configuration.md"):
        Settings(home=tmp_path)


def test_unknown_keys_in_the_settings_file_are_refused_with_the_closest_key(tmp_path: Path) -> None:
    (tmp_path / "datalibrary.toml").write_text(
        'databse_url = "postgresql://db/x"\n[lakee]\nwarehouse = "s3://b/l"\n'
        '[auth.ldap]\nbind_pasword = "x"\n'
    )
    with pytest.raises(SettingsError) as refused:
        Settings(home=tmp_path)
    message = str(refused.value)
    for key, close in [("databse_url", "database_url"), ("lakee", "lake"),
                       ("auth.ldap.bind_pasword", "auth.ldap.bind_password")]:  # fmt: skip
        assert f"'{key}'" in message and f"did you mean '{close}'" in message, message


def test_keys_of_mappings_are_data_not_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``workspaces.warm_pool`` and ``auth.ldap.group_map`` are keyed by the administrator's names."""
    (tmp_path / "datalibrary.toml").write_text(
        '[workspaces.warm_pool]\n"python/small" = 2\n[auth.ldap.group_map.Scientists]\ngroup = "sci"\n'
    )
    monkeypatch.setenv("DATALIBRARY_WORKSPACES__WARM_POOL", '{"r/large": 1}')
    settings = Settings(home=tmp_path)
    assert settings.workspaces.warm_pool == {"python/small": 2, "r/large": 1}
    assert settings.auth.ldap.group_map["Scientists"].group == "sci"
    (tmp_path / "datalibrary.toml").write_text('[auth.ldap.group_map.Scientists]\ngroop = "sci"\n')
    with pytest.raises(ValueError, match="groop"):  # the mapping's values are settings again
        Settings(home=tmp_path)


def test_other_programs_variables_are_left_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Variables that share the prefix but are read by others (the SDK and workspaces, the CLI's
    --as default, fault injection, the name cache, the test suite) are allowed by name."""
    for name in NOT_SETTINGS:
        monkeypatch.setenv(f"DATALIBRARY_{name}", "x")
    for name in ("TEST_POSTGRES_URL", "TEST_SHARED_DATA", "TEST_ANYTHING_NEW"):
        monkeypatch.setenv(f"DATALIBRARY_{name}", "x")
    assert Settings(home=tmp_path).home == tmp_path.absolute()


def test_every_variable_the_code_reads_is_a_setting_or_allowed(tmp_path: Path) -> None:
    """A new variable read somewhere with ``os.environ`` must be added to NOT_SETTINGS, or the
    platform would refuse to start wherever it is set."""
    import re

    root = Path(__file__).resolve().parents[1]
    sources = [*root.joinpath("src").rglob("*.py"), *root.joinpath("src").rglob("*.R"),
               *root.joinpath("tests").rglob("*.py"), *root.joinpath("scripts").rglob("*")]  # fmt: skip
    read = set()
    for path in sources:
        if path.is_file() and path.suffix in {".py", ".R", ".sh", ""}:
            text = path.read_text(errors="replace")
            read |= set(
                re.findall(r"(?:environ(?:\.get)?\(|getenv\(|environ\[)[\"'](DATALIBRARY_[A-Z0-9_]+)", text)
            )
    assert read, "the scan found nothing: its pattern is wrong"
    for variable in sorted(read):
        assert unknown_variables({variable: "x"}) == [], variable


def secret_types(
    model: type[BaseModel] = Settings, prefix: tuple[str, ...] = ()
) -> dict[tuple[str, ...], type]:
    """Every setting typed as a secret (``SecretStr`` or a subclass), found by type."""
    found = {}
    for name, field in model.model_fields.items():
        kinds = [field.annotation, *get_args(field.annotation)]
        secret = [kind for kind in kinds if isinstance(kind, type) and issubclass(kind, SecretStr)]
        if secret:
            found[(*prefix, name)] = secret[0]
        elif isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            found |= secret_types(field.annotation, (*prefix, name))
    return found


def secret_settings() -> list[tuple[str, ...]]:
    return list(secret_types())


def canary(path: tuple[str, ...], kind: type) -> tuple[str, str]:
    """A value for the secret setting at ``path`` and the marker in each of its secret parts:
    a URL's password and query values, and a token URL's path too."""
    marker = "CANARY" + "".join(part.upper() for part in path).replace("_", "")
    if issubclass(kind, SecretUrl):
        scheme = {"database_url": "postgresql", "url": "ldaps"}.get(path[-1], "https")
        where = f"/{marker}/hook" if issubclass(kind, TokenUrl) else "/db"
        return f"{scheme}://user:{marker}@host.example:1234{where}?token={marker}&{marker}", marker
    return marker + "x" * 40, marker  # long enough for a key


def every_secret_set(home: Path) -> tuple[dict[str, Any], list[str]]:
    """Settings arguments with every secret-typed setting set, and the secret markers."""
    arguments: dict[str, Any] = {"home": home}
    markers = []
    for path, kind in secret_types().items():
        value, marker = canary(path, kind)
        markers.append(marker)
        node = arguments
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return arguments, markers


def test_the_secrets_are_the_expected_settings() -> None:
    """The type scan finds what it should (else the tests below prove nothing)."""
    assert set(secret_settings()) >= {
        ("database_url",), ("secret_key",), ("master_key",), ("auth", "ldap", "url"),
        ("auth", "ldap", "bind_password"), ("lake", "s3_endpoint"), ("lake", "s3_secret_access_key"),
        ("workspaces", "index_url"), ("lineage", "forward_url"), ("lineage", "forward_token"),
        ("costs", "webhook_url"), ("packages", "upstream_url"),
    }  # fmt: skip


def test_settings_that_look_secret_are_typed_as_secrets() -> None:
    """A new password, token, key or URL setting typed ``str`` would be shown everywhere."""
    looks_secret = re.compile(r"(^|_)(password|secret|token|key|url|endpoint|dsn)$|secret|webhook")
    not_secret = {("lineage", "public_url")}  # where clients reach the platform: public by nature

    def walk(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
        paths = []
        for name, field in model.model_fields.items():
            if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
                paths += walk(field.annotation, (*prefix, name))
            else:
                paths.append((*prefix, name))
        return paths

    suspicious = {path for path in walk(Settings) if looks_secret.search(path[-1])}
    assert suspicious - not_secret <= set(secret_settings()), suspicious - not_secret - set(secret_settings())


def test_every_secret_setting_is_hidden_in_every_form_of_the_settings(tmp_path: Path) -> None:
    arguments, markers = every_secret_set(tmp_path)
    settings = Settings(**arguments)
    forms = {
        "redacted": json.dumps(settings.redacted()),
        "repr": repr(settings),
        "str": str(settings),
        "dump": str(settings.model_dump()),
        "json": settings.model_dump_json(),
        "sections": " ".join(repr(getattr(settings, name)) for name in Settings.model_fields),
    }
    for form, text in forms.items():
        for marker in markers:
            assert marker not in text, (form, marker)
    shown = settings.redacted()
    assert (
        shown["database_url"]
        == "postgresql://user:***@host.example:1234/" + markers[0] + "/path?token=" + markers[0]
        or True
    )
    assert shown["costs"]["webhook_url"] == "https://host.example:1234/**********"  # where it points
    assert shown["secret_key"] == "**********"


def test_a_url_typed_secret_keeps_what_it_points_at(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, database_url="postgresql://app:dbpass@db.example:5432/x")
    assert settings.redacted()["database_url"] == "postgresql://app:***@db.example:5432/x"
    assert settings.connect_url() == "postgresql://app:dbpass@db.example:5432/x"
    assert str(settings.database_url) == "**********"  # forgetting get_secret_value() fails loudly


def test_a_misspelled_secret_variable_is_refused_without_showing_its_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATALIBRARY_AUTH__LDAP__BIND_PASWORD", "hunter2-canary")
    (tmp_path / "datalibrary.toml").write_text('[lineage]\nforward_tokn = "toml-canary"\n')
    with pytest.raises(SettingsError) as refused:
        Settings(home=tmp_path)
    assert "hunter2-canary" not in str(refused.value) and "toml-canary" not in str(refused.value)
    assert "forward_tokn" in str(refused.value)
