"""Settings: environment variables ``DATALIBRARY_*`` over one TOML file in the state directory.

Nested sections use ``__`` in environment variables (``DATALIBRARY_QUERY__THREADS=4``).
The state directory is resolved first because the TOML file lives inside it.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

CONFIG_FILE_NAME = "datalibrary.toml"
SECRET_KEY_FILE_NAME = "secret.key"  # noqa: S105 - a file name


def default_home() -> Path:
    """The state directory: ``DATALIBRARY_HOME`` or ``./.datalibrary``."""
    return Path(os.environ.get("DATALIBRARY_HOME", ".datalibrary")).expanduser().absolute()


class ServerSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    # Marks session cookies Secure; set when served behind HTTPS.
    https: bool = False


class LogSettings(BaseModel):
    level: str = "INFO"
    format: Literal["text", "json"] = "text"


class LdapGroupMapping(BaseModel):
    """Where members of one LDAP group land: a DataLibrary group, and the roles it grants."""

    group: str = Field(pattern=r"^[a-z][a-z0-9._-]{1,63}$")
    roles: list[str] = []

    @field_validator("roles")
    @classmethod
    def _known_roles(cls, roles: list[str]) -> list[str]:
        from datalibrary.auth.permissions import ROLES

        unknown = set(roles) - set(ROLES)
        if unknown:
            raise ValueError(f"unknown role(s) {sorted(unknown)}; roles are {list(ROLES)}")
        return roles


class LdapSettings(BaseModel):
    """LDAP / Active Directory sign-in (docs/how-to/ldap.md)."""

    enabled: bool = False
    url: str = "ldap://127.0.0.1:389"
    start_tls: bool = False
    ca_file: Path | None = None
    timeout_seconds: int = Field(5, ge=1, le=120)
    # Either a DN template (bind directly as the user) or a service bind that searches for the DN.
    user_dn_template: str | None = None
    bind_dn: str | None = None
    bind_password: SecretStr | None = None
    user_base: str = ""
    user_filter: str = "(uid={name})"
    display_name_attribute: str = "cn"
    email_attribute: str = "mail"
    # Group membership: search groups whose member attribute holds the user's DN, or read memberOf.
    group_membership: Literal["search", "memberof"] = "search"
    group_base: str = ""
    group_filter: str = "(|(member={dn})(uniqueMember={dn})(memberUid={name}))"
    group_name_attribute: str = "cn"
    # LDAP group name (its cn, case-insensitive) -> DataLibrary group and roles. Users in no
    # mapped group cannot sign in.
    group_map: dict[str, LdapGroupMapping] = {}


class AuthSettings(BaseModel):
    session_idle_minutes: int = Field(60, ge=1)
    session_absolute_hours: int = Field(12, ge=1)
    token_default_days: int = Field(90, ge=1)
    # Brute-force protection: failures within the window lock the account / client address.
    lockout_account_failures: int = Field(5, ge=1)
    lockout_client_failures: int = Field(20, ge=1)
    lockout_window_minutes: int = Field(15, ge=1)
    lockout_minutes: int = Field(15, ge=1)
    ldap: LdapSettings = LdapSettings()


class QuerySettings(BaseModel):
    memory_limit: str = "2GB"
    threads: int = Field(2, ge=1, le=256)
    timeout_seconds: float = Field(120.0, gt=0)
    max_result_rows: int = Field(1_000_000, ge=1)

    def limits(self):  # type: ignore[no-untyped-def]
        from datalibrary.query.engine import EngineLimits

        return EngineLimits(self.memory_limit, self.threads, self.timeout_seconds, self.max_result_rows)


class LakeSettings(BaseModel):
    """Where the lake's files live and how it is maintained."""

    # A local directory (default: <home>/lake) or s3://bucket/prefix.
    warehouse: str | None = None
    s3_endpoint: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    target_file_mb: int = Field(256, ge=1)
    small_file_mb: int = Field(32, ge=1)
    snapshot_retention_hours: float = Field(168, ge=0)
    orphan_grace_minutes: float = Field(60, ge=0)
    maintain_every_hours: float = Field(24, gt=0)
    commit_retries: int = Field(25, ge=1)
    lock_timeout_seconds: float = Field(300, gt=0)


