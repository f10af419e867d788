"""Writes that are not idempotent (a note, a reply, a story) are sent at most once per plan item
and attempt, unless the vendor itself refuses the second of two copies.

A lost answer (:class:`~connectors.errors.OutcomeUnknown`) says nothing about the write, and
the write may not even be over: a request answered later than the client waits is applied after
the client gave up. So the caller's ``landed`` check looks for the write's marker, and:

* found: done, nothing is sent again;
* absent, and the write is *guarded* (Zendesk's ``safe_update`` on the stamp the first copy
  carried: of two copies only one can pass): sent once more at once;
* absent otherwise: raised. Sending it again now could race the first copy still on its way
  and land twice; the next cycle, reading the case afresh minutes later, finds the marker or
  writes it then.

A second lost answer is raised too. Idempotent writes (absolute field values) pass no check
and are simply sent again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from connectors.errors import OutcomeUnknown

__all__ = ["WriteOnce", "Written"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Written(Generic[T]):
    answer: T | None  # the vendor's answer; None when the write had landed unanswered
    landed_before: bool = False


class WriteOnce:
    """The writes of one plan item; ``calls`` counts every request made, re-reads included.

    ``guarded``: the vendor applies only one of two copies of a checked write, so one found
    absent after a lost answer is sent again within the same attempt.
    """

    def __init__(self, *, guarded: bool = False) -> None:
        self.calls = 0
        self._guarded = guarded

    async def send(
        self,
        send: Callable[[], Awaitable[T]],
        landed: Callable[[], Awaitable[bool]] | None,
    ) -> Written[T]:
        self.calls += 1
        try:
            return Written(await send())
        except OutcomeUnknown:
            if landed is not None:
                self.calls += 1
                if await landed():
                    return Written(None, landed_before=True)
                if not self._guarded:
                    raise
        self.calls += 1
        return Written(await send())
