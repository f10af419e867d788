"""Zendesk Support: tickets in, one safe ticket update out.

Reads. Candidate tickets stream from the cursor-based incremental export
(``/api/v2/incremental/tickets/cursor``, up to 1,000 tickets a page) with requesters
side-loaded (``include=users``), so there is no per-ticket user lookup; solved, closed and
deleted tickets are dropped as they stream by. Only candidates get their comments read, newest
first, and only back to the latest inbound activity: what came before it belongs to a finished
follow-up cycle.

Writes. All of a ticket's changes go in one ``PUT /api/v2/tickets/{id}`` with
``safe_update`` and the ``updated_stamp`` that was read, so an agent's concurrent edit answers
409 and is never overwritten. The internal note carries the footer marker ``fw-<key>``.
Zendesk takes one comment per update, so a plan item that also emails the customer (REPLY)
needs a second update, and the order matters: the public reply goes first, tagged with the
marker ``fw-<key>``; then the note with every other change, which also removes that tag (the
footer now records the step). If the run dies between the two, the retried item finds the tag
and does not email the customer twice; had the note gone first, a lost reply would look done.

A write whose answer was lost (OutcomeUnknown) is checked on a fresh read: marker found ->
ALREADY_APPLIED, absent -> written once more with the original ``updated_stamp``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from connectors.base import WriteOutcome, WriteResult
from connectors.errors import Conflict, MappingError, OutcomeUnknown, VendorError
from connectors.footer import parse_footer, with_footer
from connectors.http import OwnsClient, VendorClient
from connectors.mapping import PlanNames, ZendeskMapping
from connectors.resolution import NameCheck
from connectors.settings import Timeouts, VendorLimits
from policies.model import (
    Account,
    ActionType,
    Activity,
    ActivityKind,
    Case,
    CaseKind,
    FollowUpMark,
    PlanItem,
    Priority,
    Requester,
    Source,
    Status,
    marker_tag,
)

__all__ = ["WORKER_TAG", "ZendeskConnector", "ZendeskIds", "ticket_updates"]

WORKER_TAG = "followup_worker"
_CANDIDATE = frozenset({"new", "open", "pending", "hold"})
_TICKET = "/api/v2/tickets/{}"


@dataclass(frozen=True, slots=True)
class ZendeskIds:
    """The tenant's names resolved to ids (see ``ZendeskConnector.resolve``)."""

    fields: dict[str, int] = field(default_factory=dict)  # logical name -> ticket field id
    options: dict[str, dict[str, str]] = field(
        default_factory=dict
    )  # logical -> name/value -> value
    groups: dict[str, int] = field(default_factory=dict)
    agents: dict[str, int] = field(default_factory=dict)

    def field_names(self) -> dict[int, str]:
        return {v: k for k, v in self.fields.items()}

    def option_value(self, logical: str, value: str) -> str:
        options = self.options.get(logical)
        if not options:
            return value
        try:
            return options[value.lower()]
        except KeyError:
            raise MappingError(f"zendesk field {logical!r} has no option {value!r}") from None

    def group_id(self, name: str) -> int:
        try:
            return self.groups[name]
        except KeyError:
            raise MappingError(f"zendesk group {name!r} is unknown") from None

    def agent_id(self, name: str) -> int:
        try:
            return self.agents[name]
        except KeyError:
            raise MappingError(f"zendesk agent {name!r} is unknown") from None


@dataclass(frozen=True, slots=True)
class TicketUpdates:
    """The body of each call one plan item needs: the optional reply, then the note."""

    reply: dict[str, Any] | None
    note: dict[str, Any]


def _assignment(name: str, ids: ZendeskIds) -> dict[str, int]:
    """``"Unresponsive Customers/Roxy V"`` = that group plus that agent; else an agent name."""
    group, sep, agent = name.partition("/")
    if sep and group in ids.groups:
        return {"group_id": ids.group_id(group), "assignee_id": ids.agent_id(agent)}
    return {"assignee_id": ids.agent_id(name)}


