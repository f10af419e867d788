"""Seed 002_d9b8803d782cd772.txt: the "3-Follow-Up" protocol for cases awaiting the customer.

"Day 1: initial solution, Day 3: first follow-up, Day 5: second follow-up, Day 7: third and
final follow-up" - business days: the agent's solution goes out on Mon 2 Mar 2026.
"""

from __future__ import annotations

from policies.model import ActionType, ActivityKind, Case, Status
from tests.acceptance.seed_days import (
    at,
    check_day,
    matches,
    rules_with,
    run_day,
    run_days,
    ticket,
    with_activity,
)

DAYS = [
    "2026-03-02",
    "2026-03-03",
    "2026-03-04",
    "2026-03-05",
    "2026-03-06",
    "2026-03-09",
    "2026-03-10",
    "2026-03-11",
]

PROTOCOL = [
    ("2026-03-02", None),  # Day 1: the agent's initial solution
    ("2026-03-03", None),
    ("2026-03-04", {"step": "1/3", "reply": "followup_reminder", "status": None}),  # Day 3
    ("2026-03-05", None),
    ("2026-03-06", {"step": "2/3", "reply": "followup_reminder"}),  # Day 5
    ("2026-03-09", None),
    # Day 7: "Your third follow-up must include a closing statement"; "After sending this 3rd
    # follow-up, you should mark the ticket as 'Resolved'".
    ("2026-03-10", {"step": "3/3", "reply": "closing_statement", "status": "solved"}),
    ("2026-03-11", None),
]


def awaiting_customer() -> Case:
    return ticket(
        status=Status.PENDING,
        history=[
            (ActivityKind.CUSTOMER_REPLY, at("2026-03-02", 9)),
            (ActivityKind.AGENT_UPDATE, at("2026-03-02", 9, 30)),
        ],
    )


def test_three_followups_every_other_day_then_solved() -> None:
    final, log = run_days(awaiting_customer(), DAYS)
    for day, expected in PROTOCOL:
        check_day(day, log[day], expected)
    assert final.status is Status.SOLVED


def test_third_followup_carries_the_seed_closing_statement() -> None:
    _, log = run_days(awaiting_customer(), DAYS)
    (closing,) = [a for a in log["2026-03-10"][0].actions if a.type is ActionType.REPLY]
    body = closing.params["body"]
    assert body.startswith("Hi Maria Lopez,")
    assert "Just following up again on our previous emails regarding my passport renewal." in body
    assert (
        "As we haven't heard back, we assume your issue has been resolved or you no longer"
        " require assistance."
    ) in body
    assert "we will be closing this ticket for now" in body
    assert body.endswith("Thank you,\nDana Smith")


def test_close_timing_setting_moves_solved_to_the_next_day() -> None:
    rules = rules_with(awaiting_customer_close_wait="day_after_third")
    _, log = run_days(awaiting_customer(), DAYS, rules=rules)
    assert matches(
        log["2026-03-10"][0], {"step": "3/3", "reply": "closing_statement", "status": None}
    )
    assert matches(log["2026-03-11"][0], {"step": "after 3/3", "status": "solved"})


def test_no_followup_before_an_agent_has_answered() -> None:
    case = ticket(
        status=Status.PENDING, history=[(ActivityKind.CUSTOMER_REPLY, at("2026-03-02", 9))]
    )
    _, log = run_days(case, DAYS)
    assert all(items == [] for items in log.values())


def test_reply_after_closure_continues_the_same_case_without_a_new_barrage() -> None:
    # "If a customer replies after the ticket is closed, it will typically reopen automatically
    # ... Treat it as a continuation of the same issue and proceed with your assistance."
    case, log = run_days(awaiting_customer(), DAYS)
    first_cycle = {i.key for items in log.values() for i in items}
    case = with_activity(case, ActivityKind.CUSTOMER_REPLY, at("2026-03-12", 8), status=Status.OPEN)
    for day in ("2026-03-12", "2026-03-13"):
        case, items, _ = run_day(case, at(day))
        assert items == [], day  # the agent owes an answer; the worker owes nothing
    case = with_activity(
        case, ActivityKind.AGENT_UPDATE, at("2026-03-13", 11), status=Status.PENDING
    )
    _, log = run_days(case, ["2026-03-16", "2026-03-17"])
    assert log["2026-03-16"] == []
    (restart,) = log["2026-03-17"]  # Day 3 of the new exchange
    assert matches(restart, {"step": "1/3"})
    assert restart.key not in first_cycle
    assert restart.case.id == "1"  # the same case, continued
