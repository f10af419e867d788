"""One cycle: reconcile -> fetch -> plan -> execute, for every tenant, then one summary.

:func:`run_cycle` is what ``followup run --once``, the scheduler of ``followup serve`` and the
demo call. Everything it needs is in a :class:`Runtime`; ``worker.runtime.wiring`` builds one
from the settings, tests build one from :class:`connectors.fake.FakeConnector` and a planner
function.

The plan streams: each case is planned as soon as it is read (the planner keeps nothing between
cases) and its items go straight to the executor, so memory stays flat and writes start while
later pages are still being fetched. What each item came to is told to ``Runtime.on_item`` as
it settles and only counted here: the summary keeps figures, never the items. Accounts are read
first, because the plan tier drives every policy; when they cannot be read the tenant waits for
the next cycle rather than guess. When a vendor's cases stop coming (an error mid-way), the
cases read so far are handled, the rest wait, and the cycle counts as failed. Same for a case
the planner chokes on. A single record the connector cannot read is skipped and counted
(:mod:`worker.runtime.badrecords`).

Tenants are worked one after the other, each in its *turn*: settle what a dead process left
pending, then fetch, plan and execute. Which tenants get a turn is the caller's
:data:`TenantTurns`: by default those this replica holds the lease of (``serve``);
``run --once`` claims them one at a time instead (:func:`worker.runtime.service.run_once`).

Each turn's own figures (cases read, outcomes, vendor calls and 429s, errors, unreadable
records) go to the ledger as it ends (:meth:`worker.delivery.ledger.Ledger.record_turn`), for
the ops
console; the cycle's summary adds them up.

A tenant whose connectors all read changes since a cursor (:class:`connectors.base.Syncs`,
issue 13) is not read in full: its turn syncs each vendor into the case store
(:mod:`worker.sync`), then plans, a batch of stored cases at a time, only the cases that changed
since they were last planned, whose account changed (or, for the kinds that read the account's
open-case totals, one of whose account's cases changed), or whose ``next_due`` has come. Each
planned case's next due instant is stored. The executor reads such a case fresh before any live
write and plans it again on that copy: the helpdesk stays the source of truth. The case as the
worker's writes left it is stored at once, so the next turn does not offer those writes again
before the vendor's change feed shows them (a minute later, for Zendesk's exports).

Before the plan, a tenant's follow-ups that an earlier cycle left half done (the reply out, a
later write failed: ``incomplete`` in the ledger) or that a dead process cut off (``interrupted``,
settled so by :func:`reconcile` at the start of the same turn) are finished on a fresh read of
their cases, whether or not the plan would offer them again, unless the customer wrote since.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import (
    AsyncGenerator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

import structlog
from sqlalchemy.engine import Connection

from connectors.base import Connector, Syncs
from policies.model import Account, Case, CaseKind, PlanItem, Source, Unjudged
from policies.planner import OpenCaseTotals
from worker.delivery.decisions import RunMode, after_interruption, run_mode
from worker.delivery.executor import Execution, Executor, ItemReport, carries_marker
from worker.delivery.ledger import Attempt, Fence, LeaseLost, Ledger, TenantTurn
from worker.metrics import Metrics, VendorTraffic
from worker.runtime.badrecords import SHOWN, BadRecords, BadRecordTally
from worker.runtime.leases import LeaseKeeper
from worker.runtime.switches import dry_run_switch
from worker.sync.step import SyncFigures, sync_vendor
from worker.sync.store import CaseStore, Planned

__all__ = [
    "CycleSummary",
    "NextDue",
    "PlanFunction",
    "Runtime",
    "Tenant",
    "TenantTurns",
    "held_tenants",
    "read_accounts",
    "reconcile",
    "run_cycle",
    "sync_tenant",
]

log = structlog.get_logger("followup.cycle")

PlanFunction = Callable[
    [Iterable[Case], Mapping[str, Account], datetime], Iterator[PlanItem | Unjudged]
]
"""``policies.planner.plan`` with the tenant's policies and calendar bound."""

NextDue = Callable[[Case, Mapping[str, Account], datetime], datetime | None]
"""``policies.due.next_due`` with the tenant's policies and calendar bound: the earliest
instant at which planning the case could yield anything if nothing changes (None: never)."""


def _due_now(case: Case, accounts: Mapping[str, Account], now: datetime) -> datetime | None:
    """Every case is due every turn: always correct, as cheap to plan as a full read."""
    return now


