"""Seed 004_4dbd7ca3e6092207.txt: day-by-day follow-up for unresponsive callers.

Day numbers are business days of the New York team: Day 1 is Mon 2 Mar 2026, so Day 6 is the
following Monday (the weekend is not a working day).
"""

from __future__ import annotations

import pytest

from policies.model import ActivityKind, Status
from policies.planner import explain
from tests.acceptance.seed_days import (
    CALENDAR,
    RULES,
    at,
    check_day,
    facts,
    matches,
    rules_with,
    run_day,
    run_days,
    ticket,
    with_activity,
)

WEEK = [
    "2026-03-02",
    "2026-03-03",
    "2026-03-04",
    "2026-03-05",
    "2026-03-06",
    "2026-03-09",
    "2026-03-10",
]

# "General Inquiry Follow-Up Process": 1ST DAY note 1/3 + PENDING, 2ND DAY no action, 3RD DAY
# 2/3 + PENDING, 4TH DAY no action, 5TH DAY 3/3, 6TH DAY "customer unresponsive - closing
# ticket", assignee "Unresponsive Customers/your name", SOLVED.
GENERAL_INQUIRY = [
    ("2026-03-02", {"step": "1/3", "note": "1/3", "status": "pending"}),
    ("2026-03-03", None),
    ("2026-03-04", {"step": "2/3", "note": "2/3", "status": "pending"}),
    ("2026-03-05", None),
    ("2026-03-06", {"step": "3/3", "note": "3/3", "status": None}),
    (
        "2026-03-09",
        {
            "note": "customer unresponsive - closing ticket",
            "assignee": "Unresponsive Customers/Dana Smith",
            "status": "solved",
        },
    ),
    ("2026-03-10", None),
]


def test_general_inquiry_day_by_day() -> None:
    case = ticket(request_type="general_inquiry")
    final, log = run_days(case, [day for day, _ in GENERAL_INQUIRY])
    for day, expected in GENERAL_INQUIRY:
        check_day(day, log[day], expected)
    assert final.status is Status.SOLVED


def test_nothing_happens_on_a_weekend() -> None:
    case = ticket(request_type="general_inquiry", created="2026-03-06")  # a Friday
    case, _ = run_days(case, ["2026-03-06"])
    assert run_day(case, at("2026-03-07"))[1] == []  # Saturday
    assert run_day(case, at("2026-03-08"))[1] == []  # Sunday


# "With linked order: EMAIL, CALL and TEXT. No order linked: If number only, call and text. If
# email only, send email. If they provided a phone number in the email, use the number to call
# them back and send a text."
@pytest.mark.parametrize(
    ("linked_order", "email", "phone", "reply", "channels"),
    [
        ("ORD-1", "cx@example.com", "+15550100", "unresponsive_followup", ["call", "text"]),
        ("ORD-1", None, None, "unresponsive_followup", ["call", "text"]),
        (None, None, "+15550100", None, ["call", "text"]),
        (None, "cx@example.com", None, "unresponsive_followup", []),
        (None, "cx@example.com", "+15550100", None, ["call", "text"]),
        (None, None, None, None, []),
    ],
)
def test_contact_channels_follow_the_seed(
    linked_order: str | None,
    email: str | None,
    phone: str | None,
    reply: str | None,
    channels: list[str],
) -> None:
    fields = {"request_type": "general_inquiry"}
    if linked_order:
        fields["linked_order"] = linked_order
    case = ticket(email=email, phone=phone, **fields)
    _, items, _ = run_day(case, at("2026-03-02"))
    assert matches(items[0], {"reply": reply, "channels": channels, "note": "1/3"})


# "Refund Request Follow-Up Process": 2ND DAY note 2/3 + PENDING, 3RD DAY 3/3, "escalate the
# ticket for a refund request at the end of the day or the following day after your 3rd update".
REFUND = [
    ("2026-03-02", None),
    ("2026-03-03", {"step": "2/3", "note": "2/3", "status": "pending"}),
    ("2026-03-04", {"step": "3/3", "note": "3/3"}),
    ("2026-03-05", {"escalate": "Refunds", "note": None}),
    ("2026-03-06", None),
]


