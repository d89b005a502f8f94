"""Settings: environment variables ``DATALIBRARY_*`` over one TOML file in the state directory.

Nested sections use ``__`` in environment variables (``DATALIBRARY_QUERY__THREADS=4``).
The state directory is resolved first because the TOML file lives inside it.
"""

from __future__ import annotations

import difflib
import functools
import os
import secrets
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args, get_origin
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from datalibrary import plugins
from datalibrary.audit.anchors import register
from datalibrary.auth.permissions import ROLES

CONFIG_FILE_NAME = "datalibrary.toml"
ENV_PREFIX = "DATALIBRARY_"
SECRET_KEY_FILE_NAME = "secret.key"  # noqa: S105 - a file name


def default_home() -> Path:
    """The state directory: ``DATALIBRARY_HOME`` or ``./.datalibrary``."""
    return Path(os.environ.get("DATALIBRARY_HOME", ".datalibrary")).expanduser().absolute()


MASK = "**********"


class SecretUrl(SecretStr):
    """A URL that may carry credentials (``postgresql://user:password@host/db``).

    A secret like any other: ``str()``, ``repr()`` and dumps show ``**********``, so a URL
    printed or logged by mistake shows nothing, and a caller that forgot ``get_secret_value()``
    fails at once. ``shown()`` is what the configuration displays: the URL without its password
    and its query's values."""

    def shown(self) -> str:
        return redact_url(self.get_secret_value())


class TokenUrl(SecretUrl):
    """A URL whose path or query is itself a credential (a chat webhook, a forwarding endpoint
    with an API key): shown down to its origin."""

    def shown(self) -> str:
        return origin_only(self.get_secret_value())


def shown(secret: SecretStr) -> str:
    """How the configuration displays a secret: a URL's safe part, anything else masked."""
    return secret.shown() if isinstance(secret, SecretUrl) else MASK


def reveal(secret: SecretStr | None) -> str | None:
    """The value of an optional secret setting, for the one place that uses it."""
    return None if secret is None else secret.get_secret_value()


