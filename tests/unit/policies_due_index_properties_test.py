"""The due index (issue 13 point 3): planning only the cases whose ``next_due`` has come gives
the same plan as planning every case, and for a case waiting on its next step the index says
exactly when that step is due (across weekends, holidays and the team's opening hours)."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies.calendar import BusinessCalendar
from policies.due import next_due
from policies.model import (
    Account,
    ActivityKind,
    Case,
    CaseKind,
    PlanItem,
    PlanTier,
    Status,
    Unjudged,
)
from policies.planner import apply_item, item_to_dict, plan
from tests.acceptance.seed_days import RULES, at, ticket, with_activity
from tests.unit.policies_planner_properties_test import ACCOUNTS, SETTINGS, cases

CALENDARS = (
    BusinessCalendar(timezone="America/New_York", country="US"),
    # Another zone, other holidays, a Sunday-to-Thursday week and odd hours.
    BusinessCalendar(
        timezone="Asia/Jerusalem",
        workdays=frozenset({6, 0, 1, 2, 3}),
        opens=time(8, 30),
        closes=time(16, 45),
        country="IL",
    ),
    BusinessCalendar(
        timezone="Europe/Berlin", country="DE", closures=frozenset({date(2026, 12, 24)})
    ),
)

# The planner properties' cases start on Mon 2 Mar 2026; these shifts move them over public
# holidays (Memorial Day, Independence Day observed, Christmas and New Year) and DST changes.
SHIFTS = tuple(timedelta(days=d) for d in (0, 77, 119, 294, 301))


def shifted(case: Case, by: timedelta) -> Case:
    """``case`` with every instant it holds (phase and update dates included) moved by ``by``."""
    fields = dict(case.fields)
    if "phase_since" in fields:
        fields["phase_since"] = (datetime.fromisoformat(fields["phase_since"]) + by).isoformat()
    if "user_last_updated" in fields:
        fields["user_last_updated"] = (
            date.fromisoformat(fields["user_last_updated"]) + by
        ).isoformat()
    return dataclasses.replace(
        case,
        created_at=case.created_at + by,
        updated_at=case.updated_at + by,
        fields=fields,
        history=tuple(dataclasses.replace(a, at=a.at + by) for a in case.history),
        followups=tuple(dataclasses.replace(m, at=m.at + by) for m in case.followups),
    )


WINDOW = 21  # days between t0 and the latest t1
LIVE = (Status.NEW, Status.OPEN, Status.PENDING)
FOLLOWED = tuple(k for k, a in ACCOUNTS.items() if not (a.canceled or a.stop_followups))
# What moves a case along a sequence: the agent's answer, the customer's reply, a missed call.
MOVES = (ActivityKind.AGENT_UPDATE, ActivityKind.CUSTOMER_REPLY, ActivityKind.MISSED_CALL)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[Case], BusinessCalendar, datetime, datetime]:
    """Cases, a calendar, and two instants ``t0 <= t1`` up to three weeks apart."""
    by = draw(st.sampled_from(SHIFTS))
    batch = [
        dataclasses.replace(
            shifted(c, by),
            # Mostly cases some sequence chases, of accounts that get follow-ups: the rest is
            # never due, and an index is only tested by cases that will be due some day.
            status=draw(st.sampled_from([*LIVE, *LIVE, c.status])),
            account_id=draw(st.sampled_from([*FOLLOWED, c.account_id])),
        )
        for c in draw(st.lists(cases(), min_size=1, max_size=4))
    ]
    when = draw(st.sampled_from(["any time", "before its own instants", "before new activity"]))
    if when == "any time":
        t0 = datetime.combine(date(2026, 3, 2), time(9), CALENDARS[0].zone) + by
        t0 += timedelta(minutes=draw(st.integers(0, 45 * 24 * 60)))
    else:  # the evidence changes after t0: what the index sees at t0 is not the whole story
        if when == "before new activity":  # a reply, an answer, a missed call... still to come
            batch = [
                with_activity(
                    c,
                    draw(st.sampled_from([*MOVES, *ActivityKind])),
                    max(instants_of(c)) + timedelta(minutes=draw(st.integers(1, 5 * 24 * 60))),
                )
                for c in batch
            ]
        t0 = draw(st.sampled_from([i for c in batch for i in instants_of(c)]))
        t0 -= timedelta(minutes=draw(st.integers(0, 3 * 24 * 60)))
    t1 = t0 + timedelta(minutes=draw(st.integers(0, WINDOW * 24 * 60)))
    return batch, draw(st.sampled_from(CALENDARS)), t0, t1


def instants_of(case: Case) -> list[datetime]:
    """Where the case's evidence changes, and its phase entry (a phase is owed from it)."""
    return [
        case.created_at,
        *(a.at for a in case.history),
        *(m.at for m in case.followups),
        *(datetime.fromisoformat(v) for k, v in case.fields.items() if k == "phase_since"),
    ]