def _wall_clock() -> datetime:
    return datetime.now(UTC)


async def _nothing_unresolved() -> list[str]:
    return []


@dataclass(frozen=True, slots=True)
class Tenant:
    """One helpdesk: its vendors (at most one connector per source) and its planner.

    ``works_on`` tells whether the instant falls on one of the tenant's business days; on
    other days (weekends, public holidays) a cycle leaves the tenant alone, whoever started it.
    ``bad_records``: where the tenant's connectors report the records they cannot read (their
    ``report=``); None when they only log them.
    """

    name: str
    connectors: Mapping[Source, Connector]
    plan: PlanFunction
    works_on: Callable[[datetime], bool] = lambda _at: True
    # Kinds the policies judge by the account's open cases: planned once every case is read
    # (the rest is planned as it streams in). Default: all, which is always correct.
    plan_last: frozenset[CaseKind] = frozenset(CaseKind)
    bad_records: BadRecordTally | None = None
    # The names its mapping gives that its vendors do not have and its operator has not
    # accepted, one line each (worker.runtime.wiring.unresolved_names): a live run stops on any.
    unresolved: Callable[[], Awaitable[list[str]]] = _nothing_unresolved
    next_due: NextDue = _due_now

    def syncing(self) -> dict[Source, Syncs] | None:
        """Its connectors, when every one reads changes since a cursor (issue 13): the tenant
        is then planned from the case store. None: some vendor is read in full each turn."""
        syncing: dict[Source, Syncs] = {
            source: connector
            for source, connector in self.connectors.items()
            if isinstance(connector, Syncs)
        }
        return syncing if len(syncing) == len(self.connectors) else None


@dataclass(slots=True)
class Runtime:
    """Everything a cycle needs. ``configured_dry_run`` is ``FOLLOWUP_DRY_RUN``.

    ``leases``: when replicas share the ledger, this one works only the tenants it holds, and
    checks its fencing token in the very transaction that records each intent to write
    (:mod:`worker.runtime.leases`); someone else (``worker.runtime.service``) keeps the leases
    refreshed.
    None: this process works every tenant.
    ``on_item`` hears about every plan item as soon as it is settled (a progress bar, a
    timeline); ``clock`` is the wall clock the ledger's timings use. ``store``: the case store
    (:mod:`worker.sync.store`), in the ledger's database.
    """

    ledger: Ledger
    metrics: Metrics
    tenants: Sequence[Tenant]
    configured_dry_run: bool = True
    concurrency: int = 4
    clock: Callable[[], datetime] = _wall_clock
    on_item: Callable[[ItemReport], None] | None = None
    on_unjudged: Callable[[Unjudged], None] | None = None
    leases: LeaseKeeper | None = None
    store: CaseStore = field(init=False)

    def __post_init__(self) -> None:
        self.store = CaseStore(self.ledger.engine)

    def holds(self, tenant: str) -> bool:
        """Is the tenant this replica's to work, as far as the last lease refresh knows?"""
        return self.leases is None or any(lease.tenant_id == tenant for lease in self.leases.held())

    def fence(self, tenant: str) -> Fence | None:
        """The check the ledger runs inside the transaction recording an intent to write: is
        the tenant's lease still this replica's, by the database's clock? None: no leases."""
        keeper = self.leases
        if keeper is None:
            return None

        def still_holds(conn: Connection) -> bool:
            return keeper.still_holds(tenant, within=conn)

        return still_holds


TenantTurns = Callable[[Runtime, asyncio.Event], AsyncGenerator[Tenant]]
"""The tenants a cycle works, one turn each. The generator is resumed once the turn it handed
out is over (or closed when the cycle stops), so it can tell a finished turn from another."""


async def held_tenants(runtime: Runtime, stop: asyncio.Event) -> AsyncGenerator[Tenant]:
    """Every tenant this replica holds the lease of (all of them without leases).

    Asked per tenant, not once per cycle: a tenant claimed while the cycle runs is worked in
    this cycle still, and one lost meanwhile is not."""
    for tenant in runtime.tenants:
        if runtime.holds(tenant.name):
            yield tenant