def origin_only(url: str) -> str:
    """``https://hooks.example/T0/B1/secret?x=1`` -> ``https://hooks.example/**********``."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}/{MASK}" if parts.scheme else MASK


class Section(BaseModel):
    """A group of settings. Unknown keys are refused: a typo such as ``LAKE__WAREHOUSEE``
    must not fall back silently to a default (a local lake instead of S3)."""

    model_config = ConfigDict(extra="forbid")


class ServerSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    # Marks session cookies Secure; set when served behind HTTPS.
    https: bool = False


class LogSettings(Section):
    level: str = "INFO"
    format: Literal["text", "json"] = "text"


class LdapGroupMapping(Section):
    """Where members of one LDAP group land: a DataLibrary group, and the roles it grants."""

    group: str = Field(pattern=r"^[a-z][a-z0-9._-]{1,63}$")
    roles: list[str] = []

    @field_validator("roles")
    @classmethod
    def _known_roles(cls, roles: list[str]) -> list[str]:
        unknown = set(roles) - set(ROLES)
        if unknown:
            raise ValueError(f"unknown role(s) {sorted(unknown)}; roles are {list(ROLES)}")
        return roles


class LdapSettings(Section):
    """LDAP / Active Directory sign-in (docs/how-to/ldap.md)."""

    enabled: bool = False
    url: SecretUrl = SecretUrl("ldap://127.0.0.1:389")
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


class AuthSettings(Section):
    session_idle_minutes: int = Field(60, ge=1)
    session_absolute_hours: int = Field(12, ge=1)
    token_default_days: int = Field(90, ge=1)
    # Brute-force protection: failures within the window lock the account / client address.
    lockout_account_failures: int = Field(5, ge=1)
    lockout_client_failures: int = Field(20, ge=1)
    lockout_window_minutes: int = Field(15, ge=1)
    lockout_minutes: int = Field(15, ge=1)
    # Who proves passwords (entry points "datalibrary.authenticators"), in this order for a name
    # without an account; an account signs in through the one of its source only.
    authenticators: list[str] = Field(["local", "ldap"], min_length=1)
    ldap: LdapSettings = LdapSettings()

    @field_validator("authenticators")
    @classmethod
    def _installed_authenticators(cls, names: list[str]) -> list[str]:
        """Refused when the settings load (every entry point), naming what is installed."""
        installed = sorted(plugins.installed(plugins.AUTHENTICATORS))
        unknown = [name for name in names if name not in installed]
        if unknown:
            raise ValueError(f"unknown authenticator(s) {unknown}; installed: {installed}")
        if len(set(names)) != len(names):
            raise ValueError("name each authenticator once")
        return names


@dataclass(frozen=True)
class EngineLimits:
    """The query engine's limits (``query.engine`` runs under them); here, below the engine,
    so the settings can build them."""

    memory_limit: str = "2GB"
    threads: int = 2
    timeout_seconds: float = 60.0
    max_rows: int = 1_000_000
    # Decoded columns kept in memory across queries (0 turns the cache off).
    cache_bytes: int = 1 << 30
    cache_idle_seconds: float = 600.0


class QuerySettings(Section):
    memory_limit: str = "2GB"
    threads: int = Field(2, ge=1, le=256)
    timeout_seconds: float = Field(120.0, gt=0)
    max_result_rows: int = Field(1_000_000, ge=1)
    # Decoded columns kept in memory for the next query (per process; 0 turns it off).
    column_cache_mb: int = Field(1024, ge=0)
    column_cache_idle_seconds: float = Field(600.0, gt=0)

    def limits(self) -> EngineLimits:
        return EngineLimits(
            self.memory_limit,
            self.threads,
            self.timeout_seconds,
            self.max_result_rows,
            cache_bytes=self.column_cache_mb << 20,
            cache_idle_seconds=self.column_cache_idle_seconds,
        )


class LakeSettings(Section):
    """Where the lake's files live and how it is maintained."""

    # A local directory (default: <home>/lake) or s3://bucket/prefix.
    warehouse: str | None = None
    s3_endpoint: SecretUrl | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    target_file_mb: int = Field(256, ge=1)
    row_group_mb: int = Field(128, ge=1, le=4096)
    small_file_mb: int = Field(32, ge=1)
    snapshot_retention_hours: float = Field(168, ge=0)
    orphan_grace_minutes: float = Field(60, ge=0)
    maintain_every_hours: float = Field(24, gt=0)
    commit_retries: int = Field(25, ge=1)
    lock_timeout_seconds: float = Field(300, gt=0)


class IngestSettings(Section):
    """The ingestion pipeline: workers, uploads, the watched landing folder."""

    workers: int = Field(2, ge=0)
    upload_max_mb: int = Field(10_240, ge=1)
    job_lease_seconds: float = Field(120, gt=0)
    poll_seconds: float = Field(2.0, gt=0)
    watch_landing: bool = True
    # Each job parses in a child process ("process") with these limits; "inline" runs it in
    # the worker itself (no limits: for debugging only).
    isolation: Literal["process", "inline"] = "process"
    job_memory_mb: int = Field(4096, ge=0)  # address space a job may add to its child; 0 = none
    job_cpu_seconds: int = Field(7200, ge=0)  # CPU seconds of one job's child; 0 = none
    max_attempts: int = Field(3, ge=1)  # claims of a job whose worker stopped, before quarantine
    max_columns: int = Field(4096, ge=1)  # columns per file (also flattened JSON keys)
    max_record_mb: int = Field(64, ge=1)  # one JSON record / NDJSON line / CSV field
    max_children: int = Field(500, ge=1)  # jobs one delivery fans out into (members, FHIR types)
    upload_expiry_hours: float = Field(48, gt=0)  # an unfinished chunked upload is deleted after
    quarantine_retention_days: float = Field(90, ge=0)  # quarantined files deleted after; 0 = kept


