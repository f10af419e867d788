"""Zendesk JSON <-> the domain model, without IO: tickets and comments into cases, plan
items into ticket update bodies. Names are resolved to ids beforehand (:class:`ZendeskIds`).

A comment by the requester is inbound activity: a public one a reply, an unanswered call a
missed call, a private email flagged ``metadata.custom.missed`` a missed email.

Missed calls: Zendesk Talk records a call as a ``VoiceComment`` whose ``data`` carries
``from``, ``to``, ``call_duration``, ``answered_by_id``... and no call status
(vendor-behaviours.md Z5). The rule here: a voice comment (``type: VoiceComment`` or
``via.channel: voice``) of the requester without an ``answered_by_id`` is an unanswered call,
a MISSED_CALL, whether the caller hung up in the queue (abandoned), rang out or left a
voicemail: the data cannot tell those apart, and each restarts an unresponsive caller's
sequence the same way. An answered call is a conversation with an agent: a reply.

Anyone else's public comment is an agent update (an internal one a note), except the worker's
own: its signed notes are follow-ups (:func:`connectors.footer.parse_footer`) and its messages
are theirs, never an agent's answer (:func:`worker_message`).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from connectors.errors import MappingError
from connectors.footer import Texts, parse_footer, signed
from connectors.records import instant, optional_text, text, translating
from policies.model import (
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

__all__ = [
    "WORKER_TAG",
    "IndexedComment",
    "TicketUpdates",
    "ZendeskIds",
    "comment_activity",
    "has_inbound",
    "indexed_comment",
    "own_note",
    "ticket_case",
    "ticket_updates",
    "worker_message",
]

WORKER_TAG = "followup_worker"
_CHECKBOX = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


@dataclass(frozen=True, slots=True)
class ZendeskIds:
    """The tenant's names resolved to ids (see ``ZendeskConnector.resolve``). ``me`` is the
    worker's own user: only its internal notes are read as follow-ups."""

    me: int

    fields: dict[str, int] = field(default_factory=dict)  # logical name -> ticket field id
    options: dict[str, dict[str, str]] = field(
        default_factory=dict
    )  # logical -> name/value -> value
    groups: dict[str, int] = field(default_factory=dict)
    agents: dict[str, int] = field(default_factory=dict)
    # logical field -> vendor value -> the policies' value (the mapping's field_values)
    values: dict[str, dict[str, str]] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)  # logical -> "checkbox", "integer"...

    def field_names(self) -> dict[int, str]:
        return {v: k for k, v in self.fields.items()}

    def logical_value(self, logical: str, vendor_value: str) -> str:
        return self.values.get(logical, {}).get(vendor_value, vendor_value)

    def option_value(self, logical: str, value: str) -> str:
        """The vendor value to write for a policy's ``value`` (a logical value, an option's
        name or its vendor value)."""
        vendor = {v: k for k, v in self.values.get(logical, {}).items()}
        value = vendor.get(value, value)
        options = self.options.get(logical)
        if not options:
            return value
        try:
            return options[value.lower()]
        except KeyError:
            raise MappingError(f"zendesk field {logical!r} has no option {value!r}") from None

    def write_value(self, logical: str, value: str) -> Any:
        """A policy's ``value`` as the field's type takes it (vendor-behaviours.md Z4):
        checkbox true/false, multiselect a list of option values (comma-separated in the
        policy), integer and decimal numbers, anything else a string (option, text, date)."""
        kind = self.types.get(logical)
        try:
            if kind == "checkbox":
                return _CHECKBOX[value.strip().lower()]
            if kind == "integer":
                return int(value)
            if kind == "decimal":
                return float(value)
        except (KeyError, ValueError):
            raise MappingError(f"zendesk {kind} field {logical!r} cannot take {value!r}") from None
        if kind == "multiselect":
            return [self.option_value(logical, part.strip()) for part in value.split(",") if part]
        return self.option_value(logical, value)

    def read_value(self, logical: str, value: Any) -> str | None:
        """A field's value as the policies compare it: checkbox "true"/"false", numbers as
        written, multiselect the policies' values comma-separated; None when unset. A value
        the field's type does not take (a list in a drop-down) is a bad record."""
        if value is None or value in ("", []):
            return None
        kind = self.types.get(logical)
        if kind == "checkbox" and isinstance(value, bool):
            return "true" if value else "false"
        if kind == "multiselect" and isinstance(value, list):
            if all(isinstance(part, str) for part in value):
                return ",".join(self.logical_value(logical, part) for part in value)
        elif kind == "decimal" and isinstance(value, float):
            return f"{value:.15g}"
        elif isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
            return self.logical_value(logical, str(value))
        expected = "a string or number" if kind in (None, "text", "tagger") else f"{kind} value"
        raise TypeError(f"value: expected {expected}, got {value!r}"[:120])

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
    texts = Texts()
    custom: dict[int, Any] = {}
    add: list[str] = [WORKER_TAG]
    remove: list[str] = []
    for action in item.actions:
        if texts.take(action):
            continue
        p = action.params
        match action.type:
            case ActionType.SET_STATUS:
                ticket["status"] = str(p["status"])
            case ActionType.SET_ASSIGNEE:
                ticket.update(_assignment(str(p["assignee"]), ids))
            case ActionType.SET_GROUP:
                ticket["group_id"] = ids.group_id(str(p["group"]))
            case ActionType.ESCALATE:
                ticket["group_id"] = ids.group_id(str(p["group"]))
                texts.notes.append(f"Escalated to {p['group']}: {p.get('reason', '')}".rstrip(": "))
            case ActionType.SET_FIELD:
                logical = str(p["field"])
                if logical not in ids.fields:
                    raise MappingError(f"zendesk field {logical!r} is not mapped")
                custom[ids.fields[logical]] = ids.write_value(logical, str(p["value"]))
            case ActionType.ADD_TAGS:
                add.extend(str(t) for t in p["tags"])
            case ActionType.REMOVE_TAGS:
                remove.extend(str(t) for t in p["tags"])
            case _:
                raise MappingError(f"zendesk cannot {action.type} (ticket {item.case.id})")
    marker = marker_tag(item.key)
    reply = None
    current = item.case.tags
    if (reply_body := texts.reply()) is not None:
        reply = {
            "comment": {"body": reply_body, "public": True},
            "tags": tags_after(current, [WORKER_TAG, marker], []),
        }
    if reply is not None or marker in current:  # the note records what the tag held
        remove.append(marker)
    ticket["comment"] = {"body": texts.signed_note(item), "public": False}
    if custom:
        ticket["custom_fields"] = [{"id": k, "value": v} for k, v in custom.items()]
    ticket["tags"] = tags_after(current, add, remove)
    return TicketUpdates(reply=reply, note=ticket)


