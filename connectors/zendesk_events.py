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

Those tickets in flight still grow with the tenant: every ticket updated in the window waits
from its first event in it until its latest update streams by (at 50,000 tickets, about
23,000 at once, 16 MB). So at most ``held`` of them stay in memory; past that, the least
recently touched go to SQLite's private temporary database, one JSON row each, and come back
when an event of theirs arrives or the stream takes them. A replica's memory stays flat in the
number of tickets, at the cost of local disk rather than vendor calls (reading the spilled
tickets' comments per ticket would spend the rate limit the export saves). The database is
made only when the first entry spills and dropped on :meth:`CommentIndex.close` (or when the
index is garbage); its file is unlinked from the start, so a killed process leaves none.
Entries answer the same wherever they are.
"""

from __future__ import annotations

import json
import math
import sqlite3
import sys
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from connectors.errors import BadRecord
from connectors.records import instant, translating
from connectors.zendesk_json import IndexedComment, has_inbound, indexed_comment

__all__ = ["CommentIndex", "latest_update"]

# Tickets whose entries stay in memory: about 3.5 MB of them (some 700 bytes each), enough
# that a tenant of a few thousand tickets never touches the disk.
_HELD = 5_000

# A comment child event says "Comment"; a voice comment may say so or carry its audit event
# type: both are comments (a missed call lost here would be a follow-up sent wrongly).
_COMMENTS = ("Comment", "VoiceComment")


@dataclass(slots=True)
class _Ticket:
    comments: list[IndexedComment] = field(default_factory=list)  # oldest first
    latest: int = -1  # unix time of the ticket's latest event
    readable: bool = True

    def dumps(self, cap: int) -> str:
        """The entry as a row of the spill file; only the newest ``cap`` comments are ever
        read (comments are only appended), so the older ones are left out."""
        comments = [list(comment) for comment in self.comments[-cap:]]
        return json.dumps([self.latest, self.readable, comments], separators=(",", ":"))

    @classmethod
    def loads(cls, row: str) -> _Ticket:
        latest, readable, comments = json.loads(row)
        return cls([_comment(*values) for values in comments], latest, readable)


def _comment(
    author_id: int | str,
    created_at: str,
    public: bool,
    kind: str,
    channel: str | None,
    answered_by_id: int | str | None,
    missed: bool,
    body: str,
) -> IndexedComment:
    """A comment read back from the spill file, its repeated words shared again as
    :func:`~connectors.zendesk_json.indexed_comment` shares them."""
    return IndexedComment(
        author_id,
        created_at,
        public,
        sys.intern(kind),
        None if channel is None else sys.intern(channel),
        answered_by_id,
        missed,
        body,
    )


def _row_key(ticket_id: int | str) -> str:
    """A ticket id as the spill file's key: JSON keeps 7 and "7" apart, as the dict does."""
    return json.dumps(ticket_id)


def _found_key(ticket_id: object) -> str | None:
    """The spill key of the entry ``ticket_id`` would find as a dict key: ids are ints or
    strings, and a number equal to an int (``True``, ``7.0``) finds that int's entry."""
    if isinstance(ticket_id, int | float) and float(ticket_id).is_integer():
        return _row_key(int(ticket_id))
    if isinstance(ticket_id, str):
        return _row_key(ticket_id)
    return None


class _Spill:
    """The entries moved out of memory, in a private temporary SQLite database.

    ``sqlite3.connect("")`` is SQLite's own scratch database: a file in its temporary
    directory (``SQLITE_TMPDIR``, ``TMPDIR``, ``/var/tmp``, ``/tmp``) that it unlinks as soon as
    it has opened it, so nothing is left behind, not even by a SIGKILLed replica. Its pages stay
    in SQLite's cache (2 MB) until they overflow to that file. No journal, no syncing, and its
    lock taken once for good, so a write or a read is some 10 microseconds, quick enough to
    make on the event loop."""

    def __init__(self) -> None:
        # Any thread may close it: the finalizer runs wherever the index is collected.
        self._db = sqlite3.connect("", isolation_level=None, check_same_thread=False)
        self._closing = weakref.finalize(self, self._db.close)
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute("PRAGMA locking_mode=EXCLUSIVE")
        self._db.execute("CREATE TABLE spilled (key TEXT PRIMARY KEY, entry TEXT NOT NULL)")
        self.count = 0

    def put(self, key: str, entry: str) -> None:
        self._db.execute("INSERT INTO spilled VALUES (?, ?)", (key, entry))
        self.count += 1

    def pop(self, key: str) -> str | None:
        row = self._db.execute("SELECT entry FROM spilled WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        self._db.execute("DELETE FROM spilled WHERE key = ?", (key,))
        self.count -= 1
        entry: str = row[0]
        return entry

    def close(self) -> None:
        self._closing()  # once: later calls, and the garbage collector's, do nothing


class CommentIndex:
    """The comments of every ticket the export showed since ``since``, newest ``cap`` each;
    the ``held`` tickets touched last in memory, the others spilled to a temporary file.
    :meth:`close` it when done (or leave it to the garbage collector) to remove the file."""

    def __init__(self, since: datetime, cap: int, held: int = _HELD) -> None:
        if held < 1:
            raise ValueError("held: the ticket an event is added to must stay in memory")
        self._since = since
        self._cap = cap
        self._held = held
        self._tickets: OrderedDict[int | str, _Ticket] = OrderedDict()  # least recent first
        self._spill: _Spill | None = None  # made when the first entry spills
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
        ticket = self._touch(ticket_id)
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

    def _touch(self, ticket_id: int | str) -> _Ticket:
        """The ticket's entry, in memory and touched last; the least recent spill past
        ``held`` (never this one: ``held`` is at least 1)."""
        if (ticket := self._tickets.get(ticket_id)) is not None:
            self._tickets.move_to_end(ticket_id)
            return ticket
        ticket = self._unspill(_row_key(ticket_id))
        if ticket is None:
            ticket = _Ticket()
        self._tickets[ticket_id] = ticket
        while len(self._tickets) > self._held:
            oldest, entry = self._tickets.popitem(last=False)
            if self._spill is None:
                self._spill = _Spill()
            self._spill.put(_row_key(oldest), entry.dumps(self._cap))
        return ticket

    def _unspill(self, key: str | None) -> _Ticket | None:
        if self._spill is None or key is None or (row := self._spill.pop(key)) is None:
            return None
        return _Ticket.loads(row)

    def _pop(self, ticket_id: Any) -> _Ticket | None:
        """The ticket's entry, out of the index, wherever it was."""
        ticket = self._tickets.pop(ticket_id, None)
        return ticket if ticket is not None else self._unspill(_found_key(ticket_id))

    def take(self, ticket: Mapping[str, Any], *, whole: bool = True) -> list[dict[str, Any]] | None:
        """The ticket's comments, or None when the connector must read them itself; the
        ticket is forgotten either way. Raises like the translation on a malformed ticket.

        ``whole`` False: the caller holds the ticket as it was at ``since`` (the case store's
        copy) and wants only what came after, so a ticket older than the window is answered
        for too."""
        comments = self._comments(ticket, whole)
        if comments is None:
            self.read_alone += 1
        return comments

    def _comments(self, ticket: Mapping[str, Any], whole: bool) -> list[dict[str, Any]] | None:
        seen = self._pop(ticket["id"])
        if seen is None or not (seen.readable and self._placed_all):
            return None
        if instant(ticket, "updated_at").timestamp() > seen.latest:
            return None  # changed after the export showed it
        comments = [comment.as_comment() for comment in seen.comments[-self._cap :]]
        if (
            whole
            and instant(ticket, "created_at") < self._since
            and not has_inbound(comments, ticket.get("requester_id"))
        ):
            return None  # its latest inbound activity may be older than the window
        return comments

    def position(self, until: float, start: int) -> int:
        """Where the export is to be read from next time, once the tickets updated up to
        ``until`` are handled: their second (its events may be shown again, and are dropped
        as repeats), or less when the export was not read that far; never before ``start``."""
        if self._end is None or until == -math.inf:
            return start
        return max(start, min(self._end, math.floor(until)))

    def forget(self, ticket_id: Any) -> None:
        """Drop a ticket nobody will ask for (solved, closed, deleted)."""
        if isinstance(ticket_id, int | str):
            self._pop(ticket_id)

    @property
    def spilled(self) -> int:
        """Tickets whose entries are on disk now."""
        return 0 if self._spill is None else self._spill.count

    def close(self) -> None:
        """Forget every entry and drop the spill database, if one was made."""
        self._tickets.clear()
        if self._spill is not None:
            self._spill.close()
            self._spill = None


def latest_update(tickets: Iterable[Any]) -> float:
    """The latest ``updated_at`` among ``tickets`` as a Unix time, skipping unreadable ones
    (their translation reports them); -inf for none."""
    latest = -math.inf
    for ticket in tickets:
        with suppress(BadRecord), translating("zendesk", ticket):
            latest = max(latest, instant(ticket, "updated_at").timestamp())
    return latest