def test_refund_request_day_by_day() -> None:
    case = ticket(request_type="refund", phone="+15550100")
    _, log = run_days(case, [day for day, _ in REFUND])
    for day, expected in REFUND:
        check_day(day, log[day], expected)


def test_refund_numbering_setting_adds_a_day_one_note() -> None:
    case = ticket(request_type="refund")
    _, log = run_days(
        case, ["2026-03-02", "2026-03-03"], rules=rules_with(refund_day_one_note="from_one")
    )
    assert matches(log["2026-03-02"][0], {"step": "1/3", "note": "1/3", "status": "pending"})
    assert matches(log["2026-03-03"][0], {"step": "2/3", "note": "2/3"})


def test_refund_flow_not_applicable_to_us_passport_industry() -> None:
    case = ticket(request_type="refund", industry="us_passport", status=Status.OPEN)
    _, log = run_days(case, WEEK)
    assert all(item.policy != "refund-request" for items in log.values() for item in items)


# "HANDLING UNRESPONSIVE TICKETS FOR BOT ISSUES" (after the three attempts, on Day 6).
@pytest.mark.parametrize(
    ("request_type", "expected"),
    [
        (
            "bot_tsa_ge_nexus_sentri",
            {
                "fields": {"order_status": "Unresponsive"},
                "note": "@Roxy V customer unresponsive",
                "assignee": "Unresponsive Customers/Roxy V",
                "status": "open",
            },
        ),
        (
            "bot_us_passport_missing_labels",
            {
                "fields": {"order_status": "Unresponsive"},
                "note": "@Roxy V customer unresponsive",
                "assignee": "Unresponsive Customers/Roxy V",
                "status": "open",
            },
        ),
        (
            "bot_ein",
            {
                "fields": {},
                "note": "@Vincent Ryan V customer unresponsive",
                "assignee": "Unresponsive Customers/Vincent Ryan V",
                "status": "open",
            },
        ),
    ],
)
def test_bot_issue_handling_on_day_six(request_type: str, expected: dict[str, object]) -> None:
    final, log = run_days(ticket(request_type=request_type), WEEK)
    steps = [facts(i)["step"] for day in WEEK for i in log[day]]
    assert steps == ["1/3", "2/3", "3/3", "after 3/3"]
    assert matches(log["2026-03-09"][0], expected), facts(log["2026-03-09"][0])
    assert final.status is Status.OPEN
    assert log["2026-03-10"] == []


def test_bot_owner_is_configuration() -> None:
    rules = rules_with(ein_bot_owner="Jo Q")
    _, log = run_days(ticket(request_type="bot_ein"), WEEK, rules=rules)
    assert matches(
        log["2026-03-09"][0],
        {"note": "@Jo Q customer unresponsive", "assignee": "Unresponsive Customers/Jo Q"},
    )


# NOTE: "When a missed or abandoned call/email is added to a ticket you are following up on, the
# follow-up process starts again from the beginning."
@pytest.mark.parametrize(
    "kind",
    [
        ActivityKind.MISSED_CALL,
        ActivityKind.ABANDONED_CALL,
        ActivityKind.MISSED_EMAIL,
    ],
)
def test_missed_contact_restarts_the_sequence(kind: ActivityKind) -> None:
    case, log = run_days(ticket(request_type="general_inquiry"), WEEK[:5])  # up to 3/3
    first_keys = {i.key for items in log.values() for i in items}
    case = with_activity(case, kind, at("2026-03-09", 8))
    case, items, _ = run_day(case, at("2026-03-09"))
    assert matches(items[0], {"step": "1/3", "note": "1/3", "status": "pending"})
    assert "restarted" in items[0].reason
    assert items[0].key not in first_keys  # a new cycle, so a new idempotency key
    assert run_day(case, at("2026-03-10"))[1] == []  # new Day 2: no action
    assert matches(run_day(case, at("2026-03-11"))[1][0], {"step": "2/3"})


