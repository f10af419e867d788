"""How many tenants a replica takes or hands back: pure decisions, as a table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from worker.runtime.leases import (
    LeaseDecision,
    LeaseKeeper,
    LocalLeases,
    PostgresLeases,
    decide,
    fair_share,
    tenant_leases_for,
)

TENANTS = [f"t{n:02d}" for n in range(20)]


@pytest.mark.parametrize(
    ("tenants", "live", "share"),
    [
        (20, 3, 7),  # 7 + 7 + 6: rounding up covers every tenant
        (20, 4, 5),
        (20, 1, 20),
        (2, 5, 1),  # more replicas than tenants: some replicas idle, none starved of a tenant
        (0, 3, 0),
        (5, 0, 5),  # no heartbeat seen yet (first round): behave as the only replica
    ],
)
def test_fair_share(tenants: int, live: int, share: int) -> None:
    assert fair_share(tenants, live) == share


@pytest.mark.parametrize(
    ("held", "configured", "live", "expected"),
    [
        pytest.param([], TENANTS, 3, LeaseDecision(acquire=7, release=()), id="newcomer"),
        pytest.param(TENANTS[:7], TENANTS, 3, LeaseDecision(0, ()), id="at-share"),
        pytest.param(TENANTS[:5], TENANTS, 3, LeaseDecision(2, ()), id="below-share"),
        pytest.param(TENANTS, TENANTS, 3, LeaseDecision(0, tuple(TENANTS[7:])), id="peers-joined"),
        pytest.param(TENANTS[:7], TENANTS, 2, LeaseDecision(3, ()), id="a-peer-died"),
        pytest.param(
            ["t00", "gone"], ["t00", "t01"], 1, LeaseDecision(1, ("gone",)), id="unconfigured"
        ),
        pytest.param(
            ["t09", "t02", "t05", "t00"],
            TENANTS[:6],
            3,
            LeaseDecision(0, ("t09", "t05")),
            id="unconfigured-and-excess",
        ),
    ],
)
def test_decide(held: list[str], configured: list[str], live: int, expected: LeaseDecision) -> None:
    assert decide(held, configured, live) == expected


def test_sqlite_gets_the_single_process_leases() -> None:
    assert isinstance(tenant_leases_for(sa.create_engine("sqlite://")), LocalLeases)
    postgres = sa.create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/test")
    assert isinstance(tenant_leases_for(postgres), PostgresLeases)


def test_a_single_process_keeps_every_tenant() -> None:
    now = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)
    keeper = LeaseKeeper(LocalLeases(), "only", timedelta(seconds=30))
    first = keeper.refresh(TENANTS, now=now)
    later = keeper.refresh(TENANTS, now=now + timedelta(hours=1))
    assert [lease.tenant_id for lease in later] == TENANTS
    assert [lease.fencing_token for lease in later] == [lease.fencing_token for lease in first]
    assert keeper.leases.still_holds("t00", first[0].fencing_token)
