"""What ``followup run --once`` prints: the plan, spooled to disk while the cycle settles it.

A cycle over a million tickets settles hundreds of thousands of items; holding them until the
end to print them would make the worker's memory grow with the helpdesk. :class:`PlanSpool`
writes each item (and each case no policy could judge) as one JSON line to a temporary file as
soon as the cycle tells it (``Runtime.on_item``, ``Runtime.on_unjudged``), and reads them back
one at a time once the cycle is over: as one JSON document (``--json``), written piece by piece,
or as tables of :data:`TABLE_ROWS` rows (a table needs all its rows at once to size its
columns).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain, islice
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table

from policies.model import Unjudged
from worker.delivery.executor import ItemReport
from worker.runtime.cycle import CycleSummary, Runtime

__all__ = ["TABLE_ROWS", "PlanSpool", "plan_spool", "print_json", "print_tables"]

TABLE_ROWS = 1000
_COLUMNS = ("case", "policy", "step", "actions", "outcome", "reason")


@dataclass(frozen=True, slots=True)
class PlanSpool:
    """The items and unjudged cases of one cycle, one JSON line each (:func:`plan_spool`)."""

    _items: TextIO
    _unjudged: TextIO

    def listen(self, runtime: Runtime) -> None:
        runtime.on_item = self.item
        runtime.on_unjudged = self.unjudged

    def item(self, report: ItemReport) -> None:
        entry = {
            "tenant": report.tenant,
            "case": report.case_ref,
            "policy": report.policy,
            "step": report.step,
            "actions": list(report.actions),
            "outcome": report.label,
            "reason": report.reason,
            "detail": report.detail,
        }
        self._items.write(json.dumps(entry) + "\n")

    def unjudged(self, entry: Unjudged) -> None:
        self._unjudged.write(json.dumps({"case": entry.case_ref, "reason": entry.reason}) + "\n")

    def items(self) -> Iterator[dict[str, Any]]:
        return _read_back(self._items)

    def unjudged_cases(self) -> Iterator[dict[str, Any]]:
        return _read_back(self._unjudged)


@contextmanager
def plan_spool() -> Iterator[PlanSpool]:
    """A spool on two temporary files, gone on exit."""
    with (
        tempfile.TemporaryFile("w+", encoding="utf-8") as items,
        tempfile.TemporaryFile("w+", encoding="utf-8") as unjudged,
    ):
        yield PlanSpool(items, unjudged)


def _read_back(spooled: TextIO) -> Iterator[dict[str, Any]]:
    spooled.flush()
    spooled.seek(0)
    for line in spooled:
        yield json.loads(line)


def print_json(summary: CycleSummary, spool: PlanSpool, out: TextIO) -> None:
    """The summary's figures, then ``items`` and ``unjudged`` (the cases, in place of their
    number): one JSON document."""
    figures = summary.as_dict()
    del figures["unjudged"]
    out.write("{\n")
    for key, value in figures.items():
        out.write(f"  {json.dumps(key)}: {json.dumps(value)},\n")
    _write_array(out, "items", spool.items())
    out.write(",\n")
    _write_array(out, "unjudged", spool.unjudged_cases())
    out.write("\n}\n")


def _write_array(out: TextIO, key: str, entries: Iterator[dict[str, Any]]) -> None:
    out.write(f"  {json.dumps(key)}: [")
    separator = "\n    "
    for entry in entries:
        out.write(separator + json.dumps(entry))
        separator = ",\n    "
    out.write("\n  ]" if separator != "\n    " else "]")


def print_tables(summary: CycleSummary, spool: PlanSpool, console: Console) -> None:
    """The plan as tables of at most :data:`TABLE_ROWS` rows (one, empty, when nothing is
    due), then one line of figures."""
    mode = "DRY-RUN (nothing written)" if summary.mode.dry_run else "LIVE"
    title = f"cycle {summary.cycle_id} at {summary.at:%Y-%m-%d %H:%M %Z} - {mode}"
    shown = [bad for tenant in summary.bad_records for bad in tenant.shown]
    rows = chain(
        _rows(spool),
        ((f"{b.vendor}:{b.record_id}", "-", "-", "-", "unreadable", b.reason) for b in shown),
    )
    while batch := list(islice(rows, TABLE_ROWS)):
        console.print(_table(title, batch))
        title = ""
    if title:
        console.print(_table(title, ()))
    counts = ", ".join(f"{label} {n}" for label, n in sorted(summary.counts.items())) or "none"
    unreadable = summary.bad_record_count
    console.print(
        f"{summary.cases} cases read, {summary.planned} follow-ups due ({counts}), "
        f"{summary.failed} failed, {summary.unjudged} not judged"
        + (f", {unreadable} unreadable records skipped" if unreadable else "")
        + (f" ({len(shown)} listed, all in the logs)" if unreadable > len(shown) else "")
        + (f", {summary.error_count} errors" if summary.error_count else "")
        + (f", {summary.retries} vendor calls retried" if summary.retries else "")
        + (" - interrupted by a signal" if summary.interrupted else "")
        + f" ({summary.mode.why})"
    )
    # Each error's cause, one line each (a 401, an unreachable host...), not only its count.
    for error in summary.errors:
        console.print(f"error: {error}")
    if summary.error_count > len(summary.errors):
        console.print(f"error: {summary.error_count - len(summary.errors)} more, in the logs")


def _table(title: str, rows: Iterable[tuple[str, ...]]) -> Table:
    table = Table(title=title or None)
    for column in _COLUMNS:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    return table


def _rows(spool: PlanSpool) -> Iterator[tuple[str, ...]]:
    for item in spool.items():
        yield (
            item["case"],
            item["policy"],
            item["step"],
            ", ".join(item["actions"]),
            item["outcome"],
            item["reason"],
        )
    for entry in spool.unjudged_cases():
        yield entry["case"], "-", "-", "-", "not judged", entry["reason"]
