"""A cycle's memory does not grow with the number of cases it streams through.

Ten times the cases must not take noticeably more memory at the peak: the cycle plans each case
as it is read and keeps figures, not cases nor items. Measured with tracemalloc (Python's own
allocations, not the process's RSS), against a connector that makes its cases as they are read,
so the cases the test feeds are not counted unless the cycle holds on to them.
"""

from __future__ import annotations

import dataclasses
import gc
import tracemalloc
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path

from connectors.base import Replied, WriteOutcome, WriteResult
from policies.model import Account, Case, CaseKind, PlanItem, Source, Unjudged
from tests.unit.worker_support import MONDAY, make_case, make_item
from worker.delivery.ledger import Ledger
from worker.metrics import Metrics
from worker.runtime.cycle import Runtime, Tenant, run_cycle

FEW, MANY = 300, 3000
DUE_EVERY = 10  # one case in ten owes a follow-up (a ledger write each, the slow part)


def ticket(number: int) -> Case:
    """A case with a body of its own, about as heavy as a short real ticket. Its account is
    not the tenant's: the account totals (a ref per open case of a known account, by design)
    are not what this measures."""
    text = f"ticket {number}: " + "the customer wrote at some length about the order. " * 20
    return dataclasses.replace(make_case(str(number), account="elsewhere"), subject=text)


class Stream:
    """A vendor whose cases are made as they are read, and are garbage once let go."""

    source = Source.ZENDESK

    def __init__(self, count: int) -> None:
        self._count = count

    async def cases(self) -> AsyncIterator[Case]:
        for number in range(self._count):
            yield ticket(number)

    async def accounts(self) -> AsyncIterator[Account]:
        yield Account("acme", "Acme")

    async def fetch_case(self, case_id: str) -> Case:
        return ticket(int(case_id))

    async def apply(self, item: PlanItem, *, replied: Replied | None = None) -> WriteResult:
        return WriteResult(WriteOutcome.APPLIED)

    async def aclose(self) -> None:
        return None


def some_due(
    cases: Iterable[Case], accounts: Mapping[str, Account], now: datetime
) -> Iterator[PlanItem | Unjudged]:
    for case in cases:
        if int(case.id) % DUE_EVERY == 0:
            yield make_item(case)


async def peak_of_a_cycle(ledger: Ledger, count: int, plan_last: frozenset[CaseKind]) -> int:
    """Bytes allocated at the peak of one dry-run cycle over ``count`` cases, above the start."""
    tenant = Tenant("acme", {Source.ZENDESK: Stream(count)}, some_due, plan_last=plan_last)
    runtime = Runtime(ledger=ledger, metrics=Metrics(), tenants=[tenant])
    gc.collect()
    tracemalloc.reset_peak()
    start, _ = tracemalloc.get_traced_memory()
    summary = await run_cycle(runtime, at=MONDAY)
    _, peak = tracemalloc.get_traced_memory()
    assert (summary.cases, summary.planned) == (count, count // DUE_EVERY)
    return peak - start


def weight_of(count: int) -> int:
    """What ``count`` cases weigh when all of them are held at once."""
    gc.collect()
    before, _ = tracemalloc.get_traced_memory()
    held = [ticket(number) for number in range(count)]
    after, _ = tracemalloc.get_traced_memory()
    del held
    return after - before


async def growth(tmp_path: Path, plan_last: frozenset[CaseKind]) -> tuple[int, int]:
    """How much more the peak of a cycle over MANY cases is than over FEW, and what the extra
    cases weigh."""
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    tracing_already = tracemalloc.is_tracing()
    tracemalloc.start()
    try:
        await peak_of_a_cycle(ledger, FEW, plan_last)  # first use: imports, caches, statements
        few = await peak_of_a_cycle(ledger, FEW, plan_last)
        many = await peak_of_a_cycle(ledger, MANY, plan_last)
        return many - few, weight_of(MANY - FEW)
    finally:
        if not tracing_already:
            tracemalloc.stop()
        ledger.close()


async def test_ten_times_the_cases_take_no_more_memory(tmp_path: Path) -> None:
    grown, extra_cases = await growth(tmp_path, plan_last=frozenset())

    # Holding every case would add about ``extra_cases``; a quarter of it leaves room for the
    # allocator's noise.
    assert grown < extra_cases / 4, (grown, extra_cases)


async def test_the_measure_sees_a_cycle_that_holds_every_case(tmp_path: Path) -> None:
    # Kinds whose policies read the account totals wait for the last case: with every kind
    # among them, the cycle holds every case until the end, and the measure must show it.
    grown, extra_cases = await growth(tmp_path, plan_last=frozenset(CaseKind))

    assert grown > extra_cases / 2, (grown, extra_cases)
