"""Rate limits as a budget: when may the next request start? Pure decisions, no IO, no clock.

Every response tells how much of the vendor's budget is left (Zendesk ``X-Rate-Limit`` /
``X-Rate-Limit-Remaining``, Intercom ``X-RateLimit-Limit/-Remaining/-Reset``, a 429's
``Retry-After`` everywhere). :func:`observe` folds that into a :class:`Budget`;
:func:`schedule` picks the start of the next request: with a fixed window that says when it
resets (Intercom), what is left is spread over the time until the reset; with a rolling window
(Zendesk) requests go at ``limit - headroom`` per window, and at half that pace while the
budget is below the headroom (other apps spend it too). A vendor that says nothing (Asana
answers 200s without rate headers) is paced at its configured ``requests_per_minute``.

Some endpoints have a limit of their own besides the account's (Zendesk: incremental exports
10/min, 30 with the High Volume add-on; Update Ticket 100/min), not advertised in the account
headers (vendor-behaviours.md Z2). An :class:`EndpointBudget` keeps the starts of its class's
recent requests and lets at most ``limit - headroom`` start in any window (a burst may go at
once, the rest waits for the window to roll); a 429 of the class blocks that class only. The
endpoint headers Zendesk sometimes sends (``ratelimit-*``, ``Zendesk-RateLimit-*``) are read
when present (:func:`read_endpoint_headers`), never relied on.

Times are seconds on a monotonic clock (``now``), except Intercom's reset, which is a Unix
timestamp and is converted with the caller's ``wall_now``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from email.utils import parsedate_to_datetime

__all__ = [
    "Budget",
    "EndpointBudget",
    "RateHeaders",
    "observe",
    "observe_endpoint",
    "read_endpoint_headers",
    "read_rate_headers",
    "schedule",
    "schedule_endpoint",
]

WINDOW_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class RateHeaders:
    """What one response said about the budget; None where it said nothing."""

    limit: int | None = None
    remaining: int | None = None
    reset_after: float | None = None  # seconds until the window resets
    retry_after: float | None = None  # seconds, from a 429 (or 503)


@dataclass(frozen=True, slots=True)
class Budget:
    limit: int | None = None  # requests per window, configured or from headers
    remaining: int | None = None
    reset_at: float | None = None
    blocked_until: float = 0.0
    next_start: float = 0.0
    headroom: float = 0.1
    window: float = WINDOW_SECONDS


def _int(value: str | None) -> int | None:
    try:
        return int(float(value)) if value is not None else None
    except ValueError:
        return None


def _seconds(value: str | None, wall_now: float) -> float | None:
    """Retry-After: delta-seconds or an HTTP date."""
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        return max(parsedate_to_datetime(value).timestamp() - wall_now, 0.0)
    except (TypeError, ValueError):
        return None


def read_rate_headers(headers: Mapping[str, str], wall_now: float) -> RateHeaders:
    """The account's budget as Zendesk (``X-Rate-Limit``), Intercom (``X-RateLimit-*``) and
    Asana (``Retry-After`` only) tell it (case-insensitive)."""
    h = {k.lower(): v for k, v in headers.items()}
    limit = _int(h.get("x-rate-limit") or h.get("x-ratelimit-limit"))
    remaining = _int(h.get("x-rate-limit-remaining") or h.get("x-ratelimit-remaining"))
    reset_after: float | None = None
    if (epoch := _int(h.get("x-ratelimit-reset"))) is not None:  # Intercom: Unix time
        reset_after = max(epoch - wall_now, 0.0)
    return RateHeaders(limit, remaining, reset_after, _seconds(h.get("retry-after"), wall_now))


def read_endpoint_headers(headers: Mapping[str, str]) -> RateHeaders:
    """An endpoint's own budget, when Zendesk says it: ``ratelimit-limit/-remaining/-reset``
    or ``Zendesk-RateLimit-<endpoint>: total=N; remaining=N; resets=S``."""
    h = {k.lower(): v for k, v in headers.items()}
    limit, remaining = _int(h.get("ratelimit-limit")), _int(h.get("ratelimit-remaining"))
    reset = _int(h.get("ratelimit-reset"))
    for name, value in h.items():
        if name.startswith("zendesk-ratelimit-"):
            parts = dict(
                part.strip().partition("=")[::2] for part in value.split(";") if "=" in part
            )
            limit = _int(parts.get("total")) if "total" in parts else limit
            remaining = _int(parts.get("remaining")) if "remaining" in parts else remaining
            reset = _int(parts.get("resets")) if "resets" in parts else reset
    return RateHeaders(limit, remaining, None if reset is None else float(reset))


def observe(budget: Budget, seen: RateHeaders, now: float) -> Budget:
    """The budget after a response; a Retry-After blocks every request until it has passed."""
    blocked_until = budget.blocked_until
    if seen.retry_after is not None:
        blocked_until = max(blocked_until, now + seen.retry_after)
    return replace(
        budget,
        limit=seen.limit if seen.limit is not None else budget.limit,
        remaining=seen.remaining if seen.remaining is not None else budget.remaining,
        reset_at=now + seen.reset_after if seen.reset_after is not None else budget.reset_at,
        blocked_until=blocked_until,
    )


def _interval(budget: Budget, now: float) -> float:
    """Seconds between request starts that keep a long run just under the limit."""
    reserve = math.ceil((budget.limit or 0) * budget.headroom)
    remaining, reset_at = budget.remaining, budget.reset_at
    if remaining is not None and reset_at is not None and reset_at > now:
        # A fixed window that refills at reset_at: spread what is left until then.
        usable = remaining - reserve
        return (reset_at - now) / usable if usable > 0 else reset_at - now
    if budget.limit is None:
        return 0.0
    # A rolling window (Zendesk), or only the configured limit: every request counts for one
    # window, so the sustainable pace is limit - reserve per window. Below the reserve (other
    # apps spend the same budget), half that pace until it recovers.
    steady = budget.window / max(budget.limit - reserve, 1)
    if remaining is not None and remaining <= reserve:
        return 2 * steady
    return steady


def schedule(budget: Budget, now: float) -> tuple[float, Budget]:
    """When the next request may start, and the budget with that request counted."""
    start = max(now, budget.next_start, budget.blocked_until)
    spent = budget.remaining - 1 if budget.remaining is not None else None
    return start, replace(budget, next_start=start + _interval(budget, start), remaining=spent)


@dataclass(frozen=True, slots=True)
class EndpointBudget:
    """One endpoint class's own limit: at most ``limit - headroom`` starts in any window."""

    limit: int
    headroom: float = 0.05
    window: float = WINDOW_SECONDS
    starts: tuple[float, ...] = ()  # the latest starts, oldest first
    blocked_until: float = 0.0

    @property
    def allowed(self) -> int:
        return max(1, self.limit - math.ceil(self.limit * self.headroom))


def schedule_endpoint(budget: EndpointBudget, now: float) -> tuple[float, EndpointBudget]:
    """When the class's next request may start, and the budget with that start counted."""
    start = max(now, budget.blocked_until)
    allowed = budget.allowed
    if len(budget.starts) >= allowed:
        start = max(start, budget.starts[-allowed] + budget.window)
    kept = (*budget.starts, start)[-allowed:]
    return start, replace(budget, starts=kept)


def observe_endpoint(budget: EndpointBudget, seen: RateHeaders, now: float) -> EndpointBudget:
    """The class's budget after a response: its 429 (or a spent endpoint budget the headers
    report) blocks the class until the window says; its limit follows the headers."""
    blocked_until = budget.blocked_until
    if seen.retry_after is not None:
        blocked_until = max(blocked_until, now + seen.retry_after)
    elif seen.remaining == 0 and seen.reset_after is not None:
        blocked_until = max(blocked_until, now + seen.reset_after)
    limit = seen.limit if seen.limit is not None and seen.limit > 0 else budget.limit
    return replace(budget, limit=limit, blocked_until=blocked_until)
