"""Generated Intercom data: contacts and companies mirror the Zendesk people and
organizations (same names, same plans); conversations and tickets are built from (seed, id)."""

from __future__ import annotations

from typing import Any

from sandbox.clock import parse_iso
from sandbox.generator import END_USER_BASE, ORG_BASE, Generator
from sandbox.tenant import (
    AGENTS,
    INTERCOM_TICKET_STATES,
    INTERCOM_TICKET_TYPES,
    TicketState,
    TicketType,
)

__all__ = [
    "CONVERSATION_BASE",
    "INTERCOM_TICKET_BASE",
    "LEAD_EVERY",
    "MESSAGE_CONVERSATION_BASE",
    "IntercomGenerator",
    "conversation_people",
    "intercom_author",
    "intercom_company_id",
    "intercom_contact_id",
    "intercom_ticket_state",
    "intercom_ticket_type",
    "parse_intercom_id",
]

CONVERSATION_BASE = 10_000
MESSAGE_CONVERSATION_BASE = 900_000_000  # conversations started by POST /messages
LEAD_EVERY = 5  # every fifth contact is a lead
INTERCOM_TICKET_BASE = 20_000


class IntercomGenerator:
    def __init__(self, base: Generator) -> None:
        self._base = base

    def has_contact(self, index: int) -> bool:
        return 1 <= index <= self._base.contact_count

    def contact(self, index: int) -> dict[str, Any]:
        """A contact: every fifth a lead (``role``, which ``POST /messages`` must name). The
        plan of one with a company is the company's (``plan.name``), not one of its custom
        attributes, which are the tenant's own; one without keeps it as an attribute."""
        user = self._base.end_user(END_USER_BASE + index)
        attributes = self._base.plan_of_user(user["id"])
        created = _epoch(user["created_at"])
        email = user["email"] or ""
        companies = []
        if user["organization_id"] is not None:
            org_index = user["organization_id"] - ORG_BASE
            companies = [{"type": "company", "id": intercom_company_id(org_index),
                          "url": f"/companies/{intercom_company_id(org_index)}"}]  # fmt: skip
            del attributes["plan"]
        return {
            "type": "contact",
            "id": intercom_contact_id(index),
            "workspace_id": "sandbox1",
            "external_id": str(user["id"]),
            "role": "lead" if index % LEAD_EVERY == 0 else "user",
            "email": email,
            "email_domain": email.partition("@")[2],
            "phone": user["phone"],
            "name": user["name"],
            "owner_id": None,
            "has_hard_bounced": False,
            "marked_email_as_spam": False,
            "unsubscribed_from_emails": False,
            "created_at": created,
            "updated_at": created,
            "signed_up_at": created,
            "last_seen_at": None,
            "last_replied_at": None,
            "last_contacted_at": None,
            "custom_attributes": attributes,
            "tags": {"type": "list", "data": [], "url": "", "total_count": 0, "has_more": False},
            "companies": {
                "type": "list",
                "data": companies,
                "url": "",
                "total_count": len(companies),
                "has_more": False,
            },
            "location": {"type": "location", "country": None, "region": None, "city": None},
        }

    def company(self, org_index: int) -> dict[str, Any]:
        org = self._base.organization(ORG_BASE + org_index)
        fields = org["organization_fields"]
        created = _epoch(org["created_at"])
        return {
            "type": "company",
            "id": intercom_company_id(org_index),
            "company_id": org["external_id"],
            "app_id": "sandbox1",
            "name": org["name"],
            "plan": {"type": "plan", "id": str(org_index), "name": fields["plan"]},
            "created_at": created,
            "updated_at": created,
            "remote_created_at": created,
            "last_request_at": created,
            "monthly_spend": 0,
            "session_count": 0,
            "user_count": 1,
            "size": 10,
            "website": f"https://{org['domain_names'][0]}",
            "industry": "Travel",
            "custom_attributes": {"account_status": fields["account_status"]},
            "tags": {"type": "tag.list", "tags": []},
            "segments": {"type": "segment.list", "segments": []},
        }

    def has_conversation(self, conversation_id: int) -> bool:
        return 1 <= conversation_id - CONVERSATION_BASE <= self._base.conversation_count

    def conversation(self, conversation_id: int) -> dict[str, Any]:
        index = conversation_id - CONVERSATION_BASE
        rng = self._base.rng(6, index)
        contact_index = rng.randint(1, self._base.contact_count)
        contact = self.contact(contact_index)
        admin = rng.choice(AGENTS)
        start = int(self._base.start.timestamp())
        created = start - rng.randint(2, 40) * 86_400
        parts: list[dict[str, Any]] = []
        admin_reply = created + rng.randint(600, 86_400)
        admin_author = intercom_author("admin", admin.intercom_id, admin.name, admin.email)
        parts.append(_part(conversation_id, 1, "comment", "Happy to help, which order is it?",
                           admin_reply, admin_author))  # fmt: skip
        last_contact = created
        if rng.random() < 0.5:
            last_contact = admin_reply + rng.randint(3_600, 3 * 86_400)
            contact_author = intercom_author("user", contact["id"], contact["name"],
                                             contact["email"])  # fmt: skip
            parts.append(_part(conversation_id, 2, "comment", "It is order 1234.", last_contact,
                               contact_author))  # fmt: skip
        state = rng.choices(("open", "snoozed", "closed"), (55, 15, 30))[0]
        updated = max(part["created_at"] for part in parts)
        waiting = last_contact if last_contact > admin_reply else None
        return {
            "type": "conversation",
            "id": str(conversation_id),
            "title": None,
            "created_at": created,
            "updated_at": updated,
            "waiting_since": waiting if state == "open" else None,
            "snoozed_until": start + 86_400 * rng.randint(1, 3) if state == "snoozed" else None,
            "open": state != "closed",
            "state": state,
            "read": True,
            "priority": rng.choice(("none", "none", "high")),
            "admin_assignee_id": int(admin.intercom_id),
            "team_assignee_id": 0,
            "tags": {"type": "tag.list", "tags": []},
            "source": {
                "type": "conversation",
                "id": f"{conversation_id}0",
                "delivered_as": "customer_initiated",
                "subject": "",
                "body": "<p>My order is stuck, can you help?</p>",
                "author": intercom_author("user", contact["id"], contact["name"], contact["email"]),
                "attachments": [],
                "url": None,
                "redacted": False,
            },
            **conversation_people(contact, admin.intercom_id),
            "custom_attributes": {},
            "statistics": {
                "type": "conversation_statistics",
                "first_contact_reply_at": created,
                "first_admin_reply_at": admin_reply,
                "last_contact_reply_at": last_contact,
                "last_admin_reply_at": admin_reply,
                "count_conversation_parts": len(parts),
            },
            "conversation_parts": {
                "type": "conversation_part.list",
                "conversation_parts": parts,
                "total_count": len(parts),
            },
        }

    def has_ticket(self, ticket_id: int) -> bool:
        return 1 <= ticket_id - INTERCOM_TICKET_BASE <= self._base.intercom_ticket_count

    def ticket(self, ticket_id: int) -> dict[str, Any]:
        index = ticket_id - INTERCOM_TICKET_BASE
        rng = self._base.rng(7, index)
        contact = self.contact(rng.randint(1, self._base.contact_count))
        kind = rng.choice(INTERCOM_TICKET_TYPES)
        state = rng.choice([s for s in INTERCOM_TICKET_STATES if kind.id in s.ticket_types])
        created = int(self._base.start.timestamp()) - rng.randint(1, 30) * 86_400
        admin = rng.choice(AGENTS)
        return {
            "type": "ticket",
            "id": str(ticket_id),
            "ticket_id": str(index),
            "category": "Customer",
            "ticket_attributes": {"_default_title_": "Order problem",
                                  "_default_description_": "My order is stuck."},
            "ticket_state": intercom_ticket_state(state),
            "ticket_type": intercom_ticket_type(kind),
            "contacts": {"type": "contact.list", "contacts": [
                {"type": "contact", "id": contact["id"], "external_id": contact["external_id"]}
            ]},
            "admin_assignee_id": int(admin.intercom_id),
            "team_assignee_id": 0,
            "created_at": created,
            "updated_at": created,
            "open": state.category != "resolved",
            "is_shared": True,
            "previous_ticket_state_id": None,
            "ticket_parts": {"type": "ticket_part.list", "ticket_parts": [], "total_count": 0},
        }  # fmt: skip