def own_note(comment: Mapping[str, Any], me: int) -> FollowUpMark | None:
    """The follow-up a comment records: only an internal note the worker's own user signed.
    A footer anywhere else (a customer's message, a public reply echoing a subject) is text."""
    if comment.get("author_id") != me or comment.get("public", True):
        return None
    return parse_footer(_body(comment), instant(comment, "created_at"))


def worker_message(comment: Mapping[str, Any], me: int) -> bool:
    """Whether a public comment is a message the worker sent: its own user posted it through
    the API (``via.channel: api``), as every follow-up reply is (:func:`ticket_updates`). A
    comment records its author and how it came (``author_id``, ``via``: TicketCommentObject,
    ../shared/specs/zendesk-support.yaml 23468-23521); one made by a ticket update through the
    API shows ``channel: api`` (the same file's ``comment_events`` example, 5082-5090).

    Such a message is the worker's follow-up (its signed note, or the marker tag while the
    note is still to come, records it), never an agent's answer. Read as one, a phase or bug
    update (the team's news, seed 003) would hand the turn to the customer and start seed
    002's "did the solution work?" sequence on a bug nobody answered, and that sequence would
    count its days from when the update happened to land: a write delayed by a fault or a
    crash to the next cycle would start it later, under another idempotency key. A human agent
    answers under their own user, or through the agent interface (``web``, ``email``...) if
    they share the worker's: that is an answer.
    """
    return (
        comment.get("author_id") == me
        and comment.get("public", True) is True
        and (comment.get("via") or {}).get("channel") == "api"
    )


