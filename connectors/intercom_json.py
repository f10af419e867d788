"""Intercom JSON <-> the domain model, without IO: conversations and tickets into cases, plan
items into the parts and updates that write them. Names are resolved to ids beforehand
(:class:`IntercomIds`, :func:`ticket_states`).

Conversations are cases of kind ``conversation``, tickets cases of kind ``ticket`` (the kind
the policies already select Zendesk tickets by). A ticket's case id is ``ticket:<id>``: both
live under ``intercom:`` refs, and a bare id could not tell ``fetch_case`` which one to read.
A comment by a contact is inbound activity, by an admin an agent update, except the worker's
own admin's: its signed notes are follow-ups (:func:`connectors.footer.parse_footer`), its
replies their messages.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime
from html import escape
from typing import Any

from connectors.errors import MappingError
from connectors.footer import Texts, parse_footer
from connectors.mapping import AccountFlags, PlanNames
from connectors.records import flagged_account, optional_text, text, translating, unix_instant
from connectors.resolution import NameCheck
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

__all__ = [
    "ANY_TYPE",
    "TICKET_PREFIX",
    "TICKET_TYPE",
    "IntercomIds",
    "TicketStates",
    "company_plan",
    "contact_account",
    "conversation_calls",
    "conversation_case",
    "html_body",
    "own_note",
    "part_shows",
    "record_parts",
    "ticket_calls",
    "ticket_case",
    "ticket_number",
    "ticket_states",
    "type_states",
    "update_shows",
    "waiting_on_customer",
]

TICKET_PREFIX = "ticket:"
TICKET_TYPE = "ticket_type"  # a ticket case's field: its ticket type's id
ANY_TYPE = "*"  # the states linked to every ticket type (they list none)
_CUSTOMER = ("user", "lead", "contact")
# A policy status -> the ticket state categories that mean it, best first, for statuses the
# tenant mapping does not name a state for. "open" is the team's turn: in progress, else
# submitted (a workspace may have archived every in-progress state).
_STATE_CATEGORIES: dict[Status, tuple[str, ...]] = {
    Status.OPEN: ("in_progress", "submitted"),
    Status.PENDING: ("waiting_on_customer",),
    Status.SOLVED: ("resolved",),
    Status.CLOSED: ("resolved",),
}
_CATEGORY_STATUS = {
    "submitted": Status.NEW,
    "in_progress": Status.OPEN,
    "waiting_on_customer": Status.PENDING,
    "resolved": Status.SOLVED,
}


class IntercomIds:
    """The worker's own admin id and the admins it may assign to, by name."""

    def __init__(self, me: str, admins: Mapping[str, str]) -> None:
        self.me = me
        self.admins = dict(admins)

    @property
    def me_number(self) -> int:
        """The worker's admin id as ``POST /messages`` takes it: an integer
        (vendor-behaviours I1)."""
        try:
            return int(self.me)
        except ValueError:
            raise MappingError(f"intercom admin id {self.me!r} is not a number") from None

    def admin_id(self, name: str) -> str:
        # "Unresponsive Customers/Roxy V" is a Zendesk group/agent pair; Intercom assigns the agent.
        agent = name.rpartition("/")[2]
        try:
            return self.admins[agent]
        except KeyError:
            raise MappingError(f"intercom admin {agent!r} is unknown") from None


def ticket_number(case_id: str) -> str | None:
    """The Intercom ticket id of a ticket case's id; None for a conversation's."""
    return case_id.removeprefix(TICKET_PREFIX) if case_id.startswith(TICKET_PREFIX) else None


TicketStates = dict[str, dict[Status, NameCheck]]
"""Ticket type id (or :data:`ANY_TYPE`) -> policy status -> the state it resolved to."""


