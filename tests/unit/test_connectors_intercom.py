"""Intercom: contacts as accounts, conversations awaiting the customer, open tickets, and the
write order of each."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import respx

from connectors.base import WriteOutcome
from connectors.intercom import IntercomConnector
from connectors.intercom_json import IntercomIds, conversation_case
from connectors.mapping import IntercomMapping
from connectors.settings import Timeouts, VendorLimits
from policies.model import (
    Action,
    ActionType,
    ActivityKind,
    Case,
    CaseKind,
    FollowUpMark,
    PlanItem,
    PlanTier,
    Source,
    Status,
)
from tests.connectors_support import FakeClock, make_client

BASE = "https://api.intercom.io"
KEY = "feedfacecafebeef"
NOW = datetime(2026, 3, 10, 12, tzinfo=UTC)
FOOTER = f"— followup-worker · awaiting_customer · step 1/3 · fw-{KEY}"


@pytest.fixture
def router() -> respx.MockRouter:
    router = respx.MockRouter(assert_all_called=False, base_url=BASE)
    router.get("/admins").respond(
        json={"admins": [{"id": "1", "name": "Followup Worker"}, {"id": "2", "name": "Roxy V"}]}
    )
    router.get("/me").respond(json={"id": "1", "name": "Followup Worker"})
    return router


def connector(router: respx.MockRouter) -> IntercomConnector:
    client = make_client(router, FakeClock(), vendor="intercom", base_url=BASE)
    return IntercomConnector(client, IntercomMapping())


def conversation(
    id: str, admin_at: int | None, contact_at: int | None, **extra: Any
) -> dict[str, Any]:
    return {
        "id": id,
        "state": "open",
        "created_at": 1_770_000_000,
        "updated_at": 1_770_000_500,
        "source": {"author": {"type": "user", "id": "c1"}, "subject": "Help"},
        "contacts": {"contacts": [{"id": "c1"}]},
        "admin_assignee_id": 2,
        "statistics": {"last_admin_reply_at": admin_at, "last_contact_reply_at": contact_at},
        **extra,
    }


NO_COMPANIES = {"type": "list", "data": [], "pages": {"page": 1, "total_pages": 1}}


async def test_accounts_read_the_mapped_attributes_page_by_page(router: respx.MockRouter) -> None:
    router.get("/companies").respond(json=NO_COMPANIES)
    contacts = router.get("/contacts").mock(
        side_effect=[
            httpx.Response(
                200,
                json={
                    "data": [
                        {"id": "c1", "name": "Ann", "custom_attributes": {"plan": "standard"}}
                    ],
                    "pages": {"next": {"starting_after": "p2"}},
                },
            ),
            httpx.Response(
                200,
                json={
                    "data": [
                        {
                            "id": "c2",
                            "custom_attributes": {
                                "plan": "trial",
                                "account_status": "Canceled",
                                "stop_followups": True,
                            },
                        }
                    ],
                    "pages": {"next": None},
                },
            ),
        ]
    )
    async with connector(router) as intercom:
        accounts = [a async for a in intercom.accounts()]
    assert [(a.id, a.plan, a.canceled, a.stop_followups) for a in accounts] == [
        ("c1", PlanTier.STANDARD, False, False),
        ("c2", PlanTier.TRIAL, True, True),
    ]
    assert contacts.calls[1].request.url.params["starting_after"] == "p2"


def company(company_id: str, plan: str | None) -> dict[str, Any]:
    return {
        "type": "company",
        "id": company_id,
        "plan": {"type": "plan", "id": "9", "name": plan} if plan else [],
    }


async def test_a_contact_s_plan_is_its_company_s_else_its_own_attribute(
    router: respx.MockRouter,
) -> None:
    """vendor-behaviours I3: Intercom keeps the plan on the company (``plan.name``); the
    contact attribute is the documented fallback."""
    companies = router.get("/companies").mock(
        side_effect=[
            httpx.Response(200, json={"data": [company("co1", "enterprise")],
                                      "pages": {"page": 1, "total_pages": 2}}),
            httpx.Response(200, json={"data": [company("co2", None)],
                                      "pages": {"page": 2, "total_pages": 2}}),
        ]
    )  # fmt: skip

    def member(contact_id: str, company_id: str | None, plan: str | None) -> dict[str, Any]:
        refs = [{"type": "company", "id": company_id}] if company_id else []
        attributes = {"plan": plan} if plan else {}
        return {"id": contact_id, "custom_attributes": attributes,
                "companies": {"type": "list", "data": refs}}  # fmt: skip

    router.get("/contacts").respond(
        json={
            "data": [
                member("c1", "co1", "trial"),  # the company's plan wins over the attribute
                member("c2", "co1", None),
                member("c3", "co2", "standard"),  # a company without a plan: the attribute
                member("c4", None, "community"),  # no company: the attribute
                member("c5", None, None),  # nowhere: unknown
            ],
            "pages": {},
        }
    )
    async with connector(router) as intercom:
        accounts = {a.id: (a.plan, a.raw_plan) async for a in intercom.accounts()}
    assert accounts == {
        "c1": (PlanTier.ENTERPRISE, "enterprise"),
        "c2": (PlanTier.ENTERPRISE, "enterprise"),
        "c3": (PlanTier.STANDARD, "standard"),
        "c4": (PlanTier.COMMUNITY, "community"),
        "c5": (None, None),
    }
    assert [c.request.url.params["page"] for c in companies.calls] == ["1", "2"]


async def test_only_conversations_awaiting_the_customer_are_read_in_full(
    router: respx.MockRouter,
) -> None:
    search = router.post("/conversations/search").respond(
        json={
            "conversations": [
                conversation("10", admin_at=1_770_000_300, contact_at=1_770_000_100),
                conversation("11", admin_at=1_770_000_100, contact_at=1_770_000_300),
            ],
            "pages": {"next": None},
        }
    )
    full = conversation(
        "10",
        admin_at=1_770_000_300,
        contact_at=1_770_000_100,
        conversation_parts={
            "conversation_parts": [
                {
                    "part_type": "comment",
                    "author": {"type": "user", "id": "c1"},
                    "body": "hi",
                    "created_at": 1_770_000_100,
                },
                {
                    "part_type": "note",
                    "author": {"type": "admin", "id": "1"},
                    "body": f"<p>1/3</p><p>{FOOTER}</p>",
                    "created_at": 1_770_000_300,
                },
            ]
        },
    )
    one = router.get("/conversations/10").respond(json=full)
    other = router.get("/conversations/11")
    router.post("/tickets/search").respond(json={"tickets": [], "pages": {}})
    async with connector(router) as intercom:
        (found,) = [c async for c in intercom.cases()]
    assert json.loads(search.calls[0].request.content) == {
        "query": {"field": "open", "operator": "=", "value": True},
        "pagination": {"per_page": 150},
    }
    assert one.called
    assert not other.called
    assert (found.status, found.account_id, found.assignee) == (Status.PENDING, "c1", "Roxy V")
    assert [a.kind for a in found.history] == [ActivityKind.CUSTOMER_REPLY] * 2
    assert [m.key for m in found.followups] == [KEY]


def item(*actions: Action) -> PlanItem:
    case = Case(Source.INTERCOM, "10", CaseKind.CONVERSATION, Status.PENDING, NOW, NOW)
    return PlanItem(case, "awaiting_customer", "final", 3, 3, actions, "no reply", KEY)


async def test_reply_then_state_then_the_signed_note(router: respx.MockRouter) -> None:
    router.get("/conversations/10").respond(json=conversation("10", 1, 0))
    reply = router.post("/conversations/10/reply").respond(json={})
    parts = router.post("/conversations/10/parts").respond(json={})
    async with connector(router) as intercom:
        result = await intercom.apply(
            item(
                Action(ActionType.REPLY, {"body": "Closing now"}),
                Action(ActionType.NOTE, {"body": "3/3"}),
                Action(ActionType.SET_ASSIGNEE, {"assignee": "Unresponsive Customers/Roxy V"}),
                Action(ActionType.SET_STATUS, {"status": "solved"}),
            )
        )
    assert result.outcome is WriteOutcome.APPLIED
    bodies = [json.loads(c.request.content) for c in reply.calls]
    assert bodies[0] == {
        "message_type": "comment",
        "type": "admin",
        "admin_id": "1",
        "body": "<p>Closing now</p>",
    }
    assert bodies[1]["message_type"] == "note"
    assert bodies[1]["body"].endswith(FOOTER.replace("step 1/3", "step 3/3") + "</p>")
    assert [json.loads(c.request.content) for c in parts.calls] == [
        {"message_type": "assignment", "type": "admin", "admin_id": "1", "assignee_id": "2"},
        {"message_type": "close", "type": "admin", "admin_id": "1"},
    ]


async def test_a_reply_already_in_the_conversation_is_not_sent_again(
    router: respx.MockRouter,
) -> None:
    router.get("/conversations/10").respond(
        json=conversation(
            "10",
            1,
            0,
            conversation_parts={
                "conversation_parts": [
                    {
                        "part_type": "comment",
                        "author": {"type": "admin", "id": "1"},
                        "body": "Closing now",
                        "created_at": 1_770_000_400,
                    }
                ]
            },
        )
    )
    reply = router.post("/conversations/10/reply").respond(json={})
    told: list[str] = []
    async with connector(router) as intercom:
        await intercom.apply(
            item(Action(ActionType.REPLY, {"body": "Closing now"})),
            replied=lambda: told.append("out"),
        )
    assert [json.loads(c.request.content)["message_type"] for c in reply.calls] == ["note"]
    assert told == ["out"]  # found out: the worker records it as well


async def test_a_reply_out_and_its_note_refused_is_incomplete(router: respx.MockRouter) -> None:
    router.get("/conversations/10").respond(json=conversation("10", 1, 0))
    posted = router.post("/conversations/10/reply").mock(
        side_effect=[httpx.Response(200, json={}), httpx.Response(400, json={"errors": []})]
    )
    told: list[int] = []
    async with connector(router) as intercom:
        result = await intercom.apply(
            item(Action(ActionType.REPLY, {"body": "Closing now"})),
            replied=lambda: told.append(posted.call_count),
        )
    assert result.outcome is WriteOutcome.INCOMPLETE  # finished next cycle, without the reply
    assert told == [1]  # between the reply and the note


async def test_a_note_alone_that_fails_is_failed(router: respx.MockRouter) -> None:
    router.post("/conversations/10/reply").respond(status_code=400, json={"errors": []})
    told: list[str] = []
    async with connector(router) as intercom:
        result = await intercom.apply(
            item(Action(ActionType.NOTE, {"body": "x"})), replied=lambda: told.append("out")
        )
    assert result.outcome is WriteOutcome.FAILED  # nothing landed: the plan decides again
    assert told == []  # no reply to tell of


async def test_a_close_or_assignment_already_in_effect_is_not_sent_again(
    router: respx.MockRouter,
) -> None:
    # The rest of a half-done item on a conversation its first attempt closed and assigned.
    parts = router.post("/conversations/10/parts").respond(json={})
    router.post("/conversations/10/reply").respond(json={})
    plan = item(
        Action(ActionType.SET_ASSIGNEE, {"assignee": "Unresponsive Customers/Roxy V"}),
        Action(ActionType.SET_STATUS, {"status": "solved"}),
    )
    closed = dataclasses.replace(plan.case, status=Status.SOLVED, assignee="Roxy V")
    async with connector(router) as intercom:
        result = await intercom.apply(dataclasses.replace(plan, case=closed))
    assert result.outcome is WriteOutcome.APPLIED
    assert not parts.called


async def test_lost_note_found_on_re_read_is_already_applied(router: respx.MockRouter) -> None:
    marker = f"x\n\n— followup-worker · awaiting_customer · step 3/3 · fw-{KEY}"
    router.get("/conversations/10").respond(
        json=conversation(
            "10",
            1,
            0,
            conversation_parts={
                "conversation_parts": [
                    {
                        "part_type": "note",
                        "author": {"type": "admin", "id": "1"},
                        "body": marker,
                        "created_at": 1_770_000_400,
                    }
                ]
            },
        )
    )
    reply = router.post("/conversations/10/reply").mock(side_effect=httpx.ReadTimeout("lost"))
    async with connector(router) as intercom:
        result = await intercom.apply(item(Action(ActionType.NOTE, {"body": "x"})))
    assert result.outcome is WriteOutcome.ALREADY_APPLIED
    assert reply.call_count == 1


async def test_bug_fields_are_not_an_intercom_action(router: respx.MockRouter) -> None:
    async with connector(router) as intercom:
        result = await intercom.apply(
            item(Action(ActionType.SET_BUG_FIELD, {"field": "priority", "value": "High"}))
        )
    assert result.outcome is WriteOutcome.FAILED


async def test_connect_sends_bearer_token_and_api_version(router: respx.MockRouter) -> None:
    router.get("/companies").respond(json=NO_COMPANIES)
    contacts = router.get("/contacts").respond(json={"data": [], "pages": {}})
    intercom = IntercomConnector.connect(
        BASE,
        "tok",
        IntercomMapping(),
        limits=VendorLimits(),
        timeouts=Timeouts(),
        transport=httpx.MockTransport(router.async_handler),
    )
    async with intercom:
        assert [a async for a in intercom.accounts()] == []
    headers = contacts.calls[0].request.headers
    assert (headers["Authorization"], headers["Intercom-Version"]) == ("Bearer tok", "2.16")


# -- tickets ------------------------------------------------------------------------------

STATES = [
    {"id": "4001", "category": "submitted", "internal_label": "Submitted"},
    {"id": "4002", "category": "in_progress", "internal_label": "In progress"},
    {"id": "4005", "category": "in_progress", "internal_label": "Old", "archived": True},
    {"id": "4003", "category": "waiting_on_customer", "internal_label": "Waiting on customer"},
    {"id": "4006", "category": "waiting_on_customer", "internal_label": "Waiting on order"},
    {"id": "4004", "category": "resolved", "internal_label": "Resolved"},
]


def ticket(id: str, category: str = "in_progress", **extra: Any) -> dict[str, Any]:
    return {
        "type": "ticket",
        "id": id,
        "category": "Customer",
        "ticket_attributes": {"_default_title_": "Order stuck"},
        "ticket_state": {"id": "x", "category": category},
        "contacts": {"contacts": [{"id": "c1"}]},
        "admin_assignee_id": 2,
        "created_at": 1_770_000_000,
        "updated_at": 1_770_000_500,
        "open": True,
        "ticket_parts": {"ticket_parts": []},
        **extra,
    }


def ticket_item(*actions: Action, followups: tuple[FollowUpMark, ...] = ()) -> PlanItem:
    case = Case(
        Source.INTERCOM, "ticket:20", CaseKind.TICKET, Status.OPEN, NOW, NOW, followups=followups
    )
    return PlanItem(case, "awaiting_customer", "final", 3, 3, actions, "no reply", KEY)


def ticket_connector(router: respx.MockRouter, **states: str) -> IntercomConnector:
    router.get("/companies").respond(json=NO_COMPANIES)
    router.get("/contacts").respond(json={"data": [{"custom_attributes": {"plan": "trial"}}]})
    client = make_client(router, FakeClock(), vendor="intercom", base_url=BASE)
    return IntercomConnector(client, IntercomMapping(ticket_states=states))


async def test_open_customer_tickets_stream_as_ticket_cases_after_the_conversations(
    router: respx.MockRouter,
) -> None:
    router.post("/conversations/search").respond(json={"conversations": [], "pages": {}})
    note = {
        "part_type": "note",
        "author": {"type": "admin", "id": "1"},
        "body": f"<p>1/3</p><p>{FOOTER}</p>",
        "created_at": 1_770_000_400,
    }
    reply = {
        "part_type": "comment",
        "author": {"type": "user", "id": "c1"},
        "body": "here",
        "created_at": 1_770_000_300,
    }
    search = router.post("/tickets/search").mock(
        side_effect=[
            httpx.Response(
                200,
                json={
                    "tickets": [
                        ticket("20", "waiting_on_customer",
                               ticket_parts={"ticket_parts": [reply, note]}),
                        ticket("21", "no_such_category"),
                    ],
                    "pages": {"next": {"starting_after": "c2"}},
                },
            ),
            # A hit without its parts is read in full; a closed one is solved.
            httpx.Response(
                200,
                json={"tickets": [{"id": "22", "type": "ticket"}, ticket("23", open=False)]},
            ),
        ]
    )  # fmt: skip
    full = router.get("/tickets/22").respond(json=ticket("22", "submitted"))
    bad: list[str] = []
    client = make_client(router, FakeClock(), vendor="intercom", base_url=BASE)
    async with IntercomConnector(
        client, IntercomMapping(), report=lambda b: bad.append(b.record_id)
    ) as intercom:
        found = [c async for c in intercom.cases()]
    assert [(c.id, c.kind, c.status) for c in found] == [
        ("ticket:20", CaseKind.TICKET, Status.PENDING),
        ("ticket:22", CaseKind.TICKET, Status.NEW),
        ("ticket:23", CaseKind.TICKET, Status.SOLVED),
    ]
    assert bad == ["ticket:21"]
    assert full.call_count == 1
    first = found[0]
    assert (first.subject, first.account_id, first.assignee) == ("Order stuck", "c1", "Roxy V")
    assert [a.kind for a in first.history] == [ActivityKind.CUSTOMER_REPLY]
    assert [m.key for m in first.followups] == [KEY]
    bodies = [json.loads(c.request.content) for c in search.calls]
    assert bodies[0] == {
        "query": {
            "operator": "AND",
            "value": [
                {"field": "open", "operator": "=", "value": True},
                {"field": "category", "operator": "=", "value": "request"},
            ],
        },
        "pagination": {"per_page": 150},
    }
    assert bodies[1]["pagination"] == {"per_page": 150, "starting_after": "c2"}


async def test_a_ticket_case_is_fetched_from_the_tickets_endpoint(
    router: respx.MockRouter,
) -> None:
    router.get("/tickets/20").respond(json=ticket("20", "resolved"))
    async with connector(router) as intercom:
        case = await intercom.fetch_case("ticket:20")
    assert (case.ref, case.kind, case.status) == (
        "intercom:ticket:20",
        CaseKind.TICKET,
        Status.SOLVED,
    )


async def test_ticket_state_and_assignee_go_in_one_update_then_the_signed_note(
    router: respx.MockRouter,
) -> None:
    states = router.get("/ticket_states").respond(json={"type": "list", "data": STATES})
    update = router.put("/tickets/20").respond(json=ticket("20"))
    reply = router.post("/tickets/20/reply").respond(json={"type": "ticket_part"})
    async with connector(router) as intercom:
        first = await intercom.apply(
            ticket_item(
                Action(ActionType.NOTE, {"body": "2/3"}),
                Action(ActionType.SET_ASSIGNEE, {"assignee": "Unresponsive Customers/Roxy V"}),
                Action(ActionType.SET_STATUS, {"status": "pending"}),
            )
        )
        second = await intercom.apply(
            ticket_item(Action(ActionType.SET_STATUS, {"status": "open"}))
        )
    assert (first.outcome, first.calls) == (WriteOutcome.APPLIED, 2)
    assert second.outcome is WriteOutcome.APPLIED
    assert states.call_count == 1  # resolved once per connector
    assert [json.loads(c.request.content) for c in update.calls] == [
        {"assignee_id": "2", "ticket_state_id": "4003", "admin_id": 1},
        {"ticket_state_id": "4002", "admin_id": 1},  # in progress: the archived one is skipped
    ]
    note = json.loads(reply.calls[0].request.content)
    assert (note["message_type"], note["type"], note["admin_id"]) == ("note", "admin", "1")
    assert note["body"].endswith(FOOTER.replace("step 1/3", "step 3/3") + "</p>")


async def test_a_note_alone_makes_no_ticket_update(router: respx.MockRouter) -> None:
    update = router.put("/tickets/20")
    reply = router.post("/tickets/20/reply").respond(json={})
    async with connector(router) as intercom:
        result = await intercom.apply(ticket_item(Action(ActionType.NOTE, {"body": "1/3"})))
    assert (result.outcome, result.calls) == (WriteOutcome.APPLIED, 1)
    assert not update.called
    assert reply.call_count == 1


async def test_the_tenant_mapping_names_ticket_states(router: respx.MockRouter) -> None:
    router.get("/ticket_states").respond(json={"data": STATES})
    update = router.put("/tickets/20").respond(json={})
    router.post("/tickets/20/reply").respond(json={})
    async with ticket_connector(router, pending="Waiting on order") as intercom:
        await intercom.apply(ticket_item(Action(ActionType.SET_STATUS, {"status": "pending"})))
        checks = {c.name: c.resolved for c in await intercom.check()}
    assert json.loads(update.calls[0].request.content)["ticket_state_id"] == "4006"
    assert checks["pending: Waiting on order"] == "4006"
    assert checks["solved: first resolved state"] == "4004"
    assert checks["open: first in_progress or submitted state"] == "4002"


def typed(state: dict[str, Any], *types: tuple[str, str]) -> dict[str, Any]:
    listed = [{"type": "ticket_type", "id": i, "name": name} for i, name in types]
    return {**state, "ticket_types": {"type": "list", "data": listed}}


ORDER, REFUND = ("3001", "Order issue"), ("3002", "Refund")
TYPED_STATES = [
    typed(STATES[0], ORDER, REFUND),
    typed(STATES[1], ORDER, REFUND),
    typed(STATES[3], ORDER),  # Waiting on customer: orders only
    typed(STATES[4], REFUND),  # Waiting on order (a refund's waiting state)
    typed(STATES[5], ORDER, REFUND),
]


async def test_a_ticket_state_is_chosen_among_those_linked_to_the_ticket_s_type(
    router: respx.MockRouter,
) -> None:
    """vendor-behaviours I2: a state belongs to ticket types; Intercom refuses one not linked
    to the ticket's type (400 ticket_state_id_invalid)."""
    router.get("/ticket_states").respond(json={"data": TYPED_STATES})
    update = router.put("/tickets/20").respond(json={})
    router.post("/tickets/20/reply").respond(json={})
    pending = ticket_item(Action(ActionType.SET_STATUS, {"status": "pending"}))
    async with ticket_connector(router, pending="Waiting on customer") as intercom:
        for kind in ("3001", "3002"):
            case = dataclasses.replace(pending.case, fields={"ticket_type": kind})
            await intercom.apply(dataclasses.replace(pending, case=case))
        checks = {c.name: c.resolved for c in await intercom.check()}
    sent = [json.loads(call.request.content)["ticket_state_id"] for call in update.calls]
    # The named state where the type has it; the type's own waiting state where it has not.
    assert sent == ["4003", "4006"]
    # connectors check: per ticket type, the state each policy status maps to.
    assert checks["Order issue: pending: Waiting on customer"] == "4003"
    label = "Refund: pending: Waiting on customer is not linked, first waiting_on_customer state"
    assert checks[label] == "4006"
    assert checks["Refund: solved: first resolved state"] == "4004"
    assert checks["Refund: open: first in_progress or submitted state"] == "4002"
    assert "pending: Waiting on customer" not in checks  # every state names its types


