"""The sandbox clock: wall time shifted by an offset an admin can set or advance.

The clock keeps ticking with real time (so two writes a second apart get different
``updated_at`` stamps) unless frozen, in which case it only moves when told to. Under a time
scale S (``--time-scale``) it ticks S seconds per real second, so a benchmark covers vendor
hours in real minutes; the rate windows shrink by the same factor (:mod:`sandbox.limits`).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

__all__ = ["SandboxClock", "format_iso", "parse_iso"]


def format_iso(instant: datetime) -> str:
    """Zendesk/Asana style timestamp: second precision, UTC, ``Z`` suffix."""
    return instant.astimezone(UTC).replace(microsecond=0, tzinfo=None).isoformat() + "Z"


def parse_iso(text: str) -> datetime:
    """Parse an ISO-8601 instant; a naive value is taken as UTC."""
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class SandboxClock:
    def __init__(self, start: datetime, *, frozen: bool = False, scale: float = 1.0) -> None:
        if scale <= 0:
            raise ValueError("the clock's time scale must be above 0")
        self._lock = threading.Lock()
        self._frozen = frozen
        self.scale = scale  # sandbox seconds per real second
        self._anchor = start.astimezone(UTC)
        self._anchor_real = time.monotonic()

    @property
    def frozen(self) -> bool:
        return self._frozen

    def now(self) -> datetime:
        with self._lock:
            if self._frozen:
                return self._anchor
            elapsed = (time.monotonic() - self._anchor_real) * self.scale
            return self._anchor + timedelta(seconds=elapsed)

    def set(self, instant: datetime) -> datetime:
        with self._lock:
            self._anchor = instant.astimezone(UTC)
            self._anchor_real = time.monotonic()
        return self.now()

    def advance(self, seconds: float) -> datetime:
        return self.set(self.now() + timedelta(seconds=seconds))

    def freeze(self, frozen: bool) -> datetime:
        current = self.now()
        with self._lock:
            self._frozen = frozen
        return self.set(current)
