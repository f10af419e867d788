"""Request log and counters: what the worker asked, and how each request ended."""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["RequestRecord", "Traffic"]


@dataclass(frozen=True, slots=True)
class RequestRecord:
    seq: int
    at: str  # sandbox clock
    vendor: str
    method: str
    endpoint: str  # route template, e.g. "PUT /api/v2/tickets/{ticket_id}"
    path: str
    status: int | None  # None: the connection was dropped
    write: bool
    applied: bool  # a write handler ran to completion (even if the client never heard)
    fault: str | None
    ms: float


class Traffic:
    def __init__(self, keep: int = 10_000) -> None:
        self._log: deque[RequestRecord] = deque(maxlen=keep)
        self._seq = 0
        self._by_endpoint: Counter[tuple[str, str, str, str]] = Counter()
        self._by_vendor: dict[str, Counter[str]] = {}

    def record(self, **fields: Any) -> RequestRecord:
        self._seq += 1
        entry = RequestRecord(seq=self._seq, **fields)
        self._log.append(entry)
        status = "dropped" if entry.status is None else str(entry.status)
        self._by_endpoint[(entry.vendor, entry.method, entry.endpoint, status)] += 1
        totals = self._by_vendor.setdefault(entry.vendor, Counter())
        totals["requests"] += 1
        totals["writes" if entry.write else "reads"] += 1
        if entry.applied:
            totals["writes_applied"] += 1
        if entry.fault:
            totals["faults"] += 1
        if entry.status is None or entry.status >= 400:
            totals["errors"] += 1
        return entry

    def entries(
        self, *, vendor: str | None = None, after: int = 0, limit: int = 500
    ) -> list[dict[str, Any]]:
        chosen = [
            asdict(entry)
            for entry in self._log
            if entry.seq > after and (vendor is None or entry.vendor == vendor)
        ]
        return chosen[-limit:]

    def stats(self) -> dict[str, Any]:
        vendors = {name: dict(counts) for name, counts in self._by_vendor.items()}
        for counts in vendors.values():
            for key in ("requests", "reads", "writes", "writes_applied", "faults", "errors"):
                counts.setdefault(key, 0)
        return {
            "total": {
                key: sum(counts[key] for counts in vendors.values())
                for key in ("requests", "reads", "writes", "writes_applied", "faults", "errors")
            },
            "vendors": vendors,
            "endpoints": [
                {"vendor": v, "method": m, "endpoint": e, "status": s, "count": n}
                for (v, m, e, s), n in sorted(self._by_endpoint.items())
            ],
        }

    def reset(self) -> None:
        self._log.clear()
        self._by_endpoint.clear()
        self._by_vendor.clear()