@dataclass(frozen=True, slots=True)
class CycleSummary:
    cycle_id: str
    at: datetime
    mode: RunMode
    cases: int = 0
    planned: int = 0  # items settled (their reports went to ``Runtime.on_item``)
    counts: Counter[str] = field(default_factory=Counter)  # of them, by outcome label
    failed: int = 0
    unjudged: int = 0  # (case, policy) pairs not judged (told to ``Runtime.on_unjudged``)
    errors: tuple[str, ...] = ()  # the first few per tenant (badrecords.SHOWN); all are logged
    error_count: int = 0  # vendors that stopped answering, cases the planner failed on...
    reconciled: int = 0
    cases_not_started: int = 0
    interrupted: bool = False
    duration_s: float = 0.0
    calls: int = 0  # vendor calls made
    retries: int = 0  # of which repeats after a 429, a 5xx or no answer
    tenants: tuple[str, ...] = ()  # the tenants this cycle worked, in turn order
    bad_records: tuple[BadRecords, ...] = ()  # per tenant that had any

    @property
    def bad_record_count(self) -> int:
        """Vendor records skipped because they cannot be read (they get no follow-up)."""
        return sum(bad.total for bad in self.bad_records)

    @property
    def ok(self) -> bool:
        """Every due follow-up was done (or planned, in dry-run) and every vendor was read."""
        return not self.failed and not self.error_count

    def as_dict(self) -> dict[str, Any]:
        """The figures of the summary line and the ledger's cycle record.

        ``unreadable`` lists, per tenant, the records skipped per vendor and the first few ids
        with their reasons: ``followup history`` finds a skipped ticket there."""
        return {
            "cycle_id": self.cycle_id,
            "at": self.at.isoformat(),
            "dry_run": self.mode.dry_run,
            "tenants": list(self.tenants),
            "cases": self.cases,
            "planned": self.planned,
            **dict(sorted(self.counts.items())),
            "failed": self.failed,
            "unjudged": self.unjudged,
            "bad_records": self.bad_record_count,
            "unreadable": [bad.as_dict() for bad in self.bad_records],
            "errors": self.error_count,
            "reconciled": self.reconciled,
            "calls": self.calls,
            "retries": self.retries,
            "cases_not_started": self.cases_not_started,
            "interrupted": self.interrupted,
            "duration_s": round(self.duration_s, 3),
            "ok": self.ok,
        }


async def run_cycle(
    runtime: Runtime,
    *,
    at: datetime,
    dry_run: bool | None = None,
    stop: asyncio.Event | None = None,
    turns: TenantTurns = held_tenants,
) -> CycleSummary:
    """Run one cycle planned for the instant ``at``.

    ``dry_run`` is the command's ``--dry-run/--live`` flag (None: not given); the runtime
    switch and ``FOLLOWUP_DRY_RUN`` decide the rest (:func:`worker.delivery.decisions.run_mode`).
    Setting ``stop`` finishes the cases in hand and starts no new one. ``turns`` hands out
    the tenants to work (default: those this replica holds).
    """
    if at.tzinfo is None:
        raise ValueError("at must be timezone-aware")
    stop = stop or asyncio.Event()
    mode = run_mode(
        flag=dry_run,
        switch=dry_run_switch(runtime.ledger),
        configured=runtime.configured_dry_run,
    )
    cycle_id = f"{at:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    calls_before = runtime.metrics.calls_so_far()
    retries_before = runtime.metrics.retries_so_far()
    with structlog.contextvars.bound_contextvars(cycle_id=cycle_id, dry_run=mode.dry_run):
        log.info("cycle started", at=at.isoformat(), mode=mode.why)
        runtime.ledger.start_cycle(
            cycle_id, at=at, dry_run=mode.dry_run, started_at=runtime.clock()
        )
        executor = Executor(
            ledger=runtime.ledger,
            metrics=runtime.metrics,
            cycle_id=cycle_id,
            at=at,
            run_dry=mode.dry_run,
            concurrency=runtime.concurrency,
            stop=stop,
            clock=runtime.clock,
            on_item=runtime.on_item,
            fence=runtime.fence,
        )
        parts = []
        async with aclosing(turns(runtime, stop)) as tenants:
            async for tenant in tenants:
                if stop.is_set():
                    break
                turn = await _run_tenant(tenant, runtime, executor, at)
                _record_turn(runtime, turn, cycle_id=cycle_id, at=at, dry_run=mode.dry_run)
                parts.append(turn)
        summary = CycleSummary(
            cycle_id=cycle_id,
            at=at,
            mode=mode,
            cases=sum(p.cases for p in parts),
            planned=sum(p.execution.planned for p in parts),
            counts=sum((p.execution.counts for p in parts), Counter()),
            failed=sum(p.execution.failed for p in parts),
            unjudged=sum(p.unjudged for p in parts),
            errors=tuple(e for p in parts for e in p.errors),
            error_count=sum(p.error_count for p in parts),
            reconciled=sum(p.reconciled for p in parts),
            cases_not_started=sum(p.execution.cases_not_started for p in parts),
            interrupted=stop.is_set(),
            duration_s=time.monotonic() - started,
            calls=runtime.metrics.calls_so_far() - calls_before,
            retries=runtime.metrics.retries_so_far() - retries_before,
            tenants=tuple(p.tenant for p in parts),
            bad_records=tuple(p.bad_records for p in parts if p.bad_records.total),
        )
        _record(runtime, summary)
        return summary


