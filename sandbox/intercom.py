"""Intercom state and behaviour: contacts, companies, admins, conversations, tickets.

Contacts mirror the Zendesk end users (same people, same plans); companies mirror the
organizations. Conversations and tickets are generated lazily and copied on first write.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sandbox.clock import SandboxClock, format_iso
from sandbox.errors import VendorError
from sandbox.generator import Generator
from sandbox.generator_intercom import (
    CONVERSATION_BASE,
    INTERCOM_TICKET_BASE,
    MESSAGE_CONVERSATION_BASE,
    IntercomGenerator,
    conversation_people,
    intercom_author,
    intercom_ticket_state,
    intercom_ticket_type,
    parse_intercom_id,
)
from sandbox.outbox import Outbox
from sandbox.tenant import AGENTS, API_USER, INTERCOM_TICKET_STATES, INTERCOM_TICKET_TYPES

__all__ = [
    "IntercomDesk",
    "admin_json",
    "error",
    "search_matcher",
    "ticket_query",
    "ticket_states",
]

_ADMINS = {agent.intercom_id: agent for agent in (API_USER, *AGENTS)}
_STATES = {state.id: state for state in INTERCOM_TICKET_STATES}
_TYPES = {kind.id: kind for kind in INTERCOM_TICKET_TYPES}
_CATEGORY_TERMS = {"request": "Customer", "task": "Back-office", "tracker": "Tracker"}
_OPERATORS = ("=", "!=", "IN", "NIN", ">", "<", "~", "!~", "^", "$")


def error(status: int, code: str, message: str) -> VendorError:
    return VendorError(
        status,
        {
            "type": "error.list",
            "request_id": str(uuid.uuid4()),
            "errors": [{"code": code, "message": message}],
        },
    )


def admin_json(admin_id: str) -> dict[str, Any]:
    agent = _ADMINS[admin_id]
    return {
        "type": "admin",
        "id": agent.intercom_id,
        "name": agent.name,
        "email": agent.email,
        "job_title": "Support",
        "away_mode_enabled": False,
        "away_mode_reassign": False,
        "has_inbox_seat": True,
        "team_ids": [],
        "avatar": f"https://static.sandbox.example/avatars/{agent.intercom_id}.png",
    }


class IntercomDesk:
    def __init__(self, generator: Generator, clock: SandboxClock, outbox: Outbox) -> None:
        self._generator = generator
        self._data = IntercomGenerator(generator)
        self._clock = clock
        self._outbox = outbox
        self._generated_conversation = lru_cache(maxsize=2048)(self._data.conversation)
        self.conversations: dict[int, dict[str, Any]] = {}
        self.tickets: dict[int, dict[str, Any]] = {}
        self.messages_sent = 0

    # --- reading ---------------------------------------------------------------------

    @property
    def contact_count(self) -> int:
        return self._generator.contact_count

    @property
    def conversation_count(self) -> int:
        return self._generator.conversation_count + self.messages_sent

    def admin_ids(self) -> list[str]:
        return list(_ADMINS)

    def admin(self, admin_id: str) -> dict[str, Any]:
        if admin_id not in _ADMINS:
            raise error(404, "admin_not_found", "Admin not found")
        return admin_json(admin_id)

    def contact(self, contact_id: str) -> dict[str, Any]:
        index = parse_intercom_id(contact_id, "6")
        if index is None or not self._data.has_contact(index):
            raise error(404, "not_found", "User Not Found")
        return self._data.contact(index)

    def contacts(self, skip: int = 0) -> Iterator[dict[str, Any]]:
        for index in range(skip + 1, self._generator.contact_count + 1):
            yield self._data.contact(index)

    def company(self, company_id: str) -> dict[str, Any]:
        index = parse_intercom_id(company_id, "7")
        if index is None or not 1 <= index <= self._generator.org_count:
            raise error(404, "company_not_found", "Company Not Found")
        return self._data.company(index)

    def companies(self) -> Iterator[dict[str, Any]]:
        for index in range(1, self._generator.org_count + 1):
            yield self._data.company(index)

    def conversation(self, conversation_id: str) -> dict[str, Any]:
        """A conversation as of the sandbox clock: a snooze that ran out has reopened it."""
        number = int(conversation_id) if conversation_id.isdigit() else -1
        found = self.conversations.get(number)
        if found is None:
            if not self._data.has_conversation(number):
                raise error(404, "conversation_not_found", "Conversation not found")
            found = self._generated_conversation(number)
        until = found["snoozed_until"]
        if found["state"] == "snoozed" and until is not None and until <= self._now():
            return self._wake(number, found, until)
        return found

    def _wake(self, number: int, snoozed: dict[str, Any], until: int) -> dict[str, Any]:
        conversation = self.conversations.setdefault(number, copy.deepcopy(snoozed))
        conversation.update(state="open", open=True, snoozed_until=None)
        bot = intercom_author("bot", "0", "Operator", None)
        part = self._append_part(conversation, "timer_unsnooze", bot, None)
        part["created_at"] = part["updated_at"] = part["notified_at"] = until
        return conversation

    def all_conversations(self, skip: int = 0) -> Iterator[dict[str, Any]]:
        """The generated conversations, then those the messages sent started."""
        generated = self._generator.conversation_count
        for offset in range(skip + 1, generated + 1):
            yield self.conversation(str(CONVERSATION_BASE + offset))
        for sent in range(max(0, skip - generated) + 1, self.messages_sent + 1):
            yield self.conversations[MESSAGE_CONVERSATION_BASE + sent]

    def ticket(self, ticket_id: str) -> dict[str, Any]:
        number = int(ticket_id) if ticket_id.isdigit() else -1
        found = self.tickets.get(number)
        if found is not None:
            return found
        if not self._data.has_ticket(number):
            raise error(404, "ticket_not_found", "Ticket not found")
        return self._data.ticket(number)

    def all_tickets(self, skip: int = 0) -> Iterator[dict[str, Any]]:
        for offset in range(skip + 1, self._generator.intercom_ticket_count + 1):
            yield self.ticket(str(INTERCOM_TICKET_BASE + offset))

    # --- writing ---------------------------------------------------------------------

    def _writable_conversation(self, conversation_id: str) -> dict[str, Any]:
        current = self.conversation(conversation_id)
        number = int(conversation_id)
        if number not in self.conversations:
            self.conversations[number] = copy.deepcopy(current)
        return self.conversations[number]

    def _now(self) -> int:
        return int(self._clock.now().timestamp())

    def _append_part(
        self,
        record: dict[str, Any],
        part_type: str,
        author: dict[str, Any],
        body: str | None,
        **extra: Any,
    ) -> dict[str, Any]:
        """A part at the end of a conversation or a ticket (``record["type"]``)."""
        kind = record["type"]
        now = max(self._now(), record["updated_at"])
        parts = record[f"{kind}_parts"]
        number = parts["total_count"] + 1
        part = {
            "type": f"{kind}_part",
            "id": f"{record['id']}{number:04d}",
            "part_type": part_type,
            "body": body,
            "created_at": now,
            "updated_at": now,
            **({"notified_at": now} if kind == "conversation" else {}),
            "author": author,
            "attachments": [],
            "external_id": None,
            "redacted": False,
            **extra,
        }
        parts[f"{kind}_parts"].append(part)
        parts["total_count"] = number
        if kind == "conversation":
            record["statistics"]["count_conversation_parts"] = number
        record["updated_at"] = now
        return part

    def _admin_author(self, admin_id: Any) -> dict[str, Any]:
        admin_id = str(admin_id)
        if admin_id not in _ADMINS:
            raise error(404, "admin_not_found", f"Admin {admin_id} not found")
        agent = _ADMINS[admin_id]
        return intercom_author("admin", agent.intercom_id, agent.name, agent.email)

    def _admin_message(
        self, body: dict[str, Any], wrong_type: str
    ) -> tuple[str, str, dict[str, Any]]:
        """An admin's comment or note: its message type, its body and its author."""
        message_type, text = body.get("message_type"), body.get("body")
        if body.get("type") != "admin":
            raise error(400, "parameter_invalid", wrong_type)
        if message_type not in ("comment", "note"):
            raise error(400, "parameter_invalid", "message_type must be comment or note")
        if not isinstance(text, str) or not text.strip():
            raise error(400, "parameter_not_found", "body is required")
        return message_type, text, self._admin_author(body.get("admin_id"))

    def reply(self, conversation_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /conversations/{id}/reply``: admin comment or note, or a contact's reply."""
        message_type = body.get("message_type")
        text = body.get("body")
        if body.get("type") == "user":
            if message_type != "comment" or not isinstance(text, str):
                raise error(400, "parameter_invalid", "A user reply is a comment with a body")
            return self.contact_reply(conversation_id, text)
        message_type, text, author = self._admin_message(body, "type must be admin or user")
        conversation = self._writable_conversation(conversation_id)
        part = self._append_part(conversation, message_type, author, text)
        if message_type == "comment":
            conversation["waiting_since"] = None
            conversation["statistics"]["last_admin_reply_at"] = part["created_at"]
            contact = self.contact(conversation["contacts"]["contacts"][0]["id"])
            self._outbox.send(
                at=_iso(part["created_at"]),
                vendor="intercom",
                ref=f"intercom:{conversation['id']}",
                to=contact["email"] or None,
                subject="New message from Support",
                body=text,
            )
        return conversation

    def contact_reply(self, conversation_id: str, text: str) -> dict[str, Any]:
        """The customer writes back: the conversation opens and waits on the team."""
        conversation = self._writable_conversation(conversation_id)
        contact = self.contact(conversation["contacts"]["contacts"][0]["id"])
        author = intercom_author("user", contact["id"], contact["name"], contact["email"])
        part = self._append_part(conversation, "comment", author, text)
        conversation.update(state="open", open=True, snoozed_until=None)
        conversation["waiting_since"] = part["created_at"]
        conversation["statistics"]["last_contact_reply_at"] = part["created_at"]
        return conversation

    def manage(self, conversation_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /conversations/{id}/parts``: close, snooze, open or assign."""
        message_type = body.get("message_type")
        if message_type not in ("close", "snoozed", "open", "assignment"):
            raise error(
                400, "parameter_invalid", "message_type must be close, snoozed, open or assignment"
            )
        author = self._admin_author(body.get("admin_id"))
        self.conversation(conversation_id)
        if message_type == "snoozed":
            until = body.get("snoozed_until")
            if not isinstance(until, int) or until <= self._now():
                raise error(400, "parameter_invalid", "snoozed_until must be a future timestamp")
        if message_type == "assignment":
            assignee = str(body.get("assignee_id", ""))
            if assignee not in _ADMINS and assignee != "0":
                raise error(404, "admin_not_found", f"Admin {assignee} not found")
        conversation = self._writable_conversation(conversation_id)
        if message_type == "close":
            conversation.update(state="closed", open=False, snoozed_until=None)
            self._append_part(conversation, "close", author, body.get("body"))
        elif message_type == "snoozed":
            conversation.update(state="snoozed", open=True, snoozed_until=body["snoozed_until"])
            self._append_part(conversation, "snoozed", author, None)
        elif message_type == "open":
            conversation.update(state="open", open=True, snoozed_until=None)
            self._append_part(conversation, "open", author, None)
        else:
            conversation["admin_assignee_id"] = int(body["assignee_id"])
            assigned = {"type": "admin", "id": str(body["assignee_id"])}
            self._append_part(conversation, "assignment", author, body.get("body"),
                              assigned_to=assigned)  # fmt: skip
        return conversation

    def send_message(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /messages``: an admin-initiated email or in-app message to one contact.

        ``from.id`` is the admin's integer id and ``to.type`` the contact's role, ``user`` or
        ``lead`` (vendor-behaviours I1): a string id is refused, and a contact looked up under
        the other role is not found. The message starts a conversation whose ``source`` is the
        message, found by conversation search (``source.body ~``), but kept out of the inbox
        (closed) unless ``create_conversation_without_contact_reply`` asks for it (I4).
        """
        kind = {"email": "email", "inapp": "inapp", "in_app": "inapp"}.get(
            str(body.get("message_type"))
        )
        if kind is None:
            raise error(400, "parameter_invalid", "message_type must be email or in_app")
        text, subject = body.get("body"), body.get("subject")
        if not isinstance(text, str) or not text.strip():
            raise error(400, "parameter_not_found", "No body supplied for message")
        if kind == "email" and (not isinstance(subject, str) or not subject.strip()):
            raise error(400, "parameter_not_found", "No subject supplied for email message")
        sender, recipient = body.get("from"), body.get("to")
        if not isinstance(sender, dict) or sender.get("type") != "admin":
            raise error(400, "parameter_invalid", "from must be {type: admin, id}")
        admin_id = sender.get("id")
        if not isinstance(admin_id, int) or isinstance(admin_id, bool):
            raise error(400, "parameter_invalid", "from.id must be an integer")
        if not isinstance(recipient, dict) or recipient.get("type") not in ("user", "lead"):
            raise error(400, "parameter_invalid", "to must be one {type: user|lead, id} recipient")
        admin = self.admin(str(admin_id))
        contact = self._contact_as(str(recipient.get("id")), str(recipient["type"]))
        now = self._now()
        self.messages_sent += 1
        conversation = self._message_conversation(
            admin,
            contact,
            kind,
            text,
            subject,
            bool(body.get("create_conversation_without_contact_reply")),
        )
        message: dict[str, Any] = {
            "type": "admin_message",
            "id": str(self.messages_sent),
            "created_at": now,
            "body": text,
            "message_type": kind,
            "owner": admin,
            "conversation_id": conversation["id"],
        }
        if kind == "email":
            message["subject"] = subject
        self._outbox.send(
            at=_iso(now),
            vendor="intercom",
            ref=f"intercom:contact:{contact['id']}",
            to=(contact["email"] or None) if kind == "email" else None,
            subject=str(subject) if kind == "email" else "(in-app message)",
            body=text,
        )
        return message

    def _contact_as(self, contact_id: str, role: str) -> dict[str, Any]:
        found = self.contact(contact_id)
        if found["role"] != role:
            raise error(404, "not_found", f"{role.capitalize()} Not Found")
        return found

    def _message_conversation(
        self,
        admin: dict[str, Any],
        contact: dict[str, Any],
        kind: str,
        text: str,
        subject: Any,
        in_inbox: bool,
    ) -> dict[str, Any]:
        number = MESSAGE_CONVERSATION_BASE + self.messages_sent
        now = self._now()
        author = intercom_author("admin", admin["id"], admin["name"], admin["email"])
        conversation: dict[str, Any] = {
            "type": "conversation",
            "id": str(number),
            "title": None,
            "created_at": now,
            "updated_at": now,
            "waiting_since": None,
            "snoozed_until": None,
            "open": in_inbox,
            "state": "open" if in_inbox else "closed",
            "read": True,
            "priority": "none",
            "admin_assignee_id": 0,  # unassigned
            "team_assignee_id": 0,
            "tags": {"type": "tag.list", "tags": []},
            "source": {
                "type": "conversation",
                "id": f"{number}0",
                "delivered_as": "admin_initiated",
                "subject": subject if kind == "email" else "",
                "body": text,
                "author": author,
                "attachments": [],
                "url": None,
                "redacted": False,
            },
            **conversation_people(contact, admin["id"]),
            "custom_attributes": {},
            "statistics": {
                "type": "conversation_statistics",
                "first_admin_reply_at": now,  # the contact has not replied: no such keys
                "last_admin_reply_at": now,
                "count_conversation_parts": 0,
            },
            "conversation_parts": {
                "type": "conversation_part.list",
                "conversation_parts": [],
                "total_count": 0,
            },
        }
        self.conversations[number] = conversation
        return conversation

    def _writable_ticket(self, ticket_id: str) -> dict[str, Any]:
        current = self.ticket(ticket_id)
        return self.tickets.setdefault(int(ticket_id), copy.deepcopy(current))

    def reply_ticket(self, ticket_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /tickets/{id}/reply``: an admin's comment or note; answers the new part."""
        message_type, text, author = self._admin_message(body, "type must be admin")
        ticket = self._writable_ticket(ticket_id)
        part = self._append_part(ticket, message_type, author, text)
        if message_type == "comment":
            contact = self.contact(ticket["contacts"]["contacts"][0]["id"])
            self._outbox.send(
                at=_iso(part["created_at"]),
                vendor="intercom",
                ref=f"intercom:ticket:{ticket['id']}",
                to=contact["email"] or None,
                subject="Update on your ticket",
                body=text,
            )
        return part

    def update_ticket(self, ticket_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """``PUT /tickets/{id}``: state, open/closed, snooze, assignee."""
        # company_id and is_shared are described too, but not modelled: refused, not ignored.
        modelled = {"ticket_attributes", "ticket_state_id", "open", "snoozed_until", "admin_id",
                    "assignee_id"}  # fmt: skip
        unknown = sorted(set(body) - modelled)
        if unknown:
            raise error(400, "parameter_invalid", f"Unsupported parameter(s): {', '.join(unknown)}")
        current = self.ticket(ticket_id)
        state_id = body.get("ticket_state_id")
        # A state must exist and belong to the ticket's type (vendor-behaviours I2).
        if state_id is not None and (
            str(state_id) not in _STATES
            or current["ticket_type"]["id"] not in _STATES[str(state_id)].ticket_types
        ):
            raise error(400, "ticket_state_id_invalid", "Ticket state id is not valid or is not "
                        "associated with the ticket type")  # fmt: skip
        author = self._admin_author(body.get("admin_id", API_USER.intercom_id))
        assignee = str(body.get("assignee_id", "0"))
        if assignee not in _ADMINS and assignee != "0":
            raise error(404, "assignee_not_found", "Assignee not found")
        ticket = self._writable_ticket(ticket_id)
        if state_id is not None:
            previous = ticket["ticket_state"]
            state = _STATES[str(state_id)]
            ticket["previous_ticket_state_id"] = previous["id"]
            ticket["ticket_state"] = intercom_ticket_state(state)
            ticket["open"] = state.category != "resolved"
            self._append_part(ticket, "ticket_state_updated_by_admin", author, None,
                              ticket_state=state.category,
                              previous_ticket_state=previous["category"])  # fmt: skip
        if "open" in body:
            ticket["open"] = bool(body["open"])
        if body.get("snoozed_until") is not None:
            ticket["snoozed_until"] = body["snoozed_until"]
        elif "snoozed_until" in body:
            ticket.pop("snoozed_until", None)  # the description has no null here: left out
        if "assignee_id" in body:
            ticket["admin_assignee_id"] = int(body["assignee_id"])
            assigned = {"type": "admin", "id": str(body["assignee_id"])}
            self._append_part(ticket, "assignment", author, None, assigned_to=assigned)
        if isinstance(body.get("ticket_attributes"), dict):
            ticket["ticket_attributes"].update(body["ticket_attributes"])
        ticket["updated_at"] = max(self._now(), ticket["updated_at"])
        return ticket

    # --- persistence -------------------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        return {
            "conversations": self.conversations,
            "tickets": self.tickets,
            "messages_sent": self.messages_sent,
        }

    def load(self, data: dict[str, Any]) -> None:
        self.conversations = {int(k): v for k, v in data.get("conversations", {}).items()}
        self.tickets = {int(k): v for k, v in data.get("tickets", {}).items()}
        self.messages_sent = int(data.get("messages_sent", 0))


def ticket_states() -> list[dict[str, Any]]:
    """``GET /ticket_states``: each state with the ticket types it belongs to."""
    return [
        {
            **intercom_ticket_state(state),
            "ticket_types": {
                "type": "list",
                "data": [intercom_ticket_type(_TYPES[kind]) for kind in state.ticket_types],
            },
            "archived": False,
        }
        for state in INTERCOM_TICKET_STATES
    ]


def ticket_query(query: Any) -> Any:
    """A ticket search names categories by terms, not by their names: ``request`` finds
    Customer tickets, ``task`` Back-office ones, ``tracker`` Trackers; any other word none."""
    if not isinstance(query, dict):
        return query
    if query.get("operator") in ("AND", "OR") and isinstance(query.get("value"), list):
        return {**query, "value": [ticket_query(child) for child in query["value"]]}
    if query.get("field") != "category":
        return query
    value = query.get("value")
    if isinstance(value, list):
        return {**query, "value": [_CATEGORY_TERMS.get(str(v)) for v in value]}
    return {**query, "value": _CATEGORY_TERMS.get(str(value))}


def search_matcher(query: Any) -> Any:
    """Intercom search: ``{field, operator, value}`` leaves under ``AND``/``OR`` nodes."""
    if not isinstance(query, dict):
        raise error(400, "parameter_invalid", "query must be an object")
    operator = query.get("operator")
    if operator in ("AND", "OR"):
        children = query.get("value")
        if not isinstance(children, list) or not children:
            raise error(400, "parameter_invalid", f"{operator} needs a list of queries")
        tests = [search_matcher(child) for child in children]
        combine = all if operator == "AND" else any
        return lambda item: combine(test(item) for test in tests)
    field = query.get("field")
    if not isinstance(field, str) or operator not in _OPERATORS:
        raise error(400, "parameter_invalid", f"Unsupported query {query!r}")
    value = query.get("value")
    return lambda item: _compare(_lookup(item, field), operator, value)


def _lookup(item: dict[str, Any], field: str) -> Any:
    if field == "id":
        return item["id"]
    if field in ("contact_ids", "contacts.id"):
        return [c["id"] for c in item.get("contacts", {}).get("contacts", [])]
    if field in ("company_ids", "companies.id"):
        return [c["id"] for c in item.get("companies", {}).get("data", [])]
    current: Any = item
    for part in field.split("."):
        if not isinstance(current, dict):
            return None
        current = current.get(part)
    return current


def _compare(actual: Any, operator: str, expected: Any) -> bool:
    if isinstance(actual, list):
        hits = [_compare(one, "=", expected) for one in actual]
        return any(hits) if operator in ("=", "IN", "~") else not any(hits)
    if operator in ("IN", "NIN"):
        found = isinstance(expected, list) and any(_same(actual, one) for one in expected)
        return found if operator == "IN" else not found
    if operator in ("=", "!="):
        return _same(actual, expected) == (operator == "=")
    if actual is None:
        return False
    if operator in (">", "<"):
        try:
            left, right = float(actual), float(expected)
        except (TypeError, ValueError):
            return False
        # "Greater (or equal) than", "Lower (or equal) than" (intercom-2.16.yaml 11702-11703,
        # 21165-21166): a search from a kept updated_at shows the records of that second too.
        return left >= right if operator == ">" else left <= right
    text, wanted = str(actual).lower(), str(expected).lower()
    return {
        "~": wanted in text,
        "!~": wanted not in text,
        "^": text.startswith(wanted),
        "$": text.endswith(wanted),
    }[operator]


def _same(actual: Any, expected: Any) -> bool:
    if isinstance(actual, bool) or isinstance(expected, bool):
        return str(actual).lower() == str(expected).lower()
    return str(actual) == str(expected) if actual is not None else expected is None


def _iso(epoch: int) -> str:
    return format_iso(datetime.fromtimestamp(epoch, UTC))
