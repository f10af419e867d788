"""Tenant leases: several replicas share one PostgreSQL and split the tenants between them.

A replica works a tenant only while it holds that tenant's lease, so no tenant (hence no ticket)
is worked by two replicas at once, and a replica that dies without cleaning up loses its tenants
when their leases expire. Every grant carries a fencing token that grows by one per grant, so a
replica that was paused past its lease can tell, before it writes, that someone else took over.

Why plain PostgreSQL rows rather than advisory locks or a task queue:

- A session advisory lock lives exactly as long as its connection. A SIGKILLed process drops it
  at once, but a *paused* replica keeps it forever, a vanished host keeps it until TCP keepalive
  gives up (hours by default), each replica must pin a connection for its whole life (no
  transaction-mode pgbouncer), and there is no token to fence a stale writer with.
- A task queue (procrastinate) models jobs, not ownership: its per-task ``lock`` serialises
  jobs, and a killed worker's job stays "doing" until a periodic sweep retries stalled jobs.
  It would bring an async app, its own schema and a second scheduler, and still no fencing.
- A lease row has a TTL judged by the database's clock, a fencing token, and can be read with
  ``SELECT * FROM tenant_leases`` when an operator asks "who works tenant X?". Claiming uses
  ``SELECT ... FOR UPDATE SKIP LOCKED``: concurrent claimers never wait on each other and never
  claim the same row.

Two ways to hold tenants:

- ``serve`` keeps a fair share (:meth:`LeaseKeeper.refresh`): tenants / live replicas, handed
  back when a replica joins, claimed when one dies.
- ``run --once`` claims one tenant at a time (:meth:`LeaseKeeper.claim_next`), works it, marks
  it served and claims the next, until none is left. The ``run --once`` processes alive at the
  same time form one *run* (:meth:`LeaseKeeper.join_run`: the first one alive starts it, the
  others join it, and it ends when the last member is gone); a tenant served in a run is not
  claimed again by that run (``tenant_leases.served_run``). So N replicas started together
  share the tenants, each tenant is worked once, and a replica that starts a little late
  does not redo what its run already did. A run that finds nobody alive starts afresh.

Layers, from pure to IO:

- :func:`fair_share` and :func:`decide`: how many tenants a replica should hold, no IO.
- :class:`TenantLeases`: the store Protocol. :class:`PostgresLeases` is the real one;
  :class:`LocalLeases` is what SQLite gets - one process, every lease granted, never lost.
- :class:`LeaseKeeper`: one replica's loop step (heartbeat, renew, rebalance, claim), which the
  runtime calls again after ``keeper.next_refresh_in()``.

Every store method takes ``now``. Leave it ``None`` in production: expiry is then judged by the
database's clock, the only clock all replicas share, so replicas whose own clocks are skewed
still agree on who holds what. Tests and simulations pass an explicit instant to replay time.
"""

from __future__ import annotations

import itertools
import math
import os
import secrets
import socket
import threading
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

__all__ = [
    "Lease",
    "LeaseDecision",
    "LeaseKeeper",
    "LocalLeases",
    "PostgresLeases",
    "TenantLeases",
    "decide",
    "fair_share",
    "lease_metadata",
    "new_replica_id",
    "tenant_leases_for",
]

lease_metadata = sa.MetaData()

