"""Sign-in has no oracle (issue 22): names are normalized like the directory does before
throttling, and every refusal gets one answer."""

from __future__ import annotations

from datalibrary.auth.ldap import WRONG
from datalibrary.auth.ldap_login import NOT_MAPPED
from datalibrary.auth.login import normalize_login
from tests.helpers import PASSWORD, ApiClient, Platform


def _login(platform: Platform, name: str, password: str):  # type: ignore[no-untyped-def]
    return ApiClient(platform.app).post("/api/v1/auth/login", json={"name": name, "password": password})


def test_login_names_are_normalized_like_the_directory() -> None:
    assert normalize_login(" \uff41lice ") == "alice"
    assert normalize_login("ALICE") == normalize_login("\uff21\uff2c\uff29\uff23\uff25") == "alice"


def test_lookalike_spellings_count_against_one_account(sqlite_platform: Platform) -> None:
    platform = sqlite_platform
    platform.add_user("lou", "scientist")
    spellings = ["lou", "\uff4cou", "LOU", "l\uff4fu", "\uff2c\uff2f\uff35", "Lou"]
    limit = platform.settings.auth.lockout_account_failures
    for index in range(limit):
        response = _login(platform, spellings[index % len(spellings)], "Wrong-Password-1")
        assert response.status_code == 401 and response.json()["detail"] == WRONG
    assert _login(platform, "lou", PASSWORD).status_code == 429, "one account, however it is typed"
    assert _login(platform, "\uff4cou", PASSWORD).status_code == 429


def test_every_refusal_has_the_same_answer(sqlite_platform: Platform) -> None:
    platform = sqlite_platform
    platform.add_user("ann", "scientist")
    assert NOT_MAPPED == WRONG
    answers = {
        _login(platform, "ann", "Wrong-Password-1").json()["detail"],
        _login(platform, "nobody-here", PASSWORD).json()["detail"],
        _login(platform, "ann", "").json()["detail"]
        if _login(platform, "ann", "").status_code == 401
        else WRONG,
    }
    assert answers == {WRONG}
