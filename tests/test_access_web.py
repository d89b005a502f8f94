"""The Access pages: request, review with restrictions, grants; CSRF and permissions."""

from __future__ import annotations

from sqlalchemy import select

from datalibrary.access.models import Grant
from tests.helpers import PASSWORD, Platform
from tests.lake_helpers import add_policy, ingest, write_csv
from tests.test_web import page_csrf, sign_in


def test_request_review_and_grant_through_the_console(sqlite_platform: Platform, tmp_path) -> None:
    add_policy(sqlite_platform)
    write_csv(tmp_path / "lb.csv", {"USUBJID": ["a", "b"], "SITEID": ["701", "702"]})
    assert ingest(sqlite_platform, tmp_path / "lb.csv", "cdisc.lb")[1] == "succeeded"
    sqlite_platform.add_user("sci", "scientist")
    sqlite_platform.add_user("stew", "steward")
    sci = sign_in(sqlite_platform, "sci", PASSWORD)
    page = sci.get("/access")
    assert page.status_code == 200 and "Request access" in page.text
    short = sci.post(
        "/access/requests",
        data={"csrf_token": page_csrf(page.text), "table": "cdisc.lb", "justification": "x"},
    )
    assert short.status_code == 422 and 'id="f-justification-error"' in short.text
    unknown = sci.post(
        "/access/requests",
        data={
            "csrf_token": page_csrf(page.text),
            "table": "cdisc.nope",
            "justification": "Safety review of ALT",
        },
    )
    assert unknown.status_code == 422 and "no table cdisc.nope" in unknown.text
    sent = sci.post(
        "/access/requests",
        data={
            "csrf_token": page_csrf(page.text),
            "table": "cdisc.lb",
            "justification": "Safety review of ALT",
        },
        follow_redirects=False,
    )
    assert sent.status_code == 303
    assert "pending" in sci.get("/access").text

    stew = sign_in(sqlite_platform, "stew", PASSWORD)
    review = stew.get("/access")
    assert "Requests to review" in review.text and "Safety review of ALT" in review.text
    bad = stew.post(
        "/access/requests/1/decision",
        data={"csrf_token": page_csrf(review.text), "decision": "approve", "row_filter": "siteid = ("},
    )
    assert bad.status_code == 422 and "not a valid SQL condition" in bad.text
    done = stew.post(
        "/access/requests/1/decision",
        data={"csrf_token": page_csrf(review.text), "decision": "approve", "row_filter": "siteid = '701'"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert "approved" in sci.get("/access").text
    with sqlite_platform.db.session() as session:
        grant = session.scalars(select(Grant)).one()
    assert grant.principal == "user:sci" and grant.row_filter == "siteid = '701'"

    grants = stew.get("/access/grants")
    assert "user:sci" in grants.text
    revoked = stew.post(
        f"/access/grants/{grant.id}/revoke",
        data={"csrf_token": page_csrf(grants.text)},
        follow_redirects=False,
    )
    assert revoked.status_code == 303
    assert "user:sci" not in stew.get("/access/grants").text


def test_scientists_cannot_grant_and_forged_forms_fail(sqlite_platform: Platform) -> None:
    sqlite_platform.add_user("sci", "scientist")
    sci = sign_in(sqlite_platform, "sci", PASSWORD)
    page = sci.get("/access/grants")
    assert "New grant" not in page.text
    attempt = sci.post(
        "/access/grants",
        data={"csrf_token": page_csrf(page.text), "principal": "user:sci", "table": "cdisc.lb"},
    )
    assert attempt.status_code == 403
    forged = sci.post(
        "/access/requests", data={"csrf_token": "forged", "table": "a.b", "justification": "long enough"}
    )
    assert forged.status_code == 403