_leases = sa.Table(
    "tenant_leases",
    lease_metadata,
    sa.Column("tenant_id", sa.String(200), primary_key=True),
    sa.Column("holder", sa.String(200), nullable=True),  # replica id; NULL once released
    sa.Column("fencing_token", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("served_run", sa.String(200), nullable=True),  # last run --once run to serve it
)

_heartbeats = sa.Table(
    "replica_heartbeats",
    lease_metadata,
    sa.Column("replica_id", sa.String(200), primary_key=True),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("run_id", sa.String(200), nullable=True),  # run --once: the run it belongs to
)

# Columns added after the tables first shipped: ADD COLUMN IF NOT EXISTS on every start.
_ADDED_COLUMNS = (
    (_leases, "served_run VARCHAR(200)"),
    (_heartbeats, "run_id VARCHAR(200)"),
)

# Serialises CREATE TABLE when several replicas start at once against an empty database.
_DDL_LOCK_KEY = 0x6C65_6173_6573  # "leases"
# Serialises run --once replicas deciding whether to join a run or start one.
_RUN_LOCK_KEY = 0x6F6E_6365_7275_6E  # "oncerun"


@dataclass(frozen=True, slots=True)
class Lease:
    """One grant of one tenant to one replica. ``fencing_token`` is unique per tenant and grows."""

    tenant_id: str
    holder: str
    fencing_token: int
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class LeaseDecision:
    """What a replica should do this round: claim up to ``acquire`` more, hand back ``release``."""

    acquire: int
    release: tuple[str, ...]


def fair_share(tenants: int, live_replicas: int) -> int:
    """Tenants per replica. Rounded up, so the shares always cover every tenant."""
    return math.ceil(tenants / max(live_replicas, 1))


def decide(held: Collection[str], configured: Collection[str], live_replicas: int) -> LeaseDecision:
    """Top up to the fair share, or hand back the excess so a replica that just joined gets work.

    Tenants no longer configured are handed back too. Which excess tenants go is deterministic
    (the highest ids), so a replica does not churn a different tenant every round.
    """
    configured_set = set(configured)
    kept = sorted(t for t in held if t in configured_set)
    gone = sorted(t for t in held if t not in configured_set)
    target = fair_share(len(configured_set), live_replicas)
    return LeaseDecision(
        acquire=max(target - len(kept), 0),
        release=(*gone, *kept[target:]),
    )


def new_replica_id() -> str:
    """Unique per process, readable in ``tenant_leases.holder``: host, pid, and a random suffix
    so a restarted process that reuses a pid is still a different replica."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class TenantLeases(Protocol):
    """Where leases and replica heartbeats live. ``now=None`` means the store's own clock."""

    def create_tables(self) -> None: ...

    def heartbeat(self, replica_id: str, ttl: timedelta, *, now: datetime | None = None) -> None:
        """Record that ``replica_id`` is alive for ``ttl``."""
        ...

    def live_replicas(self, *, now: datetime | None = None) -> int: ...

    def join_run(self, replica_id: str, ttl: timedelta, *, now: datetime | None = None) -> str:
        """Heartbeat as a ``run --once`` replica: join the run of the ones alive, or start
        one. The run's id."""
        ...

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
        """Claim up to ``limit`` of ``tenant_ids`` that are free or expired (and, with
        ``not_served_in``, not served by that run yet); the new grants."""
        ...

    def mark_served(self, lease: Lease, run_id: str, *, now: datetime | None = None) -> bool:
        """The tenant is done for the run: hand its lease back, marked so the run's other
        members pass it by. False if the lease was no longer in force (nothing marked)."""
        ...

    def renew(
        self, leases: Sequence[Lease], ttl: timedelta, *, now: datetime | None = None
    ) -> list[Lease]:
        """Extend the leases still in force; a lease missing from the result is lost."""
        ...

    def release(self, leases: Sequence[Lease], *, now: datetime | None = None) -> None: ...

    def still_holds(
        self,
        tenant_id: str,
        fencing_token: int,
        *,
        within: sa.Connection | None = None,
        now: datetime | None = None,
    ) -> bool:
        """Is this grant still in force? Call before writing on the tenant's behalf."""
        ...

    def next_lapse(
        self, tenant_ids: Sequence[str], replica_id: str, *, now: datetime | None = None
    ) -> timedelta | None:
        """How soon the first of these tenants' leases held by another replica lapses, if any."""
        ...

    def retire(self, replica_id: str, *, now: datetime | None = None) -> None:
        """Graceful shutdown: hand back every lease of ``replica_id`` and drop its heartbeat."""
        ...

    def holders(self, *, now: datetime | None = None) -> dict[str, Lease]:
        """The leases in force, by tenant, whichever replica holds them (for the console)."""
        ...


def _clock(now: datetime | None) -> sa.ColumnElement[datetime]:
    # statement_timestamp(), not now(): now() is frozen at the start of the transaction, so a
    # fence checked late in a long transaction would judge expiry against a stale instant.
    if now is None:
        return sa.func.statement_timestamp(type_=sa.DateTime(timezone=True))
    return sa.literal(now, sa.DateTime(timezone=True))


def _expiry(clock: sa.ColumnElement[datetime], ttl: timedelta) -> sa.ColumnElement[datetime]:
    return clock + sa.literal(ttl, sa.Interval())


def _in_force(
    grants: Sequence[tuple[str, int]], clock: sa.ColumnElement[datetime]
) -> sa.ColumnElement[bool]:
    """Rows whose (tenant, token) grant is still held: not released, not expired, not taken."""
    return sa.and_(
        sa.tuple_(_leases.c.tenant_id, _leases.c.fencing_token).in_(grants),
        _leases.c.holder.is_not(None),
        _leases.c.expires_at > clock,
    )


def _as_lease(row: sa.Row[tuple[str, str, int, datetime]]) -> Lease:
    return Lease(
        tenant_id=row.tenant_id,
        holder=row.holder,
        fencing_token=row.fencing_token,
        expires_at=row.expires_at,
    )


_RETURNED = (_leases.c.tenant_id, _leases.c.holder, _leases.c.fencing_token, _leases.c.expires_at)


class PostgresLeases:
    """Leases as rows of ``tenant_leases``; liveness as rows of ``replica_heartbeats``.

    Each method is one short transaction on a pooled connection; no connection is pinned.
    """

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def create_tables(self) -> None:
        with self._engine.begin() as conn:
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_DDL_LOCK_KEY)))
            lease_metadata.create_all(conn)
            for table, column in _ADDED_COLUMNS:
                # DDL(), not text(): it names the table the way the engine maps schemas.
                add = f"ALTER TABLE %(fullname)s ADD COLUMN IF NOT EXISTS {column}"
                conn.execute(sa.DDL(add).against(table))  # type: ignore[no-untyped-call]

    def heartbeat(self, replica_id: str, ttl: timedelta, *, now: datetime | None = None) -> None:
        clock = _clock(now)
        upsert = pg_insert(_heartbeats).values(
            replica_id=replica_id, expires_at=_expiry(clock, ttl)
        )
        with self._engine.begin() as conn:
            conn.execute(
                upsert.on_conflict_do_update(
                    index_elements=[_heartbeats.c.replica_id],
                    set_={"expires_at": upsert.excluded.expires_at},
                )
            )
            # Dead replicas' rows would otherwise pile up, one per process ever started.
            conn.execute(sa.delete(_heartbeats).where(_heartbeats.c.expires_at <= clock))

    def live_replicas(self, *, now: datetime | None = None) -> int:
        count = sa.select(sa.func.count()).where(_heartbeats.c.expires_at > _clock(now))
        with self._engine.connect() as conn:
            return conn.execute(count).scalar_one()

    def join_run(self, replica_id: str, ttl: timedelta, *, now: datetime | None = None) -> str:
        clock = _clock(now)
        alive = (
            sa.select(_heartbeats.c.run_id)
            .where(_heartbeats.c.run_id.is_not(None), _heartbeats.c.expires_at > clock)
            .order_by(_heartbeats.c.run_id)
            .limit(1)
        )
        with self._engine.begin() as conn:
            # Two replicas finding nobody alive at once would each start a run of their own.
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_RUN_LOCK_KEY)))
            # A fresh id per run, never the replica's alone: replica ids may be fixed (a pod or
            # host name), and a new run must not inherit what an old one served.
            run_id: str = conn.execute(alive).scalar() or f"{replica_id}/{secrets.token_hex(4)}"
            upsert = pg_insert(_heartbeats).values(
                replica_id=replica_id, expires_at=_expiry(clock, ttl), run_id=run_id
            )
            conn.execute(
                upsert.on_conflict_do_update(
                    index_elements=[_heartbeats.c.replica_id],
                    set_={"expires_at": upsert.excluded.expires_at, "run_id": run_id},
                )
            )
        return run_id

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
        if not tenant_ids or limit == 0:
            return []
        clock = _clock(now)
        # Sorted, so concurrent inserts of the same new ids wait in the same order (no deadlock).
        ids = sorted(set(tenant_ids))
        unserved = (
            sa.true()
            if not_served_in is None
            else _leases.c.served_run.is_distinct_from(not_served_in)
        )
        claimable = (
            sa.select(_leases.c.tenant_id)
            .where(
                _leases.c.tenant_id.in_(ids),
                sa.or_(_leases.c.holder.is_(None), _leases.c.expires_at <= clock),
                unserved,
            )
            .order_by(_leases.c.tenant_id)
            .limit(limit)
            # A row another replica is claiming (or fencing a write on) is passed over, not
            # waited for; if that replica commits first, PostgreSQL re-checks the WHERE against
            # the committed row, so a freshly claimed tenant is never claimed twice.
            .with_for_update(skip_locked=True)
            .cte("claimable")
        )
        claim = (
            sa.update(_leases)
            .where(_leases.c.tenant_id == claimable.c.tenant_id)
            .values(
                holder=replica_id,
                fencing_token=_leases.c.fencing_token + 1,
                acquired_at=clock,
                expires_at=_expiry(clock, ttl),
            )
            .returning(*_RETURNED)
        )
        with self._engine.begin() as conn:
            conn.execute(
                pg_insert(_leases).values([{"tenant_id": t} for t in ids]).on_conflict_do_nothing()
            )
            return sorted((_as_lease(row) for row in conn.execute(claim)), key=_by_tenant)

    def renew(
        self, leases: Sequence[Lease], ttl: timedelta, *, now: datetime | None = None
    ) -> list[Lease]:
        if not leases:
            return []
        clock = _clock(now)
        extend = (
            sa.update(_leases)
            .where(_in_force([(lease.tenant_id, lease.fencing_token) for lease in leases], clock))
            .values(expires_at=_expiry(clock, ttl))
            .returning(*_RETURNED)
        )
        with self._engine.begin() as conn:
            return sorted((_as_lease(row) for row in conn.execute(extend)), key=_by_tenant)

    def release(self, leases: Sequence[Lease], *, now: datetime | None = None) -> None:
        if not leases:
            return
        clock = _clock(now)
        hand_back = (
            sa.update(_leases)
            .where(_in_force([(lease.tenant_id, lease.fencing_token) for lease in leases], clock))
            .values(holder=None, expires_at=clock)
        )
        with self._engine.begin() as conn:
            conn.execute(hand_back)

    def mark_served(self, lease: Lease, run_id: str, *, now: datetime | None = None) -> bool:
        clock = _clock(now)
        done = (
            sa.update(_leases)
            .where(_in_force([(lease.tenant_id, lease.fencing_token)], clock))
            .values(holder=None, expires_at=clock, served_run=run_id)
        )
        with self._engine.begin() as conn:
            return conn.execute(done).rowcount == 1

    def still_holds(
        self,
        tenant_id: str,
        fencing_token: int,
        *,
        within: sa.Connection | None = None,
        now: datetime | None = None,
    ) -> bool:
        """With ``within`` (the caller's open transaction, e.g. the ledger write), the lease row
        is also locked FOR KEY SHARE until that transaction ends: a takeover's FOR UPDATE SKIP
        LOCKED passes it by, so the check cannot go stale between the check and the commit.
        Renewal and release (plain UPDATEs) are not blocked by it."""
        probe = (
            sa.select(_leases.c.tenant_id)
            .where(_in_force([(tenant_id, fencing_token)], _clock(now)))
            .with_for_update(read=True, key_share=True)
        )
        if within is not None:
            return within.execute(probe).first() is not None
        with self._engine.connect() as conn:
            return conn.execute(probe).first() is not None

    def next_lapse(
        self, tenant_ids: Sequence[str], replica_id: str, *, now: datetime | None = None
    ) -> timedelta | None:
        # The interval is computed by the database, so the caller's clock never enters into it;
        # the caller only sleeps that long.
        clock = _clock(now)
        soonest = sa.select(sa.func.min(_leases.c.expires_at) - clock).where(
            _leases.c.tenant_id.in_(tenant_ids),
            _leases.c.holder != replica_id,
            _leases.c.expires_at > clock,
        )
        with self._engine.connect() as conn:
            lapse: timedelta | None = conn.execute(soonest).scalar_one()
            return lapse

    def retire(self, replica_id: str, *, now: datetime | None = None) -> None:
        clock = _clock(now)
        with self._engine.begin() as conn:
            conn.execute(
                sa.update(_leases)
                .where(_leases.c.holder == replica_id, _leases.c.expires_at > clock)
                .values(holder=None, expires_at=clock)
            )
            conn.execute(sa.delete(_heartbeats).where(_heartbeats.c.replica_id == replica_id))

    def holders(self, *, now: datetime | None = None) -> dict[str, Lease]:
        in_force: sa.Select[Any] = sa.select(*_RETURNED).where(
            _leases.c.holder.is_not(None), _leases.c.expires_at > _clock(now)
        )
        with self._engine.connect() as conn:
            return {row.tenant_id: _as_lease(row) for row in conn.execute(in_force)}