@dataclass(slots=True)
class _TenantResult:
    tenant: str
    started_at: datetime  # wall clock, as the ledger's timings
    cases: int = 0
    execution: Execution = field(default_factory=Execution)
    unjudged: int = 0
    errors: list[str] = field(default_factory=list)  # the first SHOWN
    error_count: int = 0
    reconciled: int = 0
    bad_records: BadRecords = field(init=False)
    vendors: dict[str, VendorTraffic] = field(default_factory=dict)  # this turn's calls
    # Planned from the case store (issue 13): what the sync stored or dropped, the cases
    # planned, what the store holds after the sync, the cursors read in full instead.
    changed: int = 0
    cases_planned: int = 0
    store_size: int | None = None
    fallbacks: int = 0

    def __post_init__(self) -> None:
        self.bad_records = BadRecords(self.tenant)

    def figures(self) -> dict[str, Any]:
        """What the ledger keeps of the turn (:class:`worker.delivery.ledger.TenantTurn`)."""
        return {
            "cases": self.cases,
            "planned": self.execution.planned,
            "counts": dict(sorted(self.execution.counts.items())),
            "failed": self.execution.failed,
            "unjudged": self.unjudged,
            "reconciled": self.reconciled,
            "errors": self.errors,
            "error_count": self.error_count,
            "unreadable": self.bad_records.as_dict(),
            "changed": self.changed,
            "cases_planned": self.cases_planned,
            "store_size": self.store_size,
            "fallbacks": self.fallbacks,
            "vendors": {
                vendor: {"calls": t.calls, "throttled": t.throttled, "retries": t.retries}
                for vendor, t in sorted(self.vendors.items())
            },
        }

    def error(self, what: str) -> None:
        """Count an error (already logged with its traceback); a planner failing on every case
        of a large tenant must not fill the memory nor the summary with its messages."""
        self.error_count += 1
        if len(self.errors) < SHOWN:
            self.errors.append(f"{self.tenant}: {what}")


def _cause(exc: BaseException) -> str:
    """An error as one line for people: its kind and message (``Unauthorized: intercom GET
    /contacts -> 401``, ``ConnectError: [Errno 111] Connection refused``)."""
    message = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


async def _run_tenant(
    tenant: Tenant, runtime: Runtime, executor: Executor, at: datetime
) -> _TenantResult:
    """One tenant's turn. Everything its connectors log carries the tenant (contextvars)."""
    result = _TenantResult(tenant.name, started_at=runtime.clock())
    traffic_before = runtime.metrics.vendor_traffic(tenant.name)
    with structlog.contextvars.bound_contextvars(tenant=tenant.name):
        if tenant.bad_records is not None:
            tenant.bad_records.take()  # only this turn's count
        try:
            result.reconciled = await reconcile(runtime, tenant)
            await _work_tenant(tenant, runtime, executor, at, result)
        finally:
            if tenant.bad_records is not None:
                result.bad_records = tenant.bad_records.take()
            for vendor, count in result.bad_records.counts.items():
                runtime.metrics.bad_records.labels(tenant=tenant.name, vendor=vendor).inc(count)
            result.vendors = {
                vendor: traffic - traffic_before.get(vendor, VendorTraffic())
                for vendor, traffic in runtime.metrics.vendor_traffic(tenant.name).items()
            }
    return result


def _record_turn(
    runtime: Runtime, result: _TenantResult, *, cycle_id: str, at: datetime, dry_run: bool
) -> None:
    runtime.ledger.record_turn(
        TenantTurn(
            tenant=result.tenant,
            cycle_id=cycle_id,
            at=at,
            dry_run=dry_run,
            started_at=result.started_at,
            finished_at=runtime.clock(),
            ok=not (result.error_count or result.execution.failed),
            figures=result.figures(),
        )
    )