def ticket_updates(item: PlanItem, ids: ZendeskIds) -> TicketUpdates:
    """Translate a plan item into Zendesk update bodies. Raises MappingError on unknown names."""
    ticket: dict[str, Any] = {}
    notes: list[str] = []
    replies: list[str] = []
    custom: dict[int, str] = {}
    add: list[str] = [WORKER_TAG]
    remove: list[str] = []
    for action in item.actions:
        p = action.params
        match action.type:
            case ActionType.NOTE:
                notes.append(str(p["body"]))
            case ActionType.REPLY:
                replies.append(str(p["body"]))
            case ActionType.REACH_OUT:
                notes.append("Reach out by: " + ", ".join(str(c) for c in p.get("channels", [])))
            case ActionType.SET_STATUS:
                ticket["status"] = str(p["status"])
            case ActionType.SET_ASSIGNEE:
                ticket.update(_assignment(str(p["assignee"]), ids))
            case ActionType.SET_GROUP:
                ticket["group_id"] = ids.group_id(str(p["group"]))
            case ActionType.ESCALATE:
                ticket["group_id"] = ids.group_id(str(p["group"]))
                notes.append(f"Escalated to {p['group']}: {p.get('reason', '')}".rstrip(": "))
            case ActionType.SET_FIELD:
                logical = str(p["field"])
                if logical not in ids.fields:
                    raise MappingError(f"zendesk field {logical!r} is not mapped")
                custom[ids.fields[logical]] = ids.option_value(logical, str(p["value"]))
            case ActionType.ADD_TAGS:
                add.extend(str(t) for t in p["tags"])
            case ActionType.REMOVE_TAGS:
                remove.extend(str(t) for t in p["tags"])
            case _:
                raise MappingError(f"zendesk cannot {action.type} (ticket {item.case.id})")
    marker = marker_tag(item.key)
    reply = None
    if replies:
        reply = {
            "comment": {"body": "\n\n".join(replies), "public": True},
            "additional_tags": [WORKER_TAG, marker],
        }
        remove.append(marker)
    note_text = "\n\n".join(notes) or item.reason
    ticket["comment"] = {"body": with_footer(note_text, item), "public": False}
    if custom:
        ticket["custom_fields"] = [{"id": k, "value": v} for k, v in custom.items()]
    ticket["additional_tags"] = list(dict.fromkeys(add))
    if remove:
        ticket["remove_tags"] = list(dict.fromkeys(remove))
    return TicketUpdates(reply=reply, note=ticket)


