"""Intercom: contacts as accounts, conversations awaiting the customer as cases.

Reads. Accounts stream from ``GET /contacts`` (150 a page); which custom attribute holds the
plan, the account status and the stop flag is tenant mapping. Candidate conversations come
from ``POST /conversations/search`` (open ones, 150 a page), keeping those where an admin spoke
last (the customer owes an answer); only those get their parts read, for the evidence. A
conversation or contact that cannot be read goes to the connector's ``report``
(:mod:`connectors.records`) and the stream goes on.

Writes. Intercom has no multi-change update, so one plan item is a few calls, in this order:
the public reply, assignment and state changes (idempotent; one already in effect is not sent),
and last the admin note signed with the marker ``fw-<key>``, so a follow-up is only recorded
once all of it happened and a retried item never emails twice. A reply or note whose answer
was lost is looked for in the conversation's parts (the reply by its exact body from the
worker's admin in this cycle); absent, it is left to the next cycle, as it may still land.
Once the reply is out or a change made, a failure is INCOMPLETE: a closed conversation is no
longer offered by the plan, so the worker finishes the item next cycle regardless.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import datetime
from typing import Any

import httpx

from connectors.base import WriteOutcome, WriteResult
from connectors.errors import BadRecord, MappingError, VendorError
from connectors.footer import Texts, parse_footer
from connectors.http import OwnsClient, VendorClient
from connectors.mapping import IntercomMapping, PlanNames
from connectors.once import WriteOnce
from connectors.records import (
    Report,
    case_or_bad,
    flagged_account,
    log_bad_record,
    optional_text,
    reported,
    text,
    translating,
    unix_instant,
)
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
    Requester,
    Source,
    Status,
)

__all__ = ["IntercomConnector", "IntercomIds", "conversation_calls", "conversation_case"]

API_VERSION = "2.16"
PAGE = 150
_CONVERSATION = "/conversations/{}"
_OPEN = {"field": "open", "operator": "=", "value": True}


_CUSTOMER = ("user", "lead", "contact")


class IntercomIds:
    """The worker's own admin id and the admins it may assign to, by name."""

    def __init__(self, me: str, admins: Mapping[str, str]) -> None:
        self.me = me
        self.admins = dict(admins)

    def admin_id(self, name: str) -> str:
        # "Unresponsive Customers/Roxy V" is a Zendesk group/agent pair; Intercom assigns the agent.
        agent = name.rpartition("/")[2]
        try:
            return self.admins[agent]
        except KeyError:
            raise MappingError(f"intercom admin {agent!r} is unknown") from None


def conversation_calls(
    item: PlanItem, ids: IntercomIds
) -> tuple[str | None, str, list[dict[str, Any]]]:
    """The reply body (if any), the signed note body and the part requests of one plan item."""
    texts = Texts()
    parts: list[dict[str, Any]] = []
    for action in item.actions:
        if texts.take(action):
            continue
        p = action.params
        match action.type:
            case ActionType.SET_ASSIGNEE:
                parts.append(
                    {
                        "message_type": "assignment",
                        "type": "admin",
                        "admin_id": ids.me,
                        "assignee_id": ids.admin_id(str(p["assignee"])),
                    }
                )
            case ActionType.SET_STATUS:
                parts.extend(_state_part(str(p["status"]), p.get("until"), ids.me))
            case _:
                raise MappingError(f"intercom cannot {action.type} (conversation {item.case.id})")
    return texts.reply(), texts.signed_note(item), parts


def _state_part(status: str, until: Any, admin_id: str) -> list[dict[str, Any]]:
    if status in (Status.SOLVED, Status.CLOSED):
        return [{"message_type": "close", "type": "admin", "admin_id": admin_id}]
    if status == Status.OPEN:
        return [{"message_type": "open", "admin_id": admin_id}]
    if status in (Status.PENDING, Status.HOLD) and until:
        when = int(datetime.fromisoformat(str(until)).timestamp())
        return [{"message_type": "snoozed", "admin_id": admin_id, "snoozed_until": when}]
    return []  # pending without a date: an open conversation awaiting the customer already is


def _waiting_on_customer(conversation: Mapping[str, Any]) -> bool:
    stats = conversation.get("statistics") or {}
    admin = stats.get("last_admin_reply_at")
    contact = stats.get("last_contact_reply_at")
    return admin is not None and (contact is None or admin > contact)