async def test_an_unknown_state_name_fails_the_item_before_any_write(
    router: respx.MockRouter,
) -> None:
    router.get("/ticket_states").respond(json={"data": STATES})
    update = router.put("/tickets/20")
    reply = router.post("/tickets/20/reply")
    async with ticket_connector(router, solved="Done") as intercom:
        solved = await intercom.apply(
            ticket_item(Action(ActionType.SET_STATUS, {"status": "solved"}))
        )
        hold = await intercom.apply(ticket_item(Action(ActionType.SET_STATUS, {"status": "hold"})))
        checks = {c.name: c.ok for c in await intercom.check()}
    assert (solved.outcome, solved.calls) == (WriteOutcome.FAILED, 0)
    assert "'solved'" in solved.detail
    assert "ticket_states" in solved.detail
    assert hold.outcome is WriteOutcome.FAILED  # no default state for hold
    assert not update.called
    assert not reply.called
    assert checks["solved: Done"] is False


async def test_a_refused_state_change_leaves_no_note(router: respx.MockRouter) -> None:
    router.get("/ticket_states").respond(json={"data": STATES})
    router.put("/tickets/20").respond(
        400,
        json={
            "type": "error.list",
            "errors": [
                {"code": "ticket_state_id_invalid", "message": "Ticket state id is not valid"}
            ],
        },
    )
    reply = router.post("/tickets/20/reply")
    async with connector(router) as intercom:
        result = await intercom.apply(
            ticket_item(Action(ActionType.SET_STATUS, {"status": "solved"}))
        )
    assert (result.outcome, result.calls) == (WriteOutcome.FAILED, 1)
    assert "400" in result.detail
    assert not reply.called  # the follow-up is not recorded as done


