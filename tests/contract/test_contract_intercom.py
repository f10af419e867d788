"""Every request the Intercom connector sends, and every response it parses, against the
Intercom 2.16 OpenAPI description: admins, contacts, conversation search, a conversation with
its parts, and the reply, assignment, close and admin note of one plan item; ticket search,
ticket states (with their ticket types), and a ticket's reply, state and assignee update and
note; companies and their plans; an email to a lead, looked for by its marker first."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest
import respx

from connectors.base import WriteOutcome
from connectors.intercom import IntercomConnector
from connectors.mapping import IntercomMapping
from connectors.settings import Timeouts, VendorLimits
from policies.model import Action, ActionType, Case, CaseKind, PlanItem, Source, Status
from tests.contract.contract_support import Recorder, contract_errors, openapi

BASE = "https://api.intercom.io"


@pytest.fixture(scope="module", autouse=True)
def spec_loaded() -> None:
    openapi("intercom")


def admin(id: str, name: str) -> dict[str, object]:
    return {
        "type": "admin",
        "id": id,
        "name": name,
        "email": f"{id}@example.com",
        "away_mode_enabled": False,
        "away_mode_reassign": False,
        "has_inbox_seat": True,
        "team_ids": [],
    }


def conversation(id: str) -> dict[str, object]:
    return {
        "type": "conversation",
        "id": id,
        "title": None,
        "created_at": 1_770_000_000,
        "updated_at": 1_770_000_500,
        "waiting_since": None,
        "snoozed_until": None,
        "open": True,
        "state": "open",
        "read": True,
        "priority": "none",
        "admin_assignee_id": 2,
        "tags": {"type": "tag.list", "tags": []},
        "source": {
            "type": "conversation",
            "id": "s1",
            "delivered_as": "customer_initiated",
            "subject": "",
            "body": "<p>Help</p>",
            "author": {"type": "user", "id": "c1", "name": "Ann", "email": "a@x.test"},
        },
        "contacts": {"type": "contact.list", "contacts": [{"type": "contact", "id": "c1"}]},
        "statistics": {
            "type": "conversation_statistics",
            "last_contact_reply_at": 1_770_000_100,
            "last_admin_reply_at": 1_770_000_300,
        },
        "conversation_parts": {
            "type": "conversation_part.list",
            "total_count": 1,
            "conversation_parts": [
                {
                    "type": "conversation_part",
                    "id": "p1",
                    "part_type": "comment",
                    "body": "<p>Looking</p>",
                    "created_at": 1_770_000_300,
                    "updated_at": 1_770_000_300,
                    "notified_at": 1_770_000_300,
                    "author": {
                        "type": "admin",
                        "id": "2",
                        "name": "Roxy V",
                        "email": "2@example.com",
                    },
                    "attachments": [],
                    "redacted": False,
                }
            ],
        },
    }


def ticket(id: str) -> dict[str, object]:
    return {
        "type": "ticket",
        "id": id,
        "ticket_id": "7",
        "category": "Customer",
        "ticket_attributes": {"_default_title_": "Order stuck", "_default_description_": "Help"},
        "ticket_state": STATES[1],
        "ticket_type": TICKET_TYPE,
        "contacts": {"type": "contact.list", "contacts": [{"type": "contact", "id": "c1"}]},
        "admin_assignee_id": 2,
        "team_assignee_id": 0,
        "created_at": 1_770_000_000,
        "updated_at": 1_770_000_500,
        "open": True,
        "is_shared": True,
        "previous_ticket_state_id": None,
        "ticket_parts": {
            "type": "ticket_part.list",
            "total_count": 1,
            "ticket_parts": [
                {
                    "type": "ticket_part",
                    "id": "t1",
                    "part_type": "comment",
                    "body": "<p>Which order?</p>",
                    "created_at": 1_770_000_300,
                    "updated_at": 1_770_000_300,
                    "author": {"type": "admin", "id": "2", "name": "Roxy V"},
                    "attachments": [],
                    "redacted": False,
                }
            ],
        },
    }


TICKET_TYPE = {
    "type": "ticket_type",
    "id": "55",
    "name": "Order issue",
    "description": "An order that does not go through",
    "icon": "📦",
    "archived": False,
    "is_internal": False,
    "category": "Customer",
}
STATES = [
    {
        "type": "ticket_state",
        "id": str(4001 + n),
        "category": category,
        "internal_label": label,
        "external_label": label,
    }
    for n, (category, label) in enumerate(
        [
            ("submitted", "Submitted"),
            ("in_progress", "In progress"),
            ("waiting_on_customer", "Waiting on customer"),
            ("resolved", "Resolved"),
        ]
    )
]
LISTED_STATES = [
    {**state, "ticket_types": {"type": "list", "data": [TICKET_TYPE]}, "archived": False}
    for state in STATES
]


@pytest.fixture
def router() -> respx.MockRouter:
    router = respx.MockRouter(assert_all_called=True, base_url=BASE)
    router.get("/admins").respond(
        json={"type": "admin.list", "admins": [admin("1", "Followup Worker"), admin("2", "Roxy V")]}
    )
    lead = {
        "type": "contact",
        "id": "c1",
        "role": "lead",
        "name": "Ann",
        "custom_attributes": {"account_status": "active"},
        "companies": {
            "type": "list",
            "data": [{"type": "company", "id": "co1", "url": "/companies/co1"}],
            "url": "/contacts/c1/companies",
            "total_count": 1,
            "has_more": False,
        },
    }
    router.get("/contacts").respond(
        json={
            "type": "list",
            "total_count": 1,
            "data": [lead],
            "pages": {"type": "pages", "page": 1, "per_page": 150, "total_pages": 1},
        }
    )
    router.get("/contacts/c1").respond(json=lead)
    router.get("/companies").respond(
        json={
            "type": "list",
            "total_count": 1,
            "data": [
                {
                    "type": "company",
                    "id": "co1",
                    "name": "Acme",
                    "plan": {"type": "plan", "id": "269315", "name": "Enterprise"},
                }
            ],
            "pages": {"type": "pages", "page": 1, "per_page": 50, "total_pages": 1},
        }
    )

    def search(request: httpx.Request) -> httpx.Response:
        # The open conversations; none carries the marker of the email not yet sent.
        query = json.loads(request.content)["query"]
        found = [] if query.get("field") == "source.body" else [conversation("10")]
        return httpx.Response(
            200,
            json={
                "type": "conversation.list",
                "total_count": len(found),
                "conversations": found,
                "pages": {"type": "pages", "page": 1, "per_page": 150, "total_pages": 1},
            },
        )

    router.post("/conversations/search").mock(side_effect=search)
    router.post("/messages").respond(
        json={
            "type": "user_message",
            "id": "403918396",
            "created_at": 1_770_000_700,
            "body": "Still on it.",
            "message_type": "email",
            "conversation_id": "64619700005570",
        }
    )
    router.get("/conversations/10").respond(json=conversation("10"))
    router.post("/conversations/10/reply").respond(json=conversation("10"))
    router.post("/conversations/10/parts").respond(json=conversation("10"))
    router.post("/tickets/search").respond(
        json={
            "type": "ticket.list",
            "total_count": 1,
            "tickets": [ticket("20")],
            "pages": {"type": "pages", "page": 1, "per_page": 150, "total_pages": 1},
        }
    )
    router.get("/ticket_states").respond(json={"type": "list", "data": LISTED_STATES})
    router.get("/tickets/20").respond(json=ticket("20"))
    router.put("/tickets/20").respond(json=ticket("20"))
    router.post("/tickets/20/reply").respond(
        json={
            "type": "ticket_part",
            "id": "t2",
            "part_type": "note",
            "body": "<p>2/3</p>",
            "created_at": 1_770_000_600,
            "updated_at": 1_770_000_600,
            "author": {"type": "admin", "id": "1", "name": "Followup Worker"},
            "attachments": [],
            "redacted": False,
        }
    )
    return router


async def test_intercom_requests_and_responses_follow_the_description(
    router: respx.MockRouter,
) -> None:
    recorder = Recorder(router)
    intercom = IntercomConnector.connect(
        BASE,
        "token",
        IntercomMapping(admin="Followup Worker"),
        limits=VendorLimits(),
        timeouts=Timeouts(),
        transport=recorder,
    )
    async with intercom:
        _ = [a async for a in intercom.accounts()]
        assert await intercom.email_contact("c1", "Update on your bug", "Still on it.", "fw-ab12")
        conversation_case, ticket_case = [c async for c in intercom.cases()]
        now = datetime(2026, 3, 10, tzinfo=UTC)
        item_case = Case(Source.INTERCOM, "10", CaseKind.CONVERSATION, Status.PENDING, now, now)
        actions = (
            Action(ActionType.REPLY, {"template": "final", "body": "We are closing this."}),
            Action(ActionType.NOTE, {"body": "3/3"}),
            Action(ActionType.SET_ASSIGNEE, {"assignee": "Roxy V"}),
            Action(ActionType.SET_STATUS, {"status": "solved"}),
        )
        await intercom.apply(PlanItem(item_case, "awaiting", "final", 3, 3, actions, "r", "cd34"))
        ticket_actions = (
            Action(ActionType.REPLY, {"template": "nudge", "body": "Any news?"}),
            Action(ActionType.NOTE, {"body": "2/3"}),
            Action(ActionType.SET_ASSIGNEE, {"assignee": "Roxy V"}),
            Action(ActionType.SET_STATUS, {"status": "pending"}),
        )
        written = await intercom.apply(
            PlanItem(ticket_case, "awaiting", "nudge", 2, 3, ticket_actions, "r", "ef56")
        )
    assert (conversation_case.id, ticket_case.id) == ("10", "ticket:20")
    assert written.outcome is WriteOutcome.APPLIED
    errors = contract_errors("intercom", recorder.exchanges)
    assert not errors, "\n".join(errors)