async def _work_tenant(
    tenant: Tenant, runtime: Runtime, executor: Executor, at: datetime, result: _TenantResult
) -> None:
    """Finish what earlier cycles left half done, then fetch, plan and execute, into ``result``.

    A tenant whose vendors all sync (:meth:`Tenant.syncing`) is read since its cursors into the
    case store and planned from there: only what changed or is due. The others are read in
    full, every turn."""
    metrics = runtime.metrics
    if not tenant.works_on(at):
        log.info("not a business day of the tenant; nothing to do", at=at.isoformat())
        return
    syncing = tenant.syncing()
    if syncing is not None:
        accounts: dict[str, Account] = {}  # filled once the store is up to date
        planned = _planned_from_store(tenant, syncing, runtime, accounts, at, result)
    else:
        try:
            accounts = await read_accounts(tenant.connectors.values())
        except Exception as exc:
            log.exception("accounts unreadable; tenant skipped this cycle")
            result.error(f"accounts: {_cause(exc)}")
            return
        planned = _planned_as_read(tenant, runtime, accounts, at, result)

    def replan(case: Case) -> list[PlanItem]:
        return [
            entry
            for entry in tenant.plan([case], accounts, at)
            if isinstance(entry, PlanItem) and entry.case.ref == case.ref
        ]

    async def unfinished() -> AsyncGenerator[list[PlanItem]]:
        for attempt in runtime.ledger.incomplete(tenant.name):
            item = await _unfinished_item(tenant, attempt, result)
            if item is None:
                continue
            spoke = item.case.last_inbound()
            if spoke is not None and spoke.at > attempt.at:
                # Finishing a follow-up the customer has answered since (setting it
                # pending, say) would bury the answer: the plan decides afresh.
                why = "left unfinished: the customer wrote since it was started"
                result.execution.count(executor.leave(tenant.name, item, why))
                continue
            yield [item]

    def store_written(case: Case, *, placed: bool) -> None:
        # ``placed``: the accounts are known, so the case's next due instant is; else it is
        # left due now, for this turn's plan to place.
        due = _next_due(tenant, case, accounts, at) if placed else at
        try:
            runtime.store.planned(
                tenant.name,
                [Planned(case.source, case.id, due, case)],
                fence=runtime.fence(tenant.name),
            )
        except LeaseLost:
            log.warning("lease lost; the tenant's new holder reads the case again", case=case.ref)

    # What earlier cycles left half done goes first: each case is whole before it is planned.
    # It runs before the store's sync, which loads the accounts.
    execution = await executor.execute(
        tenant.name,
        tenant.connectors,
        unfinished(),
        replan,
        written=None if syncing is None else partial(store_written, placed=False),
    )
    result.execution.absorb(execution)
    execution = await executor.execute(
        tenant.name,
        tenant.connectors,
        planned,
        replan,
        from_store=syncing is not None,
        written=None if syncing is None else partial(store_written, placed=True),
    )
    result.execution.absorb(execution)
    failed = result.error_count or result.execution.failed
    metrics.tenant_cycles.labels(tenant=tenant.name, result="failed" if failed else "ok").inc()


async def sync_tenant(
    tenant: Tenant,
    syncing: Mapping[Source, Syncs],
    runtime: Runtime,
    on_error: Callable[[Source, Exception], None],
) -> SyncFigures:
    """Each vendor's changes since its cursor into the store (``followup sync --rebuild``
    after dropping the cursors: a full read). A vendor that stops answering is logged and
    told to ``on_error``; the others are read all the same. Raises LeaseLost."""
    total = SyncFigures()
    for source, connector in syncing.items():
        try:
            figures = await sync_vendor(
                connector,
                source,
                runtime.store,
                runtime.metrics,
                tenant=tenant.name,
                plan_last=tenant.plan_last,
                fence=runtime.fence(tenant.name),
                clock=runtime.clock,
            )
        except LeaseLost:
            raise
        except Exception as exc:
            log.exception("cases unreadable; the rest wait", vendor=source.value)
            on_error(source, exc)
            continue
        total.cases += figures.cases
        total.changed += figures.changed
        total.fallbacks += figures.fallbacks
    return total


