"""Per-vendor (and optionally per-endpoint) requests-per-minute windows.

Windows run on real time, not the sandbox clock: a rate limit is about how fast a client
calls, and a demo jumping ten days ahead must not refill anybody's budget.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sandbox.patterns import endpoint_matches

__all__ = ["DEFAULT_LIMITS", "Decision", "RateLimiter", "VendorLimit"]

WINDOW_SECONDS = 60.0


@dataclass(slots=True)
class VendorLimit:
    per_minute: int | None  # None: unlimited
    endpoints: dict[str, int] = field(default_factory=dict)  # glob on "METHOD /path" -> rpm

    def to_dict(self) -> dict[str, Any]:
        return {"per_minute": self.per_minute, "endpoints": dict(self.endpoints)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VendorLimit:
        per_minute = data.get("per_minute")
        endpoints = data.get("endpoints") or {}
        if per_minute is not None and (not isinstance(per_minute, int) or per_minute < 1):
            raise ValueError("per_minute must be a positive integer or null")
        if not isinstance(endpoints, dict) or not all(
            isinstance(v, int) and v > 0 for v in endpoints.values()
        ):
            raise ValueError("endpoints must map endpoint patterns to positive integers")
        return cls(per_minute, dict(endpoints))


# Zendesk Enterprise plan with its per-endpoint limits, Intercom's per-app limit, Asana paid
# plans (../shared/specs/README.md and zendesk-notes.md).
DEFAULT_LIMITS = {
    "zendesk": VendorLimit(
        700,
        {
            "PUT /api/v2/tickets/{ticket_id}": 100,
            "GET /api/v2/search/export": 100,
            "GET /api/v2/incremental/tickets/cursor": 10,
            "GET /api/v2/incremental/ticket_events": 10,
        },
    ),
    "intercom": VendorLimit(10_000),
    "asana": VendorLimit(1_500),
}


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int | None
    remaining: int | None
    reset_after: float  # seconds until the tightest window restarts

    @property
    def retry_after(self) -> int:
        return max(1, math.ceil(self.reset_after))


@dataclass(slots=True)
class _Window:
    started: float
    used: int = 0


class RateLimiter:
    def __init__(
        self,
        limits: dict[str, VendorLimit] | None = None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limits = dict(limits if limits is not None else DEFAULT_LIMITS)
        self._windows: dict[tuple[str, str], _Window] = {}
        self._monotonic = monotonic

    def limits(self) -> dict[str, dict[str, Any]]:
        return {vendor: limit.to_dict() for vendor, limit in self._limits.items()}

    def configure(self, vendor: str, limit: VendorLimit) -> None:
        self._limits[vendor] = limit
        for key in [key for key in self._windows if key[0] == vendor]:
            del self._windows[key]

    def take(self, vendor: str, endpoint: str) -> Decision:
        """Spend one request of ``vendor``'s budget (and of any matching endpoint budget)."""
        limit = self._limits.get(vendor)
        if limit is None:
            return Decision(True, None, None, 0.0)
        now = self._monotonic()
        budgets = [("*", limit.per_minute)] if limit.per_minute else []
        budgets += [(p, rpm) for p, rpm in limit.endpoints.items() if endpoint_matches(p, endpoint)]
        tightest: Decision | None = None
        windows = []
        for pattern, rpm in budgets:
            window = self._window(vendor, pattern, now)
            reset_after = window.started + WINDOW_SECONDS - now
            decision = Decision(window.used < rpm, rpm, max(0, rpm - window.used - 1), reset_after)
            windows.append(window)
            if not decision.allowed:
                return Decision(False, rpm, 0, reset_after)
            if tightest is None or (decision.remaining or 0) < (tightest.remaining or 0):
                tightest = decision
        for window in windows:
            window.used += 1
        return tightest or Decision(True, None, None, 0.0)

    def _window(self, vendor: str, pattern: str, now: float) -> _Window:
        window = self._windows.get((vendor, pattern))
        if window is None or now - window.started >= WINDOW_SECONDS:
            window = _Window(now)
            self._windows[(vendor, pattern)] = window
        return window
