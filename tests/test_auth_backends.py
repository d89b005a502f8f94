"""One behaviour suite over every sign-in backend (entry points ``datalibrary.authenticators``):
local accounts, LDAP against a real slapd (tests/ldap_server.py), and a plugin installed
through a real dist-info. Each must keep the same contract; throttling, audit and the one
answer to every refusal are the platform's, so no backend can lose them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from datalibrary.app import create_app
from datalibrary.audit.models import AuditEvent
from datalibrary.auth import accounts, throttle
from datalibrary.auth import service as auth_service
from datalibrary.auth.authenticators import WRONG, authenticator_class, installed
from datalibrary.auth.models import User
from datalibrary.auth.passwords import hash_password
from datalibrary.auth.permissions import Principal
from datalibrary.config import AuthSettings, LdapGroupMapping, LdapSettings, Settings, SettingsError
from tests.helpers import PASSWORD, ApiClient, Platform
from tests.ldap_server import READER_DN, READER_PASSWORD, SLAPD, SUFFIX, USER_PASSWORD, SlapdServer

BACKENDS = ["local", "ldap", "plugin"]
TEST = Principal.system("test")
PLUGIN = """
from datalibrary.auth.authenticators import Authenticator
from datalibrary.auth.local import LocalAuthenticator

class AcmeAuthenticator(LocalAuthenticator):
    '''Accounts of another source whose hashes the platform keeps: a third-party backend.'''
    source = "acme"
    method = "acme-password"

def not_one():
    return None

class NamelessFakeAuthenticator(Authenticator):
    '''A fake that forgets to say which accounts it owns: refused at start, never asked.'''
    def authenticate(self, session, name, password):
        raise AssertionError("a refused authenticator was asked")
"""


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlapdServer]:
    if not Path(SLAPD).exists():
        pytest.skip("slapd is not installed")
    server = SlapdServer(tmp_path_factory.mktemp("slapd")).start()
    yield server
    server.stop()


def ldap_settings(slapd: SlapdServer) -> LdapSettings:
    return LdapSettings(
        enabled=True,
        url=slapd.url,  # type: ignore[arg-type]
        bind_dn=READER_DN,
        bind_password=READER_PASSWORD,  # type: ignore[arg-type]
        user_base=f"ou=people,{SUFFIX}",
        group_base=f"ou=groups,{SUFFIX}",
        group_map={
            "Data Scientists": LdapGroupMapping(group="scientists", roles=["scientist"]),
            "Auditors": LdapGroupMapping(group="audit-team", roles=["auditor"]),  # carol
        },
    )


@pytest.fixture
def acme_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A package installed the way pip installs one: its module and its dist-info on sys.path."""
    plugin = tmp_path / "plugin"
    plugin.mkdir()
    (plugin / "acme_auth.py").write_text(PLUGIN)
    info = plugin / "acme_auth-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-auth\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[datalibrary.authenticators]\nacme = acme_auth:AcmeAuthenticator\nbogus = acme_auth:not_one\n"
        "nameless = acme_auth:NamelessFakeAuthenticator\n"
    )
    assert "acme" not in installed()
    monkeypatch.syspath_prepend(str(plugin))
    return "acme"


def app_with(platform: Platform, auth: AuthSettings) -> FastAPI:
    settings = Settings(home=platform.settings.home, database_url=platform.settings.database_url, auth=auth)
    return create_app(settings, platform.db)


@dataclass
class Backend:
    """One sign-in backend behind the real app, and an account it proves."""

    kind: str
    platform: Platform
    app: FastAPI
    user: str
    password: str
    method: str

    def login(self, name: str, password: str) -> httpx.Response:
        return ApiClient(self.app).post("/api/v1/auth/login", json={"name": name, "password": password})

    def events(self, outcome: str) -> list[AuditEvent]:
        with self.platform.db.session() as session:
            query = select(AuditEvent).where(AuditEvent.action == "auth.login", AuditEvent.outcome == outcome)
            return list(session.scalars(query.order_by(AuditEvent.id)))

    def disable(self) -> None:
        if self.kind == "ldap":  # a directory user's account exists once they have signed in
            assert self.login(self.user, self.password).status_code == 200
        with self.platform.db.session() as session:
            accounts.set_active(session, TEST, self.user, False)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, platform: Platform) -> Backend:
    if request.param == "ldap":
        slapd: SlapdServer = request.getfixturevalue("slapd")
        app = app_with(platform, AuthSettings(ldap=ldap_settings(slapd)))
        return Backend("ldap", platform, app, "alice", USER_PASSWORD, "ldap")
    if request.param == "plugin":
        name = request.getfixturevalue("acme_plugin")
        app = app_with(platform, AuthSettings(authenticators=["local", name]))
        with platform.db.session() as session:
            auth_service.create_user(
                session, TEST, "ann", roles={"scientist"}, password=PASSWORD, source="acme"
            )
        return Backend("plugin", platform, app, "ann", PASSWORD, "acme-password")
    platform.add_user("ann", "scientist")
    return Backend("local", platform, platform.app, "ann", PASSWORD, "password")


def refusal(response: httpx.Response) -> dict[str, object]:
    """What a refused sign-in tells the caller, without what differs per request."""
    assert response.status_code == 401, response.text
    body = response.json()
    return {key: value for key, value in body.items() if key not in ("instance", "request_id")}