def tags_after(current: Iterable[str], add: Iterable[str], remove: Iterable[str]) -> list[str]:
    """The ticket's whole tag list after a change. On the single update ``tags`` replaces the
    ticket's tags and ``additional_tags``/``remove_tags`` are not in its schema (a client
    reports them ignored: vendor-behaviours.md Z3), so the whole list goes, under
    ``safe_update``: a tag an agent added since the read answers 409, never silently lost."""
    dropped = set(remove)
    return sorted(tag for tag in dict.fromkeys([*current, *add]) if tag not in dropped)


def comment_activity(comment: Mapping[str, Any], requester_id: Any, me: int) -> Activity | None:
    """What a comment means for the planner (None for the worker's own follow-ups: its signed
    notes and its messages, :func:`worker_message`)."""
    at = instant(comment, "created_at")
    if comment.get("author_id") != requester_id:
        if own_note(comment, me) is not None or worker_message(comment, me):
            return None
        # An agent's call reaches out to the customer as a public reply does: the turn is theirs.
        spoke = comment.get("public", True) or _is_call(comment)
        return Activity(ActivityKind.AGENT_UPDATE if spoke else ActivityKind.AGENT_NOTE, at)
    if _is_call(comment) and (comment.get("data") or {}).get("answered_by_id") is None:
        return Activity(ActivityKind.MISSED_CALL, at)
    custom = (comment.get("metadata") or {}).get("custom") or {}
    if not comment.get("public", True) and custom.get("missed"):
        return Activity(ActivityKind.MISSED_EMAIL, at)
    return Activity(ActivityKind.CUSTOMER_REPLY, at)


def _is_call(comment: Mapping[str, Any]) -> bool:
    return (
        comment.get("type") == "VoiceComment"
        or (comment.get("via") or {}).get("channel") == "voice"
    )


def has_inbound(comments: Iterable[Mapping[str, Any]], requester_id: Any) -> bool:
    """Whether any of ``comments`` is the requester's activity (a reply, call, email): every
    comment of the requester's is (:func:`comment_activity`)."""
    return any(comment.get("author_id") == requester_id for comment in comments)


class IndexedComment(NamedTuple):
    """A comment as the ticket event export showed it, cut down to what this module reads of
    a comment: the body only when it is one of the worker's signed notes, no html, no
    attachments. Small enough (about 250 bytes) for every ticket's comments to be held at once."""

    author_id: int | str
    created_at: str
    public: bool
    type: str
    channel: str | None
    answered_by_id: int | str | None  # of a voice comment: who took the call
    missed: bool
    body: str  # "" unless the worker signed it

    def as_comment(self) -> dict[str, Any]:
        """The comment as the readers here take it (the shape of a ticket's comments)."""
        comment: dict[str, Any] = {
            "author_id": self.author_id,
            "created_at": self.created_at,
            "public": self.public,
            "type": self.type,
            "via": {"channel": self.channel},
            "body": self.body,
        }
        if self.answered_by_id is not None:
            comment["data"] = {"answered_by_id": self.answered_by_id}
        if self.missed:
            comment["metadata"] = {"custom": {"missed": True}}
        return comment


