"""Planner invariants, checked with hypothesis over arbitrary cases of every flow."""

from __future__ import annotations

import dataclasses
import os
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policies.cadences import EveryRule, PhaseRule, SequenceRule
from policies.calendar import BusinessCalendar
from policies.language import load_pack
from policies.model import (
    Account,
    Activity,
    ActivityKind,
    Case,
    CaseKind,
    FollowUpMark,
    PlanItem,
    PlanTier,
    Priority,
    Requester,
    Source,
    Status,
    Unjudged,
)
from policies.planner import explain, item_to_dict, plan, preview, with_open_cases
from policies.rules import compile_pack

NY = ZoneInfo("America/New_York")
CALENDAR = BusinessCalendar(timezone="America/New_York", country="US")
RULES = compile_pack(load_pack())
POLICIES = {p.name: p for p in RULES.policies}
BASE = datetime(2026, 3, 2, 9, 0, tzinfo=NY)
ACCOUNTS = {
    f"{tier or 'unknown'}-{flag}": Account(
        f"{tier or 'unknown'}-{flag}",
        plan=tier,
        canceled=flag == "canceled",
        stop_followups=flag == "stopped",
        open_cases=n,
        open_case_refs=tuple(f"asana:{k}" for k in range(n)),
        max_open_priority=Priority.HIGH if n % 2 else Priority.NORMAL,
    )
    for tier in (*PlanTier, None)
    for flag, n in (("ok", 1), ("ok3", 3), ("canceled", 1), ("stopped", 4))
}
REQUEST_TYPES = (
    "general_inquiry",
    "refund",
    "bot_tsa_ge_nexus_sentri",
    "bot_us_passport_missing_labels",
    "bot_ein",
    "bug",
    "feature_request",
    "question",
    None,
)

hours = st.integers(min_value=0, max_value=24 * 20)


@st.composite
def cases(draw: st.DrawFn) -> Case:
    kind = draw(st.sampled_from(CaseKind))
    created = BASE + timedelta(hours=draw(hours))
    request_type = draw(st.sampled_from(REQUEST_TYPES))
    fields = {"request_type": request_type} if request_type else {}
    if draw(st.booleans()):
        fields["phase"] = str(draw(st.integers(1, 4)))
        fields["phase_since"] = (created + timedelta(hours=draw(hours))).isoformat()
    if draw(st.booleans()):
        fields["linked_order"] = "ORD-1"
    if kind is CaseKind.BUG and draw(st.booleans()):
        fields["user_last_updated"] = (
            (created + timedelta(days=draw(st.integers(0, 40)))).date().isoformat()
        )
    history = sorted(
        (
            Activity(draw(st.sampled_from(ActivityKind)), created + timedelta(hours=h))
            for h in draw(st.lists(hours, max_size=3))
        ),
        key=lambda a: a.at,
    )
    marks = sorted(
        (
            FollowUpMark(
                draw(st.sampled_from(sorted(POLICIES))),
                draw(st.integers(1, 4)),
                created + timedelta(hours=h),
                f"k{h}",
            )
            for h in draw(st.lists(hours, max_size=4))
        ),
        key=lambda m: m.at,
    )
    return Case(
        source=Source.ASANA if kind is CaseKind.BUG else Source.ZENDESK,
        id=str(draw(st.integers(1, 9))),
        kind=kind,
        status=draw(st.sampled_from(Status)),
        created_at=created,
        updated_at=created,
        subject="issue",
        priority=draw(st.none() | st.sampled_from(Priority)),
        requester=Requester(
            "r",
            "Ann",
            email=draw(st.none() | st.just("a@example.com")),
            phone=draw(st.none() | st.just("+15550100")),
        ),
        account_id=draw(st.sampled_from(sorted(ACCOUNTS))),
        assignee=draw(st.none() | st.just("Dana")),
        fields=fields,
        history=tuple(history),
        followups=tuple(marks),
    )


