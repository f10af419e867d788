"""Zendesk's ticket event export read into every ticket's comments, without IO.

Reading each candidate ticket's comments costs one call per ticket. The time-based ticket event
export (``/api/v2/incremental/ticket_events?include=comment_events``) carries every ticket's
comments in pages of up to 1,000 events instead: one audit per ticket update, each comment a
child event of its audit. :class:`CommentIndex` collects the comment child events of the
lookback window, cut to what the translation reads (:func:`~connectors.zendesk_json.
indexed_comment`) and to the newest ``cap`` of each ticket, and answers for each ticket either
its comments or None, "read this ticket's comments yourself", when they cannot stand in:

- the ticket's ``updated_at`` is later than its latest event seen: it changed after the export
  was read (or in the export's last, left-out minute). A customer's reply in that change would
  be missed, and ``safe_update`` would not catch it, since the stamp read is the fresh one;
- the ticket was created before the window and none of its comments in the window is inbound:
  its latest inbound activity, which anchors its follow-ups, may be older than the window;
- an event of the ticket could not be read, or one could not even be placed (no ticket id):
  that one could have been anybody's reply, so then every ticket reads its own.

The connector reads the export alongside the ticket stream, only as far as each page of
tickets needs (:meth:`CommentIndex.covers` past their latest update), and takes a ticket out of
the index as it streams by: both exports run in time order, so the index holds the tickets
seen in the export but not yet in the stream, not the whole window. Time-based pages repeat
the last second of the page before (the next page starts at its ``end_time``); those repeats
are dropped by event id.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from connectors.errors import BadRecord
from connectors.records import instant, translating
from connectors.zendesk_json import IndexedComment, has_inbound, indexed_comment

__all__ = ["CommentIndex", "latest_update"]

# A comment child event says "Comment"; a voice comment may say so or carry its audit event
# type: both are comments (a missed call lost here would be a follow-up sent wrongly).
_COMMENTS = ("Comment", "VoiceComment")


@dataclass(slots=True)
class _Ticket:
    comments: list[IndexedComment] = field(default_factory=list)  # oldest first
    latest: int = -1  # unix time of the ticket's latest event
    readable: bool = True


class CommentIndex:
    """The comments of every ticket the export showed since ``since``, newest ``cap`` each."""

    def __init__(self, since: datetime, cap: int) -> None:
        self._since = since
        self._cap = cap
        self._tickets: dict[int | str, _Ticket] = {}
        self._placed_all = True
        self._second: Any = None  # the time of the latest event read, and the ids read in it
        self._ids_in_second: set[int | str] = set()
        self._end: int | None = None  # the last page's end_time
        self.events = 0
        self.read_alone = 0  # tickets the index could not answer for

    def add(self, page: Mapping[str, Any]) -> None:
        """One page of the export, in the order they came."""
        events = page.get("ticket_events")
        if not isinstance(events, list):
            self._placed_all = False
            return
        for event in events:
            self._add(event)
        end = page.get("end_time")
        if isinstance(end, int) and not isinstance(end, bool):
            self._end = end

    def covers(self, at: float) -> bool:
        """Whether every event up to ``at`` has been read: a page already ended after it (the
        seconds before a page's end are whole; the end itself may go on in the next page)."""
        return self._end is not None and self._end > at

    def _add(self, event: Any) -> None:
        ticket_id = event.get("ticket_id") if isinstance(event, Mapping) else None
        if isinstance(ticket_id, bool) or not isinstance(ticket_id, int | str):
            self._placed_all = False
            return
        ticket = self._tickets.setdefault(ticket_id, _Ticket())
        at, event_id, children = event.get("timestamp"), event.get("id"), event.get("child_events")
        if (
            isinstance(at, bool)
            or not isinstance(at, int)
            or not isinstance(event_id, int | str)
            or not isinstance(children, list)
        ):
            ticket.readable = False
            return
        if at != self._second:
            self._second, self._ids_in_second = at, set()
        elif event_id in self._ids_in_second:
            return  # shown at the end of the page before
        self._ids_in_second.add(event_id)
        self.events += 1
        ticket.latest = max(ticket.latest, at)
        for child in children:
            if not isinstance(child, Mapping):
                ticket.readable = False
            elif child.get("event_type") in _COMMENTS:
                if (comment := indexed_comment(child)) is None:
                    ticket.readable = False
                else:
                    ticket.comments.append(comment)
        if len(ticket.comments) > 2 * self._cap:
            del ticket.comments[: -self._cap]

    def take(self, ticket: Mapping[str, Any]) -> list[dict[str, Any]] | None:
        """The ticket's comments, or None when the connector must read them itself; the
        ticket is forgotten either way. Raises like the translation on a malformed ticket."""
        comments = self._comments(ticket)
        if comments is None:
            self.read_alone += 1
        return comments

    def _comments(self, ticket: Mapping[str, Any]) -> list[dict[str, Any]] | None:
        seen = self._tickets.pop(ticket["id"], None)
        if seen is None or not (seen.readable and self._placed_all):
            return None
        if instant(ticket, "updated_at").timestamp() > seen.latest:
            return None  # changed after the export showed it
        comments = [comment.as_comment() for comment in seen.comments[-self._cap :]]
        if instant(ticket, "created_at") < self._since and not has_inbound(
            comments, ticket.get("requester_id")
        ):
            return None  # its latest inbound activity may be older than the window
        return comments

    def forget(self, ticket_id: Any) -> None:
        """Drop a ticket nobody will ask for (solved, closed, deleted)."""
        if isinstance(ticket_id, int | str):
            self._tickets.pop(ticket_id, None)


def latest_update(tickets: Iterable[Any]) -> float:
    """The latest ``updated_at`` among ``tickets`` as a Unix time, skipping unreadable ones
    (their translation reports them); -inf for none."""
    latest = -math.inf
    for ticket in tickets:
        with suppress(BadRecord), translating("zendesk", ticket):
            latest = max(latest, instant(ticket, "updated_at").timestamp())
    return latest
