"""LDAP / Active Directory sign-in with ldap3: find the user's DN, bind as the user with the
password they typed, read their groups. Nothing is cached: every sign-in asks the directory,
so a user removed from LDAP (or from every mapped group) cannot sign in any more.

Values typed by the user are escaped before they enter a filter or a DN (RFC 4515 / 4514).
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from ldap3 import BASE, SUBTREE, Connection, Server, Tls
from ldap3.core.exceptions import (
    LDAPBindError,
    LDAPException,
    LDAPOperationResult,
    LDAPSizeLimitExceededResult,
)
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn

from datalibrary.auth.authenticators import WRONG
from datalibrary.config import LdapSettings
from datalibrary.errors import InvalidInput, NotAuthenticated, Unavailable


@dataclass(frozen=True)
class LdapIdentity:
    """What the directory says about a user who has just proven their password."""

    name: str
    dn: str
    display_name: str = ""
    email: str | None = None
    groups: frozenset[str] = field(default_factory=frozenset)  # group names (cn), lower-case


def _first(entry_attrs: dict, attribute: str) -> str | None:  # type: ignore[type-arg]
    value = entry_attrs.get(attribute)
    if isinstance(value, list):
        value = value[0] if value else None
    return str(value) if value not in (None, "") else None


def _rdn_value(dn: str) -> str:
    """``cn=Data Scientists,ou=groups,...`` -> ``data scientists``."""
    first = dn.split(",", 1)[0]
    return first.split("=", 1)[-1].strip().lower()


class LdapDirectory:
    def __init__(self, settings: LdapSettings) -> None:
        self.settings = settings
        tls = None
        url = settings.url.get_secret_value()
        if url.startswith("ldaps://") or settings.start_tls:
            tls = Tls(
                validate=ssl.CERT_REQUIRED,
                ca_certs_file=str(settings.ca_file) if settings.ca_file else None,
            )
        self.server = Server(url, connect_timeout=settings.timeout_seconds, tls=tls)

    def _unreachable(self, exc: Exception) -> Unavailable:
        return Unavailable(
            f"the LDAP server {self.settings.url.shown()} cannot be reached ({type(exc).__name__}); "
            "try again later or ask an administrator to check auth.ldap.url"
        )

    def _connect(self, user: str | None, password: str | None) -> Connection:
        """An open, bound connection; LDAPBindError when the server refuses the credentials
        (any result code: wrong password, locked or expired account, unwilling to perform)."""
        connection = Connection(
            self.server,
            user=user,
            password=password,
            receive_timeout=self.settings.timeout_seconds,
            raise_exceptions=True,
            read_only=True,
        )
        try:
            connection.open()
            if self.settings.start_tls:
                connection.start_tls()
        except LDAPException as exc:
            raise self._unreachable(exc) from exc
        try:
            connection.bind()
        except (LDAPBindError, LDAPOperationResult) as exc:
            connection.unbind()
            raise LDAPBindError(type(exc).__name__) from exc
        except LDAPException as exc:
            raise self._unreachable(exc) from exc
        return connection

    def _service(self) -> Connection:
        try:
            bind_password = (
                self.settings.bind_password.get_secret_value() if self.settings.bind_password else None
            )
            return self._connect(self.settings.bind_dn, bind_password)
        except LDAPBindError as exc:
            raise Unavailable(
                "the LDAP service account was refused; check auth.ldap.bind_dn and bind_password"
            ) from exc

    def _find_dn(self, name: str) -> str | None:
        query = self.settings.user_filter.replace("{name}", escape_filter_chars(name))
        with self._service() as connection, self._searching("user"):
            try:
                connection.search(self.settings.user_base, query, SUBTREE, attributes=[], size_limit=2)
            except LDAPSizeLimitExceededResult:
                return None  # more than one entry matches: never guess which one
            entries = list(connection.response or [])
        entries = [e for e in entries if e.get("type") == "searchResEntry"]
        if len(entries) != 1:  # unknown, or ambiguous: never guess which one
            return None
        return str(entries[0]["dn"])

    def authenticate(self, name: str, password: str) -> LdapIdentity:
        """Bind as ``name`` with ``password``; NotAuthenticated on any mismatch."""
        if not password:  # an empty password is an "unauthenticated bind" that succeeds
            raise NotAuthenticated(WRONG)
        if self.settings.user_dn_template:
            dn = self.settings.user_dn_template.replace("{name}", escape_rdn(name))
        else:
            found = self._find_dn(name)
            if found is None:
                raise NotAuthenticated(WRONG)
            dn = found
        try:
            connection = self._connect(dn, password)
        except LDAPBindError as exc:
            raise NotAuthenticated(WRONG) from exc
        with connection, self._searching("group"):
            return self._identity(connection, name, dn)

    def lookup(self, name: str) -> LdapIdentity | None:
        """What the directory says about ``name`` now, read with the service account (no user
        password): for reconciling accounts between sign-ins. None when the user is gone."""
        if not self.settings.bind_dn:
            raise InvalidInput(
                "reconciling LDAP accounts needs a service account: set auth.ldap.bind_dn and bind_password",
                field="auth.ldap.bind_dn",
            )
        dn = self._find_dn(name)
        if dn is None:
            return None
        with self._service() as connection, self._searching("group"):
            return self._identity(connection, name, dn)

    @contextmanager
    def _searching(self, what: str) -> Iterator[None]:
        """Turn a failed search (wrong base, no permission, dropped connection) into a clear 503."""
        try:
            yield
        except LDAPOperationResult as exc:
            raise Unavailable(
                f"the LDAP {what} search failed ({type(exc).__name__}); "
                "ask an administrator to check the auth.ldap settings"
            ) from exc
        except LDAPBindError:
            raise
        except LDAPException as exc:
            raise self._unreachable(exc) from exc

    def _identity(self, connection: Connection, name: str, dn: str) -> LdapIdentity:
        s = self.settings
        attributes = [s.display_name_attribute, s.email_attribute]
        if s.group_membership == "memberof":
            attributes.append("memberOf")
        connection.search(dn, "(objectClass=*)", BASE, attributes=attributes)
        entries = [e for e in (connection.response or []) if e.get("type") == "searchResEntry"]
        attrs = dict(entries[0].get("attributes", {})) if entries else {}
        if s.group_membership == "memberof":
            values = attrs.get("memberOf") or []
            groups = {_rdn_value(str(v)) for v in (values if isinstance(values, list) else [values])}
        else:
            query = s.group_filter.replace("{dn}", escape_filter_chars(dn)).replace(
                "{name}", escape_filter_chars(name)
            )
            connection.search(s.group_base, query, SUBTREE, attributes=[s.group_name_attribute])
            groups = set()
            for entry in connection.response or []:
                if entry.get("type") != "searchResEntry":
                    continue
                value = _first(dict(entry.get("attributes", {})), s.group_name_attribute)
                groups.add((value or _rdn_value(str(entry["dn"]))).lower())
        return LdapIdentity(
            name=name,
            dn=dn,
            display_name=_first(attrs, s.display_name_attribute) or name,
            email=_first(attrs, s.email_attribute),
            groups=frozenset(groups),
        )
