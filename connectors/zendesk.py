"""Zendesk Support: tickets in, one safe ticket update out.

Reads. Candidate tickets stream from the cursor-based incremental export
(``/api/v2/incremental/tickets/cursor``, up to 1,000 tickets a page) with requesters
side-loaded (``include=users``), so there is no per-ticket user lookup; solved, closed and
deleted tickets are dropped as they stream by; a ticket that cannot be read (missing field,
wrong type, unknown status) goes to the connector's ``report`` (:mod:`connectors.records`)
and the stream goes on. Their comments come from the time-based ticket event export
(``/api/v2/incremental/ticket_events`` with ``comment_events``, up to 1,000 ticket updates a
page), read alongside into a :class:`~connectors.zendesk_events.CommentIndex`: a page per
thousand updates instead of a call per ticket. Only a ticket the index cannot answer for
(changed after the export showed it, older than the window without an inbound comment in it)
gets its comments read on its own, newest first, and only back to the latest inbound
activity: what came before it belongs to a finished follow-up cycle. A fresh single read
(:meth:`ZendeskConnector.fetch_case`) always reads them on its own.

Changes (:meth:`ZendeskConnector.changes`, issue 13). The same two exports, continued from a
cursor kept between cycles (vendor-behaviours.md Z8): the ticket export from its
``after_cursor``, the event export from the second the tickets handled reached, and the
incremental organization export from its ``end_time``. A changed ticket the case store holds
takes the stored history and follow-ups plus the comments the event export shows since;
finished tickets come as ``Gone``.

Writes. All of a ticket's changes go in one ``PUT /api/v2/tickets/{id}`` with
``safe_update`` and the ``updated_stamp`` that was read, so an agent's concurrent edit answers
409 and is never overwritten. The internal note carries the footer marker ``fw-<key>``.
Zendesk takes one comment per update, so a plan item that also emails the customer (REPLY)
needs a second update, and the order matters: the public reply goes first, tagged with the
marker ``fw-<key>``; then the note with every other change, which also removes that tag (the
footer now records the step). If the run dies between the two, the retried item finds the tag
and does not email the customer twice; had the note gone first, a lost reply would look done.
Once the reply is out (or its tag found), ``replied`` is told, and the worker records it.

A write whose answer was lost (OutcomeUnknown) is checked on a fresh read: marker found ->
ALREADY_APPLIED, absent -> written once more with the original ``updated_stamp``. A reply out
and its note not is INCOMPLETE: the worker finishes it next cycle without the reply, and the
note then takes the marker tag off.

The JSON translation itself lives in :mod:`connectors.zendesk_json`.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, aclosing, closing
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import structlog

from connectors.base import (
    Change,
    Checkpoint,
    Gone,
    KnownCase,
    Replied,
    WriteOutcome,
    WriteResult,
)
from connectors.errors import (
    BadRecord,
    BadRequest,
    Conflict,
    CursorExpired,
    Forbidden,
    MappingError,
    PaginationStuck,
    Unprocessable,
    VendorError,
)
from connectors.http import EndpointClass, OwnsClient, VendorClient
from connectors.mapping import PlanNames, ZendeskMapping
from connectors.once import WriteOnce
from connectors.records import (
    Report,
    case_or_bad,
    flagged_account,
    log_bad_record,
    reported,
    text,
    translating,
)
from connectors.resolution import NameCheck
from connectors.settings import Timeouts, VendorLimits
from connectors.zendesk_events import CommentIndex, latest_update
from connectors.zendesk_json import ZendeskIds, has_inbound, ticket_case, ticket_updates
from policies.model import (
    Account,
    Case,
    PlanItem,
    Source,
    marker_tag,
)

__all__ = ["ZendeskConnector", "endpoint_classes"]

log = structlog.get_logger(__name__)

# A tuple, not a set: a malformed (unhashable) status still compares, and is reported later.
_FINISHED = ("solved", "closed", "deleted")
_TICKET = "/api/v2/tickets/{}"
_COMMENT_PAGE = 100  # comments per page of a ticket's own read
# The endpoints Zendesk limits apart from the account (vendor-behaviours.md Z2); both exports
# share one class: the strict reading of "incremental exports: 10 requests per minute".
_ENDPOINT_CLASSES = {
    "incremental_exports": ("GET", re.compile(r"/api/v2/incremental/")),
    "update_ticket": ("PUT", re.compile(r"/api/v2/tickets/\d+(\.json)?$")),
    "search_export": ("GET", re.compile(r"/api/v2/search/export(\.json)?$")),
}
# Each ticket's updates apart: "about 30 updates per ticket per 10 minutes" (vendor-behaviours.md
# Z2). The worker plans a few writes per ticket a cycle, so the client refuses one past it
# (ResourceBudgetSpent, the item left to a later cycle) rather than meet a 429.
_UPDATES_PER_TICKET = (30, 600.0)


def endpoint_classes(mapping: ZendeskMapping) -> list[EndpointClass]:
    """The endpoint classes the tenant's ``endpoint_limits`` name, each with its own budget;
    Update Ticket also keeps each ticket's updates under Zendesk's per-ticket limit."""
    return [
        EndpointClass(
            name,
            method,
            path,
            mapping.endpoint_limits[name],
            per_resource=_UPDATES_PER_TICKET if name == "update_ticket" else None,
        )
        for name, (method, path) in _ENDPOINT_CLASSES.items()
        if name in mapping.endpoint_limits
    ]


# Pages of one list before it is taken for a loop: a million tickets are 1,000 export pages.
MAX_PAGES = 20_000
_TICKET_EXPORT = "/api/v2/incremental/tickets/cursor"
_EVENT_EXPORT = "/api/v2/incremental/ticket_events"
_EXPORTS = (_TICKET_EXPORT, _EVENT_EXPORT)
# Time-based like the event export (oas 4931-4957, "Allowed For: Admins"): the organizations
# changed since a kept end_time, so a cycle does not list every organization again.
_ORGANIZATION_EXPORT = "/api/v2/incremental/organizations"
# The exports leave out the last minute, and a start_time must be at least a minute old (oas
# 27132, parameter IncrementalUnixTime; vendor-behaviours.md Z8).
_SETTLE = timedelta(minutes=1)
_ADMIN_NEEDED = "an admin's token is needed: this one gets 403 on {} (admins only)"


class ZendeskConnector(OwnsClient):
    """One Zendesk account. Call :meth:`resolve` (or let the first read/write do it)."""

    source = Source.ZENDESK

    def __init__(
        self,
        client: VendorClient,
        mapping: ZendeskMapping,
        *,
        plans: PlanNames | None = None,
        page_size: int = 1000,
        comment_pages: int = 5,
        max_pages: int = MAX_PAGES,
        export_timeout: httpx.Timeout | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        report: Report = log_bad_record,
    ) -> None:
        self._client = client
        self._export_timeout = export_timeout  # None: the client's own
        self._max_pages = max_pages
        self._mapping = mapping
        self._plans = plans or PlanNames()
        self._page_size = page_size
        self._comment_pages = comment_pages
        self._clock = clock
        self._report = report
        self._ids: ZendeskIds | None = None
        self._resolving = asyncio.Lock()

    @classmethod
    def connect(
        cls,
        base_url: str,
        email: str,
        token: str,
        mapping: ZendeskMapping,
        *,
        limits: VendorLimits,
        timeouts: Timeouts,
        transport: httpx.AsyncBaseTransport | None = None,
        plans: PlanNames | None = None,
        page_size: int = 1000,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        report: Report = log_bad_record,
    ) -> ZendeskConnector:
        client = VendorClient(
            "zendesk",
            base_url,
            auth=httpx.BasicAuth(f"{email}/token", token),
            limits=limits,
            timeouts=timeouts,
            transport=transport,
            classes=endpoint_classes(mapping),
        )
        return cls(
            client,
            mapping,
            plans=plans,
            page_size=page_size,
            export_timeout=timeouts.for_exports(),
            clock=clock,
            report=report,
        )

    async def _pages(
        self, url: str, params: Mapping[str, Any] | None = None
    ) -> AsyncGenerator[Any, None]:
        # An export page is large (vendor-behaviours.md Z6): read with the longer timeout.
        timeout = self._export_timeout if url in _EXPORTS else None
        """Every page of a list, whichever of Zendesk's three pagination styles it uses. A
        page that hands back a cursor, link or time already followed, or a list past
        ``max_pages``, ends in :class:`PaginationStuck` (vendor-behaviours.md Z7)."""
        next_url: str | None = url
        query = dict(params or {})
        followed: set[str] = set()
        pages = 0
        while next_url:
            page = await self._client.read("GET", next_url, params=query, timeout=timeout)
            pages += 1
            yield page
            if "end_time" in page:
                # Time-based incremental export: the next page starts at end_time (showing that
                # second again). A page that does not move on would repeat forever: the stream
                # ends there, and what it did not show is read per ticket (CommentIndex).
                start = query["start_time"]
                moved = isinstance(page["end_time"], int) and page["end_time"] > start
                next_url = url if moved and not page["end_of_stream"] else None
                query = {**query, "start_time": page["end_time"]}
                position = f"start_time={page['end_time']}"
            elif "end_of_stream" in page:
                # Cursor-based incremental export: its after_url carries only the cursor, so
                # the page size and side-loads are sent again with it.
                next_url = None if page["end_of_stream"] else url
                query = {k: v for k, v in query.items() if k != "start_time"}
                query["cursor"] = page.get("after_cursor")
                position = f"cursor={query['cursor']}"
            elif "meta" in page:  # cursor pagination: the next link keeps every parameter
                next_url = page["links"].get("next") if page["meta"].get("has_more") else None
                query = {}
                position = str(next_url)
            else:  # offset pagination
                next_url = page.get("next_page")
                query = {}
                position = str(next_url)
            if next_url is None:
                return
            if position in followed:
                raise PaginationStuck(
                    "zendesk", "GET", url, detail=f"page {pages} repeats {position[:80]}"
                )
            if pages >= self._max_pages:
                raise PaginationStuck(
                    "zendesk", "GET", url, detail=f"still more after {pages} pages (max_pages)"
                )
            followed.add(position)

    async def _all(self, url: str, key: str, params: Mapping[str, Any]) -> list[Any]:
        return [item async for page in self._pages(url, params) for item in page.get(key, [])]

    # -- names -> ids ---------------------------------------------------------------------

    async def resolve(self) -> ZendeskIds:
        """Ticket fields, groups and agents by name; once per connector."""
        async with self._resolving:
            if self._ids is None:
                self._ids = await self._resolve()
        return self._ids

    async def _resolve(self) -> ZendeskIds:
        page = {"page[size]": 100}
        fields = await self._all("/api/v2/ticket_fields", "ticket_fields", page)
        groups = await self._all("/api/v2/groups", "groups", page)
        agents = await self._all("/api/v2/users", "users", {**page, "role[]": ["agent", "admin"]})
        me = (await self._client.read("GET", "/api/v2/users/me"))["user"]["id"]
        by_title = {f["title"]: f for f in fields}
        ids = ZendeskIds(
            me=me,
            groups={g["name"]: g["id"] for g in groups},
            agents={a["name"]: a["id"] for a in agents},
            values=self._mapping.field_values,
        )
        for logical, title in self._mapping.ticket_fields.items():
            if (found := by_title.get(title)) is None:
                continue
            ids.fields[logical] = found["id"]
            ids.types[logical] = str(found.get("type") or "text")
            options = found.get("custom_field_options") or []
            if options:
                ids.options[logical] = {
                    **{o["name"].lower(): o["value"] for o in options},
                    **{o["value"].lower(): o["value"] for o in options},
                }
        return ids

    async def check(self) -> list[NameCheck]:
        """Resolve every name the mapping uses; one read of each list, nothing written."""
        ids = await self.resolve()
        # The keys an organization actually carries (one read; organization_fields listing
        # needs admin rights the worker's agent token may lack).
        first = await self._client.read("GET", "/api/v2/organizations", params={"page[size]": 1})
        org_keys = {
            key
            for org in first.get("organizations", [])
            for key in org.get("organization_fields") or {}
        }
        flags = self._mapping.organization_fields
        checks = [
            NameCheck.of("zendesk", "ticket field", f"{logical}: {title}", ids.fields.get(logical))
            for logical, title in self._mapping.ticket_fields.items()
        ]
        checks += [
            NameCheck.of("zendesk", "group", g, ids.groups.get(g)) for g in self._mapping.groups
        ]
        checks += [
            NameCheck.of("zendesk", "agent", a, ids.agents.get(a)) for a in self._mapping.agents
        ]
        checks += [
            NameCheck.of("zendesk", "organization field", key, key if key in org_keys else None)
            for key in (flags.plan, flags.account_status, flags.stop_followups)
        ]
        checks.append(await self._check_exports())
        return checks

    async def _check_exports(self) -> NameCheck:
        """The incremental exports, one small read each: they are admins-only, and an agent's
        token reads no ticket at all (vendor-behaviours.md Z1), nor a change of anything."""
        since = int((self._clock() - timedelta(minutes=5)).timestamp())
        denied = []
        for path in (*_EXPORTS, _ORGANIZATION_EXPORT):
            try:
                await self._client.read("GET", path, params={"start_time": since, "per_page": 1})
            except Forbidden:
                denied.append(path)
        if denied:
            return NameCheck("zendesk", "role", _ADMIN_NEEDED.format(", ".join(denied)), None)
        return NameCheck("zendesk", "role", "admin (the incremental exports answer)", "admin")

    # -- reads ----------------------------------------------------------------------------

    async def _evidence(self, ticket: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        """The ticket's comments back to (and including) the latest inbound one, newest first."""
        requester_id = ticket.get("requester_id")
        found: list[Mapping[str, Any]] = []
        url = _TICKET.format(text(ticket, "id")) + "/comments"
        params = {"sort": "-created_at", "page[size]": _COMMENT_PAGE}
        pages = 0
        async for page in self._pages(url, params):
            found.extend(page["comments"])
            pages += 1
            if has_inbound(page["comments"], requester_id) or pages >= self._comment_pages:
                break
        return found

    async def _case(
        self,
        ticket: Mapping[str, Any],
        users: Mapping[Any, Mapping[str, Any]],
        ids: ZendeskIds,
        index: CommentIndex,
        known: KnownCase | None,
    ) -> Case:
        """The ticket's case: its comments from the event export, or read on its own.

        With the case store's copy of it (``known``), only the comments since are needed:
        the stored history and follow-ups plus those the export shows. The store keeps a
        cursor only once it has stored every change the cursor covers, so its copy is the
        ticket as of the cursor's position, where the event export goes on from: every
        comment after the copy is in the export read since."""
        with translating("zendesk", ticket):
            stored = None if known is None else known(text(ticket, "id"))
            comments: Sequence[Mapping[str, Any]] | None = index.take(ticket, whole=stored is None)
            if comments is None:
                return ticket_case(ticket, users, await self._evidence(ticket), ids)
        case = ticket_case(ticket, users, comments, ids)
        return case if stored is None else _with_evidence_of(case, stored)

    async def _ticket_pages(
        self, query: Mapping[str, Any], events_from: int, known: KnownCase | None
    ) -> AsyncGenerator[_TicketPage, None]:
        """The cursor export from ``query`` (a ``start_time`` or a kept ``cursor``), a page at
        a time: its candidate cases, its finished tickets as :class:`Gone`, and where both
        exports are to go on from after it.

        The ticket event export is read alongside from ``events_from``, only as far as each
        page of tickets needs (past the latest update among them): both exports run in time
        order, so the index holds the tickets whose events were read but which have not
        streamed by yet, not every ticket of the window; past a few thousand of those, it
        spills the ones touched least recently to a temporary file rather than grow with the
        tenant."""
        ids = await self.resolve()
        since = datetime.fromtimestamp(events_from, UTC)
        export = {
            "start_time": events_from,
            "include": "comment_events",
            "per_page": self._page_size,
        }
        # Both closed however the stream ends (read through, failed, or abandoned): past its
        # ``held`` tickets in flight, the index spills to a temporary file.
        async with AsyncExitStack() as stack:
            index = stack.enter_context(
                closing(CommentIndex(since, cap=self._comment_pages * _COMMENT_PAGE))
            )
            events = await stack.enter_async_context(aclosing(self._pages(_EVENT_EXPORT, export)))
            async for page in self._pages(_TICKET_EXPORT, query):
                until = latest_update(page["tickets"])
                while not index.covers(until) and (found := await anext(events, None)) is not None:
                    index.add(found)
                users = _side_loaded_users(page)
                candidates, gone = [], []
                for ticket in page["tickets"]:
                    if _finished(ticket):
                        index.forget(ticket.get("id"))
                        gone.append(Gone(str(ticket.get("id"))))
                    else:
                        candidates.append(ticket)
                read = await asyncio.gather(
                    *(case_or_bad(self._case(t, users, ids, index, known)) for t in candidates)
                )
                yield _TicketPage(
                    reported(read, self._report),
                    gone,
                    page.get("after_cursor"),
                    index.position(until, events_from),
                )
        log.info("zendesk_comment_index", events=index.events, read_alone=index.read_alone)

    def _full_query(self) -> tuple[dict[str, Any], int]:
        """The cursor export's first query over the lookback window, and the window's start."""
        start = int((self._clock() - timedelta(days=self._mapping.lookback_days)).timestamp())
        return {"start_time": start, "include": "users", "per_page": self._page_size}, start

    async def cases(self) -> AsyncIterator[Case]:
        """Candidate tickets; one that cannot be read goes to ``report`` and the rest go on."""
        query, start = self._full_query()
        # Closed with this stream, so an abandoned read drops its index at once.
        async with aclosing(self._ticket_pages(query, start, None)) as pages:
            async for page in pages:
                for case in page.cases:
                    yield case

    def _account(self, org: Any) -> Account | None:
        """An organization as an account; one that cannot be read goes to ``report``."""
        try:
            return flagged_account(
                "zendesk",
                org,
                "organization_fields",
                self._mapping.organization_fields,
                self._plans,
            )
        except BadRecord as bad:
            self._report(bad)
            return None

    async def accounts(self) -> AsyncIterator[Account]:
        async for page in self._pages("/api/v2/organizations", {"page[size]": 100}):
            for org in page["organizations"]:
                if (account := self._account(org)) is not None:
                    yield account

    async def changes(self, cursor: str | None, known: KnownCase) -> AsyncIterator[Change]:
        """What changed since ``cursor`` (:class:`~connectors.base.Syncs`), from the three
        incremental exports read on from where the cursor says: tickets by their cursor,
        ticket events and organizations by time (vendor-behaviours.md Z8: what a page ends at
        is meant to be kept between runs). Nothing changed: one page of each, 3 calls.

        ``cursor`` None: every organization (the plain list, as :meth:`accounts`) and every
        candidate ticket of the lookback window (as :meth:`cases`), then one checkpoint. The
        organization export then goes on from a minute before the list's first page was
        served, by Zendesk's clock (its ``Date``): it may show a few organizations again,
        which is harmless."""
        if cursor is None:
            query, start = self._full_query()
            listed: datetime | None = None  # Zendesk's clock when the first page was served
            async for account in self.accounts():
                listed = listed or self._client.served_at
                yield account
            listed = listed or self._client.served_at or self._clock()
            at = _Positions(None, start, int((listed - _SETTLE).timestamp()))
            async with aclosing(self._ticket_pages(query, start, None)) as pages:
                async for page in pages:
                    for case in page.cases:
                        yield case
                    at = replace(at, tickets=page.after_cursor, events=page.events_from)
            yield Checkpoint(at.dumps())
            return
        at = _Positions.loads(cursor)
        if at.tickets is None:
            raise CursorExpired("zendesk", "GET", _TICKET_EXPORT, detail="no ticket cursor kept")
        organizations = {"start_time": at.organizations, "per_page": self._page_size}
        async for page in self._pages(_ORGANIZATION_EXPORT, organizations):
            for org in page["organizations"]:
                if (changed := self._account(org)) is not None:
                    yield changed
            at = replace(at, organizations=max(at.organizations, int(page["end_time"])))
        query = {"cursor": at.tickets, "include": "users", "per_page": self._page_size}
        try:
            async with aclosing(self._ticket_pages(query, at.events, known)) as pages:
                async for page in pages:
                    for case in page.cases:
                        yield case
                    for gone in page.gone:
                        yield gone
                    at = replace(
                        at, tickets=page.after_cursor or at.tickets, events=page.events_from
                    )
                    yield Checkpoint(at.dumps())
        except (BadRequest, Unprocessable) as exc:
            if not exc.path.endswith(_TICKET_EXPORT):
                raise
            # A cursor Zendesk cannot read any more: the caller reads in full.
            raise CursorExpired("zendesk", "GET", _TICKET_EXPORT, exc.status) from exc

    async def fetch_case(self, case_id: str) -> Case:
        ids = await self.resolve()
        body = await self._client.read("GET", _TICKET.format(case_id), params={"include": "users"})
        ticket = body["ticket"]
        users = _side_loaded_users(body)
        return ticket_case(ticket, users, await self._evidence(ticket), ids)

    # -- writes ---------------------------------------------------------------------------

    async def apply(self, item: PlanItem, *, replied: Replied | None = None) -> WriteResult:
        try:
            updates = ticket_updates(item, await self.resolve())
        except (MappingError, VendorError) as exc:
            return WriteResult(WriteOutcome.FAILED, calls=0, detail=str(exc))
        if item.key in _keys(item.case):
            return WriteResult(WriteOutcome.ALREADY_APPLIED, calls=0)
        marker = marker_tag(item.key)
        run = _WriteRun(self._client, self.fetch_case, item.case.id, item.case.updated_stamp)
        sent = marker in item.case.tags  # an earlier attempt's reply went out
        try:
            if updates.reply is not None and not sent:
                outcome = await run.put(updates.reply, lambda c: marker in c.tags)
                if outcome not in _DONE:
                    return run.result(outcome)
                sent = True
            if updates.reply is not None and replied is not None:
                replied()
            outcome = await run.put(updates.note, lambda c: item.key in _keys(c))
        except VendorError as exc:
            # Sent: the customer has the reply, the note and the other changes are missing.
            outcome = WriteOutcome.INCOMPLETE if sent else WriteOutcome.FAILED
            return run.result(outcome, str(exc))
        return run.result(outcome)

    async def apply_many(self, items: Sequence[PlanItem]) -> list[WriteResult]:
        """Each item as :meth:`apply` writes it, all at once: the caps and the budgets pace
        them. (Update Many is not used: its job reports on tickets later, and a ticket's
        writes are settled by their own ``safe_update`` and marker.)"""
        return list(await asyncio.gather(*(self.apply(item) for item in items)))


