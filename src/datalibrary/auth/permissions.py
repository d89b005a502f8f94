"""Roles, named permissions, the caller (``Principal``) and who acts for it (``Actor``).

Deny by default: a caller can do exactly what the permissions of its roles list. Every
API route declares one permission and every domain service call checks it again with
``require``. A new permission is added here and documented in docs/reference/permissions.md
(a test checks that).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum

from datalibrary.errors import NotAuthenticated, PermissionDenied


class Permission(StrEnum):
    CONSOLE_VIEW = "console.view"
    CONFIG_READ = "config.read"
    USERS_READ = "users.read"
    USERS_MANAGE = "users.manage"
    TOKENS_OWN = "tokens.own"
    AUDIT_READ = "audit.read"
    CATALOG_READ = "catalog.read"
    DATASETS_MANAGE = "datasets.manage"
    INGEST_RUN = "ingest.run"
    LAKE_MAINTAIN = "lake.maintain"
    POLICIES_MANAGE = "policies.manage"
    QUERY_RUN = "query.run"
    GRANTS_MANAGE = "grants.manage"
    ACCESS_REQUEST = "access.request"
    ACCESS_REVIEW = "access.review"
    WORKSPACES_OWN = "workspaces.own"
    WORKSPACES_ADMIN = "workspaces.admin"
    COSTS_READ_OWN = "costs.read_own"
    COSTS_READ_ALL = "costs.read_all"
    COSTS_MANAGE = "costs.manage"
    LINEAGE_READ = "lineage.read"
    EXPORTS_REQUEST = "exports.request"
    EXPORTS_REVIEW = "exports.review"
    BACKUPS_MANAGE = "backups.manage"
    REPOS_USE = "repos.use"
    REPOS_MANAGE = "repos.manage"
    PACKAGES_INSTALL = "packages.install"
    PACKAGES_MANAGE = "packages.manage"


P = Permission
_COMMON = {P.CONSOLE_VIEW, P.TOKENS_OWN, P.CATALOG_READ, P.COSTS_READ_OWN}

ROLE_PERMISSIONS: dict[str, frozenset[Permission]] = {
    "admin": frozenset(Permission),
    "steward": frozenset(
        _COMMON
        | {
            P.USERS_READ,
            P.DATASETS_MANAGE,
            P.INGEST_RUN,
            P.POLICIES_MANAGE,
            P.QUERY_RUN,
            P.GRANTS_MANAGE,
            P.ACCESS_REVIEW,
            P.COSTS_READ_ALL,
            P.LINEAGE_READ,
            P.EXPORTS_REVIEW,
            P.REPOS_USE,
            P.REPOS_MANAGE,
            P.PACKAGES_INSTALL,
        }
    ),
    "scientist": frozenset(
        _COMMON
        | {
            P.QUERY_RUN,
            P.ACCESS_REQUEST,
            P.WORKSPACES_OWN,
            P.EXPORTS_REQUEST,
            P.REPOS_USE,
            P.PACKAGES_INSTALL,
        }
    ),
    "auditor": frozenset(_COMMON | {P.USERS_READ, P.AUDIT_READ, P.COSTS_READ_ALL, P.LINEAGE_READ}),
}
ROLES: tuple[str, ...] = tuple(ROLE_PERMISSIONS)

# What a token limited to a scope may do, whatever its owner's roles (deny by default: a scope
# not listed here grants nothing). A workspace's token is what notebooks use: query the lake,
# list tables, see its own identity and its own workspace, and the platform services a
# sandbox has instead of a network (project Git, the package mirror, export requests - each
# still needs the owner's role and project membership); it never mints tokens, manages
# users, launches or opens workspaces.
SCOPE_PERMISSIONS: dict[str, frozenset[Permission]] = {
    "workspace": frozenset(
        {P.CATALOG_READ, P.QUERY_RUN, P.WORKSPACES_OWN, P.REPOS_USE, P.PACKAGES_INSTALL, P.EXPORTS_REQUEST}
    ),
}


def scope_kind(scope: str | None) -> str | None:
    """``workspace:12`` -> ``workspace``; None for an unscoped token or a session."""
    return scope.split(":", 1)[0] if scope else None


CLIENTS = ("api", "web", "cli", "sdk", "worker", "system")
_CLIENT_OF_VIA = {"token": "api", "session": "web", "system": "system"}


@dataclass(frozen=True)
class Actor:
    """Who acted, on whose behalf and through which client: what audit and lineage record.

    ``name`` is the one who acted (a user for themselves, or the operator: ``cli``);
    ``on_behalf_of`` the user whose rights applied when that was someone else."""

    name: str
    client: str
    on_behalf_of: str | None = None
    os_user: str | None = None  # the operating-system account that ran the CLI

    def details(self) -> dict[str, str]:
        """The audit details that name the client and, when someone acted for another, both."""
        found = {"via": self.client}
        if self.on_behalf_of is not None:
            found["on_behalf_of"] = self.on_behalf_of
        if self.os_user is not None:
            found["os_user"] = self.os_user
        return found


def permissions_for(roles: set[str] | frozenset[str]) -> frozenset[Permission]:
    granted: set[Permission] = set()
    for role in roles:
        granted |= ROLE_PERMISSIONS.get(role, frozenset())
    return frozenset(granted)


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of a request, a CLI command or a background job."""

    user_id: int | None
    name: str
    roles: frozenset[str] = frozenset()
    permissions: frozenset[Permission] = field(default=frozenset())
    via: str = "session"  # session | token | system
    session_id: str | None = None
    token_scope: str | None = None
    groups: frozenset[str] = frozenset()
    projects: frozenset[str] = frozenset()
    default_project: str | None = None  # where usage is charged unless the caller names one
    # Who really acts when it is not the user (the CLI's ``--as USER``: ``cli``), the client
    # (api | web | cli | sdk | worker | system; from ``via`` when unset) and the OS account.
    operator: str | None = None
    client: str | None = None
    os_user: str | None = None

    @classmethod
    def for_user(
        cls,
        user_id: int,
        name: str,
        roles: set[str],
        *,
        groups: set[str] | frozenset[str] = frozenset(),
        projects: set[str] | frozenset[str] = frozenset(),
        **kwargs: object,
    ) -> Principal:
        """``roles`` are the effective roles (own + groups'); build it via ``auth.service.principal_for``."""
        permissions = permissions_for(roles)
        scope = kwargs.get("token_scope")
        if scope:
            permissions &= SCOPE_PERMISSIONS.get(scope_kind(scope) or "", frozenset())  # type: ignore[arg-type]
        return cls(
            user_id,
            name,
            frozenset(roles),
            permissions,
            groups=frozenset(groups),
            projects=frozenset(projects),
            **kwargs,  # type: ignore[arg-type]
        )

    @classmethod
    def system(
        cls, name: str = "system", *, client: str | None = None, os_user: str | None = None
    ) -> Principal:
        """The platform itself (schedulers, reconcilers, the local CLI as operator)."""
        everything = frozenset(Permission)
        return cls(None, name, frozenset({"admin"}), everything, via="system", client=client, os_user=os_user)

    def operated_by(self, operator: str, *, client: str, os_user: str | None = None) -> Principal:
        """This user's identity, acted out by ``operator``: the user's permissions, nothing
        more (the operator borrows no rights), and an actor that names both."""
        if client not in CLIENTS:
            raise ValueError(f"client must be one of {CLIENTS}, not {client!r}")
        return replace(self, operator=operator, client=client, os_user=os_user)

    @property
    def actor(self) -> Actor:
        """Who acts for this principal, as audit entries and lineage events record it."""
        client = self.client or _CLIENT_OF_VIA.get(self.via, self.via)
        if self.operator is not None and self.operator != self.name:
            return Actor(self.operator, client, on_behalf_of=self.name, os_user=self.os_user)
        return Actor(self.name, client, os_user=self.os_user)

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions

    @property
    def workspace_scope(self) -> int | None:
        """The workspace a workspace-scoped token belongs to; None for any other caller."""
        if scope_kind(self.token_scope) != "workspace":
            return None
        try:
            return int((self.token_scope or "").split(":", 1)[1])
        except (IndexError, ValueError):
            return -1  # malformed: matches no workspace

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


def require(principal: Principal | None, permission: Permission) -> Principal:
    """Raise unless ``principal`` holds ``permission``; domain services call this first."""
    if principal is None:
        raise NotAuthenticated("sign in or send an API token (Authorization: Bearer ...)")
    if not principal.can(permission):
        raise PermissionDenied(
            f"'{principal.name}' lacks the permission '{permission.value}'",
            permission=permission.value,
        )
    return principal