def ticket_states(listed: Sequence[Mapping[str, Any]], names: Mapping[Status, str]) -> TicketStates:
    """Per ticket type, each policy status a ticket can be set to and the state it resolved to.

    A state belongs to the ticket types it lists (``ticket_types``), and Intercom refuses a
    state not linked to the ticket's type (vendor-behaviours I2), so each type gets its own
    choice among its live states: a status the tenant mapping names gets the state of that
    name (its internal label, as admins see it), the others, and a named one whose state is
    linked to other types only, the first state of their categories. A state listing no types
    is taken as linked to every type; they alone make up :data:`ANY_TYPE`, for tickets of a
    type no state names. ``resolved`` is None where no state fits: a write that needs it
    fails, and ``followup connectors check`` reports it.
    """
    live = [s for s in listed if not s.get("archived")]
    types = {str(t["id"]): str(t.get("name") or t["id"]) for s in live for t in _types_of(s)}
    if not types or any(s.get("ticket_types") is None for s in live):
        types[ANY_TYPE] = ""
    labels = frozenset(str(s.get("internal_label")) for s in live)
    return {
        type_id: _statuses([s for s in live if _linked(s, type_id)], names, type_name, labels)
        for type_id, type_name in types.items()
    }


def _types_of(state: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    listed = state.get("ticket_types")
    return list(listed.get("data") or []) if isinstance(listed, Mapping) else []


def _linked(state: Mapping[str, Any], type_id: str) -> bool:
    if state.get("ticket_types") is None:
        return True
    return any(str(t["id"]) == type_id for t in _types_of(state))


def _statuses(
    linked: Sequence[Mapping[str, Any]],
    names: Mapping[Status, str],
    type_name: str,
    labels: frozenset[str],
) -> dict[Status, NameCheck]:
    """A type's choice among its ``linked`` states; ``labels`` are every live state's."""
    by_label = {str(s.get("internal_label")): str(s["id"]) for s in linked}
    prefix = f"{type_name}: " if type_name else ""
    found: dict[Status, NameCheck] = {}
    for status in Status:
        named = names.get(status)
        if named is not None and (named in by_label or named not in labels):
            # A name no state has is a mistake to report, not a reason to pick another.
            label = f"{prefix}{status}: {named}"
            found[status] = NameCheck.of("intercom", "ticket state", label, by_label.get(named))
        elif status in _STATE_CATEGORIES:
            categories = _STATE_CATEGORIES[status]
            state = next(
                (s["id"] for c in categories for s in linked if s.get("category") == c), None
            )
            first = f"first {' or '.join(categories)} state"
            why = f"{named} is not linked, {first}" if named is not None else first
            found[status] = NameCheck.of(
                "intercom", "ticket state", f"{prefix}{status}: {why}", state
            )
    return found


def html_body(text: str) -> str:
    """Plain text as the HTML body Intercom expects: every character escaped (a customer's
    subject echoed in a reply is text, never markup), a paragraph per blank-line block."""
    blocks = (block for block in text.strip().split("\n\n") if block.strip())
    return "".join(f"<p>{escape(block.strip()).replace(chr(10), '<br>')}</p>" for block in blocks)


def _html(text: str | None) -> str | None:
    return None if text is None else html_body(text)


def type_states(states: TicketStates, case: Case) -> Mapping[Status, NameCheck]:
    """The states a ticket case can be set to: those of its type (``fields["ticket_type"]``),
    else those linked to every type."""
    type_id = case.fields.get(TICKET_TYPE)
    chosen = states.get(type_id) if type_id is not None else None
    return chosen if chosen is not None else states.get(ANY_TYPE, {})


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
    return _html(texts.reply()), html_body(texts.signed_note(item)), parts


def _state_part(status: str, until: Any, admin_id: str) -> list[dict[str, Any]]:
    if status in (Status.SOLVED, Status.CLOSED):
        return [{"message_type": "close", "type": "admin", "admin_id": admin_id}]
    if status == Status.OPEN:
        return [{"message_type": "open", "admin_id": admin_id}]
    if status in (Status.PENDING, Status.HOLD) and until:
        when = int(datetime.fromisoformat(str(until)).timestamp())
        return [{"message_type": "snoozed", "admin_id": admin_id, "snoozed_until": when}]
    return []  # pending without a date: an open conversation awaiting the customer already is


def ticket_calls(
    item: PlanItem, ids: IntercomIds, states: Mapping[Status, NameCheck]
) -> tuple[str | None, str, dict[str, Any]]:
    """The reply body (if any), the signed note body and the one ticket update (state and
    assignee in a single ``PUT /tickets/{id}``; empty when neither changes)."""
    texts = Texts()
    update: dict[str, Any] = {}
    for action in item.actions:
        if texts.take(action):
            continue
        p = action.params
        match action.type:
            case ActionType.SET_ASSIGNEE:
                update["assignee_id"] = ids.admin_id(str(p["assignee"]))
            case ActionType.SET_STATUS:
                status = str(p["status"])
                wanted = _status(status)
                state = states.get(wanted) if wanted is not None else None
                if state is None or state.resolved is None:
                    kind = item.case.fields.get(TICKET_TYPE, "unknown")
                    raise MappingError(
                        f"intercom has no ticket state for status {status!r} linked to ticket"
                        f" type {kind} (ticket {item.case.id}); name one under"
                        " intercom.ticket_states"
                    )
                update["ticket_state_id"] = state.resolved
            case _:
                raise MappingError(f"intercom cannot {action.type} (ticket {item.case.id})")
    if update:
        update["admin_id"] = int(ids.me)  # who changed it, for Intercom's workflows and log
    return _html(texts.reply()), html_body(texts.signed_note(item)), update


def _status(value: str) -> Status | None:
    try:
        return Status(value)
    except ValueError:
        return None


def company_plan(company: Mapping[str, Any]) -> str | None:
    """A company's plan name (``plan: {type, id, name}``; vendor-behaviours I3)."""
    plan = company.get("plan")
    return optional_text(plan, "name") if isinstance(plan, Mapping) else None


def contact_account(
    contact: Mapping[str, Any],
    flags: AccountFlags,
    plans: PlanNames,
    company_plans: Mapping[str, str],
) -> Account:
    """A contact as an account. Its plan is its company's (the first of its companies that has
    one, by id in ``company_plans``): where Intercom keeps it. The contact's own custom
    attribute (``flags.plan``) is the fallback, for a contact without a company or a company
    without a plan. Raises :class:`~connectors.errors.BadRecord` when it cannot be read."""
    account = flagged_account("intercom", contact, "custom_attributes", flags, plans)
    with translating("intercom", contact):
        refs = (contact.get("companies") or {}).get("data") or []
        raw = next((company_plans[c] for r in refs if (c := text(r, "id")) in company_plans), None)
    if raw is None:
        return account
    return dataclasses.replace(account, plan=plans.tier(raw), raw_plan=raw)


def part_shows(part: Mapping[str, Any], conversation: Mapping[str, Any]) -> bool:
    """Whether ``conversation`` shows the part request ``part`` made (its state or assignee)."""
    match part["message_type"]:
        case "close":
            return conversation.get("state") == "closed"
        case "open":
            return conversation.get("state") == "open"
        case "snoozed":
            return (conversation.get("state"), conversation.get("snoozed_until")) == (
                "snoozed",
                part["snoozed_until"],
            )
        case _:  # assignment
            return str(conversation.get("admin_assignee_id")) == str(part["assignee_id"])


def update_shows(update: Mapping[str, Any], ticket: Mapping[str, Any]) -> bool:
    """Whether ``ticket`` has the state and assignee the ticket update ``update`` set."""
    state = (ticket.get("ticket_state") or {}).get("id")
    if "ticket_state_id" in update and str(state) != str(update["ticket_state_id"]):
        return False
    assignee = ticket.get("admin_assignee_id")
    return "assignee_id" not in update or str(assignee) == str(update["assignee_id"])


def waiting_on_customer(conversation: Mapping[str, Any]) -> bool:
    stats = conversation.get("statistics") or {}
    admin = stats.get("last_admin_reply_at")
    contact = stats.get("last_contact_reply_at")
    return admin is not None and (contact is None or admin > contact)


def record_parts(record: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """A conversation's or a ticket's parts, oldest first."""
    for key in ("conversation_parts", "ticket_parts"):
        parts: list[Mapping[str, Any]] = (record.get(key) or {}).get(key) or []
        if parts:
            return parts
    return []


def _author_type(record: Mapping[str, Any]) -> Any:
    return (record.get("author") or {}).get("type")


def own_note(part: Mapping[str, Any], me: str) -> FollowUpMark | None:
    """The follow-up a part records: only an admin note the worker's own admin signed. A
    footer anywhere else (a contact's message, a reply echoing a title) is text."""
    author = part.get("author") or {}
    if part.get("part_type") != "note" or author.get("type") != "admin":
        return None
    if str(author.get("id")) != me:
        return None
    return parse_footer(optional_text(part, "body") or "", unix_instant(part, "created_at"))


def _evidence(
    parts: Sequence[Mapping[str, Any]], me: str, *opened: Activity
) -> tuple[tuple[Activity, ...], tuple[FollowUpMark, ...]]:
    """The activity (what opened the case, then the comments) and the worker's signed notes,
    each oldest first. The worker's own replies (its admin's comments) are its follow-ups'
    messages, never an agent's answer: the Zendesk rule, :func:`connectors.zendesk_json.
    worker_message`, says why."""
    history = list(opened)
    followups: list[FollowUpMark] = []
    for part in parts:
        at = unix_instant(part, "created_at")
        author = _author_type(part)
        if (mark := own_note(part, me)) is not None:
            followups.append(mark)
        elif part.get("part_type") != "comment":
            continue
        elif author == "admin" and str((part.get("author") or {}).get("id")) != me:
            history.append(Activity(ActivityKind.AGENT_UPDATE, at))
        elif author in _CUSTOMER:
            history.append(Activity(ActivityKind.CUSTOMER_REPLY, at))
    return (
        tuple(sorted(history, key=lambda a: a.at)),
        tuple(sorted(followups, key=lambda m: m.at)),
    )


def _contact(record: Mapping[str, Any]) -> str | None:
    contacts = (record.get("contacts") or {}).get("contacts") or []
    return text(contacts[0], "id") if contacts else None


def _assignee(record: Mapping[str, Any], ids: IntercomIds) -> str | None:
    names = {v: k for k, v in ids.admins.items()}
    assignee = optional_text(record, "admin_assignee_id")
    return names.get(assignee) if assignee is not None else None


def conversation_case(conversation: Mapping[str, Any], ids: IntercomIds) -> Case:
    """A conversation as a case. Raises :class:`~connectors.errors.BadRecord` when it cannot
    be read."""
    with translating("intercom", conversation):
        return _conversation_case(conversation, ids)


def _conversation_case(conversation: Mapping[str, Any], ids: IntercomIds) -> Case:
    source = conversation.get("source") or {}
    opened = (
        [Activity(ActivityKind.CUSTOMER_REPLY, unix_instant(conversation, "created_at"))]
        if _author_type(source) in _CUSTOMER
        else []
    )
    history, followups = _evidence(record_parts(conversation), ids.me, *opened)
    contact = _contact(conversation)
    state = conversation.get("state")
    if state not in ("open", "closed", "snoozed"):
        raise ValueError(f"state: unknown conversation state {state!r}")
    if state == "closed":
        status = Status.SOLVED
    elif state == "snoozed" or waiting_on_customer(conversation):
        status = Status.PENDING
    else:
        status = Status.OPEN
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
        assignee=_assignee(conversation, ids),
        tags=frozenset(text(t, "name") for t in (conversation.get("tags") or {}).get("tags") or []),
        history=history,
        followups=followups,
        updated_stamp=text(conversation, "updated_at"),
    )


def ticket_case(ticket: Mapping[str, Any], ids: IntercomIds) -> Case:
    """A ticket as a case: its status from its state's category (submitted new, in progress
    open, waiting on customer pending, resolved solved; a closed ticket is solved whatever its
    state). Raises :class:`~connectors.errors.BadRecord` when it cannot be read."""
    with translating("intercom", ticket, prefix=TICKET_PREFIX):
        category = ticket["ticket_state"]["category"]
        if category not in _CATEGORY_STATUS:
            raise ValueError(f"ticket_state: unknown category {category!r}")
        status = _CATEGORY_STATUS[category] if ticket.get("open", True) else Status.SOLVED
        history, followups = _evidence(record_parts(ticket), ids.me)
        contact = _contact(ticket)
        attributes = ticket.get("ticket_attributes") or {}
        type_id = optional_text(ticket.get("ticket_type") or {}, "id")
        return Case(
            source=Source.INTERCOM,
            id=TICKET_PREFIX + text(ticket, "id"),
            kind=CaseKind.TICKET,
            status=status,
            created_at=unix_instant(ticket, "created_at"),
            updated_at=unix_instant(ticket, "updated_at"),
            subject=optional_text(attributes, "_default_title_") or "",
            requester=Requester(id=contact) if contact else None,
            account_id=contact,
            assignee=_assignee(ticket, ids),
            fields={TICKET_TYPE: type_id} if type_id is not None else {},
            history=history,
            followups=followups,
            updated_stamp=text(ticket, "updated_at"),
        )