async def _planned_from_store(
    tenant: Tenant,
    syncing: Mapping[Source, Syncs],
    runtime: Runtime,
    accounts: dict[str, Account],
    at: datetime,
    result: _TenantResult,
) -> AsyncGenerator[list[PlanItem]]:
    """Sync the store, then plan from it (:func:`_plan_stored`) with its ``accounts``. The
    executor reads this as it reads the vendors, so a stop ends the sync at once too. Once
    the lease is lost, nothing more is stored nor planned: the tenant is its new holder's."""
    try:
        synced = await sync_tenant(
            tenant,
            syncing,
            runtime,
            lambda source, exc: result.error(f"{source.value}: {_cause(exc)}"),
        )
        result.cases += synced.cases
        result.changed += synced.changed
        result.fallbacks += synced.fallbacks
        result.store_size = runtime.store.size(tenant.name)
        accounts.update(runtime.store.accounts(tenant.name, list(tenant.connectors)))
        async for items in _plan_stored(tenant, runtime, accounts, at, result):
            yield items
    except LeaseLost:
        log.warning("lease lost; the tenant's new holder syncs and plans it")


async def _plan_stored(
    tenant: Tenant,
    runtime: Runtime,
    accounts: dict[str, Account],
    at: datetime,
    result: _TenantResult,
) -> AsyncGenerator[list[PlanItem]]:
    """The items of the stored cases changed since they were last planned or due by ``at``,
    case by case, a batch of cases read at a time; each planned case's next due instant is
    stored after its batch. The kinds whose policies read the account's open-case totals come
    last, the totals summed from the store over the accounts they belong to: no vendor call."""
    store, fence = runtime.store, runtime.fence(tenant.name)
    streamed = frozenset(CaseKind) - tenant.plan_last
    for kinds in (streamed, tenant.plan_last):
        if kinds is tenant.plan_last:
            totals = OpenCaseTotals(dict(accounts))
            for case in store.cases_of(tenant.name, store.owners_due(tenant.name, at, kinds)):
                totals.add(case)
            accounts.update(totals.accounts())
        for batch in store.due(tenant.name, at, kinds):
            planned: list[Planned] = []
            owed: list[list[PlanItem]] = []
            for case in batch:
                items = _plan_case(tenant, case, accounts, at, runtime, result)
                if items is None:
                    continue  # left changed: planned again next turn
                result.cases_planned += 1
                planned.append(Planned(case.source, case.id, _next_due(tenant, case, accounts, at)))
                if items:
                    owed.append(items)
            # Stored before the items go out, so that what their writes leave on the cases
            # (``store_written`` in :func:`_work_tenant`) comes after it, never under it.
            store.planned(tenant.name, planned, fence=fence)
            for items in owed:
                yield items


def _next_due(
    tenant: Tenant, case: Case, accounts: Mapping[str, Account], at: datetime
) -> datetime | None:
    try:
        return tenant.next_due(case, accounts, at)
    except Exception:
        log.exception("next due instant unknown; planned again next turn", case=case.ref)
        return at


async def _planned_as_read(
    tenant: Tenant,
    runtime: Runtime,
    accounts: dict[str, Account],
    at: datetime,
    result: _TenantResult,
) -> AsyncGenerator[list[PlanItem]]:
    """Every candidate case of every vendor, read in full and planned as it streams in."""
    metrics = runtime.metrics
    # An account's open cases (seeds 000/001: Community bundles, Standard "with a
    # high-priority ticket") are known only once all of them are in, so the kinds whose
    # policies read them wait for the end; everything else is planned as it streams,
    # which keeps memory flat in the number of tickets.
    totals = OpenCaseTotals(dict(accounts))
    waiting: list[Case] = []
    for source, connector in tenant.connectors.items():
        try:
            async for case in connector.cases():
                result.cases += 1
                metrics.cases_fetched.labels(tenant=tenant.name, vendor=source.value).inc()
                totals.add(case)
                if case.kind in tenant.plan_last:
                    waiting.append(case)
                elif items := _plan_case(tenant, case, accounts, at, runtime, result):
                    yield items
        except Exception as exc:
            log.exception("cases unreadable; the rest wait", vendor=source.value)
            result.error(f"{source.value}: {_cause(exc)}")
    accounts.update(totals.accounts())
    for case in waiting:
        if items := _plan_case(tenant, case, accounts, at, runtime, result):
            yield items