def test_a_day_starts_when_the_team_opens() -> None:
    case, _ = run_days(ticket(request_type="general_inquiry"), ["2026-03-02"])
    assert run_day(case, at("2026-03-04", 8, 59))[1] == []  # Day 3, before 09:00
    assert matches(run_day(case, at("2026-03-04", 9))[1][0], {"step": "2/3"})


# Issue 14, turn-taking: 004 follows up when the customer "did not provide any information /
# did not respond when requested". Once the customer has replied, the next move is the agent's:
# nothing happens until an agent answers publicly (an internal note is not an answer), and the
# sequence then starts again from 1/3, its Day 1 being the day of the answer.
CUSTOMER_REPLIED = [
    ("2026-03-09", None),  # replied 08:00 Mon, ticket reopened: the agent's turn
    ("2026-03-10", None),  # an internal note at 09:30 answers nothing
    ("2026-03-11", {"step": "1/3", "note": "1/3", "status": "pending"}),  # answered 09:30
    ("2026-03-12", None),
    ("2026-03-13", {"step": "2/3", "note": "2/3", "status": "pending"}),
    ("2026-03-16", None),
    ("2026-03-17", {"step": "3/3", "note": "3/3"}),
    ("2026-03-18", {"note": "customer unresponsive - closing ticket", "status": "solved"}),
]


def test_a_customer_reply_hands_the_turn_to_the_agent_until_answered() -> None:
    case, _ = run_days(ticket(request_type="general_inquiry"), WEEK[:5])  # up to 3/3
    case = with_activity(case, ActivityKind.CUSTOMER_REPLY, at("2026-03-09", 8), status=Status.OPEN)
    log = {}
    for day, _expected in CUSTOMER_REPLIED:
        if day == "2026-03-10":
            case = with_activity(case, ActivityKind.AGENT_NOTE, at(day, 9, 30))
        if day == "2026-03-11":
            case = with_activity(case, ActivityKind.AGENT_UPDATE, at(day, 9, 30))
        case, log[day], _ = run_day(case, at(day))
    for day, expected in CUSTOMER_REPLIED:
        check_day(day, log[day], expected)


def test_waiting_on_the_agent_is_explained() -> None:
    case = ticket(
        request_type="general_inquiry",
        history=[(ActivityKind.CUSTOMER_REPLY, at("2026-03-02", 8))],
    )
    [why] = [
        e
        for e in explain(case, {}, at("2026-03-04"), RULES, CALENDAR)
        if e.policy == "general-inquiry"
    ]
    assert why.outcome == "not due"
    assert "awaits an agent's answer" in why.detail


def test_pending_without_an_answer_hands_the_turn_to_the_customer() -> None:
    # "Submit ticket as PENDING": an agent who sets the ticket to wait on the customer, with or
    # without a public answer, has made their move.
    case = ticket(
        request_type="general_inquiry",
        status=Status.PENDING,
        history=[(ActivityKind.CUSTOMER_REPLY, at("2026-03-02", 8))],
    )
    _, items, _ = run_day(case, at("2026-03-02"))
    assert matches(items[0], {"step": "1/3", "note": "1/3"})


def test_a_missed_call_restarts_even_while_the_agent_owes_an_answer() -> None:
    # The customer tried and failed: 004's NOTE starts the process again at once.
    case = ticket(
        request_type="refund",
        phone="+15550100",
        history=[
            (ActivityKind.CUSTOMER_REPLY, at("2026-03-02", 8)),
            (ActivityKind.MISSED_CALL, at("2026-03-03", 8)),
        ],
    )
    assert run_day(case, at("2026-03-02"))[1] == []
    _, log = run_days(case, ["2026-03-03", "2026-03-04", "2026-03-05"])
    assert log["2026-03-03"] == []  # the refund's Day 1 is the agent's own grab
    assert matches(log["2026-03-04"][0], {"step": "2/3", "note": "2/3"})
