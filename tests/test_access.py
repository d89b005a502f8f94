"""Grants and access requests: validation, combination, expiry, revocation, audit."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from datalibrary.access import service
from datalibrary.access.models import Grant
from datalibrary.audit.models import AuditEvent
from datalibrary.auth import service as auth_service
from datalibrary.auth.permissions import Principal
from datalibrary.db.base import utcnow
from datalibrary.errors import Conflict, InvalidInput, PermissionDenied
from tests.helpers import Platform

COLUMNS = {"usubjid", "siteid", "lbtestcd", "lbstresn"}


def columns_of(namespace: str, table: str) -> set[str]:
    return COLUMNS


def principal(platform: Platform, name: str) -> Principal:
    with platform.db.session() as session:
        return auth_service.principal_for(auth_service.get_user(session, name))


@pytest.fixture
def people(platform: Platform) -> tuple[Principal, Principal]:
    platform.add_user("stew", "steward")
    platform.add_user("sci", "scientist")
    return principal(platform, "stew"), principal(platform, "sci")


def test_no_grant_means_no_access(platform: Platform, people) -> None:
    _, sci = people
    with platform.db.session() as session:
        assert service.effective_access(session, sci, "cdisc", "lb") is None


def test_grants_combine_by_union(platform: Platform, people) -> None:
    stew, sci = people
    with platform.db.session() as session:
        service.add_grant(
            session, stew, principal="user:sci", namespace="cdisc", table="lb",
            columns=["usubjid", "siteid"], masks={"usubjid": "null"}, row_filter="siteid = '701'",
            columns_of=columns_of,
        )  # fmt: skip
        service.add_grant(
            session, stew, principal="user:sci", namespace="cdisc", table="lb",
            columns=["lbtestcd", "usubjid"], row_filter="siteid = '703'", columns_of=columns_of,
        )  # fmt: skip
        access = service.effective_access(session, sci, "cdisc", "lb")
    assert access is not None
    assert access.columns == {"usubjid", "siteid", "lbtestcd"}
    assert access.masks == {}  # the second grant shows usubjid unmasked
    assert access.row_filter == "(siteid = '701') OR (siteid = '703')"


def test_namespace_grants_and_masks(platform: Platform, people) -> None:
    stew, sci = people
    with platform.db.session() as session:
        service.add_grant(
            session, stew, principal="user:sci", namespace="cdisc", masks={"usubjid": "const:***"}
        )
        access = service.effective_access(session, sci, "cdisc", "anything")
    assert access.columns is None and access.row_filter is None
    assert access.masks == {"usubjid": "const:***"}


def test_expired_and_revoked_grants_stop_working(platform: Platform, people) -> None:
    stew, sci = people
    with platform.db.session() as session:
        grant = service.add_grant(
            session, stew, principal="user:sci", namespace="cdisc", table="lb",
            expires_at=utcnow() + timedelta(days=1),
        )  # fmt: skip
        assert service.effective_access(session, sci, "cdisc", "lb") is not None
        session.execute(
            update(Grant).where(Grant.id == grant.id).values(expires_at=utcnow() - timedelta(seconds=1))
        )
        assert service.effective_access(session, sci, "cdisc", "lb") is None
        session.execute(update(Grant).where(Grant.id == grant.id).values(expires_at=None))
        assert service.effective_access(session, sci, "cdisc", "lb") is not None
        service.revoke_grant(session, stew, grant.id)
        assert service.effective_access(session, sci, "cdisc", "lb") is None


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"principal": "bob"}, "principal must be"),
        ({"columns": ["nope"]}, "no column 'nope'"),
        ({"masks": {"siteid": "md5"}}, "must be 'null' or 'const:TEXT'"),
        ({"columns": ["siteid"], "masks": {"usubjid": "null"}}, "masked column must also be"),
        ({"row_filter": "siteid IN (SELECT 1)"}, "subqueries"),
        ({"row_filter": "getenv('x') = '1'"}, "getenv"),
        ({"row_filter": "ghost = 1"}, "unknown column 'ghost'"),
        ({"row_filter": "siteid = "}, "not a valid SQL condition"),
        ({"expires_at": utcnow() - timedelta(days=1)}, "in the past"),
    ],
)
def test_bad_grants_are_refused(platform: Platform, people, kwargs, message) -> None:
    stew, _ = people
    arguments = {
        "principal": "user:sci",
        "namespace": "cdisc",
        "table": "lb",
        "columns_of": columns_of,
    } | kwargs
    with platform.db.session() as session, pytest.raises(InvalidInput, match=message):
        service.add_grant(session, stew, **arguments)


def test_only_stewards_grant(platform: Platform, people) -> None:
    _, sci = people
    with platform.db.session() as session, pytest.raises(PermissionDenied):
        service.add_grant(session, sci, principal="user:sci", namespace="cdisc")


def test_access_request_flow(platform: Platform, people) -> None:
    stew, sci = people
    with platform.db.session() as session:
        request = service.request_access(
            session, sci, namespace="cdisc", table="lb", justification="Safety analysis of ALT"
        )
        with pytest.raises(Conflict):
            service.request_access(
                session, sci, namespace="cdisc", table="lb", justification="Again, please!"
            )
        assert [r.id for r in service.list_requests(session, sci)] == [request.id]
        service.decide_request(
            session, stew, request.id, approve=True, row_filter="siteid = '701'", columns_of=columns_of
        )
        access = service.effective_access(session, sci, "cdisc", "lb")
        assert access.row_filter == "(siteid = '701')"
        with pytest.raises(Conflict):
            service.decide_request(session, stew, request.id, approve=False)
        query = select(AuditEvent.action).where(AuditEvent.action.like("access.%")).order_by(AuditEvent.id)
        actions = session.scalars(query).all()
    assert actions == ["access.request", "access.approve"]


def test_requests_need_a_justification_and_cannot_be_self_approved(platform: Platform, people) -> None:
    stew, _ = people
    platform.add_user("both", "scientist", "steward")
    both = principal(platform, "both")
    with platform.db.session() as session:
        with pytest.raises(InvalidInput, match="say why"):
            service.request_access(session, both, namespace="cdisc", table=None, justification="x")
        request = service.request_access(
            session, both, namespace="cdisc", table=None, justification="Needed for a study"
        )
        with pytest.raises(PermissionDenied, match="your own"):
            service.decide_request(session, both, request.id, approve=True)
        assert service.decide_request(session, stew, request.id, approve=False).state == "denied"
