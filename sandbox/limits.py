"""Per-vendor, per-endpoint and per-resource request windows.

Windows run on real time, not the sandbox clock: a rate limit is about how fast a client
calls, and a demo jumping ten days ahead must not refill anybody's budget. Under a time scale
S (``--time-scale``, the clock ticking S times faster) every window lasts 1/S of its length:
"10 requests a minute" stays 10 per sandbox minute, 60/S real seconds, and the ``Retry-After``
and reset a refusal gives are real seconds, the time a client actually has to wait.

As Zendesk does (vendor-behaviours.md Z2), every budget is enforced but only the account-wide
one is advertised: a :class:`Decision`'s ``limit``/``remaining`` (the ``X-Rate-Limit``
headers) are the vendor's per-minute budget, while a refusal may come from an endpoint's
budget (exports 10/min, Update Ticket 100/min) or a resource's (about 30 updates of one
ticket per 10 minutes), with the ``Retry-After`` of the window that refused.
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
    # glob -> (requests, window seconds) for each resource (path) apart: one ticket's updates
    per_resource: dict[str, tuple[int, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "per_minute": self.per_minute,
            "endpoints": dict(self.endpoints),
            "per_resource": {k: list(v) for k, v in self.per_resource.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VendorLimit:
        per_minute = data.get("per_minute")
        endpoints = data.get("endpoints") or {}
        per_resource = data.get("per_resource") or {}
        if per_minute is not None and (not isinstance(per_minute, int) or per_minute < 1):
            raise ValueError("per_minute must be a positive integer or null")
        if not isinstance(endpoints, dict) or not all(
            isinstance(v, int) and v > 0 for v in endpoints.values()
        ):
            raise ValueError("endpoints must map endpoint patterns to positive integers")
        if not isinstance(per_resource, dict) or not all(
            isinstance(v, list | tuple) and len(v) == 2 and int(v[0]) > 0 and float(v[1]) > 0
            for v in per_resource.values()
        ):
            raise ValueError("per_resource must map endpoint patterns to [requests, seconds]")
        resources = {k: (int(v[0]), float(v[1])) for k, v in per_resource.items()}
        return cls(per_minute, dict(endpoints), resources)


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
        {"PUT /api/v2/tickets/{ticket_id}": (30, 600.0)},  # about 30 per ticket per 10 min
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
        time_scale: float = 1.0,
    ) -> None:
        if time_scale <= 0:
            raise ValueError("the time scale must be above 0")
        self._window_seconds = WINDOW_SECONDS / time_scale
        self._time_scale = time_scale
        self._limits = dict(limits if limits is not None else DEFAULT_LIMITS)
        self._windows: dict[tuple[str, ...], _Window] = {}
        self._monotonic = monotonic

    def limits(self) -> dict[str, dict[str, Any]]:
        return {vendor: limit.to_dict() for vendor, limit in self._limits.items()}

    def configure(self, vendor: str, limit: VendorLimit) -> None:
        self._limits[vendor] = limit
        for key in [key for key in self._windows if key[0] == vendor]:
            del self._windows[key]

    def take(self, vendor: str, endpoint: str, path: str = "") -> Decision:
        """Spend one request of ``vendor``'s budget and of every endpoint and resource
        (``path``) budget that matches; the decision advertises the vendor's budget only."""
        limit = self._limits.get(vendor)
        if limit is None:
            return Decision(True, None, None, 0.0)
        now = self._monotonic()
        budgets: list[tuple[tuple[str, ...], int, float]] = []
        if limit.per_minute:
            budgets.append((("*",), limit.per_minute, self._window_seconds))
        budgets += [
            ((pattern,), rpm, self._window_seconds)
            for pattern, rpm in limit.endpoints.items()
            if endpoint_matches(pattern, endpoint)
        ]
        budgets += [
            ((pattern, path), count, seconds / self._time_scale)
            for pattern, (count, seconds) in limit.per_resource.items()
            if endpoint_matches(pattern, endpoint)
        ]
        windows = [(self._window(vendor, key, seconds, now), count, seconds)
                   for key, count, seconds in budgets]  # fmt: skip
        account = windows[0] if limit.per_minute else None
        advertised = (
            (limit.per_minute, account[0].used, account[0].started + self._window_seconds - now)
            if account is not None
            else (None, 0, 0.0)
        )
        for window, count, seconds in windows:
            if window.used >= count:
                rpm, used, _ = advertised
                remaining = None if rpm is None else max(0, rpm - used)
                return Decision(False, rpm, remaining, window.started + seconds - now)
        for window, _, _ in windows:
            window.used += 1
        rpm, used, reset_after = advertised
        if rpm is None:
            return Decision(True, None, None, 0.0)
        return Decision(True, rpm, max(0, rpm - used - 1), reset_after)

    def _window(self, vendor: str, key: tuple[str, ...], seconds: float, now: float) -> _Window:
        window = self._windows.get((vendor, *key))
        if window is None or now - window.started >= seconds:
            window = _Window(now)
            self._windows[(vendor, *key)] = window
        return window
