"""The sync benchmark end to end, at its smallest: a real sandbox process at a fast time
scale, three ``followup run --once --dry-run`` processes on one ledger, and the goals judged
from what the sandbox counted."""

from __future__ import annotations

from benchmarks.sync_bench import VENDORS, bench, goals


def test_the_sync_bench_measures_every_cycle_and_judges_the_goals() -> None:
    size = bench(400, scale=600, cycles=3, change=0.05, database_url=None)
    first, idle, steady = size.cycles
    assert [c.run.exit_code in (0, 1) for c in size.cycles] == [True] * 3
    assert all(first.calls[vendor] > 0 for vendor in VENDORS)
    assert first.export_pages > 0
    assert first.run.peak_rss_mb > 0
    assert (first.changed, idle.changed) == (0, 0)
    assert steady.changed > 0
    assert all(steady.calls[vendor] > 0 for vendor in VENDORS)
    assert first.cases == steady.cases > 400  # tickets, conversations and bugs
    judged = {goal: met for goal, met, _ in goals([size])}
    assert len(judged) == 5
    # Without incremental sync a cycle with nothing changed still reads every vendor.
    assert judged["nothing changed: at most 3 calls per vendor"] is (max(idle.calls.values()) <= 3)