class WorkspaceSettings(Section):
    """Self-service workspaces: catalog, provisioner, quotas, idle stop, environments."""

    # YAML catalog of instance types, environments and products; empty = the built-in default.
    catalog: Path | None = None
    # sandbox (bubblewrap + cgroups), process (no isolation), slurm (the sandbox as a Slurm
    # job on a cluster node), auto (sandbox when it can run, else process), or the name of a
    # backend another package installs (an entry point of the group datalibrary.provisioners).
    provisioner: str = "auto"
    # Slurm: the slurm.conf the commands use (empty = Slurm's default) and the partition.
    slurm_conf: Path | None = None
    slurm_partition: str | None = None
    # The authenticated channel to workspaces on other machines (Slurm nodes): mutual TLS with
    # certificates of the installation's channel CA (docs/how-to/high-availability.md).
    # The CA's key + certificate (mode 0600, created on first use); the same file on every replica.
    channel_ca_file: Path | None = None  # empty = <home>/channel-ca.pem
    # Where this replica's gateway listens for the workspaces' SDK traffic, and the HOST:PORT
    # nodes dial to reach it (a replica or a TCP load balancer); empty = this host's FQDN.
    channel_listen: str = Field("0.0.0.0:8444", pattern=r"^\[?[A-Za-z0-9.:-]*\]?:\d{1,5}$")
    channel_address: str | None = Field(None, pattern=r"^\[?[A-Za-z0-9.:-]+\]?:\d{1,5}$")
    # The ports a workspace's job may listen on for the platform (open them from the platform).
    channel_node_ports: str = Field("40000-40999", pattern=r"^\d{1,5}(-\d{1,5})?$")
    # Node-local directory: job logs; each job mounts its private run directory over it.
    channel_node_run_dir: Path = Path("/var/tmp/datalibrary-workspaces")  # noqa: S108 - node-local
    channel_cert_days: float = Field(14, gt=0, le=366)  # a workspace run's certificate lifetime
    max_per_user: int = Field(3, ge=0)
    # The sandbox runs as host uid base + workspace id (never host root): no host account may use that range.
    sandbox_uid_base: int = Field(200_000, ge=1000, le=2**31 - 2**24)
    # Where environments are built once and shared read-only; empty = <home>/environments.
    environments_dir: Path | None = None
    # Package index for building environments (a local mirror works); empty = uv's default.
    index_url: SecretUrl | None = None
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
    # Workspace N is served on its own origin, ws-N.<app_domain>, and JupyterLab's own files
    # on static.<app_domain>. "ws.localhost" works on one machine without DNS (browsers
    # resolve *.localhost to loopback) and makes every workspace one site, so a browser keeps
    # JupyterLab's files once for all of them; elsewhere use a wildcard DNS name under a
    # registrable domain other than the console's (as GitHub uses githubusercontent.com).
    app_domain: str = Field("ws.localhost", pattern=r"^[A-Za-z0-9.-]+$")
    # Port of the workspace origins; empty = the port the console is reached on.
    app_port: int | None = Field(None, ge=1, le=65535)
    # Warm pool: pre-started sandboxes (JupyterLab answering, no home, no token, no kernel)
    # that a launch takes over, so Launch -> JupyterLab is not a cold start. This many per
    # environment x the first instance type of each product offering it; 0 disables the pool.
    # Sandbox provisioner only; pool members are platform cost, not any user's.
    warm_pool_size: int = Field(1, ge=0, le=32)
    # Per "environment/instance_type" sizes that override warm_pool_size (0 leaves one out).
    warm_pool: dict[str, int] = Field(default_factory=dict)
    # How often the pool is checked and refilled (also right after a launch takes a member).
    warm_pool_interval_seconds: float = Field(5.0, gt=0)

    def backend_options(self) -> dict[str, str]:
        """Settings handed to the provisioner (strings; unset ones left out)."""
        options = {
            "slurm_conf": self.slurm_conf,
            "slurm_partition": self.slurm_partition,
            "channel_ca_file": self.channel_ca_file,
            "channel_address": self.channel_address or self.default_channel_address(),
            "channel_node_ports": self.channel_node_ports,
            "channel_node_run_dir": self.channel_node_run_dir,
            "channel_cert_days": self.channel_cert_days,
        }
        return {key: str(value) for key, value in options.items() if value is not None}

    def default_channel_address(self) -> str:
        """This host's name with the gateway's port (nodes must resolve it)."""
        return f"{_fqdn()}:{self.channel_listen.rpartition(':')[2]}"

    @field_validator("provisioner")
    @classmethod
    def _installed_provisioner(cls, value: str) -> str:
        installed = plugins.installed(plugins.PROVISIONERS)
        if value != "auto" and value not in installed:
            choices = ", ".join(["auto", *sorted(installed)])
            raise ValueError(f"'{value}' is not an installed provisioner; choose one of {choices}")
        return value

    @field_validator("channel_node_ports")
    @classmethod
    def _ports(cls, value: str) -> str:
        low, _, high = value.partition("-")
        if not 1024 <= int(low) <= int(high or low) <= 65535:
            raise ValueError(f"port range '{value}' must lie within 1024-65535, first <= last")
        return value


