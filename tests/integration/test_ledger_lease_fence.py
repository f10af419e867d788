"""The ledger records a live write's intent only while the tenant's lease is this replica's,
checked in the very transaction that records it (real PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from policies.model import Account, Case, PlanItem, Unjudged
from tests.integration.leases_support import postgres_schema_url
from tests.unit.worker_support import (
    MONDAY,
    every_other_day,
    fake_zendesk,
    listen,
    make_case,
    make_item,
    make_runtime,
)
from worker.delivery.executor import LEASE_LOST
from worker.delivery.ledger import LeaseLost, Ledger, Outcome, engine_url
from worker.runtime.cycle import run_cycle
from worker.runtime.leases import Lease, LeaseKeeper, PostgresLeases

pytestmark = pytest.mark.postgres

TTL = timedelta(seconds=30)


@pytest.fixture
def url() -> Iterator[str]:
    with postgres_schema_url() as scoped:
        yield scoped


@pytest.fixture
def ledger(url: str) -> Iterator[Ledger]:
    opened = Ledger.open(url)
    yield opened
    opened.close()


@pytest.fixture
def leases(url: str) -> Iterator[PostgresLeases]:
    engine = sa.create_engine(engine_url(url))
    store = PostgresLeases(engine)
    store.create_tables()
    yield store
    engine.dispose()


def take_over(leases: PostgresLeases, tenant: str) -> Lease:
    """Another replica claims ``tenant`` as if its lease had lapsed (the holder was paused)."""
    (taken,) = leases.acquire([tenant], "successor", TTL, now=datetime.now(UTC) + 2 * TTL)
    return taken


async def test_a_replica_whose_lease_was_taken_over_records_no_intent_and_writes_nothing(
    ledger: Ledger, leases: PostgresLeases
) -> None:
    paused = LeaseKeeper(leases, "paused", TTL)
    paused.refresh(["acme"])
    fake = fake_zendesk("1")
    taken: list[Lease] = []
    planned: list[datetime] = []

    def taken_over_once_synced(
        cases: Iterable[Case], accounts: Mapping[str, Account], now: datetime
    ) -> Iterator[PlanItem | Unjudged]:
        # Paused after its case store was synced and planned (a lease lost before that
        # stores nothing: tests/integration/test_sync_takeover_postgres.py), as it plans the
        # case again on the copy read fresh before the write; it still believes it holds acme.
        planned.append(now)
        if len(planned) == 2:
            taken.append(take_over(leases, "acme"))
        return every_other_day(cases, accounts, now)

    runtime = make_runtime(ledger, fake, planner=taken_over_once_synced)
    runtime.leases = paused
    heard = listen(runtime)

    await run_cycle(runtime, at=MONDAY)

    assert fake.writes == []
    assert [(r.case_ref, r.outcome, r.detail) for r in heard.items] == [
        ("zendesk:1", Outcome.SKIPPED, LEASE_LOST)
    ]
    assert ledger.history("zendesk:1") == []
    assert ledger.pending() == []


def test_no_takeover_slips_in_between_the_fence_and_the_intent(
    ledger: Ledger, leases: PostgresLeases
) -> None:
    holder = LeaseKeeper(leases, "holder", TTL)
    holder.refresh(["acme"])
    runtime = make_runtime(ledger, fake_zendesk())
    runtime.leases = holder
    fence = runtime.fence("acme")
    assert fence is not None
    attempts: list[list[Lease]] = []
    past_ttl = datetime.now(UTC) + 2 * TTL

    def lapsing_right_after_the_check(conn: sa.Connection) -> bool:
        in_force = fence(conn)
        # The lease lapses now, before the intent commits: a successor tries to take over.
        attempts.append(leases.acquire(["acme"], "successor", TTL, now=past_ttl))
        return in_force

    item = make_item(make_case("1"))
    ledger.begin(
        item,
        tenant="acme",
        cycle_id="c1",
        dry_run=False,
        at=MONDAY,
        started_at=MONDAY,
        fence=lapsing_right_after_the_check,
    )

    assert attempts == [[]]  # held off until the intent was recorded
    assert [pending.key for pending in ledger.pending()] == [item.key]
    assert take_over(leases, "acme").holder == "successor"  # then it goes through
    with pytest.raises(LeaseLost):  # and the old holder can record nothing more
        ledger.begin(
            make_item(make_case("2")),
            tenant="acme",
            cycle_id="c1",
            dry_run=False,
            at=MONDAY,
            started_at=MONDAY,
            fence=fence,
        )
    assert [pending.key for pending in ledger.pending()] == [item.key]