@dataclass(frozen=True, slots=True)
class _TicketPage:
    """One page of the ticket export, read: its candidates, its finished tickets, and where
    the two exports go on from once it is handled."""

    cases: list[Case]
    gone: list[Gone]
    after_cursor: str | None
    events_from: int


@dataclass(frozen=True, slots=True)
class _Positions:
    """A Zendesk sync cursor: where each incremental export goes on from."""

    tickets: str | None  # the ticket export's after_cursor
    events: int  # the ticket event export's start_time
    organizations: int  # the organization export's start_time

    def dumps(self) -> str:
        return json.dumps(
            {"tickets": self.tickets, "events": self.events, "organizations": self.organizations}
        )

    @classmethod
    def loads(cls, cursor: str) -> _Positions:
        """A cursor this connector handed out; anything else is one it cannot continue from."""
        try:
            kept = json.loads(cursor)
            at = cls(kept["tickets"], kept["events"], kept["organizations"])
        except (ValueError, TypeError, KeyError) as exc:
            raise CursorExpired(
                "zendesk", "GET", _TICKET_EXPORT, detail="unreadable cursor"
            ) from exc
        if not (
            isinstance(at.tickets, str | None)
            and type(at.events) is int
            and type(at.organizations) is int
        ):
            raise CursorExpired("zendesk", "GET", _TICKET_EXPORT, detail="unreadable cursor")
        return at