async def test_a_lost_ticket_note_found_on_re_read_is_not_sent_again(
    router: respx.MockRouter,
) -> None:
    signed = {
        "part_type": "note",
        "author": {"type": "admin", "id": "1"},
        "body": f"x\n\n— followup-worker · awaiting_customer · step 3/3 · fw-{KEY}",
        "created_at": 1_770_000_400,
    }
    router.get("/tickets/20").respond(json=ticket("20", ticket_parts={"ticket_parts": [signed]}))
    reply = router.post("/tickets/20/reply").mock(side_effect=httpx.ReadTimeout("lost"))
    async with connector(router) as intercom:
        result = await intercom.apply(ticket_item(Action(ActionType.NOTE, {"body": "x"})))
    assert (result.outcome, result.calls) == (WriteOutcome.ALREADY_APPLIED, 2)
    assert reply.call_count == 1


async def test_a_lost_ticket_note_absent_on_re_read_is_left_to_the_next_cycle(
    router: respx.MockRouter,
) -> None:
    # The first copy may still land (an answer later than the client waits): sending another
    # now could make two notes; the next cycle reads the ticket afresh and decides then.
    router.get("/tickets/20").respond(json=ticket("20"))
    reply = router.post("/tickets/20/reply").mock(
        side_effect=[httpx.ReadTimeout("lost"), httpx.Response(200, json={})]
    )
    async with connector(router) as intercom:
        result = await intercom.apply(ticket_item(Action(ActionType.NOTE, {"body": "x"})))
    assert (result.outcome, result.calls) == (WriteOutcome.FAILED, 2)
    assert reply.call_count == 1


