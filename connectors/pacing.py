"""Rate limits as a budget: when may the next request start? Pure decisions, no IO, no clock.

Every response tells how much of the vendor's budget is left (Zendesk ``X-Rate-Limit`` /
``X-Rate-Limit-Remaining``, Intercom ``X-RateLimit-Limit/-Remaining/-Reset``, a 429's
``Retry-After`` everywhere). :func:`observe` folds that into a :class:`Budget`;
:func:`schedule` picks the start of the next request: with a fixed window that says when it
resets (Intercom), what is left is spread over the time until the reset; with a rolling window
(Zendesk) requests go at ``limit - headroom`` per window, and at half that pace while the
budget is below the headroom (other apps spend it too). A vendor that says nothing (Asana
answers 200s without rate headers) is paced at its configured ``requests_per_minute``.

Times are seconds on a monotonic clock (``now``), except Intercom's reset, which is a Unix
timestamp and is converted with the caller's ``wall_now``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from email.utils import parsedate_to_datetime

__all__ = ["Budget", "RateHeaders", "observe", "read_rate_headers", "schedule"]

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
    """Understand Zendesk's, Intercom's and Asana's rate-limit headers (case-insensitive)."""
    h = {k.lower(): v for k, v in headers.items()}
    limit = _int(h.get("x-rate-limit") or h.get("x-ratelimit-limit") or h.get("ratelimit-limit"))
    remaining = _int(
        h.get("x-rate-limit-remaining")
        or h.get("x-ratelimit-remaining")
        or h.get("ratelimit-remaining")
    )
    reset_after: float | None = None
    if (epoch := _int(h.get("x-ratelimit-reset"))) is not None:  # Intercom: Unix time
        reset_after = max(epoch - wall_now, 0.0)
    elif (delta := _int(h.get("ratelimit-reset"))) is not None:  # Zendesk list endpoints
        reset_after = float(delta)
    return RateHeaders(limit, remaining, reset_after, _seconds(h.get("retry-after"), wall_now))


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