def _epoch(iso: str) -> int:
    return int(parse_iso(iso).timestamp())


def _part(
    conversation_id: int,
    number: int,
    part_type: str,
    body: str,
    at: int,
    author: dict[str, Any],
) -> dict[str, Any]:
    return {
        "type": "conversation_part",
        "id": f"{conversation_id}{number:04d}",
        "part_type": part_type,
        "body": f"<p>{body}</p>",
        "created_at": at,
        "updated_at": at,
        "notified_at": at,
        "author": author,
        "attachments": [],
        "external_id": None,
        "redacted": False,
    }


def intercom_author(
    author_type: str, author_id: str, name: str, email: str | None
) -> dict[str, Any]:
    """A conversation part's author; Intercom leaves ``email`` out when there is none."""
    author = {"type": author_type, "id": author_id, "name": name}
    if email:
        author["email"] = email
    return author


def intercom_contact_id(index: int) -> str:
    return f"6{index:023x}"


def intercom_company_id(index: int) -> str:
    return f"7{index:023x}"


def intercom_ticket_state(state: TicketState) -> dict[str, Any]:
    """A state as a ticket shows it."""
    return {"type": "ticket_state", "id": state.id, "category": state.category,
            "internal_label": state.internal_label,
            "external_label": state.external_label}  # fmt: skip


def intercom_ticket_type(kind: TicketType) -> dict[str, Any]:
    return {"type": "ticket_type", "id": kind.id, "name": kind.name, "description": "",
            "icon": "", "archived": False, "is_internal": False,
            "category": kind.category}  # fmt: skip


def parse_intercom_id(text: str, prefix: str) -> int | None:
    if len(text) != 24 or not text.startswith(prefix):
        return None
    try:
        return int(text[1:], 16)
    except ValueError:
        return None


def conversation_people(contact: dict[str, Any], admin_id: str) -> dict[str, Any]:
    """A conversation's ``contacts`` and ``teammates``: its one contact and one admin."""
    return {
        "contacts": {
            "type": "contact.list",
            "contacts": [
                {"type": "contact", "id": contact["id"], "external_id": contact["external_id"]}
            ],
        },
        "teammates": {"type": "admin.list", "teammates": [{"type": "admin", "id": admin_id}]},
    }
