"""Tenant leases on the real PostgreSQL: exclusivity, fair spread, fencing."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from tests.integration.leases_support import lease_schema
from worker.runtime.leases import LeaseKeeper, PostgresLeases

pytestmark = pytest.mark.postgres

T0 = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)
TTL = timedelta(seconds=30)
TENANTS = [f"tenant-{n:02d}" for n in range(20)]


@pytest.fixture
def engine() -> Iterator[sa.Engine]:
    with lease_schema() as (scoped, _schema):
        yield scoped


@pytest.fixture
def leases(engine: sa.Engine) -> PostgresLeases:
    return PostgresLeases(engine)


def test_concurrent_replicas_never_work_the_same_tenant(engine: sa.Engine) -> None:
    # Each thread is a replica with its own connections, claiming and releasing as fast as it
    # can; the critical section records every moment two of them believe they hold one tenant.
    tenants = TENANTS[:5]
    guard = threading.Lock()
    working: dict[str, str] = {}
    overlaps: list[tuple[str, str, str]] = []
    grants: Counter[str] = Counter()

    def replica(replica_id: str) -> None:
        leases = PostgresLeases(engine)
        for _ in range(40):
            for lease in leases.acquire(tenants, replica_id, TTL, limit=2):
                with guard:
                    if lease.tenant_id in working:
                        overlaps.append((lease.tenant_id, working[lease.tenant_id], replica_id))
                    working[lease.tenant_id] = replica_id
                    grants[replica_id] += 1
                time.sleep(0.001)  # "work", so the others get to run while it is held
                with guard:
                    del working[lease.tenant_id]
                leases.release([lease])

    threads = [threading.Thread(target=replica, args=(f"r{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert overlaps == []
    assert len(grants) > 1, "only one replica ever got work; the race was not exercised"


def test_fencing_tokens_of_one_tenant_never_repeat(leases: PostgresLeases) -> None:
    tokens = []
    for round_ in range(5):
        (lease,) = leases.acquire(["acme"], f"r{round_ % 2}", TTL, now=T0)
        tokens.append(lease.fencing_token)
        leases.release([lease], now=T0)
    assert tokens == sorted(set(tokens))


def test_twenty_tenants_spread_seven_seven_six_over_three_replicas(
    leases: PostgresLeases,
) -> None:
    keepers = [LeaseKeeper(leases, f"r{n}", TTL) for n in range(3)]
    for keeper in keepers:
        leases.heartbeat(keeper.replica_id, TTL, now=T0)
    held = [keeper.refresh(TENANTS, now=T0) for keeper in keepers]

    assert sorted(len(h) for h in held) == [6, 7, 7]
    every = [lease.tenant_id for h in held for lease in h]
    assert sorted(every) == TENANTS  # each tenant exactly once


def test_a_replica_that_joins_late_gets_a_fair_share(leases: PostgresLeases) -> None:
    first = LeaseKeeper(leases, "first", TTL)
    assert len(first.refresh(TENANTS, now=T0)) == 20

    late = [LeaseKeeper(leases, f"late{n}", TTL) for n in range(2)]
    for keeper in late:
        leases.heartbeat(keeper.replica_id, TTL, now=T0)
    later = T0 + timedelta(seconds=5)
    held = [keeper.refresh(TENANTS, now=later) for keeper in (first, *late)]

    assert sorted(len(h) for h in held) == [6, 7, 7]
    assert sorted(lease.tenant_id for h in held for lease in h) == TENANTS


def test_survivors_take_over_a_silent_replica_once_its_leases_lapse(
    leases: PostgresLeases,
) -> None:
    keepers = {name: LeaseKeeper(leases, name, TTL) for name in ("a", "b", "c")}
    for keeper in keepers.values():
        leases.heartbeat(keeper.replica_id, TTL, now=T0)
    lost = {lease.tenant_id for lease in keepers["c"].refresh(TENANTS, now=T0)}
    for name in ("a", "b"):
        keepers[name].refresh(TENANTS, now=T0)

    # "c" stops refreshing. Just before expiry its tenants are still off limits...
    almost = T0 + TTL - timedelta(seconds=1)
    before = {
        lease.tenant_id for n in ("a", "b") for lease in keepers[n].refresh(TENANTS, now=almost)
    }
    assert before.isdisjoint(lost)
    # ...and once "c"'s heartbeat and leases lapse the two survivors split all twenty.
    after_expiry = T0 + TTL + timedelta(seconds=1)
    held = [keepers[n].refresh(TENANTS, now=after_expiry) for n in ("a", "b")]
    assert sorted(len(h) for h in held) == [10, 10]
    assert sorted(lease.tenant_id for h in held for lease in h) == TENANTS


def test_survivors_wake_up_when_a_silent_replicas_leases_lapse(leases: PostgresLeases) -> None:
    survivor, silent = LeaseKeeper(leases, "survivor", TTL), LeaseKeeper(leases, "silent", TTL)
    leases.heartbeat("silent", TTL, now=T0)
    survivor.refresh(TENANTS, now=T0)
    silent.refresh(TENANTS, now=T0)
    assert survivor.next_refresh_in() == survivor.renew_interval  # peers renewing: no hurry

    survivor.refresh(TENANTS, now=T0 + TTL - timedelta(seconds=4))
    assert survivor.next_refresh_in() == timedelta(seconds=4)  # exactly when "silent"'s lapse


def test_a_paused_holder_learns_it_lost_the_lease_before_writing(leases: PostgresLeases) -> None:
    (stale,) = leases.acquire(["acme"], "paused", TTL, now=T0)
    past_ttl = T0 + TTL + timedelta(seconds=1)
    (fresh,) = leases.acquire(["acme"], "successor", TTL, now=past_ttl)

    assert fresh.fencing_token > stale.fencing_token
    assert not leases.still_holds("acme", stale.fencing_token, now=past_ttl)
    assert leases.still_holds("acme", fresh.fencing_token, now=past_ttl)
    # The stale holder can neither renew nor, by releasing, take the tenant from its successor.
    assert leases.renew([stale], TTL, now=past_ttl) == []
    leases.release([stale], now=past_ttl)
    assert leases.still_holds("acme", fresh.fencing_token, now=past_ttl)


def test_holders_name_the_replica_of_each_lease_in_force(leases: PostgresLeases) -> None:
    (acme,) = leases.acquire(["acme"], "first", TTL, now=T0)
    leases.acquire(["globex"], "second", TTL, now=T0)
    leases.release([acme], now=T0)
    leases.acquire(["initech"], "third", TTL, now=T0 - TTL * 2)  # lapsed since

    holders = leases.holders(now=T0)

    assert {tenant: lease.holder for tenant, lease in holders.items()} == {"globex": "second"}


def test_a_keeper_only_vouches_for_tenants_it_still_holds(leases: PostgresLeases) -> None:
    paused = LeaseKeeper(leases, "paused", TTL)
    paused.refresh(["acme"], now=T0)
    assert paused.still_holds("acme", now=T0)
    assert not paused.still_holds("globex", now=T0)  # never held

    past_ttl = T0 + TTL + timedelta(seconds=1)
    LeaseKeeper(leases, "successor", TTL).refresh(["acme"], now=past_ttl)
    assert not paused.still_holds("acme", now=past_ttl)


def test_an_expired_but_untaken_lease_is_not_renewed(leases: PostgresLeases) -> None:
    (lease,) = leases.acquire(["acme"], "slow", TTL, now=T0)
    assert leases.renew([lease], TTL, now=T0 + TTL) == []
    (again,) = leases.acquire(["acme"], "slow", TTL, now=T0 + TTL)
    assert again.fencing_token > lease.fencing_token


def test_a_fenced_write_holds_off_a_takeover_until_it_commits(
    engine: sa.Engine, leases: PostgresLeases
) -> None:
    (lease,) = leases.acquire(["acme"], "writer", TTL, now=T0)
    past_ttl = T0 + TTL + timedelta(seconds=1)
    with engine.begin() as write:
        assert leases.still_holds("acme", lease.fencing_token, within=write, now=T0)
        # The lease lapses while the write is in flight: the takeover must wait for it.
        assert leases.acquire(["acme"], "successor", TTL, now=past_ttl) == []
    (taken,) = leases.acquire(["acme"], "successor", TTL, now=past_ttl)
    assert taken.holder == "successor"


def test_shutdown_hands_tenants_back_at_once(leases: PostgresLeases) -> None:
    leaving = LeaseKeeper(leases, "leaving", TTL)
    leaving.refresh(TENANTS[:3])
    leaving.shutdown()

    staying = LeaseKeeper(leases, "staying", TTL)
    assert leases.live_replicas() == 0
    assert [lease.tenant_id for lease in staying.refresh(TENANTS[:3])] == TENANTS[:3]


def test_a_tenant_dropped_from_the_configuration_is_handed_back(leases: PostgresLeases) -> None:
    keeper = LeaseKeeper(leases, "solo", TTL)
    keeper.refresh(["acme", "globex"], now=T0)
    held = keeper.refresh(["acme"], now=T0 + timedelta(seconds=1))
    assert [lease.tenant_id for lease in held] == ["acme"]
    (globex,) = leases.acquire(["globex"], "other", TTL, now=T0 + timedelta(seconds=1))
    assert globex.holder == "other"


def once_replica(leases: PostgresLeases, name: str, now: datetime) -> LeaseKeeper:
    keeper = LeaseKeeper(leases, name, TTL)
    keeper.join_run(now=now)
    return keeper


def serve_turns(keeper: LeaseKeeper, tenants: list[str], now: datetime) -> list[str]:
    """What a run --once replica does: claim, (work), mark served, until nothing is left."""
    served = []
    while (lease := keeper.claim_next(tenants, now=now)) is not None:
        assert keeper.served(lease.tenant_id, now=now)
        served.append(lease.tenant_id)
    return served


def test_run_once_replicas_alive_together_form_one_run(leases: PostgresLeases) -> None:
    first = once_replica(leases, "first", T0)
    second = once_replica(leases, "second", T0 + timedelta(seconds=1))
    assert first.run_id is not None
    assert first.run_id == second.run_id


def test_replicas_of_a_run_take_turns_and_never_serve_a_tenant_twice(
    leases: PostgresLeases,
) -> None:
    tenants = TENANTS[:6]
    a, b = once_replica(leases, "a", T0), once_replica(leases, "b", T0)
    a_first = a.claim_next(tenants, now=T0)
    b_first = b.claim_next(tenants, now=T0)
    assert a_first is not None
    assert b_first is not None
    assert a_first.tenant_id != b_first.tenant_id  # one tenant at a time each, not all to one
    a.served(a_first.tenant_id, now=T0)
    b.served(b_first.tenant_id, now=T0)

    rest = serve_turns(a, tenants, T0) + serve_turns(b, tenants, T0)

    assert sorted([a_first.tenant_id, b_first.tenant_id, *rest]) == tenants
    assert a.held() == b.held() == ()


def test_a_replica_that_joins_late_does_not_redo_its_run(leases: PostgresLeases) -> None:
    early = once_replica(leases, "early", T0)
    assert serve_turns(early, TENANTS[:3], T0) == TENANTS[:3]
    late = once_replica(leases, "late", T0 + timedelta(seconds=5))  # early still alive
    assert late.claim_next(TENANTS[:3], now=T0 + timedelta(seconds=5)) is None


def test_once_its_replicas_are_gone_a_new_run_serves_every_tenant_again(
    leases: PostgresLeases,
) -> None:
    done = once_replica(leases, "done", T0)
    crashed = once_replica(leases, "crashed", T0)  # of the same run; dies without a word
    assert crashed.run_id == done.run_id
    serve_turns(done, TENANTS[:3], T0)
    done.shutdown()  # exits: drops its heartbeat
    assert once_replica(leases, "meanwhile", T0).run_id == done.run_id  # crashed looks alive

    after_ttl = T0 + TTL + timedelta(seconds=1)
    next_run = once_replica(leases, "done", after_ttl)  # the same replica id, a new process

    assert next_run.run_id != done.run_id
    assert serve_turns(next_run, TENANTS[:3], after_ttl) == TENANTS[:3]


def test_a_turn_whose_lease_lapsed_is_not_marked_served(leases: PostgresLeases) -> None:
    slow = once_replica(leases, "slow", T0)
    lease = slow.claim_next(["acme"], now=T0)
    assert lease is not None
    assert not slow.served("acme", now=T0 + TTL + timedelta(seconds=1))
    other = once_replica(leases, "other", T0 + TTL + timedelta(seconds=1))
    assert other.run_id != slow.run_id  # slow's heartbeat lapsed too: a new run
    again = other.claim_next(["acme"], now=T0 + TTL + timedelta(seconds=1))
    assert again is not None
    assert again.fencing_token > lease.fencing_token