class LocalLeases:
    """SQLite means one process serves every tenant: every lease is granted and never lost.

    Same API as :class:`PostgresLeases`, so the runtime has one code path.
    """

    def __init__(self) -> None:
        self._tokens = itertools.count(1)

    def create_tables(self) -> None:
        return None

    def heartbeat(self, replica_id: str, ttl: timedelta, *, now: datetime | None = None) -> None:
        return None

    def live_replicas(self, *, now: datetime | None = None) -> int:
        return 1

    def join_run(self, replica_id: str, ttl: timedelta, *, now: datetime | None = None) -> str:
        return replica_id

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
        # One process: the run is this process, and it never asks again for a tenant served.
        expires_at = (now or datetime.now(UTC)) + ttl
        return [
            Lease(tenant_id, replica_id, next(self._tokens), expires_at)
            for tenant_id in sorted(set(tenant_ids))[:limit]
        ]

    def renew(
        self, leases: Sequence[Lease], ttl: timedelta, *, now: datetime | None = None
    ) -> list[Lease]:
        expires_at = (now or datetime.now(UTC)) + ttl
        return [replace(lease, expires_at=expires_at) for lease in leases]

    def release(self, leases: Sequence[Lease], *, now: datetime | None = None) -> None:
        return None

    def mark_served(self, lease: Lease, run_id: str, *, now: datetime | None = None) -> bool:
        return True

    def still_holds(
        self,
        tenant_id: str,
        fencing_token: int,
        *,
        within: sa.Connection | None = None,
        now: datetime | None = None,
    ) -> bool:
        return True

    def next_lapse(
        self, tenant_ids: Sequence[str], replica_id: str, *, now: datetime | None = None
    ) -> timedelta | None:
        return None

    def retire(self, replica_id: str, *, now: datetime | None = None) -> None:
        return None

    def holders(self, *, now: datetime | None = None) -> dict[str, Lease]:
        # Nothing is stored: the one process's keeper knows what it holds.
        return {}


