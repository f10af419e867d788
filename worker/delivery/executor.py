"""Carry out one tenant's plan: the ledger first, then the vendor, then the ledger again.

Cases stream in from the planner while the vendors are still being read, and run concurrently
up to a bound; the items of one case run in order, so two writes to the same case never race
each other. Anything one item raises is caught, recorded and counted:
one failing case never stops the others. When ``stop`` is set (SIGTERM/SIGINT) the cases in
hand are finished and no new case is started.

What to do with each item is :func:`worker.delivery.decisions.decide`'s call; this module
only does it.
While a connector writes, it says when the customer has the item's reply (its ``replied``
callback); the executor records that in the ledger at once (:meth:`Ledger.reply_sent`), so
that a process killed before the rest is written never sends that reply again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from contextlib import AbstractContextManager, aclosing
from dataclasses import dataclass, field, replace
from datetime import datetime

import structlog

from connectors.base import Connector, WriteOutcome, WriteResult
from policies.model import ActionType, Case, PlanItem, Source
from policies.planner import apply_item
from worker.delivery.decisions import (
    Decision,
    NextStep,
    Verdict,
    after_interruption,
    after_write,
    decide,
    is_dry,
    outcome_counts_as_failure,
)
from worker.delivery.ledger import Fence, LeaseLost, Ledger, Outcome
from worker.metrics import Metrics

__all__ = [
    "DONE_BEFORE",
    "LEASE_LOST",
    "Execution",
    "Executor",
    "ItemReport",
    "Replan",
    "Written",
    "carries_marker",
    "without_reply",
]

log = structlog.get_logger("followup.executor")

Replan = Callable[[Case], list[PlanItem]]
"""Plan one freshly read case again (after a conflict): the items due for it now."""

Written = Callable[[Case], None]
"""Told a case as the worker's writes left it (:meth:`Executor.execute`)."""

# What the helpdesk shows once settled so: the item is on the case.
_LANDED = (Outcome.APPLIED, Outcome.ALREADY_APPLIED)

DONE_BEFORE = "done_before"  # the label of an item the ledger shows as already applied
LEASE_LOST = "lease lost: the tenant's new holder will do it"
# Dry items are decided and recorded together, in two ledger round trips a batch. Each holds its
# case until then, so the batch stays small: memory must not grow with the size of a cycle.
PREVIEW_BATCH = 50


def without_reply(item: PlanItem) -> PlanItem:
    """The rest of an item an earlier attempt got part-way through: the customer has had its
    reply (connectors report INCOMPLETE only once it is out, and the ledger's checkpoint says
    so of a killed attempt), so it is not sent again."""
    rest = tuple(action for action in item.actions if action.type is not ActionType.REPLY)
    return replace(item, actions=rest)


def carries_marker(case: Case, key: str) -> bool:
    """Is the follow-up with idempotency key ``key`` wholly on the case?

    Only its footer (a follow-up mark) says so. A marker tag alone is the first half of a
    two-part Zendesk write (the public reply went out, the note with the other changes did
    not): the item is still to be finished, and the connector will skip the reply then.
    """
    return any(mark.key == key for mark in case.followups)


@dataclass(frozen=True, slots=True)
class ItemReport:
    """What happened to one plan item; ``outcome`` None means the ledger already had it.

    ``replanned``: the write conflicted and the freshly read case was planned again; what came
    of that is in the reports that follow.
    """

    tenant: str
    case_ref: str
    key: str
    policy: str
    rule: str
    step: str
    actions: tuple[str, ...]
    reason: str
    dry_run: bool
    outcome: Outcome | None
    detail: str = ""
    replanned: bool = False

    @property
    def label(self) -> str:
        return DONE_BEFORE if self.outcome is None else self.outcome.value

    @property
    def failed(self) -> bool:
        return (
            self.outcome is not None
            and outcome_counts_as_failure(self.outcome)
            and not self.replanned
        )


@dataclass(slots=True)
class Execution:
    """What one tenant's items came to, counted as they settle. The reports themselves go to
    ``on_item`` and are not kept: a cycle's memory must not grow with the number of tickets."""

    planned: int = 0
    failed: int = 0
    counts: Counter[str] = field(default_factory=Counter)  # by ItemReport.label
    cases_not_started: int = 0

    def count(self, report: ItemReport) -> None:
        self.planned += 1
        self.failed += report.failed
        self.counts[report.label] += 1

    def absorb(self, other: Execution) -> None:
        """Add another run's figures (a tenant's unfinished items, then its plan)."""
        self.planned += other.planned
        self.failed += other.failed
        self.counts.update(other.counts)
        self.cases_not_started += other.cases_not_started