class LineageSettings(Section):
    """Forwarding of lineage events to an external OpenLineage endpoint; the exports airlock."""

    # e.g. http://marquez:5000/api/v1/lineage; empty = events stay in the database only.
    forward_url: TokenUrl | None = None
    # Authentication to the endpoint: the secret is sent as "<header>: <scheme> <token>"
    # (Bearer by default; e.g. header "X-API-Key" with an empty scheme for a raw API key).
    forward_token: SecretStr | None = None
    forward_auth_header: str = Field("Authorization", pattern=r"^[A-Za-z0-9-]{1,64}$")
    forward_auth_scheme: str = Field("Bearer", pattern=r"^[A-Za-z0-9_-]{0,32}$")
    # TLS: verify the endpoint's certificate (against this CA bundle if given, else the
    # system's). Turning verification off is refused in production.
    forward_verify_tls: bool = True
    forward_ca_bundle: Path | None = None
    # The OpenLineage namespace of the catalog's tables; empty = derived from the database
    # (datalibrary://<db host>[:port]/<db name>, or datalibrary://<host><home> with SQLite).
    namespace: str | None = Field(None, pattern=r"^[A-Za-z][A-Za-z0-9+.-]*://\S{1,400}$")
    # Where clients reach this installation (facet schema URLs, names of what leaves over
    # HTTP); empty = http(s)://<server.host>:<server.port>.
    public_url: str | None = Field(None, pattern=r"^https?://\S{1,400}$")
    # The text of queries in forwarded events (the OpenLineage `sql` facet): "redacted" replaces
    # every literal with ? (a subject id in WHERE usubjid = '...' stays home), "none" leaves the
    # facet out, "full" sends it as run. Events kept in the database are not changed.
    forward_sql: Literal["redacted", "none", "full"] = "redacted"
    forward_batch: int = Field(100, ge=1, le=10_000)
    forward_interval_seconds: float = Field(5.0, gt=0)
    forward_timeout_seconds: float = Field(10.0, gt=0)
    forward_max_backoff_seconds: float = Field(300.0, gt=0)
    export_ttl_hours: float = Field(72.0, gt=0)
    export_max_mb: int = Field(512, ge=1)
    # Download policy: row-level downloads (POST /query as csv/parquet/arrow, the Query page's
    # Download buttons) of datasets with these sensitivities become export requests; aggregate
    # results whose smallest cell meets the risk threshold go directly.
    download_review: list[str] = Field(default_factory=lambda: ["internal", "confidential", "restricted"])
    # The maximum re-identification risk of released data (0.09 -> cells/classes of 12 or more).
    export_max_risk: float = Field(0.09, gt=0, le=1)


class CostSettings(Section):
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
    webhook_url: TokenUrl | None = None
    # Queries estimated above this many bytes show their price before they run (Query page).
    estimate_above_bytes: int = Field(1000**3, ge=0)
    # "A typical working day" in the price shown before a launch.
    working_day_hours: float = Field(8, gt=0, le=24)
    # The comparison page: an equivalent dedicated machine, bought and written off.
    dedicated_machine_price: float = Field(6000, ge=0)
    dedicated_machine_lifetime_months: int = Field(36, ge=1)


