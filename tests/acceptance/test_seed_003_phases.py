"""Seed 003_57b0501fc596c8fc.txt: phases and average timeframes.

A phase change sends the customer that phase's "What it means" / "Next steps"; a case beyond its
phase's upper "Average Timeframe" gets an internal note and the tag ``phase_overdue``, once.
"""

from __future__ import annotations

import pytest

from policies.model import ActionType, Case, Status
from tests.acceptance.seed_days import at, facts, rules_with, run_day, ticket


def in_phase(request_type: str, phase: int, since: str) -> Case:
    return ticket(request_type=request_type, phase=str(phase), phase_since=at(since, 9).isoformat())


def test_phase_change_tells_the_customer_what_it_means_once() -> None:
    case = in_phase("bug", 2, "2026-03-02")
    case, items, _ = run_day(case, at("2026-03-02", 11))
    (update,) = items
    assert update.policy == "bug-phase-update"
    assert update.step_label == "2/4"
    body = next(a.params["body"] for a in update.actions if a.type is ActionType.REPLY)
    assert "phase 2: Under Review by Support Team" in body
    assert (
        "What it means: The Team is reviewing, documenting, and investigating the reported issue."
    ) in body
    assert "Next steps: You will receive updates with any additional questions" in body
    assert run_day(case, at("2026-03-03", 11))[1] == []  # told once per phase


# (request type, phase, entered at 09:00 on, planner run at, overdue?): upper bounds of the
# seed's timeframes, measured in business time from the phase entry.
OVERDUE_TABLE = [
    ("bug", 1, "2026-03-02", ("2026-03-05", 9), False),  # "2hrs - 3 Business Days": exactly 3
    ("bug", 1, "2026-03-02", ("2026-03-05", 10), True),
    ("bug", 2, "2026-03-02", ("2026-03-16", 9), False),  # "4 - 10 Business Days"
    ("bug", 2, "2026-03-02", ("2026-03-16", 10), True),
    ("data_issue", 3, "2026-03-02", ("2026-03-17", 9), True),  # "1 - 10 Business Days"
    ("bug", 4, "2026-01-05", ("2026-03-17", 9), False),  # "Average Timeframe: None"
    ("feature_request", 1, "2026-03-02", ("2026-03-16", 9), False),  # "1 - 10 Business Days"
    ("feature_request", 3, "2026-03-02", ("2026-03-17", 9), True),  # "5 - 10 Business Days"
    ("feature_request", 4, "2026-01-05", ("2026-03-17", 9), False),
    ("question", 1, "2026-03-02", ("2026-03-05", 9), False),  # "4 Business Hours - 3 Business Day"
    ("question", 2, "2026-03-02", ("2026-03-06", 9), True),  # "2 - 3 Business Days"
    ("question", 3, "2026-01-05", ("2026-03-17", 9), False),
]


@pytest.mark.parametrize(("request_type", "phase", "since", "run", "overdue"), OVERDUE_TABLE)
def test_phase_timeframe_breach(
    request_type: str, phase: int, since: str, run: tuple[str, int], overdue: bool
) -> None:
    case = in_phase(request_type, phase, since)
    _, items, _ = run_day(case, at(*run))
    flagged = [facts(i) for i in items if i.policy.endswith("-phase-overdue")]
    if overdue:
        (flag,) = flagged
        assert flag["tags"] == ["phase_overdue"]
        assert flag["note"].startswith(f"Phase {phase} (")
    else:
        assert flagged == []


def test_overdue_flag_is_raised_once_per_phase() -> None:
    case = in_phase("question", 2, "2026-03-02")
    case, first, _ = run_day(case, at("2026-03-06"))
    assert any(i.policy == "question-phase-overdue" for i in first)
    assert run_day(case, at("2026-03-09"))[1] == []


def test_solved_cases_are_not_tracked() -> None:
    case = ticket(request_type="bug", phase="1", status=Status.SOLVED)
    assert run_day(case, at("2026-03-20"))[1] == []


def test_phase_without_its_start_is_reported() -> None:
    case = ticket(request_type="bug", phase="3")
    _, items, unjudged = run_day(case, at("2026-03-20"))
    assert items == []
    assert {u.reason.split(":")[0] for u in unjudged} == {"bug-phase-update", "bug-phase-overdue"}


# A phase start known only as a date (agents type "2026-03-02"): by default its timeframe is
# counted from that day's close, so "3 Business Days" from Monday run out at Thursday's close;
# the setting phase_date_only_start=from_the_opening counts Monday itself (out at 09:00 Thu).
DATE_ONLY_TABLE = [
    ({}, ("2026-03-05", 16), False),
    ({}, ("2026-03-05", 17, 1), True),
    ({"phase_date_only_start": "from_the_opening"}, ("2026-03-05", 9), False),
    ({"phase_date_only_start": "from_the_opening"}, ("2026-03-05", 9, 1), True),
]


@pytest.mark.parametrize(("settings", "run", "overdue"), DATE_ONLY_TABLE)
def test_a_date_only_phase_start_is_counted_as_the_pack_says(
    settings: dict[str, str], run: tuple[str, int, int] | tuple[str, int], overdue: bool
) -> None:
    case = ticket(request_type="bug", phase="1", phase_since="2026-03-02")
    _, items, _ = run_day(case, at(*run), rules=rules_with(**settings))
    flagged = [i for i in items if i.policy == "bug-phase-overdue"]
    assert bool(flagged) is overdue