def turning_points(case: Case, calendar: BusinessCalendar, t0: datetime) -> set[datetime]:
    """Instants after ``t0`` at which a step may turn due, so an index late by a moment
    shows: each day's opening (sequences and day-based updates), and the local time of the
    case's own instants on later days, at and just after it (deadlines; a phase is overdue
    only once its deadline has passed)."""
    days = [calendar.local_date(t0) + timedelta(days=k) for k in range(WINDOW + 1)]
    points = {calendar.opening(day) for day in days}
    for instant in instants_of(case):
        local = instant.astimezone(calendar.zone)
        for day in days:
            moment = datetime.combine(day, local.time(), calendar.zone)
            points.update((moment, moment + timedelta(microseconds=1)))
    return {p for p in points if t0 <= p <= t0 + timedelta(days=WINDOW)}


@SETTINGS
@given(scenarios())
def test_nothing_is_owed_before_the_index_says(
    scenario: tuple[list[Case], BusinessCalendar, datetime, datetime],
) -> None:
    batch, calendar, t0, t1 = scenario
    for case in batch:
        when = next_due(case, ACCOUNTS, t0, RULES, calendar)
        assert when is None or when >= t0
        for moment in sorted(turning_points(case, calendar, t0) | {t1}):
            if when is not None and moment >= when:
                break
            assert list(plan([case], ACCOUNTS, moment, RULES, calendar)) == [], moment


@SETTINGS
@given(scenarios())
def test_planning_only_the_indexed_cases_gives_the_same_plan(
    scenario: tuple[list[Case], BusinessCalendar, datetime, datetime],
) -> None:
    batch, calendar, t0, t1 = scenario
    due = [next_due(c, ACCOUNTS, t0, RULES, calendar) for c in batch]
    indexed = [c for c, when in zip(batch, due, strict=True) if when is not None and when <= t1]
    everything = [item_to_dict(r) for r in plan(batch, ACCOUNTS, t1, RULES, calendar)]
    assert [item_to_dict(r) for r in plan(indexed, ACCOUNTS, t1, RULES, calendar)] == everything


@SETTINGS
@given(scenarios())
def test_the_index_is_exact(
    scenario: tuple[list[Case], BusinessCalendar, datetime, datetime],
) -> None:
    # Never early either: at the instant the index gives, the planner does owe something
    # (so a re-plan is never wasted), and a moment before it nothing (unless that is now).
    batch, calendar, t0, _ = scenario
    for case in batch:
        when = next_due(case, ACCOUNTS, t0, RULES, calendar)
        if when is None:
            continue
        assert list(plan([case], ACCOUNTS, when, RULES, calendar)) != []
        if when > t0:
            before = when - timedelta(microseconds=1)
            assert list(plan([case], ACCOUNTS, before, RULES, calendar)) == []


# -- the seeds' cadences, step by step -----------------------------------------------------
# New York with US holidays: Fri 3 Jul 2026 is Independence Day (observed), then a weekend.
CALENDAR = CALENDARS[0]
JUST_AFTER = timedelta(microseconds=1)
ENTERPRISE = {"a": Account("a", plan=PlanTier.ENTERPRISE, open_cases=1)}