class BackupSettings(Section):
    """Backups (docs/how-to/backup.md): where they are written, the passphrase that seals keys."""

    # Where backups are written; empty = <home>/backups. Put it on other storage in production.
    directory: Path | None = None
    # File holding the passphrase that seals the master key into backups; empty = keys excluded.
    passphrase_file: Path | None = None


class HaSettings(Section):
    """Several replicas on one database (docs/how-to/high-availability.md)."""

    # A background task's lease lasts this long; a dead replica's tasks move after it expires.
    lease_seconds: float = Field(20, ge=2, le=600)


class RepoSettings(Section):
    """Project Git: the data-leak guard every push passes."""

    # Tabular data files (CSV, Parquet, XPT, ...) above this size are refused as lake extracts.
    max_data_file_bytes: int = Field(1_000_000, ge=0)
    # Any file above this size is refused.
    max_file_bytes: int = Field(50_000_000, ge=1)
    # A notebook output showing more table rows than this is refused.
    notebook_max_rows: int = Field(50, ge=0)
    # A file carrying this many distinct values of identifying/pseudonymized lake columns is refused.
    identifying_min_values: int = Field(3, ge=1)


class FileSettings(Section):
    """File collections (DICOM and other unstructured files)."""

    # One uploaded file (or archive) above this size is refused; uploads are spooled to disk.
    max_file_bytes: int = Field(8 << 30, ge=1)


class PackageSettings(Section):
    """The package mirror (devpi-server) serving pip/uv in workspaces."""

    # The index devpi-server mirrors and caches (e.g. https://pypi.org/simple/); empty = offline,
    # served from the cache and the internal index only.
    upstream_url: SecretUrl | None = None
    # Where devpi-server keeps its cache and the internal index; default <home>/packages.
    server_dir: Path | None = None
    # How long a package's upstream page is trusted before asking the upstream again.
    upstream_cache_seconds: int = Field(1800, ge=0)