instants = st.integers(min_value=0, max_value=24 * 45).map(lambda h: BASE + timedelta(hours=h))
SETTINGS = settings(
    max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def items(results: list[PlanItem | Unjudged]) -> list[PlanItem]:
    return [r for r in results if isinstance(r, PlanItem)]


@SETTINGS
@given(st.lists(cases(), max_size=5), instants)
def test_same_input_same_plan(batch: list[Case], now: datetime) -> None:
    first = [item_to_dict(r) for r in plan(batch, ACCOUNTS, now, RULES, CALENDAR)]
    assert not any("could not evaluate" in r["reason"] for r in first)
    again = [item_to_dict(r) for r in plan(list(batch), dict(ACCOUNTS), now, RULES, CALENDAR)]
    assert first == again


def test_a_malformed_case_is_reported_and_the_run_goes_on() -> None:
    good = Case(
        Source.ZENDESK,
        "2",
        CaseKind.TICKET,
        Status.PENDING,
        BASE,
        BASE,
        fields={"request_type": "general_inquiry"},
    )
    naive = dataclasses.replace(
        good, id="1", history=(Activity(ActivityKind.MISSED_CALL, BASE.replace(tzinfo=None)),)
    )
    results = list(plan([naive, good], {}, BASE + timedelta(days=1), RULES, CALENDAR))
    assert isinstance(results[0], Unjudged)
    assert "no time zone" in results[0].reason
    assert isinstance(results[1], PlanItem)


@SETTINGS
@given(cases(), instants)
def test_nothing_for_canceled_or_stopped_accounts(case: Case, now: datetime) -> None:
    account = ACCOUNTS[case.account_id or ""]
    results = list(plan([case], ACCOUNTS, now, RULES, CALENDAR))
    if account.canceled or account.stop_followups:
        assert items(results) == []


@SETTINGS
@given(cases(), instants)
def test_plan_agrees_with_explain(case: Case, now: datetime) -> None:
    planned = list(plan([case], ACCOUNTS, now, RULES, CALENDAR))
    explained = explain(case, ACCOUNTS, now, RULES, CALENDAR)
    assert {(i.policy, i.key) for i in items(planned)} == {
        (e.policy, e.item.key) for e in explained if e.item is not None
    }
    assert len([r for r in planned if isinstance(r, Unjudged)]) == len(
        [e for e in explained if e.outcome == "cannot judge"]
    )


@SETTINGS
@given(cases(), instants)
def test_steps_never_exceed_the_maximum_and_never_repeat(case: Case, now: datetime) -> None:
    # Forward preview over 15 business days: nobody replies, every step is carried out.
    past = tuple(a for a in case.history if a.at <= now)
    fresh = dataclasses.replace(case, followups=(), history=past)
    seen_keys: set[str] = set()
    steps: dict[tuple[str, str], list[int]] = defaultdict(list)
    for step in preview([fresh], ACCOUNTS, now, RULES, CALENDAR, horizon=15):
        item = step.result
        if isinstance(item, Unjudged):
            continue
        assert item.key not in seen_keys  # moving now forward never re-does (or un-does) a step
        seen_keys.add(item.key)
        cadence = POLICIES[item.policy].cadence
        if isinstance(cadence, SequenceRule):
            assert 1 <= item.step <= item.max_steps + 1
            assert all(item.step > done for done in steps[(item.policy, "seq")])  # strictly forward
            steps[(item.policy, "seq")].append(item.step)
    for (policy, _), done in steps.items():
        cadence = POLICIES[policy].cadence
        assert isinstance(cadence, SequenceRule)
        assert len(done) <= cadence.max_attempts + 1


def first_step(policy: str) -> int:
    cadence = POLICIES[policy].cadence
    return cadence.steps[0].n if isinstance(cadence, SequenceRule) else 1


@SETTINGS
@given(
    cases(), instants, st.sampled_from([k for k in ActivityKind if k.is_inbound]), st.integers(0, 8)
)
def test_customer_activity_always_restarts(
    case: Case, now: datetime, kind: ActivityKind, later_hours: int
) -> None:
    # Whatever happened before, right after inbound activity a sequence starts from its
    # first step (or waits for an agent), under a new cycle key.
    before = {i.key for i in items(list(plan([case], ACCOUNTS, now, RULES, CALENDAR)))}
    latest = max([now, *(m.at for m in case.followups), *(a.at for a in case.history)])
    reply_at = latest + timedelta(minutes=1)  # strictly after everything the case has seen
    replied = dataclasses.replace(case, history=(*case.history, Activity(kind, reply_at)))
    after = items(
        list(plan([replied], ACCOUNTS, reply_at + timedelta(hours=later_hours), RULES, CALENDAR))
    )
    for item in after:
        cadence = POLICIES[item.policy].cadence
        if isinstance(cadence, PhaseRule):
            continue  # phases follow the phase entry, not the conversation
        assert isinstance(cadence, SequenceRule | EveryRule)
        assert item.step == first_step(item.policy)
        assert item.key not in before


def test_with_open_cases_sums_each_account_s_unfinished_cases() -> None:
    at = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)

    def case(case_id: str, account: str | None, status: Status, priority: Priority) -> Case:
        return Case(
            Source.ZENDESK, case_id, CaseKind.TICKET, status, at, at,
            priority=priority, account_id=account,
        )  # fmt: skip

    accounts = {"a": Account("a"), "b": Account("b")}
    cases = [
        case("2", "a", Status.OPEN, Priority.NORMAL),
        case("1", "a", Status.PENDING, Priority.HIGH),
        case("3", "a", Status.SOLVED, Priority.URGENT),  # finished: not counted
        case("4", "z", Status.OPEN, Priority.URGENT),  # an account we were not told about
        case("5", None, Status.OPEN, Priority.URGENT),
    ]

    summed = with_open_cases(accounts, cases)

    assert summed["a"].open_cases == 2
    assert summed["a"].open_case_refs == ("zendesk:1", "zendesk:2")
    assert summed["a"].max_open_priority is Priority.HIGH
    assert summed["b"] == accounts["b"]
    assert set(summed) == {"a", "b"}


@SETTINGS
@given(
    cases(),
    st.integers(0, 24 * 10),
    st.sampled_from([s for s in Status if s is not Status.PENDING]),
    st.lists(st.sampled_from([ActivityKind.AGENT_NOTE, ActivityKind.ENGINEER_UPDATE]), max_size=2),
)
def test_no_follow_up_while_the_customer_waits_on_us(
    case: Case, later_hours: int, status: Status, notes: list[ActivityKind]
) -> None:
    # Issue 14: a case whose latest public message is the customer's own (not a missed or
    # abandoned attempt) is the agent's to answer; unless the agent set it to wait on the
    # customer (PENDING), no follow-up sequence (seeds 002, 004) plans anything for it, however
    # long the customer has waited and whatever internal notes came after. Bug and phase
    # updates are the team's own news, not a chase, and do not wait for a turn.
    latest = max([case.created_at, *(m.at for m in case.followups), *(a.at for a in case.history)])
    said = latest + timedelta(minutes=1)
    after = tuple(Activity(kind, said + timedelta(minutes=i + 1)) for i, kind in enumerate(notes))
    waiting = dataclasses.replace(
        case,
        status=status,
        history=(*case.history, Activity(ActivityKind.CUSTOMER_REPLY, said), *after),
    )
    now = said + timedelta(hours=later_hours)
    planned = items(list(plan([waiting], ACCOUNTS, now, RULES, CALENDAR)))
    assert [i for i in planned if isinstance(POLICIES[i.policy].cadence, SequenceRule)] == []
