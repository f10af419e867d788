"""Vendor records a tenant's connectors could not read, counted per cycle.

A connector skips a record it cannot translate (``connectors.records``) and hands the
:class:`~connectors.errors.BadRecord` to its ``report`` callable, so one malformed ticket never
costs the others their follow-ups. That ticket gets no follow-up either, though, until someone
fixes it in the helpdesk: it must show in the cycle's summary, in the metrics and in the logs,
not only scroll past. Each tenant's connectors report into that tenant's :class:`BadRecordTally`
(``worker.runtime.wiring`` passes :meth:`BadRecordTally.report`); the cycle empties it once the
tenant's turn is over.

Only the first :data:`SHOWN` records of a tenant keep their id and reason in the summary (and
so in the ledger's cycle record): a vendor sending thousands of broken records must not blow
up a summary line. Every one is logged and counted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from connectors.errors import BadRecord
from connectors.records import log_bad_record
from worker.delivery.ledger import CycleRecord, Ledger

__all__ = [
    "CYCLES_SEARCHED",
    "SHOWN",
    "BadRecordTally",
    "BadRecords",
    "unreadable_in",
    "unreadable_mentions",
]

SHOWN = 20
CYCLES_SEARCHED = 200
"""How far back :func:`unreadable_mentions` looks for a case among the records cycles could not
read."""


@dataclass(frozen=True, slots=True)
class BadRecords:
    """What one tenant's turn of a cycle skipped: how many per vendor, and the first few."""

    tenant: str
    counts: Mapping[str, int] = field(default_factory=dict)  # vendor -> records skipped
    shown: tuple[BadRecord, ...] = ()

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def as_dict(self) -> dict[str, object]:
        return {
            "tenant": self.tenant,
            "counts": dict(sorted(self.counts.items())),
            "records": [
                {"vendor": bad.vendor, "id": bad.record_id, "reason": bad.reason}
                for bad in self.shown
            ],
        }


class BadRecordTally:
    """The ``report`` callable of one tenant's connectors (``connectors.records.Report``).

    Not shared between cycles running at once: a runtime runs one cycle at a time.
    """

    def __init__(self, tenant: str) -> None:
        self.tenant = tenant
        self._counts: Counter[str] = Counter()
        self._shown: list[BadRecord] = []

    def report(self, bad: BadRecord) -> None:
        with structlog.contextvars.bound_contextvars(tenant=self.tenant):
            log_bad_record(bad)
        self._counts[bad.vendor] += 1
        if len(self._shown) < SHOWN:
            self._shown.append(bad)

    def take(self) -> BadRecords:
        """What was reported since the last call, and start afresh."""
        taken = BadRecords(self.tenant, dict(self._counts), tuple(self._shown))
        self._counts = Counter()
        self._shown = []
        return taken


def unreadable_in(summary: Mapping[str, Any], case_ref: str) -> list[tuple[str, BadRecord]]:
    """(tenant, record) for each mention of ``case_ref`` (``zendesk:77``, or a bare ``77`` for
    any vendor) among the records a cycle summary (:meth:`BadRecords.as_dict`) shows."""
    vendor, _, record_id = case_ref.rpartition(":")
    return [
        (entry["tenant"], BadRecord(record["vendor"], record["id"], record["reason"]))
        for entry in summary.get("unreadable", [])
        for record in entry["records"]
        if record["id"] == record_id and vendor in ("", record["vendor"])
    ]


def unreadable_mentions(
    ledger: Ledger, case_ref: str, *, tenant: str | None = None
) -> list[tuple[CycleRecord, str, BadRecord]]:
    """(cycle, tenant, record) for each of the last :data:`CYCLES_SEARCHED` cycles that could
    not read ``case_ref``, newest first; ``tenant``: only that tenant's."""
    record_id = case_ref.rpartition(":")[2]
    cycles = ledger.recent_cycles(CYCLES_SEARCHED, mentioning=f'"{record_id}"')
    return [
        (cycle, of_tenant, bad)
        for cycle in cycles
        for of_tenant, bad in unreadable_in(cycle.summary or {}, case_ref)
        if tenant in (None, of_tenant)
    ]
