"""Random interleavings of claims, renewals, hand-backs and the passing of time, on PostgreSQL:
at no instant do two replicas hold one tenant, and every new grant of a tenant gets a larger
fencing token than any before it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)

from tests.integration.leases_support import lease_schema
from worker.runtime.leases import Lease, PostgresLeases, lease_metadata

pytestmark = pytest.mark.postgres

REPLICAS = ("a", "b", "c")
TENANTS = ("t1", "t2", "t3", "t4")
TTL = timedelta(seconds=10)

replicas = st.sampled_from(REPLICAS)
tenant_sets = st.lists(st.sampled_from(TENANTS), min_size=1, max_size=4, unique=True)


def test_at_most_one_holder_per_tenant_at_any_instant() -> None:
    with lease_schema() as (engine, _schema):

        class OnThisSchema(LeaseInterleavings):
            def __init__(self) -> None:
                super().__init__(engine)

        run_state_machine_as_test(
            OnThisSchema,
            settings=settings(
                max_examples=30,
                stateful_step_count=25,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )


class LeaseInterleavings(RuleBasedStateMachine):
    """Each replica remembers the leases it was granted, as a real one would."""

    def __init__(self, engine: sa.Engine) -> None:
        super().__init__()
        with engine.begin() as conn:
            for table in lease_metadata.sorted_tables:
                conn.execute(table.delete())
        self.leases = PostgresLeases(engine)
        self.now = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)
        self.believed: dict[str, dict[str, Lease]] = {r: {} for r in REPLICAS}
        self.highest_token: dict[str, int] = {}

    @rule(replica=replicas, tenants=tenant_sets, limit=st.none() | st.integers(1, 4))
    def acquire(self, replica: str, tenants: list[str], limit: int | None) -> None:
        for lease in self.leases.acquire(tenants, replica, TTL, limit=limit, now=self.now):
            assert lease.fencing_token > self.highest_token.get(lease.tenant_id, 0)
            self.highest_token[lease.tenant_id] = lease.fencing_token
            self.believed[replica][lease.tenant_id] = lease

    @rule(replica=replicas)
    def renew(self, replica: str) -> None:
        renewed = self.leases.renew(list(self.believed[replica].values()), TTL, now=self.now)
        self.believed[replica] = {lease.tenant_id: lease for lease in renewed}

    @rule(replica=replicas, tenants=tenant_sets)
    def release(self, replica: str, tenants: list[str]) -> None:
        mine = self.believed[replica]
        handed_back = [mine.pop(t) for t in tenants if t in mine]
        self.leases.release(handed_back, now=self.now)

    @rule(seconds=st.integers(0, 15))
    def time_passes(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)

    @invariant()
    def one_holder_per_tenant(self) -> None:
        for tenant in TENANTS:
            granted = [
                lease for mine in self.believed.values() if (lease := mine.get(tenant)) is not None
            ]
            believers = [lease for lease in granted if lease.expires_at > self.now]
            confirmed = [
                lease
                for lease in granted
                if self.leases.still_holds(tenant, lease.fencing_token, now=self.now)
            ]
            assert len(believers) <= 1, f"{tenant} held by {believers}"
            assert len(confirmed) <= 1, f"{tenant} confirmed for {confirmed}"