def _with_evidence_of(case: Case, stored: Case) -> Case:
    """``case`` read with only the comments since ``stored`` was: the stored history and
    follow-ups with the new ones (a comment in both, at the second they share, counted once)."""
    history = sorted(set(stored.history) | set(case.history), key=lambda a: (a.at, a.kind))
    followups = {mark.key: mark for mark in (*stored.followups, *case.followups)}
    return replace(
        case,
        history=tuple(history),
        followups=tuple(sorted(followups.values(), key=lambda m: (m.at, m.key))),
    )


def _finished(ticket: Any) -> bool:
    """Solved, closed and deleted tickets stream by and are dropped; anything else is a
    candidate, and one with an unknown status is reported by the translation."""
    return isinstance(ticket, Mapping) and ticket.get("status") in _FINISHED


def _side_loaded_users(page: Mapping[str, Any]) -> dict[Any, Mapping[str, Any]]:
    """Users by id; one without a usable id cannot be anyone's requester and is left out."""
    return {
        u["id"]: u
        for u in page.get("users") or []
        if isinstance(u, Mapping) and isinstance(u.get("id"), int | str)
    }


_DONE = (WriteOutcome.APPLIED, WriteOutcome.ALREADY_APPLIED)


def _keys(case: Case) -> set[str]:
    return {mark.key for mark in case.followups}