async def test_a_ticket_reply_already_sent_this_cycle_is_not_sent_again(
    router: respx.MockRouter,
) -> None:
    sent = {
        "part_type": "comment",
        "author": {"type": "admin", "id": "1"},
        "body": "<p>Any news?</p>",
        "created_at": 1_770_000_400,
    }
    router.get("/tickets/20").respond(json=ticket("20", ticket_parts={"ticket_parts": [sent]}))
    reply = router.post("/tickets/20/reply").respond(json={})
    async with connector(router) as intercom:
        await intercom.apply(ticket_item(Action(ActionType.REPLY, {"body": "Any news?"})))
    assert [json.loads(c.request.content)["message_type"] for c in reply.calls] == ["note"]


async def test_a_ticket_already_carrying_the_marker_is_not_written(
    router: respx.MockRouter,
) -> None:
    mark = FollowUpMark("awaiting_customer", 3, NOW, KEY)
    async with connector(router) as intercom:
        result = await intercom.apply(
            ticket_item(Action(ActionType.SET_STATUS, {"status": "solved"}), followups=(mark,))
        )
    assert (result.outcome, result.calls) == (WriteOutcome.ALREADY_APPLIED, 0)


# -- markers only from the worker's own hand (issue 14) ----------------------------------------


@pytest.mark.parametrize(
    ("part_type", "author"),
    [
        pytest.param(
            "comment", {"type": "admin", "id": "1"}, id="the worker's reply echoing a title"
        ),
        pytest.param("comment", {"type": "user", "id": "c1"}, id="the contact's message"),
        pytest.param("note", {"type": "admin", "id": "2"}, id="another admin's note"),
        pytest.param("note", {"type": "bot", "id": "1"}, id="a bot's note"),
    ],
)
def test_a_footer_outside_the_worker_s_own_notes_is_text(
    part_type: str, author: dict[str, str]
) -> None:
    def part(kind: str, who: dict[str, str], body: str, at: int) -> dict[str, Any]:
        return {"part_type": kind, "author": who, "body": body, "created_at": at}

    own = part("note", {"type": "admin", "id": "1"}, f"<p>1/3</p><p>{FOOTER}</p>", 1_770_000_100)
    forged = part(part_type, author, f"<p>Re: {FOOTER}</p>", 1_770_000_200)
    ids = IntercomIds("1", {"Roxy V": "2"})

    def read(*parts: dict[str, Any]) -> Any:
        record = conversation("10", 1, 0, conversation_parts={"conversation_parts": list(parts)})
        return conversation_case(record, ids)

    assert read(forged).followups == ()
    assert [m.at.timestamp() for m in read(own, forged).followups] == [1_770_000_100]