def test_the_right_password_signs_in_and_is_audited(backend: Backend) -> None:
    client = ApiClient(backend.app)
    response = client.post("/api/v1/auth/login", json={"name": backend.user, "password": backend.password})
    assert response.status_code == 200, response.text
    assert client.get("/api/v1/me").json()["name"] == backend.user
    assert [(e.actor, e.details) for e in backend.events("success")] == [
        (backend.user, {"method": backend.method})
    ]
    with backend.platform.db.session() as session:
        user = session.scalar(select(User).where(User.name == backend.user))
        assert user is not None and user.source == {"plugin": "acme"}.get(backend.kind, backend.kind)


def test_unknown_names_and_wrong_passwords_get_one_answer(backend: Backend) -> None:
    answers = [
        refusal(backend.login(backend.user, "Wrong-Pass-2024!")),
        refusal(backend.login("nobody-here", backend.password)),
        refusal(backend.login(backend.user, " ")),
        refusal(backend.login(backend.user.upper() + "x", backend.password)),
    ]
    assert answers[0]["detail"] == WRONG
    assert all(answer == answers[0] for answer in answers), answers
    assert backend.events("success") == []
    failures = backend.events("failure")
    assert [e.target for e in failures] == [
        f"user:{n}" for n in (backend.user, "nobody-here", backend.user)
    ] + [f"user:{backend.user}x"]
    assert {e.details["reason"] for e in failures} == {"credentials"}


def test_a_disabled_account_is_refused_with_the_same_answer(backend: Backend) -> None:
    wrong = refusal(backend.login(backend.user, "Wrong-Pass-2024!"))
    backend.disable()
    assert refusal(backend.login(backend.user, backend.password)) == wrong
    assert backend.events("failure")[-1].target == f"user:{backend.user}"


def test_throttling_applies(backend: Backend) -> None:
    limit = backend.platform.settings.auth.lockout_account_failures
    for _ in range(limit):
        refusal(backend.login(backend.user, "Wrong-Pass-2024!"))
    response = backend.login(backend.user, backend.password)
    assert response.status_code == 429, "even the right password, until the lockout ends"
    assert backend.events("denied")[-1].details == {"reason": "locked"}
    with backend.platform.db.session() as session:
        assert throttle.unlock(session, backend.user)  # what enabling the account does
    assert backend.login(backend.user, backend.password).status_code == 200


def test_an_account_signs_in_only_through_the_backend_of_its_source(
    sqlite_platform: Platform, slapd: SlapdServer
) -> None:
    platform = sqlite_platform
    both = app_with(platform, AuthSettings(ldap=ldap_settings(slapd)))
    local = Backend("local", platform, both, "carol", PASSWORD, "password")
    directory = Backend("ldap", platform, both, "alice", USER_PASSWORD, "ldap")
    # a local account named like a (mapped) directory user: the directory is not asked
    platform.add_user("carol", "scientist")
    refusal(local.login("carol", USER_PASSWORD))
    assert local.login("carol", PASSWORD).status_code == 200
    # an LDAP account that somehow holds a local hash: only the directory proves it
    assert directory.login("alice", USER_PASSWORD).status_code == 200
    with platform.db.session() as session:
        alice = session.scalar(select(User).where(User.name == "alice"))
        assert alice is not None
        alice.password_hash = hash_password(PASSWORD)
    refusal(directory.login("alice", PASSWORD))
    # LDAP listed but switched off: its accounts cannot sign in at all
    off = app_with(platform, AuthSettings(ldap=ldap_settings(slapd).model_copy(update={"enabled": False})))
    assert (
        ApiClient(off)
        .post("/api/v1/auth/login", json={"name": "alice", "password": USER_PASSWORD})
        .status_code
        == 401
    )
    # LDAP only: the local admin no longer signs in with a password
    only = app_with(platform, AuthSettings(authenticators=["ldap"], ldap=ldap_settings(slapd)))
    response = ApiClient(only).post(
        "/api/v1/auth/login", json={"name": "admin", "password": platform.admin_password}
    )
    assert response.status_code == 401
    assert (
        ApiClient(only)
        .post("/api/v1/auth/login", json={"name": "alice", "password": USER_PASSWORD})
        .status_code
        == 200
    )


def test_a_plugin_is_found_by_its_entry_point_and_a_bad_name_refuses_the_start(
    sqlite_platform: Platform, acme_plugin: str
) -> None:
    assert {"local", "ldap", acme_plugin} <= set(installed())
    assert authenticator_class(acme_plugin).__name__ == "AcmeAuthenticator"
    # an unknown name: the settings do not load, and the message lists what is installed
    with pytest.raises(
        ValueError, match=r"unknown authenticator\(s\) \['pam'\]; installed: .*'acme'.*'ldap'.*'local'"
    ):
        AuthSettings(authenticators=["local", "pam"])
    # an entry point that names something else than an Authenticator: the app does not start
    with pytest.raises(SettingsError, match="'bogus' .* is not a Authenticator class"):
        app_with(sqlite_platform, AuthSettings(authenticators=["local", "bogus"]))
    with pytest.raises(SettingsError, match="'nameless' names no source or method"):
        app_with(sqlite_platform, AuthSettings(authenticators=["local", "nameless"]))
    with pytest.raises(ValueError, match="name each authenticator once"):
        AuthSettings(authenticators=["local", "local"])
