"""The case store and its cursors move with the tenant's lease (issue 13, real PostgreSQL): a
replica taking a tenant over reads on from the stored cursor, and one that lost the lease
cannot move the cursor nor the store afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from tests.integration.leases_support import postgres_schema_url
from tests.unit.worker_support import MONDAY, fake_zendesk, make_runtime
from worker.delivery.ledger import Ledger, engine_url
from worker.runtime.cycle import Runtime, run_cycle
from worker.runtime.leases import LeaseKeeper, PostgresLeases
from worker.sync.store import Changes

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


def replica(ledger: Ledger, keeper: LeaseKeeper, fake: object) -> Runtime:
    runtime = make_runtime(ledger, fake, dry_run=True)  # type: ignore[arg-type]
    runtime.leases = keeper
    return runtime


async def test_a_replica_taking_a_tenant_over_reads_on_from_its_cursor(
    ledger: Ledger, leases: PostgresLeases
) -> None:
    helpdesk = fake_zendesk("1", "2", "3")
    first = LeaseKeeper(leases, "replica-a", TTL)
    first.refresh(["acme"])
    await run_cycle(replica(ledger, first, helpdesk), at=MONDAY)
    stored = replica(ledger, first, helpdesk).store.cursor("acme", helpdesk.source)
    assert stored is not None

    # replica-a is paused past its lease; replica-b claims acme.
    successor = LeaseKeeper(leases, "replica-b", TTL)
    successor.refresh(["acme"], now=datetime.now(UTC) + 2 * TTL)
    helpdesk.agent_edit("2", subject="changed while replica-a was paused")
    reads_before = helpdesk.reads

    summary = await run_cycle(replica(ledger, successor, helpdesk), at=MONDAY + timedelta(hours=1))

    assert helpdesk.syncs == [None, stored]  # replica-b went on from replica-a's cursor
    assert (summary.cases, helpdesk.reads - reads_before) == (1, 1)
    [status] = replica(ledger, successor, helpdesk).store.status(MONDAY + timedelta(hours=1))
    assert (status.tenant, status.cases, status.fallbacks) == ("acme", 3, 0)


async def test_a_replica_that_lost_the_lease_moves_neither_cursor_nor_store(
    ledger: Ledger, leases: PostgresLeases
) -> None:
    helpdesk = fake_zendesk("1", "2")
    paused = LeaseKeeper(leases, "paused", TTL)
    paused.refresh(["acme"])
    successor = LeaseKeeper(leases, "successor", TTL)
    successor.refresh(["acme"], now=datetime.now(UTC) + 2 * TTL)
    await run_cycle(replica(ledger, successor, helpdesk), at=MONDAY)
    store = replica(ledger, successor, helpdesk).store
    cursor = store.cursor("acme", helpdesk.source)

    helpdesk.agent_edit("1", subject="changed")
    await run_cycle(replica(ledger, paused, helpdesk), at=MONDAY + timedelta(hours=1))

    # paused still believed it held acme and read the change, but stored none of it.
    assert helpdesk.syncs == [None, cursor]
    assert store.cursor("acme", helpdesk.source) == cursor
    stored = store.known("acme", helpdesk.source, Changes())("1")
    assert stored is not None
    assert stored.subject != "changed"

    await run_cycle(replica(ledger, successor, helpdesk), at=MONDAY + timedelta(hours=2))
    assert helpdesk.syncs[-1] == cursor  # the successor reads the change itself