def indexed_comment(child: Mapping[str, Any]) -> IndexedComment | None:
    """A comment child event of the ticket event export, compact; None when a value is not
    what Zendesk sends, which a compact copy could not keep (the ticket is then read alone)."""
    via, data = child.get("via") or {}, child.get("data") or {}
    metadata = child.get("metadata") or {}
    custom = (metadata.get("custom") or {}) if isinstance(metadata, Mapping) else None
    author, created, public = child.get("author_id"), child.get("created_at"), child.get("public")
    kind, body = child.get("type"), child.get("body") or ""
    if not (
        isinstance(author, int | str)
        and not isinstance(author, bool)
        and isinstance(created, str)
        and isinstance(public, bool)
        and isinstance(kind, str)
        and isinstance(body, str)
        and isinstance(via, Mapping)
        and isinstance(data, Mapping)
        and isinstance(custom, Mapping)
    ):
        return None
    channel, answered_by = via.get("channel"), data.get("answered_by_id")
    if not (isinstance(channel, str | None) and isinstance(answered_by, int | str | None)):
        return None
    return IndexedComment(
        author_id=author,
        created_at=created,
        public=public,
        # Repeated words are shared, not held once per comment.
        type=sys.intern(kind),
        channel=None if channel is None else sys.intern(channel),
        answered_by_id=answered_by,
        missed=bool(custom.get("missed")),
        body=body if signed(body) else "",
    )


def _body(comment: Mapping[str, Any]) -> str:
    return optional_text(comment, "body") or ""


def _requester(user: Mapping[str, Any] | None, requester_id: Any) -> Requester | None:
    if requester_id is None:
        return None
    if user is None:
        return Requester(id=str(requester_id))
    return Requester(
        id=text(user, "id"),
        name=optional_text(user, "name") or "",
        email=optional_text(user, "email"),
        phone=optional_text(user, "phone"),
    )


def _custom_fields(ticket: Mapping[str, Any], ids: ZendeskIds) -> dict[str, str]:
    names = ids.field_names()
    fields = {}
    for custom in ticket.get("custom_fields") or []:
        logical = names.get(custom["id"])
        if logical is not None and (value := ids.read_value(logical, custom["value"])):
            fields[logical] = value
    return fields


def _tags(ticket: Mapping[str, Any]) -> frozenset[str]:
    tags = ticket.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise TypeError(f"tags: expected a list of strings, got {type(tags).__name__}")
    return frozenset(tags)


def ticket_case(
    ticket: Mapping[str, Any],
    users: Mapping[Any, Mapping[str, Any]],
    comments: Iterable[Mapping[str, Any]],
    ids: ZendeskIds,
) -> Case:
    """A ticket, with its side-loaded ``users`` and the ``comments`` read for it, as a case.
    Raises :class:`~connectors.errors.BadRecord` when the ticket cannot be read."""
    with translating("zendesk", ticket):
        return _ticket_case(ticket, users, comments, ids)


def _ticket_case(
    ticket: Mapping[str, Any],
    users: Mapping[Any, Mapping[str, Any]],
    comments: Iterable[Mapping[str, Any]],
    ids: ZendeskIds,
) -> Case:
    requester_id = ticket.get("requester_id")
    comments = list(comments)
    followups = [mark for comment in comments if (mark := own_note(comment, ids.me))]
    history = [
        activity
        for comment in comments
        if (activity := comment_activity(comment, requester_id, ids.me)) is not None
    ]
    agents: dict[Any, str] = {v: k for k, v in ids.agents.items()}
    groups: dict[Any, str] = {v: k for k, v in ids.groups.items()}
    priority = optional_text(ticket, "priority")
    return Case(
        source=Source.ZENDESK,
        id=text(ticket, "id"),
        kind=CaseKind.TICKET,
        status=Status(ticket["status"]),
        created_at=instant(ticket, "created_at"),
        updated_at=instant(ticket, "updated_at"),
        subject=optional_text(ticket, "subject") or "",
        priority=Priority(priority) if priority else None,
        requester=_requester(users.get(requester_id), requester_id),
        account_id=optional_text(ticket, "organization_id"),
        assignee=agents.get(ticket.get("assignee_id")),
        group=groups.get(ticket.get("group_id")),
        brand=optional_text(ticket, "brand_id"),
        fields=_custom_fields(ticket, ids),
        tags=_tags(ticket),
        history=tuple(sorted(history, key=lambda a: a.at)),
        followups=tuple(sorted(followups, key=lambda m: m.at)),
        updated_stamp=ticket["updated_at"],
    )
