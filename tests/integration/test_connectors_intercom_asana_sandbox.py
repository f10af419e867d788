"""The Intercom and Asana connectors over real HTTP against the sandbox: what they read, what
one plan item writes (to a conversation, an Intercom ticket, an Asana bug), and no duplicate
note, reply, story or email when an answer is dropped after apply or comes after the client
stopped waiting."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.asana import AsanaConnector
from connectors.base import WriteOutcome
from connectors.intercom import IntercomConnector
from connectors.mapping import load_mapping
from connectors.settings import Timeouts, VendorLimits
from policies.model import (
    Action,
    ActionType,
    Case,
    CaseKind,
    PlanItem,
    Status,
    idempotency_key,
)

sandbox_server = pytest.importorskip("sandbox.server", reason="needs the sandbox package")

START = datetime(2026, 3, 11, 15, 0, tzinfo=UTC)
MAPPING = load_mapping(Path(__file__).parents[2] / "deploy" / "mapping.sandbox.yaml")
FAST = VendorLimits(backoff_initial=0.01, backoff_max=0.05)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Any]:
    with sandbox_server.run_in_thread(tickets=60, seed=5, start=START, frozen_clock=True) as sb:
        yield sb


@pytest.fixture
def admin(sandbox: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.urls["admin"]) as client:
        client.put("/faults", json={"rules": []})
        yield client
        client.put("/faults", json={"rules": []})


def drop_after(admin: httpx.Client, vendor: str, endpoint: str) -> None:
    rule = {
        "vendor": vendor,
        "kind": "drop_after",
        "probability": 1.0,
        "endpoint": endpoint,
        "times": 1,
    }
    admin.put("/faults", json={"rules": [rule]}).raise_for_status()


PATIENT = Timeouts()
IMPATIENT = Timeouts(read=0.2)  # a "slow" answer below comes later; its write lands then


def answer_late(admin: httpx.Client, vendor: str, endpoint: str) -> None:
    """The next matching request is applied, but answered only after IMPATIENT gave up."""
    rule = {"vendor": vendor, "kind": "slow", "probability": 1.0, "endpoint": endpoint,
            "times": 1}  # fmt: skip
    plan = {"rules": [rule], "slow_seconds": IMPATIENT.read * 3}
    admin.post("/reset-stats").raise_for_status()  # the request log: see held_write_landed
    admin.put("/faults", json=plan).raise_for_status()


async def held_write_landed(admin: httpx.Client, vendor: str) -> None:
    """Wait (bounded) until the late answer went out: the write it held has landed by then."""
    async with asyncio.timeout(10):
        while not any(
            entry["fault"] == "slow"
            for entry in admin.get("/requests", params={"vendor": vendor}).json()["requests"]
        ):
            await asyncio.sleep(0.02)


def intercom(sandbox: Any, timeouts: Timeouts = PATIENT) -> IntercomConnector:
    assert MAPPING.intercom is not None
    return IntercomConnector.connect(
        sandbox.urls["intercom"],
        "ic-sandbox-token",
        MAPPING.intercom,
        limits=FAST,
        timeouts=timeouts,
        plans=MAPPING.plans,
    )


def asana(sandbox: Any, timeouts: Timeouts = PATIENT) -> AsanaConnector:
    assert MAPPING.asana is not None
    return AsanaConnector.connect(
        sandbox.urls["asana"], "as-sandbox-token", MAPPING.asana, limits=FAST, timeouts=timeouts
    )


def item(case: Case, policy: str, *actions: Action) -> PlanItem:
    key = idempotency_key(policy, case.ref, 1, case.updated_at.isoformat())
    return PlanItem(case, policy, "step", 1, 3, actions, "test", key)


async def test_intercom_reads_accounts_conversations_awaiting_the_customer_and_open_tickets(
    sandbox: Any,
) -> None:
    async with intercom(sandbox) as connector:
        accounts = [a async for a in connector.accounts()]
        cases = [c async for c in connector.cases()]
    assert accounts
    assert any(a.plan is not None for a in accounts)
    conversations = [c for c in cases if c.kind is CaseKind.CONVERSATION]
    tickets = [c for c in cases if c.kind is CaseKind.TICKET]
    assert conversations
    assert all(c.status is Status.PENDING for c in conversations)
    desk = sandbox.sandbox.intercom
    assert sorted(t.id for t in tickets) == sorted(
        f"ticket:{t['id']}" for t in desk.all_tickets() if t["open"]
    )
    assert {t.status for t in tickets} <= {Status.NEW, Status.OPEN, Status.PENDING}
    assert {c.account_id for c in cases} <= {a.id for a in accounts}


async def test_intercom_reply_close_and_note_once_despite_a_dropped_answer(
    sandbox: Any, admin: httpx.Client
) -> None:
    async with intercom(sandbox) as connector:
        case = await anext(aiter(connector.cases()))
        plan = item(
            case,
            "awaiting_customer",
            Action(ActionType.REPLY, {"template": "final", "body": "Closing this for now."}),
            Action(ActionType.NOTE, {"body": "3/3"}),
            Action(ActionType.SET_STATUS, {"status": "solved"}),
        )
        drop_after(admin, "intercom", "POST /conversations/*/reply")
        result = await connector.apply(plan)
        fresh = await connector.fetch_case(case.id)
    assert result.outcome in (WriteOutcome.APPLIED, WriteOutcome.ALREADY_APPLIED)
    assert fresh.status is Status.SOLVED
    assert [m.key for m in fresh.followups] == [plan.key]
    replies = admin.get("/outbox").json()["messages"]
    assert sum("Closing this for now." in str(m) for m in replies) <= 1


async def open_ticket(connector: IntercomConnector, not_status: Status) -> Case:
    """An open ticket the worker has not written to yet, not in ``not_status``."""
    return await anext(
        c
        async for c in connector.cases()
        if c.kind is CaseKind.TICKET and c.status != not_status and not c.followups
    )


def notes_signed(sandbox: Any, case: Case, key: str) -> int:
    ticket = sandbox.sandbox.intercom.ticket(case.id.removeprefix("ticket:"))
    parts = ticket["ticket_parts"]["ticket_parts"]
    return sum(p["part_type"] == "note" and f"fw-{key}" in p["body"] for p in parts)


async def test_intercom_ticket_state_and_note_land_once_despite_a_dropped_note_answer(
    sandbox: Any, admin: httpx.Client
) -> None:
    async with intercom(sandbox) as connector:
        case = await open_ticket(connector, Status.PENDING)
        plan = item(
            case,
            "awaiting_customer",
            Action(ActionType.NOTE, {"body": "Waiting on the customer's order number."}),
            Action(ActionType.SET_STATUS, {"status": "pending"}),
        )
        drop_after(admin, "intercom", "POST /tickets/*/reply")
        result = await connector.apply(plan)
        fresh = await connector.fetch_case(case.id)
    # The note landed, its answer was lost, the re-read found it: state, note, re-read.
    assert (result.outcome, result.calls) == (WriteOutcome.ALREADY_APPLIED, 3)
    assert (fresh.kind, fresh.status) == (CaseKind.TICKET, Status.PENDING)
    assert [m.key for m in fresh.followups] == [plan.key]
    assert notes_signed(sandbox, case, plan.key) == 1
    state = sandbox.sandbox.intercom.ticket(case.id.removeprefix("ticket:"))["ticket_state"]
    # Named in the tenant mapping, or the refund type's own (the named one is not linked to it)
    waiting = {"3001": "Waiting on customer", "3002": "Awaiting refund details"}
    assert state["internal_label"] == waiting[case.fields["ticket_type"]]


async def test_intercom_ticket_reply_resolve_and_note_once_despite_a_dropped_update_answer(
    sandbox: Any, admin: httpx.Client
) -> None:
    async with intercom(sandbox) as connector:
        case = await open_ticket(connector, Status.SOLVED)
        plan = item(
            case,
            "awaiting_customer",
            Action(ActionType.REPLY, {"template": "final", "body": "Resolving your ticket."}),
            Action(ActionType.NOTE, {"body": "3/3"}),
            Action(ActionType.SET_STATUS, {"status": "solved"}),
        )
        drop_after(admin, "intercom", "PUT /tickets/*")
        result = await connector.apply(plan)
        fresh = await connector.fetch_case(case.id)
        again = await connector.apply(replace(plan, case=fresh))
    assert result.outcome is WriteOutcome.APPLIED
    assert fresh.status is Status.SOLVED
    assert [m.key for m in fresh.followups] == [plan.key]
    assert notes_signed(sandbox, case, plan.key) == 1
    assert (again.outcome, again.calls) == (WriteOutcome.ALREADY_APPLIED, 0)
    ticket_ref = f"intercom:ticket:{case.id.removeprefix('ticket:')}"
    emails = admin.get("/outbox", params={"ref": ticket_ref}).json()["messages"]
    assert [m["body"] for m in emails] == ["<p>Resolving your ticket.</p>"]  # HTML, escaped


async def test_an_intercom_reply_answered_too_late_is_sent_once_and_the_note_next_cycle(
    sandbox: Any, admin: httpx.Client
) -> None:
    async with intercom(sandbox, IMPATIENT) as connector:
        case = [c async for c in connector.cases()][1]
        body = f"Any news on {case.ref}?"
        plan = item(
            case,
            "awaiting_customer",
            Action(ActionType.REPLY, {"template": "followup_reminder", "body": body}),
        )
        answer_late(admin, "intercom", "POST /conversations/*/reply")
        first = await connector.apply(plan)
        await held_write_landed(admin, "intercom")
        second = await connector.apply(
            dataclasses.replace(plan, case=await connector.fetch_case(case.id))
        )
        fresh = await connector.fetch_case(case.id)
    sent = admin.get("/outbox", params={"ref": case.ref}).json()["messages"]
    assert [m["body"] for m in sent].count(f"<p>{body}</p>") == 1
    assert [m.key for m in fresh.followups] == [plan.key]
    assert (first.outcome, second.outcome) == (WriteOutcome.FAILED, WriteOutcome.APPLIED)


async def test_asana_bugs_carry_fields_engineer_updates_and_account(sandbox: Any) -> None:
    async with asana(sandbox) as connector:
        bugs = [c async for c in connector.cases()]
    assert bugs
    assert any(b.priority is not None for b in bugs)
    assert any(b.account_id for b in bugs)
    assert all(b.status is Status.OPEN for b in bugs)


async def test_asana_fields_and_one_story_despite_a_dropped_answer(
    sandbox: Any, admin: httpx.Client
) -> None:
    async with asana(sandbox) as connector:
        bug = await anext(aiter(connector.cases()))
        plan = item(
            bug,
            "bug_enterprise",
            Action(ActionType.SET_BUG_FIELD, {"field": "priority", "value": "High"}),
            Action(
                ActionType.SET_BUG_FIELD, {"field": "last_followup_date", "value": "2026-03-11"}
            ),
            Action(ActionType.NOTIFY_ENGINEER, {"body": "Any news on this one?"}),
        )
        drop_after(admin, "asana", "POST /tasks/*/stories")
        result = await connector.apply(plan)
        fresh = await connector.fetch_case(bug.id)
    assert result.outcome is WriteOutcome.ALREADY_APPLIED
    assert fresh.fields["last_followup_date"] == "2026-03-11"
    assert fresh.priority is not None
    assert fresh.priority.value == "high"
    assert [m.key for m in fresh.followups] == [plan.key]


async def test_an_asana_story_answered_too_late_is_posted_once(
    sandbox: Any, admin: httpx.Client
) -> None:
    async with asana(sandbox, IMPATIENT) as connector:
        bug = [b async for b in connector.cases()][1]
        plan = item(bug, "bug_enterprise", Action(ActionType.NOTIFY_ENGINEER, {"body": "News?"}))
        answer_late(admin, "asana", "POST /tasks/*/stories")
        first = await connector.apply(plan)
        await held_write_landed(admin, "asana")
        second = await connector.apply(
            dataclasses.replace(plan, case=await connector.fetch_case(bug.id))
        )
        fresh = await connector.fetch_case(bug.id)
    assert [m.key for m in fresh.followups] == [plan.key]
    assert (first.outcome, second.outcome) == (WriteOutcome.FAILED, WriteOutcome.ALREADY_APPLIED)


async def test_intercom_emails_a_lead_once_despite_a_dropped_answer(
    sandbox: Any, admin: httpx.Client
) -> None:
    """vendor-behaviours I1 (a lead is emailed as a lead, from an integer admin id) and I4
    (the message landed, its answer was lost: found by its marker, not sent again)."""
    desk = sandbox.sandbox.intercom
    lead = next(c for c in desk.contacts() if c["role"] == "lead" and c["email"])["id"]
    async with intercom(sandbox) as connector:
        drop_after(admin, "intercom", "POST /messages")
        first = await connector.email_contact(lead, "Update on your bug", "Still on it.", "fw-l1")
        again = await connector.email_contact(lead, "Update on your bug", "Still on it.", "fw-l1")
    sent = admin.get("/outbox", params={"ref": f"intercom:contact:{lead}"}).json()["messages"]
    assert [(m["subject"], m["body"]) for m in sent] == [
        ("Update on your bug", "<p>Still on it.</p><p>Ref: fw-l1</p>")
    ]
    assert (first, again) == (False, False)  # both found it sent: the first after the loss


async def test_an_intercom_close_whose_answer_was_lost_is_not_closed_again(
    sandbox: Any, admin: httpx.Client
) -> None:
    """vendor-behaviours I5: each close asked for is one more close part."""
    async with intercom(sandbox) as connector:
        case = [c async for c in connector.cases()][2]
        plan = item(
            case,
            "awaiting_customer",
            Action(ActionType.NOTE, {"body": "3/3"}),
            Action(ActionType.SET_STATUS, {"status": "solved"}),
        )
        drop_after(admin, "intercom", "POST /conversations/*/parts")
        result = await connector.apply(plan)
        fresh = await connector.fetch_case(case.id)
    parts = sandbox.sandbox.intercom.conversation(case.id)["conversation_parts"]
    closes = [p for p in parts["conversation_parts"] if p["part_type"] == "close"]
    assert (result.outcome, fresh.status, len(closes)) == (WriteOutcome.APPLIED, Status.SOLVED, 1)
    assert [m.key for m in fresh.followups] == [plan.key]


async def test_a_ticket_of_a_type_without_the_named_state_gets_its_type_s_own(
    sandbox: Any,
) -> None:
    """vendor-behaviours I2: "Waiting on customer" (the mapping's pending state) is not linked
    to refunds; a refund ticket set pending gets the refund type's waiting state."""
    desk = sandbox.sandbox.intercom
    async with intercom(sandbox) as connector:
        refund = await anext(
            c
            async for c in connector.cases()
            if c.kind is CaseKind.TICKET
            and c.fields.get("ticket_type") == "3002"
            and c.status is not Status.PENDING
        )
        plan = item(refund, "awaiting_customer", Action(ActionType.SET_STATUS,
                                                        {"status": "pending"}))  # fmt: skip
        result = await connector.apply(plan)
    state = desk.ticket(refund.id.removeprefix("ticket:"))["ticket_state"]
    assert (result.outcome, state["internal_label"]) == (
        WriteOutcome.APPLIED,
        "Awaiting refund details",
    )
