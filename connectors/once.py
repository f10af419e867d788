"""Writes that are not idempotent (a note, a reply, a story) are sent at most twice per plan item,
and the second time only after a fresh read proved the first did not land.

A lost answer (:class:`~connectors.errors.OutcomeUnknown`) says nothing about the write, so the
caller's ``landed`` check looks for the write's marker on the vendor. Found: done, nothing is
sent again. Absent: sent once more; a second lost answer is raised, and the next run, reading
the case afresh, finds the marker or writes it then. Idempotent writes (absolute field values)
pass no check and are simply sent again.
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
    """The writes of one plan item; ``calls`` counts every request made, re-reads included."""

    def __init__(self) -> None:
        self.calls = 0

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
        self.calls += 1
        return Written(await send())