def _parts(conversation: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    parts: list[Mapping[str, Any]] = (conversation.get("conversation_parts") or {}).get(
        "conversation_parts"
    ) or []
    return parts


def conversation_case(conversation: Mapping[str, Any], ids: IntercomIds) -> Case:
    """A conversation as a case. Raises :class:`~connectors.errors.BadRecord` when it cannot
    be read."""
    with translating("intercom", conversation):
        return _conversation_case(conversation, ids)


def _author_type(record: Mapping[str, Any]) -> Any:
    return (record.get("author") or {}).get("type")


def _conversation_case(conversation: Mapping[str, Any], ids: IntercomIds) -> Case:
    history: list[Activity] = []
    followups: list[FollowUpMark] = []
    source = conversation.get("source") or {}
    if _author_type(source) in _CUSTOMER:
        history.append(
            Activity(ActivityKind.CUSTOMER_REPLY, unix_instant(conversation, "created_at"))
        )
    for part in _parts(conversation):
        at = unix_instant(part, "created_at")
        author = _author_type(part)
        mark = parse_footer(optional_text(part, "body") or "", at)
        if mark is not None and author == "admin":
            followups.append(mark)
        elif part.get("part_type") != "comment":
            continue
        elif author == "admin":
            history.append(Activity(ActivityKind.AGENT_UPDATE, at))
        elif author in _CUSTOMER:
            history.append(Activity(ActivityKind.CUSTOMER_REPLY, at))
    contacts = (conversation.get("contacts") or {}).get("contacts") or []
    contact = text(contacts[0], "id") if contacts else None
    state = conversation.get("state")
    if state not in ("open", "closed", "snoozed"):
        raise ValueError(f"state: unknown conversation state {state!r}")
    if state == "closed":
        status = Status.SOLVED
    elif state == "snoozed" or _waiting_on_customer(conversation):
        status = Status.PENDING
    else:
        status = Status.OPEN
    names = {v: k for k, v in ids.admins.items()}
    assignee = optional_text(conversation, "admin_assignee_id")
    return Case(
        source=Source.INTERCOM,
        id=text(conversation, "id"),
        kind=CaseKind.CONVERSATION,
        status=status,
        created_at=unix_instant(conversation, "created_at"),
        updated_at=unix_instant(conversation, "updated_at"),
        subject=optional_text(conversation, "title") or optional_text(source, "subject") or "",
        requester=Requester(id=contact) if contact else None,
        account_id=contact,
        assignee=names.get(assignee) if assignee is not None else None,
        tags=frozenset(text(t, "name") for t in (conversation.get("tags") or {}).get("tags") or []),
        history=tuple(sorted(history, key=lambda a: a.at)),
        followups=tuple(sorted(followups, key=lambda m: m.at)),
        updated_stamp=text(conversation, "updated_at"),
    )


class IntercomConnector(OwnsClient):
    source = Source.INTERCOM

    def __init__(
        self,
        client: VendorClient,
        mapping: IntercomMapping,
        *,
        plans: PlanNames | None = None,
        report: Report = log_bad_record,
    ) -> None:
        self._client = client
        self._report = report
        self._mapping = mapping
        self._plans = plans or PlanNames()
        self._ids: IntercomIds | None = None
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
    ) -> IntercomConnector:
        client = VendorClient(
            "intercom",
            base_url,
            headers={"Authorization": f"Bearer {token}", "Intercom-Version": API_VERSION},
            limits=limits,
            timeouts=timeouts,
            transport=transport,
        )
        return cls(client, mapping, plans=plans, report=report)

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
        checks += [
            NameCheck.of("intercom", "contact attribute", key, key if key in keys else None)
            for key in (attrs.plan, attrs.account_status, attrs.stop_followups)
        ]
        return checks

    async def email_contact(self, contact_id: str, subject: str, body: str) -> None:
        """An email from the worker's admin to one contact (``POST /messages``): how a
        customer hears about a case that lives elsewhere, e.g. an Asana bug (seeds 000/001)."""
        ids = await self.resolve()
        message = {
            "message_type": "email",
            "subject": subject,
            "body": body,
            "template": "plain",
            "from": {"type": "admin", "id": ids.me},
            "to": {"type": "user", "id": contact_id},
        }
        await self._client.write("POST", "/messages", json=message)

    # -- reads ----------------------------------------------------------------------------

    async def accounts(self) -> AsyncIterator[Account]:
        attrs = self._mapping.contact_attributes
        params: dict[str, Any] = {"per_page": PAGE}
        while True:
            page = await self._client.read("GET", "/contacts", params=params)
            for contact in page.get("data", []):
                try:
                    account = flagged_account(
                        "intercom", contact, "custom_attributes", attrs, self._plans
                    )
                except BadRecord as bad:
                    self._report(bad)
                    continue
                yield account
            after = ((page.get("pages") or {}).get("next") or {}).get("starting_after")
            if not after:
                return
            params = {"per_page": PAGE, "starting_after": after}

    async def _case(self, found: Mapping[str, Any], ids: IntercomIds) -> Case | None:
        """The full conversation of a search hit awaiting the customer (None: not awaiting)."""
        with translating("intercom", found):
            if not _waiting_on_customer(found):
                return None
            conversation = await self._client.read("GET", _CONVERSATION.format(text(found, "id")))
        return conversation_case(conversation, ids)

    async def cases(self) -> AsyncIterator[Case]:
        """Conversations awaiting the customer; one that cannot be read goes to ``report``."""
        ids = await self.resolve()
        pagination: dict[str, Any] = {"per_page": PAGE}
        while True:
            body = {
                "query": {"field": "open", "operator": "=", "value": True},
                "pagination": pagination,
            }
            page = await self._client.read("POST", "/conversations/search", json=body)
            read = await asyncio.gather(
                *(case_or_bad(self._case(c, ids)) for c in page.get("conversations", []))
            )
            for case in reported(read, self._report):
                yield case
            after = ((page.get("pages") or {}).get("next") or {}).get("starting_after")
            if not after:
                return
            pagination = {"per_page": PAGE, "starting_after": after}

    async def fetch_case(self, case_id: str) -> Case:
        ids = await self.resolve()
        return conversation_case(await self._client.read("GET", _CONVERSATION.format(case_id)), ids)

    # -- writes ---------------------------------------------------------------------------

    async def apply(self, item: PlanItem) -> WriteResult:
        if any(m.key == item.key for m in item.case.followups):
            return WriteResult(WriteOutcome.ALREADY_APPLIED, calls=0)
        try:
            ids = await self.resolve()
            reply, note, parts = conversation_calls(item, ids)
        except (MappingError, VendorError) as exc:
            return WriteResult(WriteOutcome.FAILED, calls=0, detail=str(exc))
        run = _ConversationWrites(self._client, item, ids.me)
        admin = {"type": "admin", "admin_id": ids.me}
        started = False  # the reply is out, or a change of state or assignee may have landed
        try:
            if reply is not None and not await run.replied_already(reply):
                comment = {"message_type": "comment", **admin, "body": reply}
                await run.send("/reply", comment, lambda c: run.has_reply(c, reply))
            started = reply is not None
            for part in _changing(parts, item.case, ids):
                started = True
                await run.send("/parts", part, None)
            body = {"message_type": "note", **admin, "body": note}
            applied = await run.send("/reply", body, run.has_note)
        except VendorError as exc:
            outcome = WriteOutcome.INCOMPLETE if started else WriteOutcome.FAILED
            return WriteResult(outcome, calls=run.calls, detail=str(exc))
        outcome = WriteOutcome.APPLIED if applied else WriteOutcome.ALREADY_APPLIED
        return WriteResult(outcome, calls=run.calls)


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