class IngestSettings(BaseModel):
    """The ingestion pipeline: workers, uploads, the watched landing folder."""

    workers: int = Field(2, ge=0)
    upload_max_mb: int = Field(10_240, ge=1)
    job_lease_seconds: float = Field(120, gt=0)
    poll_seconds: float = Field(2.0, gt=0)
    watch_landing: bool = True


class WorkspaceSettings(BaseModel):
    """Self-service workspaces: catalog, provisioner, quotas, idle stop, environments."""

    # YAML catalog of instance types, environments and products; empty = the built-in default.
    catalog: Path | None = None
    # sandbox (bubblewrap + cgroups), process (no isolation) or auto (sandbox when it can run).
    provisioner: Literal["auto", "sandbox", "process"] = "auto"
    max_per_user: int = Field(3, ge=0)
    # Where environments are built once and shared read-only; empty = <home>/environments.
    environments_dir: Path | None = None
    # Package index for building environments (a local mirror works); empty = uv's default.
    index_url: str | None = None
    python: str = "/usr/bin/python3"
    start_timeout_seconds: int = Field(60, ge=5)
    # Transitional states older than this are repaired by the reconciler.
    stuck_after_seconds: int = Field(120, ge=10)
    reconcile_interval_seconds: int = Field(30, ge=1)
    idle_check_interval_seconds: int = Field(60, ge=1)
    # CPU use (fraction of one core) under which a workspace counts as idle.
    idle_cpu_threshold: float = Field(0.05, ge=0)
    # The owner is warned this long before an idle stop.
    idle_warning_minutes: int = Field(10, ge=0)
    archive_on_terminate: bool = True
    # Workspace N is served on its own origin, ws-N.<app_domain>. "localhost" works on one
    # machine without DNS (browsers resolve *.localhost to loopback); elsewhere use a wildcard
    # DNS name of a registrable domain other than the console's (like githubusercontent.com).
    app_domain: str = Field("localhost", pattern=r"^[A-Za-z0-9.-]+$")
    # Port of the workspace origins; empty = the port the console is reached on.
    app_port: int | None = Field(None, ge=1, le=65535)


class LineageSettings(BaseModel):
    """Forwarding of lineage events to an external OpenLineage endpoint; the exports airlock."""

    # e.g. http://marquez:5000/api/v1/lineage; empty = events stay in the database only.
    forward_url: str | None = None
    forward_batch: int = Field(100, ge=1, le=10_000)
    forward_interval_seconds: float = Field(5.0, gt=0)
    forward_timeout_seconds: float = Field(10.0, gt=0)
    forward_max_backoff_seconds: float = Field(300.0, gt=0)
    export_ttl_hours: float = Field(72.0, gt=0)
    export_max_mb: int = Field(512, ge=1)


class CostSettings(BaseModel):
    """Price book, budgets and their enforcement, the dedicated-machine comparison."""

    # YAML price book seeding the first price version; empty = the built-in default.
    price_book: Path | None = None
    # Percent of a monthly budget at which owners and stewards are warned.
    warn_percent: int = Field(80, ge=1, le=99)
    # Once a budget is exhausted: queries scanning more than this are refused.
    block_queries_above_bytes: int = Field(100 * 1000**2, ge=0)
    # Running workspaces of an exhausted budget are stopped this long after the warning.
    enforce_after_minutes: float = Field(15, ge=0)
    enforce_interval_seconds: float = Field(60, gt=0)
    # How often the server checks that today's storage measurement exists.
    measure_interval_seconds: float = Field(3600, gt=0)
    # Budget warnings are also POSTed (JSON) here; empty = no webhook.
    webhook_url: str | None = None
    # Queries estimated above this many bytes show their price before they run (Query page).
    estimate_above_bytes: int = Field(1000**3, ge=0)
    # "A typical working day" in the price shown before a launch.
    working_day_hours: float = Field(8, gt=0, le=24)
    # The comparison page: an equivalent dedicated machine, bought and written off.
    dedicated_machine_price: float = Field(6000, ge=0)
    dedicated_machine_lifetime_months: int = Field(36, ge=1)