class _WriteRun:
    """The updates of one ``apply``, each on the ``updated_stamp`` the previous one left."""

    def __init__(
        self,
        client: VendorClient,
        fetch_case: Callable[[str], Awaitable[Case]],
        ticket_id: str,
        stamp: str | None,
    ) -> None:
        self._client = client
        self._fetch_case = fetch_case
        self._ticket_id = ticket_id
        self._stamp = stamp
        # Every update carries the stamp it was planned on (see put): of a lost update still on
        # its way and its resend, safe_update lets only one through.
        self._once = WriteOnce(guarded=True)
        self.audits: list[str] = []

    async def put(self, ticket: dict[str, Any], done: Callable[[Case], bool]) -> WriteOutcome:
        # A resend keeps the stamp we planned on: if the lost first write landed late after
        # all, only one of the two can pass safe_update, never both.
        body = {"ticket": {**ticket, "safe_update": True, "updated_stamp": self._stamp}}
        fresh: Case | None = None

        async def landed() -> bool:
            nonlocal fresh
            fresh = await self._fetch_case(self._ticket_id)
            return done(fresh)

        try:
            written = await self._once.send(
                lambda: self._client.write("PUT", _TICKET.format(self._ticket_id), json=body),
                landed,
            )
        except Conflict:
            return WriteOutcome.CONFLICT
        if written.landed_before:
            assert fresh is not None
            self._stamp = fresh.updated_stamp
            return WriteOutcome.ALREADY_APPLIED
        answer = written.answer or {}
        self._stamp = (answer.get("ticket") or {}).get("updated_at", self._stamp)
        if audit := (answer.get("audit") or {}).get("id"):
            self.audits.append(str(audit))
        return WriteOutcome.APPLIED

    def result(self, outcome: WriteOutcome, detail: str = "") -> WriteResult:
        return WriteResult(
            outcome, calls=self._once.calls, request_ids=tuple(self.audits), detail=detail
        )