class Settings(BaseSettings):
    """Effective configuration of one DataLibrary installation."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
    )

    environment: Literal["development", "production"] = "development"
    home: Path = Field(default_factory=default_home)
    database_url: SecretUrl | None = None
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
    backup: BackupSettings = Field(default_factory=BackupSettings)
    ha: HaSettings = Field(default_factory=HaSettings)
    repos: RepoSettings = RepoSettings()
    packages: PackageSettings = PackageSettings()
    files: FileSettings = FileSettings()

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
        problems = unknown_variables(os.environ)
        problems += unknown_file_keys(toml.toml_data, home / CONFIG_FILE_NAME)
        if problems:
            raise SettingsError("\n".join(problems))
        return (init_settings, env_settings, toml)

    @model_validator(mode="after")
    def _resolve(self) -> Settings:
        self.home = self.home.expanduser().absolute()
        if self.database_url is None:
            self.database_url = SecretUrl(f"sqlite:///{self.home / 'datalibrary.db'}")
        if self.workspaces.environments_dir is None:
            self.workspaces.environments_dir = self.home / "environments"
        if self.workspaces.channel_ca_file is None:
            self.workspaces.channel_ca_file = self.home / "channel-ca.pem"
        register(self.connect_url(), self.home)  # the audit key and anchors of this database
        self.register_installation()
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

    def register_installation(self) -> None:
        """Tie this database to these settings (see :func:`installation_for`); a process that
        receives pickled settings (an ingestion child) calls it again."""
        if self.environment == "production" and not self.lineage.forward_verify_tls:
            raise ValueError("lineage.forward_verify_tls = false is refused in production")
        with _installations_lock:
            _pending_installations.append((self.connect_url(), self))

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
        return self.connect_url().startswith("sqlite")

    def redacted(self) -> dict[str, Any]:
        """The configuration as JSON-ready data with every secret hidden.

        Hidden by type, so a new secret cannot be forgotten here: every ``SecretStr`` (a
        ``SecretUrl`` shown without its credentials), wherever it sits."""
        return _redact(self, self.model_dump(mode="json"))

    def connect_url(self) -> str:
        """The database URL with its password: for connecting (and as the database's key in
        per-database registries), never for showing."""
        assert self.database_url is not None  # set by _resolve
        return self.database_url.get_secret_value()


def _redact(value: Any, dumped: Any) -> Any:
    """``dumped`` (``value`` as JSON data) with each secret replaced by how it may be shown."""
    if isinstance(value, SecretStr):
        return shown(value)
    if isinstance(value, BaseModel):
        return {name: _redact(getattr(value, name), dumped[name]) for name in type(value).model_fields}
    if isinstance(value, dict):
        return {key: _redact(item, dumped[key]) for key, item in zip(dumped, value.values(), strict=True)}
    if isinstance(value, list | tuple):
        return [_redact(item, data) for item, data in zip(value, dumped, strict=True)]
    return dumped


class SettingsError(ValueError):
    """The configuration cannot be used as given (an unknown key, a misspelled variable)."""


# ``DATALIBRARY_*`` variables that are not settings: other parts and programs read them. Any
# other variable with the prefix must name a setting, or the start is refused.
NOT_SETTINGS: dict[str, str] = {
    "URL": "the SDK and the R client: where the platform is (set in workspaces)",
    "TOKEN": "the SDK, the R client and git in workspaces: the API token",
    "WORKSPACE_ID": "set in workspaces: the workspace's id",
    "LOCAL_PORT": "the workspace's loopback forwarder (sdk.forward): its port",
    "LOCAL_URL": "set in workspaces: the loopback forwarder's URL",
    "CRAN_URL": "set in workspaces: the R package mirror",
    "PROXY_SECRET": "JupyterLab in a workspace: the platform proxy's secret",
    "POOL": "JupyterLab in a warm-pool sandbox: its state",
    "USER": "the CLI: whose grants apply to query and files commands (--as)",
    "FAULT_PAUSE": "crash tests: the ingestion step to pause at (ingest.faults)",
    "FAULT_PAUSE_FILE": "crash tests: the marker file of that pause (ingest.faults)",
    "CACHE_DIR": "the cache of the packaged name dictionary (privacy.names)",
    "CONTRACT_SEED": "the test suite: the schemathesis seed",
}
NOT_SETTINGS_PREFIXES = ("TEST_",)  # the test suite's (DATALIBRARY_TEST_POSTGRES_URL, ...)
NO_SUCH_SETTING = "no setting has this name (they are listed in docs/reference/configuration.md)"


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """One message per ``DATALIBRARY_*`` variable that is neither a setting nor allowed.

    Names are matched without regard to case, as pydantic-settings reads them."""
    known = ["__".join(path).upper() for path in _setting_paths(Settings)]
    problems = []
    for variable in environ:
        if not variable.upper().startswith(ENV_PREFIX):
            continue
        name = variable[len(ENV_PREFIX) :].upper()
        if name in NOT_SETTINGS or name.startswith(NOT_SETTINGS_PREFIXES):
            continue
        if name and _first_unknown(Settings, tuple(name.lower().split("__"))) is None:
            continue
        close = _closest(name, known)
        hint = f"did you mean {ENV_PREFIX}{close}?" if close else NO_SUCH_SETTING
        problems.append(f"unknown setting {variable} (environment variable): {hint}")
    return sorted(problems)


def unknown_file_keys(data: Mapping[str, Any], path: Path) -> list[str]:
    """One message per key of the settings file that is no setting."""
    known = [".".join(keys) for keys in _setting_paths(Settings)]
    unknown = {_first_unknown(Settings, keys) for keys in _leaf_paths(data)}
    problems = []
    for keys in unknown - {None}:
        name = ".".join(keys)  # type: ignore[arg-type]
        close = _closest(name, known)
        hint = f"did you mean '{close}'?" if close else NO_SUCH_SETTING
        problems.append(f"unknown setting '{name}' in {path}: {hint}")
    return sorted(problems)


def _closest(name: str, known: list[str]) -> str | None:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return close[0] if close else None


def _leaf_paths(data: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for key, value in data.items():
        if isinstance(value, Mapping) and value:
            yield from _leaf_paths(value, (*prefix, str(key)))
        else:
            yield (*prefix, str(key))


def _first_unknown(model: type[BaseModel], keys: tuple[str, ...]) -> tuple[str, ...] | None:
    """The shortest prefix of ``keys`` that is no setting, or None if they name one.

    A section's keys are its fields; a mapping's keys (``workspaces.warm_pool``,
    ``auth.ldap.group_map``) are the administrator's own, its values' fields settings again."""
    for depth, key in enumerate(keys):
        field = model.model_fields.get(key)
        if field is None:
            return keys[: depth + 1]
        rest = keys[depth + 1 :]
        if not rest:
            return None
        section, mapped = _section(field.annotation), _mapped(field.annotation)
        if section is not None:
            model = section
            continue
        if mapped is not None:
            if mapped[0] is None or len(rest) < 2:
                return None
            found = _first_unknown(mapped[0], rest[1:])
            return None if found is None else keys[: depth + 2] + found
        return keys[: depth + 2]  # below a plain value
    return None


def _section(annotation: Any) -> type[BaseModel] | None:
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _mapped(annotation: Any) -> tuple[type[BaseModel] | None] | None:
    """For ``dict[str, V]``: (V if V is a section, else None); None if not a mapping."""
    if get_origin(annotation) is not dict:
        return None
    return (_section(get_args(annotation)[1]),)


def _setting_paths(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every section and setting, as key paths (``("lake", "warehouse")``)."""
    for name, field in model.model_fields.items():
        yield (*prefix, name)
        section = _section(field.annotation)
        if section is not None:
            yield from _setting_paths(section, (*prefix, name))


