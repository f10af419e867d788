"""Intercom: contacts as accounts; conversations awaiting the customer and open customer
tickets as cases.

Reads. Accounts stream from ``GET /contacts`` (150 a page), each with its company's plan
(``plan.name``: ``GET /companies`` is listed first, vendor-behaviours I3); which custom
attributes hold the account status, the stop flag and the plan of a contact whose company has
none is tenant mapping. Candidate conversations come
from ``POST /conversations/search`` (open ones, 150 a page), keeping those where an admin spoke
last (the customer owes an answer); only those get their parts read, for the evidence, and of
them only the ones a policy could plan something for (``may_plan``, on the hit as listed: a
case no selector can take is yielded without parts, and still counts in its account's open
cases). Then
candidate tickets from ``POST /tickets/search`` (open customer tickets, 150 a page), each with
its parts as the search answers it (read in full only if the answer leaves them out). A record
that cannot be read goes to the connector's ``report`` (:mod:`connectors.records`) and the
stream goes on. The JSON translation lives in :mod:`connectors.intercom_json`. What changed
since a cycle (:meth:`IntercomConnector.changes`) comes from the same searches on
``updated_at``.

Writes. Intercom has no multi-change update, so one plan item is a few calls, in this order:
the public reply, the changes (a conversation's assignment and state parts, one already in
effect not sent; a ticket's state and assignee in one ``PUT /tickets/{id}``), and last the
admin note signed with the marker ``fw-<key>``, so a follow-up is only recorded once all of it
happened and a retried item never emails twice. Every one whose answer was lost is looked for
on a fresh read before anything is sent again: the reply by its exact body from the worker's
admin in this cycle, the note by its marker, a change by the state or assignee it sets
(Intercom adds a part for each close or assignment asked for, I5); absent, it is left to the
next cycle, as it may still land (:class:`~connectors.once.WriteOnce`). Once the reply is out
(or found out), ``replied`` is told, and the worker records it. Once the reply is out or a
change made, a failure is INCOMPLETE: a closed conversation is no longer offered by the plan,
so the worker finishes the item next cycle regardless. An email to a contact (an Asana bug's
customer, :meth:`IntercomConnector.email_contact`) carries the marker and is looked for by it.

Ticket states are the tenant's own and belong to ticket types: policy statuses resolve to state
ids per ticket type once, on the first ticket write or ``check``, through ``GET /ticket_states``
(:func:`intercom_json.ticket_states`), and a ticket is set to a state linked to its type.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from typing import Any

import httpx

from connectors.base import (
    Change,
    Checkpoint,
    Gone,
    KnownCase,
    MayPlan,
    Replied,
    WriteOutcome,
    WriteResult,
    every_case,
)
from connectors.errors import BadRecord, CursorExpired, MappingError, OutcomeUnknown, VendorError
from connectors.http import OwnsClient, VendorClient
from connectors.intercom_json import (
    TICKET_PREFIX,
    IntercomIds,
    TicketStates,
    company_plan,
    contact_account,
    conversation_calls,
    conversation_case,
    html_body,
    own_note,
    part_shows,
    record_parts,
    ticket_calls,
    ticket_case,
    ticket_number,
    ticket_states,
    type_states,
    update_shows,
    waiting_on_customer,
)
from connectors.mapping import IntercomMapping, PlanNames
from connectors.once import WriteOnce
from connectors.records import (
    Report,
    case_or_bad,
    log_bad_record,
    reported,
    text,
    translating,
    unix_instant,
)
from connectors.resolution import NameCheck
from connectors.settings import Timeouts, VendorLimits
from policies.model import Account, ActionType, Case, PlanItem, Source, Status

__all__ = ["IntercomConnector", "IntercomIds", "conversation_calls", "conversation_case"]

API_VERSION = "2.16"
PAGE = 150
COMPANY_PAGE = 50
_CONVERSATION = "/conversations/{}"
_TICKET = "/tickets/{}"
_OPEN = {"field": "open", "operator": "=", "value": True}
_REQUESTS = {"field": "category", "operator": "=", "value": "request"}
# How far back of the kept instant a search for changes starts: this connector's clock and
# Intercom's differ. What it shows again is passed over (no newer than the store's copy).
OVERLAP = 300
_Read = Callable[[Mapping[str, Any]], Awaitable[Case | None]]
"""Reads a search hit into its case (None: not a candidate)."""
# Customer tickets (the search's term for them is "request"): back-office tasks and trackers
# are the team's own, nobody to follow up with.
_OPEN_REQUESTS = {
    "operator": "AND",
    "value": [_OPEN, _REQUESTS],
}


class IntercomConnector(OwnsClient):
    source = Source.INTERCOM

    def __init__(
        self,
        client: VendorClient,
        mapping: IntercomMapping,
        *,
        plans: PlanNames | None = None,
        report: Report = log_bad_record,
        may_plan: MayPlan = every_case,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._client = client
        self._clock = clock
        # Company id -> plan, as last listed: a contact changed since a cursor takes its
        # company's plan from here (no company search filters on updated_at).
        self._company_plans_read: dict[str, str] | None = None
        self._report = report
        self._may_plan = may_plan
        # The accounts the last ``accounts()`` read, for the next ``cases()`` to ask ``may_plan``
        # with (a canceled or stop-flagged contact's conversations cannot be due); used once.
        self._listed_accounts: dict[str, Account] | None = None
        self._mapping = mapping
        self._plans = plans or PlanNames()
        self._ids: IntercomIds | None = None
        self._states: TicketStates | None = None
        self._resolving = asyncio.Lock()

    @classmethod
    def connect(
        cls,
        base_url: str,
        token: str,
        mapping: IntercomMapping,
        *,
        limits: VendorLimits,
        timeouts: Timeouts,
        transport: httpx.AsyncBaseTransport | None = None,
        plans: PlanNames | None = None,
        report: Report = log_bad_record,
        may_plan: MayPlan = every_case,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> IntercomConnector:
        client = VendorClient(
            "intercom",
            base_url,
            headers={"Authorization": f"Bearer {token}", "Intercom-Version": API_VERSION},
            limits=limits,
            timeouts=timeouts,
            transport=transport,
        )
        return cls(client, mapping, plans=plans, report=report, may_plan=may_plan, clock=clock)

    async def resolve(self) -> IntercomIds:
        async with self._resolving:
            if self._ids is None:
                listed = await self._client.read("GET", "/admins")
                admins = {a["name"]: str(a["id"]) for a in listed.get("admins", [])}
                if self._mapping.admin is not None:
                    me = admins.get(self._mapping.admin)
                    if me is None:
                        raise MappingError(f"intercom admin {self._mapping.admin!r} is unknown")
                else:
                    me = str((await self._client.read("GET", "/me"))["id"])
                self._ids = IntercomIds(me, admins)
        return self._ids

    async def ticket_states(self) -> TicketStates:
        """Per ticket type, policy status -> the tenant's ticket state; one read, on first need
        (a tenant that never writes a ticket never reads them)."""
        async with self._resolving:
            if self._states is None:
                listed = await self._client.read("GET", "/ticket_states")
                self._states = ticket_states(listed.get("data", []), self._mapping.ticket_states)
        return self._states

    async def check(self) -> list[NameCheck]:
        try:
            ids = await self.resolve()
        except MappingError:
            return [NameCheck("intercom", "admin", self._mapping.admin or "(token's admin)", None)]
        checks = [NameCheck("intercom", "admin", self._mapping.admin or "(token's admin)", ids.me)]
        checks += [
            NameCheck.of("intercom", "admin", name, ids.admins.get(name))
            for name in self._mapping.admins
        ]
        # The attributes a contact actually carries (one read of one contact).
        first = await self._client.read("GET", "/contacts", params={"per_page": 1})
        keys = {k for c in first.get("data", []) for k in c.get("custom_attributes") or {}}
        attrs = self._mapping.contact_attributes
        # The plan: the companies' (plan.name), else the contacts' own attribute.
        where = "companies' plan" if await self._company_plans() else None
        where = where or (f"contact attribute {attrs.plan}" if attrs.plan in keys else None)
        label = f"company plan, else contact attribute {attrs.plan}"
        checks.append(NameCheck.of("intercom", "plan", label, where))
        checks += [
            NameCheck.of("intercom", "contact attribute", key, key if key in keys else None)
            for key in (attrs.account_status, attrs.stop_followups)
        ]
        checks += [
            c for by_status in (await self.ticket_states()).values() for c in by_status.values()
        ]
        return checks

    async def email_contact(self, contact_id: str, subject: str, body: str, marker: str) -> bool:
        """An email from the worker's admin to one contact (``POST /messages``): how a
        customer hears about a case that lives elsewhere, e.g. an Asana bug (seeds 000/001).

        Exactly once: the body ends with ``Ref: <marker>``, and the message's conversation is
        looked for by it (conversation search, ``source.body ~ marker``: vendor-behaviours I4)
        before sending, and again when the answer is lost. False: it was found sent already.
        A lost one not found yet raises :class:`~connectors.errors.OutcomeUnknown`: it may
        still land, and the next attempt looks for it first. The recipient's type is the
        contact's role, ``user`` or ``lead``, and the sender's id an integer (I1).
        """
        ids = await self.resolve()
        if await self._message_sent(marker):
            return False
        contact = await self._client.read("GET", f"/contacts/{contact_id}")
        role = contact.get("role")
        if role not in ("user", "lead"):
            raise BadRecord(
                "intercom", contact_id, f"role: cannot email a contact of role {role!r}"
            )
        message = {
            "message_type": "email",
            "subject": subject,
            "body": html_body(f"{body.rstrip()}\n\nRef: {marker}"),
            "template": "plain",
            "from": {"type": "admin", "id": ids.me_number},
            "to": {"type": role, "id": contact_id},
        }
        once = WriteOnce()
        written = await once.send(
            lambda: self._client.write("POST", "/messages", json=message),
            lambda: self._message_sent(marker),
        )
        return not written.landed_before

    async def _message_sent(self, marker: str) -> bool:
        query = {"field": "source.body", "operator": "~", "value": marker}
        found = await self._client.read(
            "POST", "/conversations/search", json={"query": query, "pagination": {"per_page": 1}}
        )
        return bool(found.get("conversations"))

    # -- reads ----------------------------------------------------------------------------

    async def accounts(self) -> AsyncIterator[Account]:
        """Every contact, its plan its company's (the companies are listed first), else its
        own custom attribute: :func:`intercom_json.contact_account`."""
        plans = await self._company_plans()
        attrs = self._mapping.contact_attributes
        params: dict[str, Any] = {"per_page": PAGE}
        self._listed_accounts = None
        listed: dict[str, Account] = {}
        while True:
            page = await self._client.read("GET", "/contacts", params=params)
            for contact in page.get("data", []):
                try:
                    account = contact_account(contact, attrs, self._plans, plans)
                except BadRecord as bad:
                    self._report(bad)
                    continue
                listed[account.id] = account
                yield account
            after = _next_cursor(page)
            if not after:
                self._listed_accounts = listed  # only a whole list
                return
            params = {"per_page": PAGE, "starting_after": after}

    async def _company_plans(self) -> dict[str, str]:
        """Company id -> plan name, for the companies that have a plan (``GET /companies``,
        numbered pages)."""
        plans: dict[str, str] = {}
        page_number = 1
        while True:
            params = {"per_page": COMPANY_PAGE, "page": page_number}
            page = await self._client.read("GET", "/companies", params=params)
            for company in page.get("data", []):
                if (plan := company_plan(company)) is not None and company.get("id"):
                    plans[str(company["id"])] = plan
            total = (page.get("pages") or {}).get("total_pages") or 1
            if page_number >= total:
                self._company_plans_read = plans
                return plans
            page_number += 1

    @staticmethod
    def _account(case: Case, accounts: Mapping[str, Account]) -> Account | None:
        return accounts.get(case.account_id) if case.account_id is not None else None

    async def _conversation(
        self, found: Mapping[str, Any], ids: IntercomIds, accounts: Mapping[str, Account]
    ) -> Case | None:
        """The full conversation of a search hit awaiting the customer (None: not awaiting);
        the hit alone (no parts) when no policy could plan anything for it (``may_plan``)."""
        with translating("intercom", found):
            if not waiting_on_customer(found):
                return None
        try:
            listed: Case | None = conversation_case(found, ids)
        except BadRecord:
            listed = None  # a hit too thin to judge: the full conversation tells
        if listed is not None and not self._may_plan(listed, self._account(listed, accounts)):
            return listed
        with translating("intercom", found):
            conversation = await self._client.read("GET", _CONVERSATION.format(text(found, "id")))
        return conversation_case(conversation, ids)

    async def _ticket(
        self, found: Mapping[str, Any], ids: IntercomIds, accounts: Mapping[str, Account]
    ) -> Case:
        """A search hit's ticket; read in full only when the hit came without its parts and a
        policy could plan something for it (``may_plan``)."""
        if "ticket_parts" in found:
            return ticket_case(found, ids)
        try:
            listed: Case | None = ticket_case(found, ids)
        except BadRecord:
            listed = None  # a hit too thin to judge: the full ticket tells
        if listed is not None and not self._may_plan(listed, self._account(listed, accounts)):
            return listed
        with translating("intercom", found, prefix=TICKET_PREFIX):
            found = await self._client.read("GET", _TICKET.format(text(found, "id")))
        return ticket_case(found, ids)

    async def _search(
        self,
        path: str,
        key: str,
        query: Mapping[str, Any],
        read: Callable[[Mapping[str, Any]], Awaitable[Case | None]],
    ) -> AsyncIterator[Case]:
        """Every hit of a search, page by page, each through ``read`` (a page at a time)."""
        pagination: dict[str, Any] = {"per_page": PAGE}
        while True:
            body = {"query": query, "pagination": pagination}
            page = await self._client.read("POST", path, json=body)
            results = await asyncio.gather(*(case_or_bad(read(hit)) for hit in page.get(key, [])))
            for case in reported(results, self._report):
                yield case
            after = _next_cursor(page)
            if not after:
                return
            pagination = {"per_page": PAGE, "starting_after": after}

    async def cases(self) -> AsyncIterator[Case]:
        """Conversations awaiting the customer, then open customer tickets; a record that
        cannot be read goes to ``report``. Parts are read only for cases ``may_plan`` takes,
        asked with the account the last :meth:`accounts` listed (a canceled contact's
        conversation cannot be due)."""
        ids = await self.resolve()
        # The accounts read just before (the worker reads accounts, then cases), once; none
        # known: every account check of ``may_plan`` counts as passable.
        accounts, self._listed_accounts = self._listed_accounts or {}, None
        conversations = self._search(
            "/conversations/search",
            "conversations",
            _OPEN,
            lambda c: self._conversation(c, ids, accounts),
        )
        async for case in conversations:
            yield case
        tickets = self._search(
            "/tickets/search", "tickets", _OPEN_REQUESTS, lambda t: self._ticket(t, ids, accounts)
        )
        async for case in tickets:
            yield case

    async def changes(self, cursor: str | None, known: KnownCase) -> AsyncIterator[Change]:
        """What changed since ``cursor`` (:class:`~connectors.base.Syncs`): the conversations,
        tickets and contacts whose ``updated_at`` is at or after the kept instant, less
        :data:`OVERLAP` for clock skew, each found by its search (vendor-behaviours.md I6).
        A conversation or ticket is read as :meth:`cases` reads it (parts only for the cases
        ``may_plan`` takes); one that is no longer a candidate (closed, or the customer spoke
        last) is :class:`Gone`, if the store holds it. A hit no newer than the store's copy
        (the overlap shows some again) is passed over without a read. Nothing changed: one
        search of each, 3 calls.

        Intercom does not document the order of a conversation search, so each search's
        instant moves on only once it is read through, to when its first page was served by
        Intercom's clock (the answer's ``Date``; never the newest stamp seen: one stamped
        ahead, by a skewed clock, would hide what changed before it; never this machine's
        clock either): a checkpoint after each of the three.
        A contact takes its company's plan from the companies as last listed (no company
        search filters on ``updated_at``): a company's plan changed since is seen at the next
        full read (``cursor`` None), which lists them again."""
        if cursor is None:
            async for account in self.accounts():
                yield account
            # Taken once the contacts are listed, before the conversations are: a contact
            # changed while they were listed is within the overlap of the next search.
            began = self._vendor_now()
            async for case in self.cases():
                yield case
            yield Checkpoint(_Instants(began, began, began).dumps())
            return
        at = _Instants.loads(cursor)
        ids = await self.resolve()
        accounts: dict[str, Account] = {}  # changed ones, for may_plan; the others pass
        began = 0
        async for contacts in self._changed_since("/contacts/search", "data", at.contacts):
            began = began or self._vendor_now()
            for contact in contacts:
                if (changed := await self._changed_account(contact)) is not None:
                    accounts[changed.id] = changed
                    yield changed
        at = replace(at, contacts=max(at.contacts, began))
        yield Checkpoint(at.dumps())
        searches: list[tuple[str, str, str, _Read, tuple[Mapping[str, Any], ...]]] = [
            ("conversations", "/conversations/search", "",
             lambda hit: self._conversation(hit, ids, accounts), ()),
            ("tickets", "/tickets/search", TICKET_PREFIX,
             lambda hit: self._ticket(hit, ids, accounts), (_REQUESTS,)),
        ]  # fmt: skip
        for key, path, prefix, read, also in searches:
            began = 0
            async for hits in self._changed_since(path, key, getattr(at, key), *also):
                began = began or self._vendor_now()
                found = await asyncio.gather(
                    *(self._changed_case(hit, known, prefix, read) for hit in hits)
                )
                for change in found:
                    if change is not None:
                        yield change
            at = replace(at, **{key: max(getattr(at, key), began)})
            yield Checkpoint(at.dumps())

    def _vendor_now(self) -> int:
        """Intercom's clock by its latest answer; this connector's when none said (the
        overlap covers the skew)."""
        return int((self._client.served_at or self._clock()).timestamp())

    async def _changed_since(
        self, path: str, key: str, since: int, *also: Mapping[str, Any]
    ) -> AsyncIterator[list[Mapping[str, Any]]]:
        """Every page of hits of a search for records updated at ``since`` (less the overlap)
        or later: ``>`` is "greater (or equal) than" (intercom-2.16.yaml 11702), at most 150 a
        page (I6), on through ``pages.next.starting_after``."""
        updated = {"field": "updated_at", "operator": ">", "value": since - OVERLAP}
        query = {"operator": "AND", "value": [updated, *also]} if also else updated
        pagination: dict[str, Any] = {"per_page": PAGE}
        while True:
            body = {"query": query, "pagination": pagination}
            page = await self._client.read("POST", path, json=body)
            yield list(page.get(key, []))
            after = _next_cursor(page)
            if not after:
                return
            pagination = {"per_page": PAGE, "starting_after": after}

    async def _changed_account(self, contact: Mapping[str, Any]) -> Account | None:
        plans = self._company_plans_read
        if plans is None:
            plans = await self._company_plans()
        try:
            return contact_account(contact, self._mapping.contact_attributes, self._plans, plans)
        except BadRecord as bad:
            self._report(bad)
            return None

    async def _changed_case(
        self,
        hit: Mapping[str, Any],
        known: KnownCase,
        prefix: str,
        read: _Read,
    ) -> Case | Gone | None:
        """A changed hit's case, :class:`Gone` when the store holds it and it is no longer a
        candidate, None when there is nothing to tell (unchanged since stored, or neither)."""
        case_id = prefix + str(hit.get("id"))
        stored = known(case_id)
        if stored is not None and _updated(hit) <= stored.updated_at.timestamp():
            return None  # shown again by the overlap
        # Open, as cases() searches them; a closed one is no longer a candidate.
        found = await case_or_bad(read(hit)) if hit.get("open") is True else None
        if isinstance(found, BadRecord):
            self._report(found)
            return None
        if found is None:
            return None if stored is None else Gone(case_id)
        return found

    async def fetch_case(self, case_id: str) -> Case:
        ids = await self.resolve()
        ticket = ticket_number(case_id)
        if ticket is not None:
            return ticket_case(await self._client.read("GET", _TICKET.format(ticket)), ids)
        return conversation_case(await self._client.read("GET", _CONVERSATION.format(case_id)), ids)

    # -- writes ---------------------------------------------------------------------------

    async def _calls(
        self, item: PlanItem, ids: IntercomIds
    ) -> tuple[str, str | None, str, list[_Change]]:
        """The case's URL, the reply (if any), the signed note and the changes as (method, path
        under the URL, body, how the change shows on a re-read)."""
        ticket = ticket_number(item.case.id)
        if ticket is None:
            reply, note, parts = conversation_calls(item, ids)
            changes = [
                _Change("POST", "/parts", part, partial(part_shows, part))
                for part in _changing(parts, item.case, ids)
            ]
            return _CONVERSATION.format(item.case.id), reply, note, changes
        changes_state = any(a.type is ActionType.SET_STATUS for a in item.actions)
        states = type_states(await self.ticket_states(), item.case) if changes_state else {}
        reply, note, update = ticket_calls(item, ids, states)
        changes = [_Change("PUT", "", update, partial(update_shows, update))] if update else []
        return _TICKET.format(ticket), reply, note, changes

    async def apply(self, item: PlanItem, *, replied: Replied | None = None) -> WriteResult:
        if any(m.key == item.key for m in item.case.followups):
            return WriteResult(WriteOutcome.ALREADY_APPLIED, calls=0)
        try:
            ids = await self.resolve()
            url, reply, note, changes = await self._calls(item, ids)
        except (MappingError, VendorError) as exc:
            return WriteResult(WriteOutcome.FAILED, calls=0, detail=str(exc))
        run = _Writes(self._client, url, item, ids.me)
        admin = {"type": "admin", "admin_id": ids.me}
        started = False  # the reply is out, or a change of state or assignee may have landed
        try:
            if reply is not None and not await run.replied_already(reply):
                comment = {"message_type": "comment", **admin, "body": reply}
                await run.send("POST", "/reply", comment, lambda c: run.has_reply(c, reply))
            started = reply is not None
            if started and replied is not None:
                replied()
            for change in changes:
                try:
                    await run.send(change.method, change.path, change.body, change.shows)
                except OutcomeUnknown:
                    started = True  # it may have landed; a refused change (4xx) did not
                    raise
                started = True
            body = {"message_type": "note", **admin, "body": note}
            applied = await run.send("POST", "/reply", body, run.has_note)
        except VendorError as exc:
            outcome = WriteOutcome.INCOMPLETE if started else WriteOutcome.FAILED
            return WriteResult(outcome, calls=run.calls, detail=str(exc))
        outcome = WriteOutcome.APPLIED if applied else WriteOutcome.ALREADY_APPLIED
        return WriteResult(outcome, calls=run.calls)


@dataclass(frozen=True, slots=True)
class _Change:
    """A change of state or assignee, and how a re-read shows it landed: Intercom records each
    close or assignment it is asked for as one more part (vendor-behaviours I5), so one whose
    answer was lost is looked for, not sent again."""

    method: str
    path: str
    body: dict[str, Any]
    shows: Callable[[Mapping[str, Any]], bool]


@dataclass(frozen=True, slots=True)
class _Instants:
    """An Intercom sync cursor: the newest ``updated_at`` each search has read through."""

    contacts: int
    conversations: int
    tickets: int

    def dumps(self) -> str:
        return json.dumps(
            {
                "contacts": self.contacts,
                "conversations": self.conversations,
                "tickets": self.tickets,
            }
        )

    @classmethod
    def loads(cls, cursor: str) -> _Instants:
        """A cursor this connector handed out; anything else is one it cannot continue from."""
        try:
            kept = json.loads(cursor)
            at = cls(kept["contacts"], kept["conversations"], kept["tickets"])
        except (ValueError, TypeError, KeyError) as exc:
            raise CursorExpired(
                "intercom", "POST", "/conversations/search", detail="unreadable cursor"
            ) from exc
        if not all(type(value) is int for value in (at.contacts, at.conversations, at.tickets)):
            raise CursorExpired(
                "intercom", "POST", "/conversations/search", detail="unreadable cursor"
            )
        return at


def _updated(record: Mapping[str, Any]) -> int:
    """A record's ``updated_at`` (Unix seconds); 0 when it has none that reads."""
    value = record.get("updated_at")
    return value if type(value) is int else 0