async def _unfinished_item(
    tenant: Tenant, attempt: Attempt, result: _TenantResult
) -> PlanItem | None:
    """The half-done item on its case as it is now; None when the case cannot be read (it is
    tried again next cycle)."""
    source, _, case_id = attempt.case_ref.partition(":")
    connector = tenant.connectors.get(Source(source))
    if connector is None:
        log.warning("unfinished follow-up for an unconfigured vendor", case=attempt.case_ref)
        return None
    try:
        case = await connector.fetch_case(case_id)
    except Exception as exc:
        log.exception("cannot re-read case to finish a follow-up", case=attempt.case_ref)
        result.error(f"{attempt.case_ref}: {_cause(exc)}")
        return None
    return attempt.plan_item(case)


def _plan_case(
    tenant: Tenant,
    case: Case,
    accounts: Mapping[str, Account],
    at: datetime,
    runtime: Runtime,
    result: _TenantResult,
) -> list[PlanItem] | None:
    """The case's items; None when the planner failed on it (logged and counted)."""
    items: list[PlanItem] = []
    try:
        entries = list(tenant.plan([case], accounts, at))
    except Exception as exc:
        log.exception("planner failed on a case", case=case.ref)
        result.error(f"{case.ref}: planner: {_cause(exc)}")
        return None
    for entry in entries:
        if isinstance(entry, Unjudged):
            log.warning("case not judged", case=entry.case_ref, reason=entry.reason)
            runtime.metrics.unjudged.inc()
            result.unjudged += 1
            if runtime.on_unjudged is not None:
                runtime.on_unjudged(entry)
        else:
            runtime.metrics.plan_items.labels(policy=entry.policy, step=entry.step_label).inc()
            items.append(entry)
    return items


async def read_accounts(connectors: Iterable[Connector]) -> dict[str, Account]:
    """Every account the connectors know, by id."""
    accounts: dict[str, Account] = {}
    for connector in connectors:
        async for account in connector.accounts():
            accounts[account.id] = account
    return accounts


async def reconcile(runtime: Runtime, tenant: Tenant) -> int:
    """Settle the tenant's attempts a dead process left unfinished, by re-reading cases.

    Marker on the case: the whole follow-up landed (already_applied). No marker: part of it
    may have landed all the same (its reply, a closed conversation, an Asana date field) and
    keep the plan from offering it again, so it is settled to be finished in this very turn
    (:func:`worker.delivery.decisions.after_interruption`): ``incomplete`` when the ledger's
    checkpoint
    says its reply was out, else ``interrupted``, finished with its reply. Cases that cannot be
    read now stay pending and are checked again before any new write of the same key. Called
    at the start of the tenant's turn, so it only ever touches a tenant this replica holds:
    another replica's tenants are left to it, it may be writing them right now.
    """
    settled = 0
    for pending in runtime.ledger.pending(tenant=tenant.name):
        source, _, case_id = pending.case_ref.partition(":")
        connector = tenant.connectors.get(Source(source))
        if connector is None:
            log.warning("pending intent for an unconfigured vendor", case=pending.case_ref)
            continue
        try:
            case = await connector.fetch_case(case_id)
        except Exception:
            log.exception("cannot re-read case to reconcile", case=pending.case_ref)
            continue
        found = carries_marker(case, pending.key)
        settlement = after_interruption(marker_found=found, reply_out=pending.reply_out)
        settled += runtime.ledger.settle_pending(
            pending.key,
            settlement.outcome,
            tenant=pending.tenant,
            finished_at=runtime.clock(),
            detail=f"reconciled: {settlement.detail}",
        )
        log.info(
            "reconciled",
            case=pending.case_ref,
            policy=pending.policy,
            key=pending.key,
            outcome=settlement.outcome.value,
        )
    return settled


def _record(runtime: Runtime, summary: CycleSummary) -> None:
    figures = summary.as_dict()
    runtime.ledger.finish_cycle(
        summary.cycle_id, ok=summary.ok, summary=figures, finished_at=runtime.clock()
    )
    result = "interrupted" if summary.interrupted else "ok" if summary.ok else "failed"
    runtime.metrics.cycles.labels(result=result).inc()
    runtime.metrics.cycle_duration.observe(summary.duration_s)
    if summary.ok:
        runtime.metrics.last_success.set(time.time())
    for logged_elsewhere in ("cycle_id", "dry_run", "unreadable"):  # context; one line each
        figures.pop(logged_elsewhere)
    (log.info if summary.ok else log.warning)("cycle finished", **figures)