class Executor:
    """Executes plan items for one cycle. ``clock`` gives wall-clock time for the timings."""

    def __init__(
        self,
        *,
        ledger: Ledger,
        metrics: Metrics,
        cycle_id: str,
        at: datetime,
        run_dry: bool,
        concurrency: int,
        stop: asyncio.Event,
        clock: Callable[[], datetime],
        on_item: Callable[[ItemReport], None] | None = None,
        fence: Callable[[str], Fence | None] = lambda _tenant: None,
    ) -> None:
        self._ledger = ledger
        self._metrics = metrics
        self._cycle_id = cycle_id
        self._at = at
        self._run_dry = run_dry
        self._concurrency = concurrency
        self._stop = stop
        self._clock = clock
        self._on_item = on_item
        self._fence = fence

    async def execute(
        self,
        tenant: str,
        connectors: Mapping[Source, Connector],
        cases: AsyncGenerator[list[PlanItem]],
        replan: Replan,
        *,
        from_store: bool = False,
        written: Written | None = None,
    ) -> Execution:
        """Execute each case's items as the plan streams in (one list per case).

        ``from_store``: the cases were planned from the case store, a copy that may be behind
        the helpdesk, so a case with a live item is read fresh and planned again on that copy
        before anything is written: a stale store may delay a follow-up, never make a wrong
        or a duplicate one. Dry items write nothing and need no fresh read. ``written`` is
        told each case as the items that landed on it left it, so the store does not offer
        them again before the vendor's change feed shows them."""
        execution = Execution()
        previews: list[PlanItem] = []  # dry items waiting to be recorded, at most PREVIEW_BATCH
        queue: asyncio.Queue[list[PlanItem] | None] = asyncio.Queue(maxsize=self._concurrency)

        async def produce() -> None:
            try:
                async with aclosing(cases):  # stop reading the vendors too when told to stop
                    while items := await _unless_stopped(anext(cases, None), self._stop):
                        await queue.put(items)
            finally:
                for _ in range(self._concurrency):
                    await queue.put(None)

        async def consume() -> None:
            while (items := await queue.get()) is not None:
                if self._stop.is_set():
                    execution.cases_not_started += 1
                    continue
                connector = connectors[items[0].case.source]
                settled = await self._settle_case(
                    tenant, connector, items, replan, previews, from_store, written
                )
                for report in settled:
                    execution.count(report)

        await asyncio.gather(produce(), *(consume() for _ in range(self._concurrency)))
        for report in self._preview(tenant, previews):
            execution.count(report)
        return execution

    async def _settle_case(
        self,
        tenant: str,
        connector: Connector,
        items: list[PlanItem],
        replan: Replan,
        previews: list[PlanItem],
        from_store: bool,
        written: Written | None,
    ) -> list[ItemReport]:
        """One case's items in order. A write moves the case's ``updated_stamp``, so the items
        after it, planned on the old stamp, would only conflict with the worker's own write:
        they are planned again from a fresh read instead (one read, not a refused write).

        Dry items write nothing, so they join ``previews`` and are recorded a batch at a time:
        one by one, the ledger's round trips were most of a dry-run cycle."""
        reports: list[ItemReport] = []
        pending = list(items)
        # The case as the writes so far leave it; None once it is not known (a conflict).
        case: Case | None = items[0].case
        landed = False
        if from_store and any(not self._dry(item) for item in pending):
            case = await self._read_again(tenant, connector, pending, reports)
            pending = [] if case is None else replan(case)
        while pending:
            item = pending.pop(0)
            if self._dry(item):
                previews.append(item)
                if len(previews) >= PREVIEW_BATCH:
                    reports += self._preview(tenant, previews)
                continue
            settled = await self._settle(tenant, connector, item, replan, replanned=False)
            reports += settled
            if settled[0].replanned:
                case, landed = None, True  # what the re-plan wrote is only known by a read
                break  # a conflict: the re-plan on the fresh case settled what is still due
            if written is not None and case is not None and settled[0].outcome in _LANDED:
                case, landed = apply_item(case, item, self._at), True
            if pending and settled[0].outcome is Outcome.APPLIED:
                case = await self._read_again(tenant, connector, pending, reports)
                if case is None:
                    break
                handled = {report.key for report in reports}
                pending = [again for again in replan(case) if again.key not in handled]
        if written is not None and landed:
            await self._tell_written(connector, items[0].case.id, case, written)
        return reports

    @staticmethod
    async def _tell_written(
        connector: Connector, case_id: str, case: Case | None, written: Written
    ) -> None:
        """Tell ``written`` the case as the writes left it, read again when that is not known
        (after a conflict); unreadable, it stays as it was stored, due, and is read again at
        the next live write."""
        if case is None:
            try:
                case = await connector.fetch_case(case_id)
            except Exception:
                log.warning("case unreadable after its writes; the store keeps its copy")
                return
        written(case)

    def _dry(self, item: PlanItem) -> bool:
        return is_dry(run_dry=self._run_dry, policy_dry_run=item.dry_run)

    async def _read_again(
        self, tenant: str, connector: Connector, pending: list[PlanItem], reports: list[ItemReport]
    ) -> Case | None:
        """The case of ``pending`` read fresh; None when it cannot be read, ``pending`` then
        reported not tried: they wait for the next cycle, planned on the case as it is then,
        and the other cases go on."""
        try:
            return await connector.fetch_case(pending[0].case.id)
        except Exception as exc:
            log.exception("case unreadable before a write; its items wait")
            detail = f"not tried: the case could not be read again: {exc!r}"
            reports += [
                self._report(tenant, rest, False, Outcome.FAILED, detail) for rest in pending
            ]
            return None

    async def _settle(
        self,
        tenant: str,
        connector: Connector,
        item: PlanItem,
        replan: Replan,
        *,
        replanned: bool,
    ) -> list[ItemReport]:
        with _logged_as(tenant, item):
            try:
                return await self._settle_item(tenant, connector, item, replan, replanned)
            except Exception as exc:  # one failing case never stops the others
                log.exception("follow-up failed", key=item.key)
                return [self._report(tenant, item, self._run_dry, Outcome.FAILED, repr(exc))]

    def _preview(self, tenant: str, items: list[PlanItem]) -> list[ItemReport]:
        """Decide and record dry items together, and empty ``items``: planned only, or left
        alone when the ledger shows them applied live already."""
        batch = items[:]
        items.clear()
        try:
            decided = self._record_previews(tenant, batch)
        except Exception as exc:  # the ledger failed: these items are not recorded, others go on
            log.exception("dry-run items not recorded", items=len(batch))
            decided = [(item, Outcome.FAILED, repr(exc)) for item in batch]
        reports = []
        for item, outcome, why in decided:
            with _logged_as(tenant, item):
                reports.append(self._report(tenant, item, True, outcome, why))
        return reports

    def _record_previews(
        self, tenant: str, items: list[PlanItem]
    ) -> list[tuple[PlanItem, Outcome | None, str]]:
        known = self._ledger.latest_outcomes({item.key for item in items}, tenant=tenant)
        decisions = [
            (
                item,
                decide(
                    run_dry=self._run_dry, policy_dry_run=item.dry_run, ledger=known.get(item.key)
                ),
            )
            for item in items
        ]
        self._ledger.record_planned(
            [(item, d.why) for item, d in decisions if d.verdict is Verdict.PLAN_ONLY],
            tenant=tenant,
            cycle_id=self._cycle_id,
            at=self._at,
            recorded_at=self._clock(),
        )
        return [
            (item, None if d.verdict is Verdict.SKIP else Outcome.SKIPPED, d.why)
            for item, d in decisions
        ]

    async def _settle_item(
        self,
        tenant: str,
        connector: Connector,
        item: PlanItem,
        replan: Replan,
        replanned: bool,
    ) -> list[ItemReport]:
        if self._dry(item):
            return self._preview(tenant, [item])  # a re-planned item of a dry-run policy
        decision = decide(
            run_dry=self._run_dry,
            policy_dry_run=item.dry_run,
            ledger=self._ledger.latest_outcome(item.key, tenant=tenant),
        )
        if decision.verdict is Verdict.SKIP:
            return [self._report(tenant, item, decision.dry_run, None, decision.why)]
        if decision.verdict is Verdict.VERIFY:
            if await self._found_on_case(tenant, connector, item):
                return [self._report(tenant, item, False, Outcome.ALREADY_APPLIED, "marker found")]
            # Settled as cut off: decided again, so a reply an earlier attempt sent stays sent.
            decision = decide(
                run_dry=self._run_dry,
                policy_dry_run=item.dry_run,
                ledger=self._ledger.latest_outcome(item.key, tenant=tenant),
            )
        if decision.verdict is Verdict.RESUME:
            item = without_reply(item)

        try:
            attempt = self._begin(tenant, item, decision, fence=self._fence(tenant))
        except LeaseLost:
            # The lease lapsed (a long pause, a lost database): another replica may be working
            # the tenant now, so writing could duplicate; the holder will do it.
            return [self._report(tenant, item, False, Outcome.SKIPPED, LEASE_LOST)]
        result = await self._apply(connector, item, attempt)
        outcome = Outcome.of(result.outcome)
        self._ledger.finish(
            attempt,
            outcome,
            finished_at=self._clock(),
            calls=result.calls,
            request_ids=result.request_ids,
            detail=result.detail,
        )
        again = after_write(result.outcome, replanned=replanned) is NextStep.REPLAN
        reports = [self._report(tenant, item, False, outcome, result.detail, replanned=again)]
        if again:
            fresh = await connector.fetch_case(item.case.id)
            log.info("re-planning after a conflict", key=item.key)
            for fresh_item in replan(fresh):
                reports += await self._settle(tenant, connector, fresh_item, replan, replanned=True)
        return reports

    async def _found_on_case(self, tenant: str, connector: Connector, item: PlanItem) -> bool:
        """Settle an attempt left without outcome by re-reading the case for its marker. Absent,
        the item is applied whole next (no checkpoint said its reply was out)."""
        case = await connector.fetch_case(item.case.id)
        found = carries_marker(case, item.key)
        settlement = after_interruption(marker_found=found, reply_out=False)
        self._ledger.settle_pending(
            item.key,
            settlement.outcome,
            tenant=tenant,
            finished_at=self._clock(),
            detail=settlement.detail,
        )
        return found

    def leave(self, tenant: str, item: PlanItem, why: str) -> ItemReport:
        """Record that ``item`` is left as it is, on purpose (not a failure): the plan decides
        about the case again."""
        attempt = self._ledger.begin(
            item,
            tenant=tenant,
            cycle_id=self._cycle_id,
            dry_run=False,
            at=self._at,
            started_at=self._clock(),
        )
        self._ledger.finish(attempt, Outcome.SKIPPED, finished_at=self._clock(), detail=why)
        return self._report(tenant, item, False, Outcome.SKIPPED, why)

    def _begin(
        self, tenant: str, item: PlanItem, decision: Decision, *, fence: Fence | None = None
    ) -> int:
        return self._ledger.begin(
            item,
            tenant=tenant,
            cycle_id=self._cycle_id,
            dry_run=decision.dry_run,
            at=self._at,
            started_at=self._clock(),
            fence=fence,
        )

    async def _apply(self, connector: Connector, item: PlanItem, attempt: int) -> WriteResult:
        def replied() -> None:
            try:
                self._ledger.reply_sent(attempt)
            except Exception:
                # Not recorded: were the process to die before the outcome, the reply would
                # be looked for (Zendesk, Intercom) or sent again (an email), not lost.
                log.exception("could not record that the reply went out", key=item.key)

        try:
            return await connector.apply(item, replied=replied)
        except Exception as exc:
            # Connectors translate vendor errors into WriteResult; anything raised is a bug or
            # an error they did not foresee. Either way the outcome is recorded, not lost.
            return WriteResult(WriteOutcome.FAILED, calls=0, detail=repr(exc))

    def _report(
        self,
        tenant: str,
        item: PlanItem,
        dry_run: bool,
        outcome: Outcome | None,
        detail: str,
        *,
        replanned: bool = False,
    ) -> ItemReport:
        report = ItemReport(
            tenant=tenant,
            case_ref=item.case.ref,
            key=item.key,
            policy=item.policy,
            rule=item.rule,
            step=item.step_label,
            actions=tuple(action.type.value for action in item.actions),
            reason=item.reason,
            dry_run=dry_run,
            outcome=outcome,
            detail=detail,
            replanned=replanned,
        )
        for action in report.actions:
            self._metrics.actions.labels(type=action, outcome=report.label).inc()
        self._metrics.followups.labels(tenant=tenant, outcome=report.label).inc()
        if self._on_item is not None:
            self._on_item(report)
        event = log.warning if report.failed else log.info
        event(
            "follow-up",
            outcome=report.label,
            key=item.key,
            reason=item.reason,
            detail=detail,
            dry_run=dry_run,
        )
        return report


def _logged_as(tenant: str, item: PlanItem) -> AbstractContextManager[None]:
    """The log context of everything said about ``item``."""
    return structlog.contextvars.bound_contextvars(
        tenant=tenant,
        case=item.case.ref,
        policy=item.policy,
        step=item.step_label,
        action=",".join(action.type.value for action in item.actions),
    )


async def _unless_stopped(
    read: Awaitable[list[PlanItem] | None], stop: asyncio.Event
) -> list[PlanItem] | None:
    """The next case's items, or None once ``stop`` is set: a read in progress (a page that
    takes long, pages that hold no candidate) is cancelled, so a signal ends the vendor reads
    at once instead of when the next case turns up (vendor-behaviours.md Z7, A1)."""
    if stop.is_set():
        return None
    reading = asyncio.ensure_future(read)
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait((reading, stopped), return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if not reading.done():
        reading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reading
        return None
    return reading.result()
