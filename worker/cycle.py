"""One cycle: reconcile -> fetch -> plan -> execute, for every tenant, then one summary.

:func:`run_cycle` is what ``followup run --once``, the scheduler of ``followup serve`` and the
demo call. Everything it needs is in a :class:`Runtime`; ``worker.wiring`` builds one from the
settings, tests build one from :class:`connectors.fake.FakeConnector` and a planner function.

The plan streams: each case is planned as soon as it is read (the planner keeps nothing between
cases) and its items go straight to the executor, so memory stays flat and writes start while
later pages are still being fetched. What each item came to is told to ``Runtime.on_item`` as
it settles and only counted here: the summary keeps figures, never the items. Accounts are read
first, because the plan tier drives every policy; when they cannot be read the tenant waits for
the next cycle rather than guess. When a vendor's cases stop coming (an error mid-way), the
cases read so far are handled, the rest wait, and the cycle counts as failed. Same for a case
the planner chokes on.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import AsyncGenerator, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from connectors.base import Connector
from policies.model import Account, Case, CaseKind, PlanItem, Source, Unjudged
from policies.planner import OpenCaseTotals
from worker.decisions import RunMode, run_mode
from worker.executor import Execution, Executor, ItemReport, carries_marker
from worker.leases import LeaseKeeper
from worker.ledger import Ledger, Outcome
from worker.metrics import Metrics
from worker.switches import dry_run_switch

__all__ = ["CycleSummary", "PlanFunction", "Runtime", "Tenant", "reconcile", "run_cycle"]

log = structlog.get_logger("followup.cycle")

PlanFunction = Callable[
    [Iterable[Case], Mapping[str, Account], datetime], Iterator[PlanItem | Unjudged]
]
"""``policies.planner.plan`` with the tenant's policies and calendar bound."""


def _wall_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Tenant:
    """One helpdesk: its vendors (at most one connector per source) and its planner.

    ``works_on`` tells whether the instant falls on one of the tenant's business days; on
    other days (weekends, public holidays) a cycle leaves the tenant alone, whoever started it.
    """

    name: str
    connectors: Mapping[Source, Connector]
    plan: PlanFunction
    works_on: Callable[[datetime], bool] = lambda _at: True
    # Kinds the policies judge by the account's open cases: planned once every case is read
    # (the rest is planned as it streams in). Default: all, which is always correct.
    plan_last: frozenset[CaseKind] = frozenset(CaseKind)


@dataclass(slots=True)
class Runtime:
    """Everything a cycle needs. ``configured_dry_run`` is ``FOLLOWUP_DRY_RUN``.

    ``leases``: when replicas share the ledger, this one works only the tenants it holds, and
    checks its fencing token before each vendor write (:mod:`worker.leases`); someone else
    (``worker.service``) keeps the leases refreshed. None: this process works every tenant.
    ``on_item`` hears about every plan item as soon as it is settled (a progress bar, a
    timeline, the printed plan), ``on_unjudged`` about every case a policy could not judge;
    the cycle keeps neither, only their numbers. ``clock`` is the wall clock the ledger's
    timings use.
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

    def holds(self, tenant: str) -> bool:
        """Is the tenant this replica's to work, as far as the last lease refresh knows?"""
        return self.leases is None or any(lease.tenant_id == tenant for lease in self.leases.held())

    def may_write(self, tenant: str) -> bool:
        """Right before a vendor write: is the lease still in force, by the database's clock?"""
        return self.leases is None or self.leases.still_holds(tenant)