def tenant_leases_for(engine: sa.Engine) -> TenantLeases:
    """Real leases on PostgreSQL; the single-process stand-in on anything else (SQLite)."""
    if engine.dialect.name == "postgresql":
        return PostgresLeases(engine)
    return LocalLeases()


def _by_tenant(lease: Lease) -> str:
    return lease.tenant_id


def _grant(lease: Lease) -> tuple[str, int]:
    return lease.tenant_id, lease.fencing_token


class LeaseKeeper:
    """One replica's side of the leases.

    ``serve``: call :meth:`refresh` again after :meth:`next_refresh_in`, independently of how
    long a cycle takes; the cycle works only the tenants in :meth:`held` and checks
    :meth:`still_holds` before each write. ``run --once``: :meth:`join_run` first, then
    :meth:`claim_next` / :meth:`served` per tenant, with :meth:`keep` on the same rhythm in the
    background (another thread may run it meanwhile). Call :meth:`refresh`, :meth:`claim_next`
    and :meth:`served` from one thread at a time; :meth:`held` from any.
    """

    def __init__(self, leases: TenantLeases, replica_id: str, ttl: timedelta) -> None:
        self.leases = leases
        self.replica_id = replica_id
        self.ttl = ttl
        self._held: tuple[Lease, ...] = ()
        self._next_refresh_in = self.renew_interval
        self.run_id: str | None = None  # run --once: the run joined (join_run)
        self._held_lock = threading.Lock()  # keep() may update _held beside claim_next/served

    @property
    def renew_interval(self) -> timedelta:
        """A third of the TTL, so two renewals in a row can fail before a lease lapses."""
        return self.ttl / 3

    def held(self) -> tuple[Lease, ...]:
        return self._held

    def next_refresh_in(self) -> timedelta:
        """The renew interval, or sooner if another replica's lease lapses before then: a dead
        replica's tenants are then claimed as they lapse, not up to a renew interval later."""
        return self._next_refresh_in

    def keep(self, *, now: datetime | None = None) -> list[Lease]:
        """Heartbeat and renew the leases held, claim nothing; the leases still held."""
        self.leases.heartbeat(self.replica_id, self.ttl, now=now)
        # Built afresh, not assigned from `renewed`: a lease claimed meanwhile (another thread
        # calling claim_next) must not be dropped, and one lost must go.
        asked = self._held
        renewed = self.leases.renew(asked, self.ttl, now=now)
        lost = {_grant(lease) for lease in asked} - {_grant(lease) for lease in renewed}
        with self._held_lock:
            self._held = tuple(lease for lease in self._held if _grant(lease) not in lost)
        return renewed

    def refresh(self, tenant_ids: Sequence[str], *, now: datetime | None = None) -> list[Lease]:
        """Heartbeat, renew, hand back the excess, claim up to the fair share; the leases held."""
        renewed = self.keep(now=now)
        decision = decide(
            held=[lease.tenant_id for lease in renewed],
            configured=tenant_ids,
            live_replicas=self.leases.live_replicas(now=now),
        )
        handed_back = [lease for lease in renewed if lease.tenant_id in decision.release]
        self.leases.release(handed_back, now=now)
        kept = [lease for lease in renewed if lease.tenant_id not in decision.release]
        claimed = (
            self.leases.acquire(
                tenant_ids, self.replica_id, self.ttl, limit=decision.acquire, now=now
            )
            if decision.acquire
            else []
        )
        current = sorted([*kept, *claimed], key=_by_tenant)
        with self._held_lock:
            self._held = tuple(current)
        lapse = self.leases.next_lapse(tenant_ids, self.replica_id, now=now)
        self._next_refresh_in = min(self.renew_interval, lapse or self.renew_interval)
        return current

    def join_run(self, *, now: datetime | None = None) -> str:
        """``run --once``: join the run of the ``run --once`` replicas alive, or start one."""
        self.run_id = self.leases.join_run(self.replica_id, self.ttl, now=now)
        return self.run_id

    def claim_next(self, tenant_ids: Sequence[str], *, now: datetime | None = None) -> Lease | None:
        """``run --once``: one more of ``tenant_ids`` that is free and not served by this run
        yet, or None when there is none left (all served, or held by others)."""
        if self.run_id is None:
            raise RuntimeError("join_run first")
        claimed = self.leases.acquire(
            tenant_ids, self.replica_id, self.ttl, limit=1, not_served_in=self.run_id, now=now
        )
        with self._held_lock:
            self._held = tuple(sorted([*self._held, *claimed], key=_by_tenant))
        return claimed[0] if claimed else None

    def served(self, tenant_id: str, *, now: datetime | None = None) -> bool:
        """``run --once``: the tenant's turn is over; hand it back marked served by the run.
        False if its lease was lost meanwhile (the tenant stays to be served)."""
        if self.run_id is None:
            raise RuntimeError("join_run first")
        with self._held_lock:
            lease = next(held for held in self._held if held.tenant_id == tenant_id)
            self._held = tuple(held for held in self._held if held.tenant_id != tenant_id)
        return self.leases.mark_served(lease, self.run_id, now=now)

    def still_holds(
        self,
        tenant_id: str,
        *,
        within: sa.Connection | None = None,
        now: datetime | None = None,
    ) -> bool:
        """May this replica still write for ``tenant_id``? Ask right before each write; see
        :meth:`TenantLeases.still_holds` for ``within``."""
        lease = next((held for held in self._held if held.tenant_id == tenant_id), None)
        return lease is not None and self.leases.still_holds(
            tenant_id, lease.fencing_token, within=within, now=now
        )

    def shutdown(self) -> None:
        """Hand every tenant back at once instead of letting the leases lapse."""
        self.leases.retire(self.replica_id)
        self._held = ()