@functools.cache
def _fqdn() -> str:
    """This host's fully qualified name, looked up once (it may ask DNS)."""
    import socket

    return socket.getfqdn()


def redact_url(url: str) -> str:
    """A URL without its credentials: ``scheme://user:***@host/path?sslmode=***``.

    The password (or an http(s) user part standing alone: a token) and every query value are
    hidden (libpq and package indexes take credentials in the query too); what is not a URL is
    hidden whole. The standard library's parser, not SQLAlchemy's: ``datalibrary config show``
    would otherwise import its engine (~0.2 s)."""
    from urllib.parse import urlunsplit

    try:
        parts = urlsplit(url)
        if not parts.scheme:
            return MASK
        netloc = parts.netloc
        if parts.password is not None:
            user, _, host = netloc.rpartition("@")
            netloc = f"{user.split(':', 1)[0]}:***@{host}"
        elif parts.username and parts.scheme in ("http", "https"):
            netloc = f"***@{netloc.rpartition('@')[2]}"  # https://TOKEN@host: the user part is the token
        query = "&".join(
            f"{piece.split('=', 1)[0]}=***" if "=" in piece else "***"
            for piece in parts.query.split("&")
            if piece
        )
        return urlunsplit(parts._replace(netloc=netloc, query=query, fragment=""))
    except ValueError:  # unparseable: hide everything after the scheme
        return url.split("://", 1)[0] + "://" + MASK if "://" in url else MASK


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


# The settings of each database a process uses: services deep inside get a session, not the
# settings (lineage names what it touches after the installation), so they look them up by
# the session's database. Registering does not parse the URL: loading settings stays light
# for the CLI (parsing loads SQLAlchemy, which a database user has loaded anyway).
_pending_installations: list[tuple[str, Settings]] = []
_installations: dict[str, Settings] = {}
_installations_lock = threading.Lock()


def _database_key(url: str) -> str:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return f"{parsed.get_backend_name()}|{parsed.host or ''}|{parsed.port or ''}|{parsed.database or ''}"


def installation_for(database_url: str) -> Settings | None:
    """The settings last registered for this database (``None`` for a bare script's)."""
    with _installations_lock:
        while _pending_installations:
            url, settings = _pending_installations.pop(0)
            _installations[_database_key(url)] = settings
        return _installations.get(_database_key(database_url))