SEED_TABLE = [
    (
        # Seed 002: the agent's solution on Thu 2 Jul is Day 1; Days 3, 5 and 7 in business
        # days skip the holiday and two weekends.
        "002 three follow-ups",
        ticket(
            created="2026-07-02",
            status=Status.PENDING,
            history=[
                (ActivityKind.CUSTOMER_REPLY, at("2026-07-02", 9)),
                (ActivityKind.AGENT_UPDATE, at("2026-07-02", 9, 30)),
            ],
        ),
        at("2026-07-02", 12),
        {},
        [
            (at("2026-07-07", 9), ["awaiting-customer 1/3"]),
            (at("2026-07-09", 9), ["awaiting-customer 2/3"]),
            (at("2026-07-13", 9), ["awaiting-customer 3/3"]),
        ],
    ),
    (
        # Seed 004: a missed call is chased at once, then on Days 3 and 5, then closed on Day 6.
        "004 unresponsive caller",
        ticket(
            created="2026-07-02",
            request_type="general_inquiry",
            phone="+15550100",
            history=[(ActivityKind.MISSED_CALL, at("2026-07-02", 11))],
        ),
        at("2026-07-02", 12),
        {},
        [
            (at("2026-07-02", 12), ["general-inquiry 1/3"]),
            (at("2026-07-07", 9), ["general-inquiry 2/3"]),
            (at("2026-07-09", 9), ["general-inquiry 3/3"]),
            (at("2026-07-10", 9), ["general-inquiry after 3/3"]),
        ],
    ),
    (
        # Seed 003: a case that does not exist yet is due when it appears (its phase entry),
        # then just after its phase's 3 business days have run out.
        "003 phase update, then overdue",
        ticket(
            created="2026-07-02",
            request_type="bug",
            phase="1",
            phase_since=at("2026-07-02", 9).isoformat(),
        ),
        at("2026-07-02", 8),
        {},
        [
            (at("2026-07-02", 9), ["bug-phase-update 1/4"]),
            (at("2026-07-08", 9) + JUST_AFTER, ["bug-phase-overdue 1/4"]),
        ],
    ),
    (
        # Seed 003: a phase entered after now (recorded ahead) is told at its entry, and
        # flagged once its 10 business days have passed.
        "003 phase entered later",
        ticket(
            created="2026-07-01",
            request_type="bug",
            phase="2",
            phase_since=at("2026-07-06", 9).isoformat(),
        ),
        at("2026-07-02", 12),
        {},
        [
            (at("2026-07-06", 9), ["bug-phase-update 2/4"]),
            (at("2026-07-20", 9) + JUST_AFTER, ["bug-phase-overdue 2/4"]),
        ],
    ),
    (
        # Seed 000: Enterprise bugs every 5 business days from the last update, from the
        # opening of the day it falls on.
        "000 enterprise bug updates",
        ticket(
            kind=CaseKind.BUG,
            created="2026-06-01",
            account="a",
            assignee="Eve Engineer",
            user_last_updated="2026-07-02",
        ),
        at("2026-07-02", 12),
        ENTERPRISE,
        [
            (at("2026-07-10", 9), ["bug-enterprise #1"]),
            (at("2026-07-17", 9), ["bug-enterprise #2"]),
        ],
    ),
]


@pytest.mark.parametrize(
    ("case", "now", "accounts", "expected"),
    [row[1:] for row in SEED_TABLE],
    ids=[row[0] for row in SEED_TABLE],
)
def test_next_due_is_when_the_next_step_is_due(
    case: Case,
    now: datetime,
    accounts: dict[str, Account],
    expected: list[tuple[datetime, list[str]]],
) -> None:
    # Jump from due instant to due instant, carrying out what is owed there as the worker would.
    followed: list[tuple[datetime, list[str]]] = []
    for _ in expected:
        when = next_due(case, accounts, now, RULES, CALENDAR)
        assert when is not None
        done = []
        for result in plan([case], accounts, when, RULES, CALENDAR):
            assert isinstance(result, PlanItem), result
            case = apply_item(case, result, when)
            done.append(f"{result.policy} {result.step_label}")
        followed.append((when, done))
        now = when
    assert followed == expected


def test_nothing_more_once_the_sequence_is_complete() -> None:
    case, now = SEED_TABLE[0][1], at("2026-07-13", 9)
    for when in (at("2026-07-07", 9), at("2026-07-09", 9), now):
        for result in plan([case], {}, when, RULES, CALENDAR):
            assert isinstance(result, PlanItem)
            case = apply_item(case, result, when)
    assert next_due(case, {}, now, RULES, CALENDAR) is None
    assert list(plan([case], {}, now + timedelta(days=60), RULES, CALENDAR)) == []


def test_a_customer_reply_stops_the_clock_and_an_agent_answer_restarts_it() -> None:
    waiting = SEED_TABLE[0][1]
    replied = with_activity(waiting, ActivityKind.CUSTOMER_REPLY, at("2026-07-06", 10))
    assert next_due(replied, {}, at("2026-07-06", 11), RULES, CALENDAR) is None  # agent's turn
    answered = with_activity(replied, ActivityKind.AGENT_UPDATE, at("2026-07-06", 12))
    assert next_due(answered, {}, at("2026-07-06", 13), RULES, CALENDAR) == at("2026-07-08", 9)


def test_unjudged_cases_stay_due_now() -> None:
    # A Standard-or-other bug whose account's plan is unknown is reported on every run.
    [bug] = [row[1] for row in SEED_TABLE if row[0] == "000 enterprise bug updates"]
    unknown_plan = {"a": Account("a", plan=None, raw_plan="Gold")}
    now = at("2026-07-02", 12)
    assert any(isinstance(r, Unjudged) for r in plan([bug], unknown_plan, now, RULES, CALENDAR))
    assert next_due(bug, unknown_plan, now, RULES, CALENDAR) == now


def test_activity_recorded_after_now_is_taken_at_its_instant() -> None:
    # A snapshot read later than ``now``: the agent's answer at 14:00 starts the sequence then.
    case = dataclasses.replace(
        SEED_TABLE[0][1],
        history=(SEED_TABLE[0][1].history[0],),
    )
    later = with_activity(case, ActivityKind.AGENT_UPDATE, at("2026-07-06", 14))
    assert next_due(later, {}, at("2026-07-02", 12), RULES, CALENDAR) == at("2026-07-08", 9)
