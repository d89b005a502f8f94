"""The cost engine on a controlled clock: three users in two projects, workspaces of several
instance types running, stopped and paused across a price change (2026-02-28 20:00 UTC) and a
month boundary, lake storage, and queries of known sizes. Usage records are inserted directly:
the engine is what is under test. Expected amounts are computed by hand below (as fractions)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction as F

import pytest

from datalibrary.auth import projects
from datalibrary.auth.permissions import Principal
from datalibrary.costs import pricebook, service
from datalibrary.costs.models import StorageMeasurement
from datalibrary.errors import InvalidInput, PermissionDenied
from datalibrary.query.models import QueryRecord
from datalibrary.workspaces.models import Workspace, WorkspaceUsage
from tests.helpers import Platform

SYSTEM = Principal.system("test")
GIB = 1024**3
FEB = 28 * 86400  # seconds in February 2026
MAR = 31 * 86400
CHANGE = datetime(2026, 2, 28, 20, 0, tzinfo=UTC)
NOW = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)


def t(day: int, hour: int, minute: int = 0) -> datetime:
    month = 2 if day > 1 else 3
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def cents(value: F) -> str:
    return str(
        (Decimal(value.numerator) / Decimal(value.denominator)).quantize(Decimal("0.01"), ROUND_HALF_UP)
    )


# --- hand-computed amounts (EUR) -------------------------------------------------------------
# old prices: m5.large 0.10/h, m5.2xlarge 0.35/h, t3.medium 0.05/h, g4dn.xlarge 0.55/h,
#             home 0.10/GiB-month, lake 0.023/GiB-month, 5/TB, minimum 10 MB
# new prices from 2026-02-28 20:00: m5.large 0.12, m5.2xlarge 0.40, home 0.20, lake 0.03, 6/TB
ALICE_WS1 = F("0.10") * 2 + F("0.12") * 4 + F("0.12") * 2  # m5.large 18:00 -> 02:00 (onco)
ALICE_WS4 = F("0.55") * 1  # g4dn.xlarge 27th 23:00 -> 28th 01:00, only the hour in the period (cardio)
ALICE_QUERY = F(10**12, 10**12) * 5  # 1 TB at 12:00 on the 28th (onco)
BOB_WS2 = F("0.35") * F(1, 2) + F("0.40") * F(5, 4)  # m5.2xlarge 19:30 -> 21:15 (onco)
BOB_HOME = F(50) * 9900 * F("0.20") / FEB + F(100) * 21600 * F("0.20") / MAR  # stopped 21:15 -> now
BOB_QUERY = F(10**7, 10**12) * 6  # 1 KB at 21:00 on the 28th: the 10 MB minimum at 6/TB
BOB_LAKE = (
    F(100) * 72000 * F("0.023") / FEB + F(100) * 14400 * F("0.03") / FEB + F(100) * 21600 * F("0.03") / MAR
)
CAROL_WS3_RUN = F("0.05") * 6 + F("0.05") * 2  # t3.medium 10:00 -> 16:00, and 04:00 -> now (open)
CAROL_HOME = F(10) * 14400 * F("0.10") / FEB + F(10) * 14400 * F("0.20") / FEB  # paused 16:00 -> 24:00
CAROL_QUERY = F(25 * 10**10, 10**12) * 6  # 250 GB at 01:00 on March 1st

ALICE = ALICE_WS1 + ALICE_WS4 + ALICE_QUERY
BOB = BOB_WS2 + BOB_HOME + BOB_QUERY + BOB_LAKE
CAROL = CAROL_WS3_RUN + CAROL_HOME + CAROL_QUERY


def _setup(platform: Platform) -> None:
    for name in ("alice", "bob", "carol"):
        platform.add_user(name, "scientist")
    with platform.db.session() as session:
        for project in ("onco", "cardio"):
            projects.create_project(session, SYSTEM, project)
        projects.add_member(session, SYSTEM, "onco", "alice", default=True)
        projects.add_member(session, SYSTEM, "cardio", "alice")
        projects.add_member(session, SYSTEM, "onco", "bob", default=True)
        projects.add_member(session, SYSTEM, "cardio", "carol", default=True)
        pricebook.ensure_seeded(session, platform.settings)
        new = {"m5.large": "0.12", "m5.2xlarge": "0.40"}
        pricebook.add_version(
            session, SYSTEM, platform.settings,
            {"compute_per_hour": new, "home_per_gib_month": "0.20", "lake_per_gib_month": "0.03",
             "query_per_tb": "6", "query_min_bytes": 10_000_000},
            effective_from=CHANGE, now=datetime(2026, 2, 1, tzinfo=UTC),
        )  # fmt: skip
    with platform.db.session() as session:
        from datalibrary.auth.models import User

        ids = {u.name: u.id for u in session.query(User)}

        def workspace(owner: str, project: str, product: str, itype: str, states: list) -> None:  # type: ignore[type-arg]
            w = Workspace(owner_id=ids[owner], project=project, product=product, instance_type=itype,
                          environment="python", provisioner="process", state=states[-1][0],
                          provisioner_state={})  # fmt: skip
            session.add(w)
            session.flush()
            for state, start, end in states:
                session.add(WorkspaceUsage(workspace_id=w.id, user_id=ids[owner], project=project,
                                           instance_type=itype, state=state, started_at=start,
                                           ended_at=end))  # fmt: skip
            return w.id

        workspace("alice", "onco", "python-notebook", "m5.large",
                  [("starting", t(28, 17, 59), t(28, 18)), ("running", t(28, 18), t(1, 2)),
                   ("stopped", t(1, 2), None)])  # no home measured: no storage cost  # fmt: skip
        bob = workspace("bob", "onco", "python-notebook", "m5.2xlarge",
                        [("running", t(28, 19, 30), t(28, 21, 15)),
                         ("stopped", t(28, 21, 15), None)])  # fmt: skip
        carol = workspace("carol", "cardio", "r-notebook", "t3.medium",
                          [("running", t(28, 10), t(28, 16)), ("paused", t(28, 16), t(1, 4)),
                           ("running", t(1, 4), None)])  # fmt: skip
        workspace("alice", "cardio", "gpu-notebook", "g4dn.xlarge",
                  [("running", datetime(2026, 2, 27, 23, tzinfo=UTC), t(28, 1)),
                   ("stopped", t(28, 1), None)])  # fmt: skip
        for kind, resource, day, user, project, size in (
            ("home", f"workspace:{bob}", date(2026, 2, 28), "bob", "onco", 50 * GIB),
            ("home", f"workspace:{bob}", date(2026, 3, 1), "bob", "onco", 100 * GIB),
            ("home", f"workspace:{carol}", date(2026, 2, 28), "carol", "cardio", 10 * GIB),
            ("dataset", "cdisc.dm", date(2026, 2, 28), "bob", "onco", 100 * GIB),
            ("dataset", "cdisc.dm", date(2026, 3, 1), "bob", "onco", 100 * GIB),
            ("dataset", "cdisc.dm", date(2026, 2, 27), "bob", "onco", 100 * GIB),  # before the period
        ):
            session.add(StorageMeasurement(kind=kind, resource=resource, day=day, user=user,
                                           project=project, bytes=size))  # fmt: skip
        for i, (user, project, at, size, outcome) in enumerate([
            ("alice", "onco", t(28, 12), 10**12, "success"),
            ("bob", "onco", t(28, 21), 1000, "success"),
            ("carol", "cardio", t(1, 1), 25 * 10**10, "success"),
            ("alice", "cardio", t(1, 3), 5 * 10**11, "failure"),  # failed queries are not charged
            ("bob", "onco", t(1, 7), 10**12, "success"),  # after "now": not yet
        ]):  # fmt: skip
            session.add(QueryRecord(run_id=f"run-{i}", user=user, project=project, sql="SELECT 1",
                                    tables=[], bytes_scanned=size, outcome=outcome, started_at=at,
                                    finished_at=at))  # fmt: skip


def _report(platform: Platform, by: str, **kwargs: object) -> dict[str, str]:
    with platform.db.session() as session:
        found = service.report(session, SYSTEM, platform.settings, by=by, start=date(2026, 2, 28),
                               end=date(2026, 3, 1), now=NOW, **kwargs)  # type: ignore[arg-type]  # fmt: skip
        return {row["key"]: row["amount"] for row in found.rows} | {"TOTAL": found.total}


def test_report_equals_hand_computed_amounts(platform: Platform) -> None:
    _setup(platform)
    assert _report(platform, "user") == {
        "alice": cents(ALICE),
        "bob": cents(BOB),
        "carol": cents(CAROL),
        "TOTAL": cents(ALICE + BOB + CAROL),
    }
    # the same to the cent, written out
    assert (cents(ALICE), cents(BOB), cents(CAROL), cents(ALICE + BOB + CAROL)) == (
        "6.47",
        "0.99",
        "1.92",
        "9.38",
    )
    onco = ALICE_WS1 + ALICE_QUERY + BOB
    cardio = ALICE_WS4 + CAROL
    assert _report(platform, "project") == {"onco": cents(onco), "cardio": cents(cardio), "TOTAL": "9.38"}
    compute = ALICE_WS1 + ALICE_WS4 + BOB_WS2 + CAROL_WS3_RUN
    assert compute == F("2.545")  # rounds half up to 2.55
    by_category = _report(platform, "category")
    assert by_category == {
        "compute": "2.55",
        "storage": cents(BOB_HOME + BOB_LAKE + CAROL_HOME),
        "query": cents(ALICE_QUERY + BOB_QUERY + CAROL_QUERY),
        "TOTAL": "9.38",
    }
    # the month boundary splits by day exactly: February's part and March's part
    march = F("0.12") * 2 + F(100) * 21600 * F("0.20") / MAR + F(100) * 21600 * F("0.03") / MAR
    march += F("0.05") * 2 + CAROL_QUERY
    feb = ALICE + BOB + CAROL - march
    assert _report(platform, "day") == {"2026-02-28": cents(feb), "2026-03-01": cents(march), "TOTAL": "9.38"}
    # one project, one user
    assert _report(platform, "user", project="cardio") == {
        "alice": cents(ALICE_WS4),
        "carol": cents(CAROL),
        "TOTAL": cents(cardio),
    }
    assert _report(platform, "category", user="bob")["TOTAL"] == cents(BOB)


def test_prices_never_rewrite_the_past(sqlite_platform: Platform) -> None:
    platform = sqlite_platform
    _setup(platform)
    before = _report(platform, "user")
    with platform.db.session() as session:
        with pytest.raises(InvalidInput, match="never rewritten"):
            pricebook.add_version(session, SYSTEM, platform.settings, {"query_per_tb": "50"},
                                  effective_from=datetime(2026, 2, 28, tzinfo=UTC), now=NOW)  # fmt: skip
        pricebook.add_version(session, SYSTEM, platform.settings, {"query_per_tb": "50"}, now=NOW)
    assert _report(platform, "user") == before
    with platform.db.session() as session, pytest.raises(InvalidInput):
        pricebook.add_version(session, SYSTEM, platform.settings, {"query_per_tb": "-1"}, now=NOW)
    with platform.db.session() as session, pytest.raises(InvalidInput):
        pricebook.add_version(session, SYSTEM, platform.settings, {"query_per_tb": "NaN"}, now=NOW)
    with platform.db.session() as session, pytest.raises(InvalidInput):
        pricebook.add_version(session, SYSTEM, platform.settings, {"currency": "euro"}, now=NOW)


def test_scientists_see_only_their_own_costs(sqlite_platform: Platform) -> None:
    platform = sqlite_platform
    _setup(platform)
    with platform.db.session() as session:
        from datalibrary.auth import service as auth_service

        alice = auth_service.principal_for(auth_service.get_user(session, "alice"))
        own = service.report(session, alice, platform.settings, by="user", start=date(2026, 2, 28),
                             end=date(2026, 3, 1), now=NOW)  # fmt: skip
        assert [r["key"] for r in own.rows] == ["alice"]
        with pytest.raises(PermissionDenied):
            service.report(session, alice, platform.settings, by="user", user="bob", now=NOW)
        with pytest.raises(InvalidInput):
            service.report(session, alice, platform.settings, by="nonsense", now=NOW)
        month = service.my_month(session, alice, platform.settings, now=NOW)
        assert month["month"] == "2026-03"
        assert month["total"] == cents(F("0.12") * 2)  # March so far: ws1's last two hours