def _next_cursor(page: Mapping[str, Any]) -> Any:
    return ((page.get("pages") or {}).get("next") or {}).get("starting_after")


def _changing(parts: list[dict[str, Any]], case: Case, ids: IntercomIds) -> list[dict[str, Any]]:
    """The parts that change something: Intercom records a close of a closed conversation or
    an assignment to its assignee as one more event, which a finished retry must not add."""
    assignee = ids.admins.get(case.assignee) if case.assignee is not None else None
    closed = case.status in (Status.SOLVED, Status.CLOSED)
    return [
        part
        for part in parts
        if not (part["message_type"] == "close" and closed)
        and not (part["message_type"] == "assignment" and part["assignee_id"] == assignee)
    ]


def _plain(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


class _Writes:
    """The calls of one ``apply`` to a conversation or a ticket (``url``), and how each is
    recognised on re-read."""

    def __init__(self, client: VendorClient, url: str, item: PlanItem, me: str) -> None:
        self._client = client
        self._url = url
        self._item = item
        self._me = me
        inbound = (a.at for a in item.case.history if a.kind.is_inbound)
        self._cycle_start = max(inbound, default=None)
        self._once = WriteOnce()

    @property
    def calls(self) -> int:
        return self._once.calls

    async def send(
        self,
        method: str,
        path: str,
        body: dict[str, Any],
        done: Callable[[Mapping[str, Any]], bool],
    ) -> bool:
        """Send one write; False when a lost one turned out to be there already (``done``
        tells it on a fresh read of the conversation or ticket)."""

        async def look() -> bool:
            return done(await self._client.read("GET", self._url))

        written = await self._once.send(
            lambda: self._client.write(method, self._url + path, json=body), look
        )
        return not written.landed_before

    async def replied_already(self, reply: str) -> bool:
        """A retried item whose email went out last time must not send it again."""
        self._once.calls += 1
        return self.has_reply(await self._client.read("GET", self._url), reply)

    def has_reply(self, record: Mapping[str, Any], reply: str) -> bool:
        return any(
            p.get("part_type") == "comment"
            and str((p.get("author") or {}).get("id")) == self._me
            and _plain(p.get("body") or "") == _plain(reply)
            and (self._cycle_start is None or unix_instant(p, "created_at") >= self._cycle_start)
            for p in record_parts(record)
        )

    def has_note(self, record: Mapping[str, Any]) -> bool:
        return any(
            (mark := own_note(p, self._me)) is not None and mark.key == self._item.key
            for p in record_parts(record)
        )