def _dt(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def comment_activity(comment: Mapping[str, Any], requester_id: Any) -> Activity | None:
    """What a comment means for the planner (None for the worker's own follow-ups)."""
    at = _dt(comment["created_at"])
    if comment.get("author_id") != requester_id:
        if parse_footer(comment.get("body") or "", at) is not None:
            return None
        return Activity(ActivityKind.AGENT_UPDATE, at)
    call_status = (comment.get("data") or {}).get("call_status")
    if comment.get("type") == "VoiceComment" and call_status in ("missed", "abandoned"):
        kind = ActivityKind.MISSED_CALL if call_status == "missed" else ActivityKind.ABANDONED_CALL
        return Activity(kind, at)
    custom = (comment.get("metadata") or {}).get("custom") or {}
    if not comment.get("public", True) and custom.get("missed"):
        return Activity(ActivityKind.MISSED_EMAIL, at)
    return Activity(ActivityKind.CUSTOMER_REPLY, at)


def _requester(user: Mapping[str, Any] | None, requester_id: Any) -> Requester | None:
    if requester_id is None:
        return None
    if user is None:
        return Requester(id=str(requester_id))
    return Requester(
        id=str(user["id"]),
        name=user.get("name") or "",
        email=user.get("email") or None,
        phone=user.get("phone") or None,
    )


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
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._client = client
        self._mapping = mapping
        self._plans = plans or PlanNames()
        self._page_size = page_size
        self._comment_pages = comment_pages
        self._clock = clock
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
        **options: Any,
    ) -> ZendeskConnector:
        client = VendorClient(
            "zendesk",
            base_url,
            auth=httpx.BasicAuth(f"{email}/token", token),
            limits=limits,
            timeouts=timeouts,
            transport=transport,
        )
        return cls(client, mapping, **options)

    # -- names -> ids ---------------------------------------------------------------------

    async def _pages(self, url: str, params: Mapping[str, Any] | None = None) -> AsyncIterator[Any]:
        """Every page of a list, whichever of Zendesk's three pagination styles it uses."""
        next_url: str | None = url
        query = dict(params or {})
        while next_url:
            page = await self._client.read("GET", next_url, params=query)
            yield page
            if "end_of_stream" in page:
                # Incremental export: its after_url carries only the cursor, so the page size
                # and side-loads are sent again with it.
                next_url = None if page["end_of_stream"] else url
                query = {k: v for k, v in query.items() if k != "start_time"}
                query["cursor"] = page.get("after_cursor")
            elif "meta" in page:  # cursor pagination: the next link keeps every parameter
                next_url = page["links"].get("next") if page["meta"].get("has_more") else None
                query = {}
            else:  # offset pagination
                next_url = page.get("next_page")
                query = {}

    async def _all(self, url: str, key: str, params: Mapping[str, Any]) -> list[Any]:
        return [item async for page in self._pages(url, params) for item in page.get(key, [])]

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
        by_title = {f["title"]: f for f in fields}
        ids = ZendeskIds(
            groups={g["name"]: g["id"] for g in groups},
            agents={a["name"]: a["id"] for a in agents},
        )
        for logical, title in self._mapping.ticket_fields.items():
            if (found := by_title.get(title)) is None:
                continue
            ids.fields[logical] = found["id"]
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
        return checks

    # -- reads ----------------------------------------------------------------------------

    def _to_case(
        self,
        ticket: Mapping[str, Any],
        users: Mapping[Any, Mapping[str, Any]],
        comments: Iterable[Mapping[str, Any]],
        ids: ZendeskIds,
    ) -> Case:
        requester_id = ticket.get("requester_id")
        history: list[Activity] = []
        followups: list[FollowUpMark] = []
        for comment in comments:
            at = _dt(comment["created_at"])
            mark = parse_footer(comment.get("body") or "", at)
            if mark is not None and comment.get("author_id") != requester_id:
                followups.append(mark)
            elif (activity := comment_activity(comment, requester_id)) is not None:
                history.append(activity)
        names = ids.field_names()
        fields = {
            names[f["id"]]: str(f["value"])
            for f in ticket.get("custom_fields") or []
            if f["id"] in names and f.get("value") not in (None, "")
        }
        agents: dict[Any, str] = {v: k for k, v in ids.agents.items()}
        groups: dict[Any, str] = {v: k for k, v in ids.groups.items()}
        priority = ticket.get("priority")
        org = ticket.get("organization_id")
        return Case(
            source=Source.ZENDESK,
            id=str(ticket["id"]),
            kind=CaseKind.TICKET,
            status=Status(ticket["status"]),
            created_at=_dt(ticket["created_at"]),
            updated_at=_dt(ticket["updated_at"]),
            subject=ticket.get("subject") or "",
            priority=Priority(priority) if priority else None,
            requester=_requester(users.get(requester_id), requester_id),
            account_id=str(org) if org is not None else None,
            assignee=agents.get(ticket.get("assignee_id")),
            group=groups.get(ticket.get("group_id")),
            brand=str(ticket["brand_id"]) if ticket.get("brand_id") else None,
            fields=fields,
            tags=frozenset(ticket.get("tags") or ()),
            history=tuple(sorted(history, key=lambda a: a.at)),
            followups=tuple(sorted(followups, key=lambda m: m.at)),
            updated_stamp=ticket["updated_at"],
        )

    async def _evidence(self, ticket: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        """The ticket's comments back to (and including) the latest inbound one, newest first."""
        requester_id = ticket.get("requester_id")
        found: list[Mapping[str, Any]] = []
        url = _TICKET.format(ticket["id"]) + "/comments"
        params = {"sort": "-created_at", "page[size]": 100}
        pages = 0
        async for page in self._pages(url, params):
            found.extend(page["comments"])
            pages += 1
            inbound = any(
                (a := comment_activity(c, requester_id)) is not None and a.kind.is_inbound
                for c in page["comments"]
            )
            if inbound or pages >= self._comment_pages:
                break
        return found

    async def cases(self) -> AsyncIterator[Case]:
        ids = await self.resolve()
        since = self._clock() - timedelta(days=self._mapping.lookback_days)
        params = {
            "start_time": int(since.timestamp()),
            "include": "users",
            "per_page": self._page_size,
        }
        async for page in self._pages("/api/v2/incremental/tickets/cursor", params):
            users = {u["id"]: u for u in page.get("users", [])}
            candidates = [t for t in page["tickets"] if t["status"] in _CANDIDATE]
            evidence = await asyncio.gather(*(self._evidence(t) for t in candidates))
            for ticket, comments in zip(candidates, evidence, strict=True):
                yield self._to_case(ticket, users, comments, ids)

    async def accounts(self) -> AsyncIterator[Account]:
        flags = self._mapping.organization_fields
        canceled = {v.lower() for v in flags.canceled_values}
        async for page in self._pages("/api/v2/organizations", {"page[size]": 100}):
            for org in page["organizations"]:
                values = org.get("organization_fields") or {}
                raw_plan = values.get(flags.plan)
                yield Account(
                    id=str(org["id"]),
                    name=org.get("name") or "",
                    plan=self._plans.tier(raw_plan),
                    raw_plan=raw_plan,
                    canceled=str(values.get(flags.account_status) or "").lower() in canceled,
                    stop_followups=bool(values.get(flags.stop_followups)),
                )

    async def fetch_case(self, case_id: str) -> Case:
        ids = await self.resolve()
        body = await self._client.read("GET", _TICKET.format(case_id), params={"include": "users"})
        ticket = body["ticket"]
        users = {u["id"]: u for u in body.get("users", [])}
        return self._to_case(ticket, users, await self._evidence(ticket), ids)

    # -- writes ---------------------------------------------------------------------------

    async def apply(self, item: PlanItem) -> WriteResult:
        try:
            updates = ticket_updates(item, await self.resolve())
        except MappingError as exc:
            return WriteResult(WriteOutcome.FAILED, calls=0, detail=str(exc))
        if item.key in _keys(item.case):
            return WriteResult(WriteOutcome.ALREADY_APPLIED, calls=0)
        marker = marker_tag(item.key)
        run = _WriteRun(self._client, self.fetch_case, item.case.id, item.case.updated_stamp)
        try:
            if updates.reply is not None and marker not in item.case.tags:
                outcome = await run.put(updates.reply, lambda c: marker in c.tags)
                if outcome not in _DONE:
                    return run.result(outcome)
            outcome = await run.put(updates.note, lambda c: item.key in _keys(c))
        except VendorError as exc:
            return run.result(WriteOutcome.FAILED, str(exc))
        return run.result(outcome)


_DONE = (WriteOutcome.APPLIED, WriteOutcome.ALREADY_APPLIED)


def _keys(case: Case) -> set[str]:
    return {mark.key for mark in case.followups}


class _WriteRun:
    """The calls of one ``apply``: each PUT, its marker check on a lost answer, the count."""

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
        self.calls = 0
        self.audits: list[str] = []

    async def put(self, ticket: dict[str, Any], done: Callable[[Case], bool]) -> WriteOutcome:
        body = {"ticket": {**ticket, "safe_update": True, "updated_stamp": self._stamp}}
        url = _TICKET.format(self._ticket_id)
        for attempt in range(2):
            self.calls += 1
            try:
                answer = await self._client.write("PUT", url, json=body)
            except Conflict:
                return WriteOutcome.CONFLICT
            except OutcomeUnknown:
                self.calls += 2  # the ticket and its latest comments
                fresh = await self._fetch_case(self._ticket_id)
                if done(fresh):
                    self._stamp = fresh.updated_stamp
                    return WriteOutcome.ALREADY_APPLIED
                if attempt == 1:
                    raise
                continue  # not applied: send it again, with the stamp we planned on
            self._stamp = answer["ticket"]["updated_at"]
            if audit := (answer.get("audit") or {}).get("id"):
                self.audits.append(str(audit))
            return WriteOutcome.APPLIED
        raise AssertionError("unreachable")  # pragma: no cover

    def result(self, outcome: WriteOutcome, detail: str = "") -> WriteResult:
        return WriteResult(outcome, calls=self.calls, request_ids=tuple(self.audits), detail=detail)