class Settings(BaseSettings):
    """Effective configuration of one DataLibrary installation."""

    model_config = SettingsConfigDict(
        env_prefix="DATALIBRARY_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    environment: Literal["development", "production"] = "development"
    home: Path = Field(default_factory=default_home)
    database_url: str | None = None
    secret_key: SecretStr | None = None
    # Anonymization master key (hex/base64, >= 32 bytes), or the file holding it
    # (default <home>/master.key, created by 'datalibrary init' with mode 0600).
    master_key: SecretStr | None = None
    master_key_file: Path | None = None
    server: ServerSettings = ServerSettings()
    log: LogSettings = LogSettings()
    auth: AuthSettings = AuthSettings()
    query: QuerySettings = QuerySettings()
    lake: LakeSettings = LakeSettings()
    ingest: IngestSettings = IngestSettings()
    workspaces: WorkspaceSettings = Field(default_factory=WorkspaceSettings)
    lineage: LineageSettings = LineageSettings()
    costs: CostSettings = Field(default_factory=CostSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        init_home = getattr(init_settings, "init_kwargs", {}).get("home")
        home = Path(init_home).absolute() if init_home else default_home()
        toml = TomlConfigSettingsSource(settings_cls, toml_file=home / CONFIG_FILE_NAME)
        return (init_settings, env_settings, toml)

    @model_validator(mode="after")
    def _resolve(self) -> Settings:
        self.home = self.home.expanduser().absolute()
        if self.database_url is None:
            self.database_url = f"sqlite:///{self.home / 'datalibrary.db'}"
        if self.workspaces.environments_dir is None:
            self.workspaces.environments_dir = self.home / "environments"
        if self.secret_key is None:
            key_file = self.home / SECRET_KEY_FILE_NAME
            if key_file.exists():
                self.secret_key = SecretStr(key_file.read_text().strip())
            elif self.environment == "production":
                raise ValueError(
                    "secret_key is required in production: set DATALIBRARY_SECRET_KEY "
                    f"or run 'datalibrary init' to create {key_file}"
                )
        return self

    @property
    def warehouse(self) -> str:
        """The lake's root as a URI (``file:///...`` or ``s3://bucket/prefix``)."""
        configured = self.lake.warehouse
        if not configured:
            return (self.home / "lake").as_uri()
        if "://" not in configured:
            return Path(configured).expanduser().absolute().as_uri()
        return configured.rstrip("/")

    @property
    def is_sqlite(self) -> bool:
        return str(self.database_url).startswith("sqlite")

    def redacted(self) -> dict[str, Any]:
        """The configuration as JSON-ready data with every secret hidden."""
        data = self.model_dump(mode="json")
        data["secret_key"] = "**********" if self.secret_key else None
        data["database_url"] = redact_url(str(self.database_url))
        if self.auth.ldap.bind_password is not None:
            data["auth"]["ldap"]["bind_password"] = "**********"  # noqa: S105 - the mask
        data["lake"]["s3_secret_access_key"] = "**********" if self.lake.s3_secret_access_key else None
        return data


def redact_url(url: str) -> str:
    """Hide the password of a database or storage URL."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a SQLAlchemy URL: hide everything after the scheme
        return url.split("://", 1)[0] + "://**********" if "://" in url else url


def ensure_secret_key(home: Path) -> str:
    """Create the session-signing key file (mode 0600) if it does not exist yet."""
    key_file = home / SECRET_KEY_FILE_NAME
    if not key_file.exists():
        home.mkdir(parents=True, exist_ok=True)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
    return key_file.read_text().strip()


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, the TOML file and explicit overrides (highest)."""
    return Settings(**overrides)
