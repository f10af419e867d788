"""A cycle planned from the case store holds a batch of stored cases at a time, not the store.

The same measure as tests/unit/test_worker_cycle_memory.py (tracemalloc, cases made as they
are read), on a tenant whose vendor syncs: the full read that fills the store, and a cycle
that plans every stored case from it (each is due: the default ``next_due``).
"""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path

from connectors.base import Change, Checkpoint, KnownCase
from policies.model import Account, Source
from tests.unit.test_worker_cycle_memory import DUE_EVERY, Stream, some_due, ticket, weight_of
from tests.unit.worker_support import MONDAY
from worker.delivery.ledger import Ledger
from worker.metrics import Metrics
from worker.runtime.cycle import Runtime, Tenant, run_cycle
from worker.sync.store import BATCH

# A batch of the store holds BATCH cases: the measure starts above that.
FEW, MANY = 2 * BATCH, 6 * BATCH


class SyncingStream(Stream):
    """Every case on a full read, nothing after: the cases live in the store only."""

    async def changes(self, cursor: str | None, known: KnownCase) -> AsyncIterator[Change]:
        if cursor is None:
            for number in range(self._count):
                yield ticket(number)
            yield Account("acme", "Acme")
        yield Checkpoint("all read")


async def peaks(ledger: Ledger, count: int, name: str) -> tuple[int, int]:
    """Bytes at the peak of the full read, then of a cycle planning every stored case."""
    tenant = Tenant(name, {Source.ZENDESK: SyncingStream(count)}, some_due, plan_last=frozenset())
    runtime = Runtime(ledger=ledger, metrics=Metrics(), tenants=[tenant])
    measured = []
    for _ in range(2):
        gc.collect()
        tracemalloc.reset_peak()
        start, _ = tracemalloc.get_traced_memory()
        summary = await run_cycle(runtime, at=MONDAY)
        _, peak = tracemalloc.get_traced_memory()
        assert summary.planned == count // DUE_EVERY
        measured.append(peak - start)
    return measured[0], measured[1]


async def test_ten_times_the_stored_cases_take_no_more_memory(tmp_path: Path) -> None:
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    tracing_already = tracemalloc.is_tracing()
    tracemalloc.start()
    try:
        await peaks(ledger, 10, "warm-up")  # first use: imports, caches, statements
        few_read, few_planned = await peaks(ledger, FEW, "few")
        many_read, many_planned = await peaks(ledger, MANY, "many")
        extra_cases = weight_of(MANY - FEW)
    finally:
        if not tracing_already:
            tracemalloc.stop()
        ledger.close()

    # Holding every case would add about ``extra_cases``; a quarter leaves room for the
    # allocator's noise.
    assert many_read - few_read < extra_cases / 4, (many_read, few_read, extra_cases)
    assert many_planned - few_planned < extra_cases / 4, (many_planned, few_planned, extra_cases)
