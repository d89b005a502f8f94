"""LDAP sign-in against a real OpenLDAP slapd started by the fixture (tests/ldap_server.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from datalibrary.app import create_app
from datalibrary.audit.models import AuditEvent
from datalibrary.auth.ldap_login import NOT_MAPPED  # the same answer as a wrong password
from datalibrary.auth.models import User
from datalibrary.config import AuthSettings, LdapGroupMapping, LdapSettings, Settings
from tests.helpers import ApiClient, Platform
from tests.ldap_server import READER_DN, READER_PASSWORD, SLAPD, SUFFIX, USER_PASSWORD, SlapdServer

pytestmark = pytest.mark.skipif(not Path(SLAPD).exists(), reason="slapd is not installed")

GROUP_MAP = {
    "Data Scientists": LdapGroupMapping(group="scientists", roles=["scientist"]),
    "auditors": LdapGroupMapping(group="audit-team", roles=["auditor"]),
}


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlapdServer]:
    server = SlapdServer(tmp_path_factory.mktemp("slapd")).start()
    yield server
    server.stop()


def ldap_settings(slapd: SlapdServer, **overrides: object) -> LdapSettings:
    values: dict[str, object] = {
        "enabled": True,
        "url": slapd.url,
        "bind_dn": READER_DN,
        "bind_password": READER_PASSWORD,
        "user_base": f"ou=people,{SUFFIX}",
        "group_base": f"ou=groups,{SUFFIX}",
        "group_map": GROUP_MAP,
    }
    values.update(overrides)
    return LdapSettings(**values)  # type: ignore[arg-type]


def ldap_app(platform: Platform, ldap: LdapSettings) -> FastAPI:
    settings = Settings(
        home=platform.settings.home,
        database_url=platform.settings.database_url,
        auth=AuthSettings(ldap=ldap),
    )
    return create_app(settings, platform.db)


def login(app: FastAPI, name: str, password: str = USER_PASSWORD) -> tuple[ApiClient, int, dict]:  # type: ignore[type-arg]
    client = ApiClient(app)
    response = client.post("/api/v1/auth/login", json={"name": name, "password": password})
    return client, response.status_code, response.json()


def events(platform: Platform, action: str) -> list[AuditEvent]:
    with platform.db.session() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_ldap_user_signs_in_and_is_synced_with_mapped_groups(platform: Platform, slapd: SlapdServer) -> None:
    app = ldap_app(platform, ldap_settings(slapd))
    client, status, body = login(app, "alice")
    assert status == 200, body
    me = client.get("/api/v1/me").json()
    assert me["roles"] == ["scientist"]
    assert me["groups"] == ["scientists"]  # "Canteen" is not mapped
    with platform.db.session() as session:
        user = session.scalar(select(User).where(User.name == "alice"))
        assert user is not None and user.source == "ldap" and user.password_hash is None
        assert user.display_name == "Alice Liddell" and user.email == "alice@example.org"
    assert [e.details["method"] for e in events(platform, "auth.login")] == ["ldap"]
    assert [e.actor for e in events(platform, "group.create")] == ["ldap-sync"]
    # a second sign-in changes nothing
    assert login(app, "alice")[1] == 200
    assert len(events(platform, "group.member_add")) == 1


def test_wrong_password_and_unknown_users_are_refused_and_audited(sqlite_platform: Platform, slapd) -> None:  # type: ignore[no-untyped-def]
    app = ldap_app(sqlite_platform, ldap_settings(slapd))
    for name, password in (("alice", "Wrong-Pass-2024!"), ("nobody", USER_PASSWORD), ("alice", " ")):
        _, status, body = login(app, name, password)
        assert status == 401 and body["detail"] == "wrong user name or password"
    assert len([e for e in events(sqlite_platform, "auth.login") if e.outcome == "failure"]) == 3


def test_user_in_no_mapped_group_cannot_sign_in(sqlite_platform: Platform, slapd: SlapdServer) -> None:
    app = ldap_app(sqlite_platform, ldap_settings(slapd))
    _, status, body = login(app, "bob")
    assert status == 401 and body["detail"] == NOT_MAPPED
    with sqlite_platform.db.session() as session:
        assert session.scalar(select(User).where(User.name == "bob")) is None
    assert events(sqlite_platform, "auth.login")[-1].details == {"reason": "not-mapped"}


def test_removed_from_ldap_means_no_more_sign_in(platform: Platform, slapd: SlapdServer) -> None:
    uid = f"dave{platform.settings.database_url.__hash__() % 10_000}"  # unique per backend run
    slapd.add_user(uid, "Dave Lister")
    slapd.add_group(f"team-{uid}", [uid])
    with slapd.admin() as c:
        from ldap3 import MODIFY_ADD

        c.modify(slapd.group_dn("Data Scientists"), {"member": [(MODIFY_ADD, [slapd.user_dn(uid)])]})
    app = ldap_app(platform, ldap_settings(slapd))
    assert login(app, uid)[1] == 200
    slapd.remove_from_group("Data Scientists", uid)
    _, status, body = login(app, uid)
    assert status == 401 and body["detail"] == NOT_MAPPED
    with platform.db.session() as session:
        user = session.scalar(select(User).where(User.name == uid))
        assert user is not None and user.group_names == set() and user.effective_roles == set()
    assert any(e.details.get("user") == uid for e in events(platform, "group.member_remove"))
    slapd.delete_user(uid)
    assert login(app, uid)[1] == 401


def test_dn_template_without_a_service_account(sqlite_platform: Platform, slapd: SlapdServer) -> None:
    ldap = ldap_settings(
        slapd, bind_dn=None, bind_password=None, user_dn_template=f"uid={{name}},ou=people,{SUFFIX}"
    )
    app = ldap_app(sqlite_platform, ldap)
    client, status, _ = login(app, "carol")
    assert status == 200
    assert client.get("/api/v1/me").json()["roles"] == ["auditor"]
    # a DN-special character in the name is escaped, never interpreted
    assert login(app, "carol,ou=people")[1] == 401


def test_filter_injection_is_escaped(sqlite_platform: Platform, slapd: SlapdServer) -> None:
    app = ldap_app(sqlite_platform, ldap_settings(slapd))
    for name in ("*", "ali*", "alice)(uid=*", "*)(|(uid=*", "alice\x00", "alice\\2a", "x" * 64):
        assert login(app, name)[1] == 401, name


def test_a_local_account_of_the_same_name_wins(sqlite_platform: Platform, slapd: SlapdServer) -> None:
    sqlite_platform.add_user("alice", "steward")
    app = ldap_app(sqlite_platform, ldap_settings(slapd))
    assert login(app, "alice")[1] == 401  # the LDAP password is not the local one
    client, status, _ = login(app, "alice", "Correct-Horse-42-battery")
    assert status == 200 and client.get("/api/v1/me").json()["roles"] == ["steward"]


def test_a_disabled_ldap_user_cannot_sign_in(sqlite_platform: Platform, slapd: SlapdServer) -> None:
    app = ldap_app(sqlite_platform, ldap_settings(slapd))
    assert login(app, "alice")[1] == 200
    admin = sqlite_platform.as_user("admin")
    assert admin.post("/api/v1/users/alice/disable").status_code == 200
    assert login(app, "alice")[1] == 401


def test_unreachable_server_is_a_clear_503(sqlite_platform: Platform, slapd: SlapdServer) -> None:
    from tests.ldap_server import free_port

    app = ldap_app(
        sqlite_platform, ldap_settings(slapd, url=f"ldap://127.0.0.1:{free_port()}", timeout_seconds=1)
    )
    _, status, body = login(app, "alice")
    assert status == 503 and "cannot be reached" in body["detail"]
    app = ldap_app(sqlite_platform, ldap_settings(slapd, bind_password="wrong"))
    _, status, body = login(app, "alice")
    assert status == 503 and "service account" in body["detail"]


def test_ldap_disabled_by_default_refuses_unknown_users(sqlite_platform: Platform) -> None:
    assert login(sqlite_platform.app, "alice")[1] == 401


def test_group_map_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(
        "DATALIBRARY_AUTH__LDAP__GROUP_MAP",
        '{"DL-Scientists": {"group": "scientists", "roles": ["scientist"]}}',
    )
    settings = Settings(home=tmp_path)
    assert settings.auth.ldap.group_map["DL-Scientists"].roles == ["scientist"]
    monkeypatch.setenv("DATALIBRARY_AUTH__LDAP__GROUP_MAP", '{"x": {"group": "g1", "roles": ["wizard"]}}')
    with pytest.raises(ValueError, match="unknown role"):
        Settings(home=tmp_path)


def test_memberof_attribute_as_active_directory_has_it(sqlite_platform: Platform, slapd: SlapdServer) -> None:
    app = ldap_app(sqlite_platform, ldap_settings(slapd, group_membership="memberof", group_base=""))
    client, status, _ = login(app, "alice")
    assert status == 200
    assert client.get("/api/v1/me").json()["groups"] == ["scientists"]


def test_misconfigured_searches_are_clear_503s(sqlite_platform: Platform, slapd: SlapdServer) -> None:
    app = ldap_app(sqlite_platform, ldap_settings(slapd, user_base="ou=nowhere,dc=example,dc=org"))
    _, status, body = login(app, "alice")
    assert status == 503 and "user search failed" in body["detail"]
    # a filter that ignores the name matches several entries: ambiguous, never a guess
    app = ldap_app(sqlite_platform, ldap_settings(slapd, user_filter="(objectClass=inetOrgPerson)"))
    assert login(app, "alice")[1] == 401


def test_reconcile_disables_users_who_left_the_directory(platform: Platform, slapd: SlapdServer) -> None:
    from ldap3 import MODIFY_ADD

    uid = f"erin{abs(hash(platform.settings.database_url)) % 10_000}"
    slapd.add_user(uid, "Erin Hannon")
    with slapd.admin() as c:
        c.modify(slapd.group_dn("Data Scientists"), {"member": [(MODIFY_ADD, [slapd.user_dn(uid)])]})
    app = ldap_app(platform, ldap_settings(slapd))
    assert login(app, uid)[1] == 200
    with platform.db.session() as session:
        from datalibrary.auth.permissions import Principal
        from datalibrary.auth.service import create_token

        token = create_token(session, Principal.system("test"), uid).secret
    api = ApiClient(app, token)
    assert api.get("/api/v1/me").status_code == 200
    admin = ApiClient(app, platform.as_user("admin").token)
    report = admin.post("/api/v1/users/sync-ldap").json()
    assert report == {uid: "unchanged"}
    slapd.delete_user(uid)
    report = admin.post("/api/v1/users/sync-ldap").json()
    assert report[uid] == "disabled: no longer in the directory"
    assert api.get("/api/v1/me").status_code == 401  # the API token stops at once
    # without a service account, reconciling is refused with a clear message
    no_service = ldap_app(platform, ldap_settings(slapd, bind_dn=None, bind_password=None))
    response = ApiClient(no_service, platform.as_user("admin").token).post("/api/v1/users/sync-ldap")
    assert response.status_code == 409 and "service account" in response.json()["detail"]