@dataclass(frozen=True, slots=True)
class CycleSummary:
    """A cycle's figures. ``planned``: items settled (their reports went to ``on_item``),
    ``counts`` of them by outcome label, ``failed`` of them; ``unjudged``: (case, policy)
    pairs not judged (told to ``on_unjudged``)."""

    cycle_id: str
    at: datetime
    mode: RunMode
    tenants: int = 0  # worked by this replica (the others held by other replicas)
    cases: int = 0
    planned: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    failed: int = 0
    unjudged: int = 0
    errors: tuple[str, ...] = ()
    reconciled: int = 0
    cases_not_started: int = 0
    interrupted: bool = False
    duration_s: float = 0.0
    calls: int = 0  # vendor calls made
    retries: int = 0  # of which repeats after a 429, a 5xx or no answer

    @property
    def ok(self) -> bool:
        """Every due follow-up was done (or planned, in dry-run) and every vendor was read."""
        return not self.failed and not self.errors

    def as_dict(self) -> dict[str, Any]:
        """The figures of the summary line and the ledger's cycle record."""
        return {
            "cycle_id": self.cycle_id,
            "at": self.at.isoformat(),
            "dry_run": self.mode.dry_run,
            "tenants": self.tenants,
            "cases": self.cases,
            "planned": self.planned,
            **dict(sorted(self.counts.items())),
            "failed": self.failed,
            "unjudged": self.unjudged,
            "errors": len(self.errors),
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
) -> CycleSummary:
    """Run one cycle planned for the instant ``at``.

    ``dry_run`` is the command's ``--dry-run/--live`` flag (None: not given); the runtime
    switch and ``FOLLOWUP_DRY_RUN`` decide the rest (:func:`worker.decisions.run_mode`).
    Setting ``stop`` finishes the cases in hand and starts no new one.
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
        reconciled = await reconcile(runtime)
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
            may_write=runtime.may_write,
        )
        parts = []
        for tenant in runtime.tenants:
            if stop.is_set():
                break
            # Asked per tenant, not once per cycle: a tenant taken over while the cycle runs
            # is worked in this cycle still.
            if runtime.holds(tenant.name):
                parts.append(await _run_tenant(tenant, runtime, executor, at))
        summary = CycleSummary(
            cycle_id=cycle_id,
            at=at,
            mode=mode,
            tenants=len(parts),
            cases=sum(p.cases for p in parts),
            planned=sum(p.execution.planned for p in parts),
            counts=sum((p.execution.counts for p in parts), Counter()),
            failed=sum(p.execution.failed for p in parts),
            unjudged=sum(p.unjudged for p in parts),
            errors=tuple(e for p in parts for e in p.errors),
            reconciled=reconciled,
            cases_not_started=sum(p.execution.cases_not_started for p in parts),
            interrupted=stop.is_set(),
            duration_s=time.monotonic() - started,
            calls=runtime.metrics.calls_so_far() - calls_before,
            retries=runtime.metrics.retries_so_far() - retries_before,
        )
        _record(runtime, summary)
        return summary


@dataclass(slots=True)
class _TenantResult:
    cases: int = 0
    execution: Execution = field(default_factory=Execution)
    unjudged: int = 0
    errors: list[str] = field(default_factory=list)


async def _run_tenant(
    tenant: Tenant, runtime: Runtime, executor: Executor, at: datetime
) -> _TenantResult:
    metrics = runtime.metrics
    result = _TenantResult()
    with structlog.contextvars.bound_contextvars(tenant=tenant.name):
        if not tenant.works_on(at):
            log.info("not a business day of the tenant; nothing to do", at=at.isoformat())
            return result
        try:
            accounts = await _accounts(tenant.connectors.values())
        except Exception as exc:
            log.exception("accounts unreadable; tenant skipped this cycle")
            result.errors.append(f"{tenant.name}: accounts: {exc!r}")
            return result

        async def planned_cases() -> AsyncGenerator[list[PlanItem]]:
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
                        metrics.cases_fetched.labels(vendor=source.value).inc()
                        totals.add(case)
                        if case.kind in tenant.plan_last:
                            waiting.append(case)
                        elif items := _plan_case(tenant, case, accounts, at, runtime, result):
                            yield items
                except Exception as exc:
                    log.exception("cases unreadable; the rest wait", vendor=source.value)
                    result.errors.append(f"{tenant.name}: {source.value}: {exc!r}")
            accounts.update(totals.accounts())
            for case in waiting:
                if items := _plan_case(tenant, case, accounts, at, runtime, result):
                    yield items

        def replan(case: Case) -> list[PlanItem]:
            return [
                entry
                for entry in tenant.plan([case], accounts, at)
                if isinstance(entry, PlanItem) and entry.case.ref == case.ref
            ]

        result.execution = await executor.execute(
            tenant.name, tenant.connectors, planned_cases(), replan
        )
        failed = result.errors or result.execution.failed
        metrics.tenant_cycles.labels(tenant=tenant.name, result="failed" if failed else "ok").inc()
        return result


def _plan_case(
    tenant: Tenant,
    case: Case,
    accounts: Mapping[str, Account],
    at: datetime,
    runtime: Runtime,
    result: _TenantResult,
) -> list[PlanItem]:
    items: list[PlanItem] = []
    try:
        entries = list(tenant.plan([case], accounts, at))
    except Exception as exc:
        log.exception("planner failed on a case", case=case.ref)
        result.errors.append(f"{tenant.name}: {case.ref}: planner: {exc!r}")
        return items
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


async def _accounts(connectors: Iterable[Connector]) -> dict[str, Account]:
    accounts: dict[str, Account] = {}
    for connector in connectors:
        async for account in connector.accounts():
            accounts[account.id] = account
    return accounts


async def reconcile(runtime: Runtime) -> int:
    """Settle attempts a dead process left without outcome, by re-reading their cases.

    Marker on the case: the write happened (already_applied). No marker: it did not, and the
    follow-up is still due; the plan will offer it again. Cases that cannot be read now stay
    pending and are checked again before any new write of the same key. Another replica's
    tenants are left to it: it may be writing them right now.
    """
    tenants = {tenant.name: tenant for tenant in runtime.tenants}
    settled = 0
    for pending in runtime.ledger.pending():
        if not runtime.holds(pending.tenant):
            continue
        tenant = tenants.get(pending.tenant)
        source, _, case_id = pending.case_ref.partition(":")
        connector = tenant.connectors.get(Source(source)) if tenant else None
        if connector is None:
            log.warning("pending intent for an unconfigured vendor", case=pending.case_ref)
            continue
        try:
            case = await connector.fetch_case(case_id)
        except Exception:
            log.exception("cannot re-read case to reconcile", case=pending.case_ref)
            continue
        found = carries_marker(case, pending.key)
        settled += runtime.ledger.settle_pending(
            pending.key,
            Outcome.ALREADY_APPLIED if found else Outcome.FAILED,
            finished_at=runtime.clock(),
            detail="reconciled: marker found" if found else "reconciled: marker absent, still due",
        )
        log.info(
            "reconciled",
            tenant=pending.tenant,
            case=pending.case_ref,
            policy=pending.policy,
            key=pending.key,
            applied=found,
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
    figures.pop("cycle_id")
    figures.pop("dry_run")
    (log.info if summary.ok else log.warning)("cycle finished", **figures)