def test_the_worker_s_own_replies_are_never_an_agent_s_answer() -> None:
    # As on Zendesk (connectors.zendesk_json.worker_message): the worker's reply is its
    # follow-up's message; another admin's reply is an answer that hands the turn over.
    def comment(admin: str, at: int) -> dict[str, Any]:
        who = {"type": "admin", "id": admin}
        return {"part_type": "comment", "author": who, "body": "<p>Hi</p>", "created_at": at}

    parts = [comment("1", 1_770_000_100), comment("2", 1_770_000_200)]
    record = conversation("10", 1, 0, conversation_parts={"conversation_parts": parts})
    read = conversation_case(record, IntercomIds("1", {"Roxy V": "2"}))
    assert [(a.kind, a.at.timestamp()) for a in read.history] == [
        (ActivityKind.CUSTOMER_REPLY, 1_770_000_000),
        (ActivityKind.AGENT_UPDATE, 1_770_000_200),
    ]


async def test_a_hostile_subject_is_text_in_the_html_reply(router: respx.MockRouter) -> None:
    reply = router.post("/conversations/10/reply").respond(json={})
    router.get("/conversations/10").respond(json=conversation("10", 1, 0))
    hostile = 'Hi <img src=x onerror="alert(1)"> & <b>bye</b>\nline two'
    async with connector(router) as intercom:
        await intercom.apply(item(Action(ActionType.REPLY, {"body": hostile})))
    body = json.loads(reply.calls[0].request.content)["body"]
    assert body == (
        "<p>Hi &lt;img src=x onerror=&quot;alert(1)&quot;&gt; &amp; &lt;b&gt;bye&lt;/b&gt;"
        "<br>line two</p>"
    )