class _ConversationWrites:
    """The calls of one ``apply`` to a conversation, and how each is recognised on re-read."""

    def __init__(self, client: VendorClient, item: PlanItem, me: str) -> None:
        self._client = client
        self._url = _CONVERSATION.format(item.case.id)
        self._item = item
        self._me = me
        inbound = (a.at for a in item.case.history if a.kind.is_inbound)
        self._cycle_start = max(inbound, default=None)
        self._once = WriteOnce()

    @property
    def calls(self) -> int:
        return self._once.calls

    async def send(
        self, path: str, body: dict[str, Any], done: Callable[[Any], bool] | None
    ) -> bool:
        """Post a part; False when a lost one turned out to be there already. ``done`` None:
        the part is idempotent (assignment, state), sending it twice changes nothing."""

        async def look() -> bool:
            assert done is not None
            return done(await self._client.read("GET", self._url))

        landed = look if done is not None else None
        written = await self._once.send(
            lambda: self._client.write("POST", self._url + path, json=body), landed
        )
        return not written.landed_before

    async def replied_already(self, reply: str) -> bool:
        """A retried item whose email went out last time must not send it again."""
        self._once.calls += 1
        return self.has_reply(await self._client.read("GET", self._url), reply)

    def has_reply(self, conversation: Mapping[str, Any], reply: str) -> bool:
        return any(
            p.get("part_type") == "comment"
            and str((p.get("author") or {}).get("id")) == self._me
            and _plain(p.get("body") or "") == _plain(reply)
            and (self._cycle_start is None or unix_instant(p, "created_at") >= self._cycle_start)
            for p in _parts(conversation)
        )

    def has_note(self, conversation: Mapping[str, Any]) -> bool:
        return any(
            (mark := parse_footer(p.get("body") or "", unix_instant(p, "created_at"))) is not None
            and mark.key == self._item.key
            for p in _parts(conversation)
        )
