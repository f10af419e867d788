"""A replica works only the tenants it holds, and stops writing the moment its lease is lost."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from connectors.fake import Fault
from policies.model import PlanItem
from tests.unit.worker_support import MONDAY, fake_zendesk, listen, make_runtime
from worker.delivery.executor import LEASE_LOST
from worker.delivery.ledger import Ledger, Outcome
from worker.runtime.cycle import Runtime, Tenant, run_cycle
from worker.runtime.leases import Lease, LeaseKeeper, LocalLeases
from worker.runtime.service import claimed_one_at_a_time, leases_kept, run_once


class SharedLeases(LocalLeases):
    """Every lease granted, except the tenants another replica holds (``taken``, which a test
    may grow to play a takeover). ``served`` lists the tenants marked served, in order."""

    def __init__(self, taken: set[str]) -> None:
        super().__init__()
        self.taken = taken
        self.served: list[str] = []

    def acquire(
        self,
        tenant_ids: Sequence[str],
        replica_id: str,
        ttl: timedelta,
        *,
        limit: int | None = None,
        not_served_in: str | None = None,
        now: datetime | None = None,
    ) -> list[Lease]:
        free = [tenant for tenant in tenant_ids if tenant not in self.taken]
        return super().acquire(free, replica_id, ttl, limit=limit, now=now)

    def mark_served(self, lease: Lease, run_id: str, *, now: datetime | None = None) -> bool:
        self.served.append(lease.tenant_id)
        return lease.tenant_id not in self.taken

    def renew(
        self, leases: Sequence[Lease], ttl: timedelta, *, now: datetime | None = None
    ) -> list[Lease]:
        kept = [lease for lease in leases if lease.tenant_id not in self.taken]
        return super().renew(kept, ttl, now=now)

    def still_holds(self, tenant_id: str, fencing_token: int, **_: object) -> bool:
        return tenant_id not in self.taken


class Crash(BaseException):
    """The process dies: nothing in the worker may catch this."""


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    opened = Ledger.open(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    yield opened
    opened.close()


def two_tenants(ledger: Ledger, taken: set[str]) -> Runtime:
    """acme and globex, one Zendesk case each; this replica's keeper refreshed once."""
    runtime = make_runtime(ledger, fake_zendesk("1", "2"), concurrency=1)
    acme = runtime.tenants[0]
    globex = Tenant("globex", {source: fake_zendesk("9") for source in acme.connectors}, acme.plan)
    runtime.tenants = [acme, globex]
    runtime.leases = LeaseKeeper(SharedLeases(taken), "replica-a", timedelta(seconds=30))
    runtime.leases.refresh([tenant.name for tenant in runtime.tenants])
    return runtime


def writes(runtime: Runtime, tenant: str) -> list[str]:
    [connector] = next(t for t in runtime.tenants if t.name == tenant).connectors.values()
    return [item.case.id for item in connector.writes]  # type: ignore[attr-defined]


async def test_only_the_tenants_held_are_worked(ledger: Ledger) -> None:
    runtime = two_tenants(ledger, taken={"globex"})
    heard = listen(runtime)

    summary = await run_cycle(runtime, at=MONDAY)

    assert writes(runtime, "acme") == ["1", "2"]
    assert writes(runtime, "globex") == []
    assert {report.tenant for report in heard.items} == {"acme"}
    assert summary.tenants == ("acme",)


async def test_a_lease_lost_mid_cycle_stops_the_writes_at_once(ledger: Ledger) -> None:
    taken: set[str] = set()
    runtime = two_tenants(ledger, taken)
    [acme_zendesk] = runtime.tenants[0].connectors.values()

    async def taken_over_after_this_write(item: PlanItem) -> None:
        taken.add("acme")  # another replica claims acme while this write is in flight

    acme_zendesk.before_write = taken_over_after_this_write  # type: ignore[attr-defined]
    heard = listen(runtime)

    await run_cycle(runtime, at=MONDAY)

    assert writes(runtime, "acme") == ["1"]
    lost = [r for r in heard.items if r.detail == LEASE_LOST]
    assert [(r.case_ref, r.outcome) for r in lost] == [("zendesk:2", Outcome.SKIPPED)]
    assert ledger.history("zendesk:2") == []  # nothing recorded: the new holder decides
    assert writes(runtime, "globex") == ["9"]


async def test_reconciling_leaves_other_replicas_tenants_alone(ledger: Ledger) -> None:
    crashed = two_tenants(ledger, taken=set())
    [globex_zendesk] = crashed.tenants[1].connectors.values()
    globex_zendesk.inject("9", Fault.CRASH, error=Crash())  # type: ignore[attr-defined]
    with pytest.raises(Crash):
        await run_cycle(crashed, at=MONDAY)
    assert [p.tenant for p in ledger.pending()] == ["globex"]

    survivor = two_tenants(ledger, taken={"globex"})
    summary = await run_cycle(survivor, at=MONDAY)

    assert summary.reconciled == 0
    assert [p.tenant for p in ledger.pending()] == ["globex"]


def once_replica(ledger: Ledger, taken: set[str]) -> tuple[Runtime, SharedLeases]:
    """acme and globex, with a keeper that has claimed nothing yet (run --once claims)."""
    runtime = two_tenants(ledger, taken)
    leases = SharedLeases(taken)
    runtime.leases = LeaseKeeper(leases, "replica-a", timedelta(seconds=30))
    return runtime, leases


async def test_run_once_claims_works_and_hands_back_one_tenant_at_a_time(ledger: Ledger) -> None:
    runtime, leases = once_replica(ledger, taken=set())
    keeper = runtime.leases
    assert keeper is not None
    holding: list[list[str]] = []
    runtime.on_item = lambda _: holding.append([lease.tenant_id for lease in keeper.held()])

    summary = await run_once(runtime, at=MONDAY)

    assert summary.tenants == ("acme", "globex")
    assert (writes(runtime, "acme"), writes(runtime, "globex")) == (["1", "2"], ["9"])
    assert holding == [["acme"], ["acme"], ["globex"]]  # one tenant held at a time
    assert leases.served == ["acme", "globex"]
    assert keeper.held() == ()
    text = runtime.metrics.exposition().decode()
    assert "followup_leases_held 0.0" in text
    assert 'followup_tenant_cycles_total{result="ok",tenant="acme"} 1.0' in text


async def test_run_once_leaves_the_tenants_other_replicas_hold(ledger: Ledger) -> None:
    runtime, leases = once_replica(ledger, taken={"acme"})

    summary = await run_once(runtime, at=MONDAY)

    assert summary.tenants == ("globex",)
    assert (writes(runtime, "acme"), writes(runtime, "globex")) == ([], ["9"])
    assert leases.served == ["globex"]


async def test_a_turn_cut_short_by_a_signal_is_not_marked_served(ledger: Ledger) -> None:
    runtime, leases = once_replica(ledger, taken=set())
    [acme_zendesk] = runtime.tenants[0].connectors.values()
    stop = asyncio.Event()  # what run_once's SIGTERM handler sets

    async def signalled_during_the_first_write(item: PlanItem) -> None:
        stop.set()

    acme_zendesk.before_write = signalled_during_the_first_write  # type: ignore[attr-defined]

    async with leases_kept(runtime, one_at_a_time=True):
        summary = await run_cycle(runtime, at=MONDAY, stop=stop, turns=claimed_one_at_a_time)

    assert summary.interrupted
    assert summary.tenants == ("acme",)
    assert writes(runtime, "acme") == ["1"]  # the case in hand finished, no new one started
    assert writes(runtime, "globex") == []
    assert leases.served == []  # acme is still to be served, by whoever runs next
