"""The demo's bookkeeping: how a day's follow-ups are told, and which customers act."""

from __future__ import annotations

import dataclasses
import random
from datetime import date
from typing import Any

import pytest

from policies.model import Action, ActionType, Case, PlanItem, Requester, Source
from tests.unit.worker_support import make_case, make_item
from worker.delivery.executor import ItemReport
from worker.delivery.ledger import Outcome
from worker.demo import CustomerActivity, DayLog, DemoOptions, DoneItem, choose_activity


def done(
    case: Case,
    *actions: tuple[ActionType, dict[str, Any]],
    step: int = 1,
    outcome: Outcome = Outcome.APPLIED,
) -> DoneItem:
    item = dataclasses.replace(
        make_item(case, step),
        actions=tuple(Action(kind, params) for kind, params in actions),
        key=f"{case.ref}-{step}",
    )
    report = ItemReport(
        tenant="t",
        case_ref=case.ref,
        key=item.key,
        policy=item.policy,
        rule=item.rule,
        step=item.step_label,
        actions=tuple(a.type.value for a in item.actions),
        reason=item.reason,
        dry_run=False,
        outcome=outcome,
    )
    return DoneItem(report, item)


NOTE = (ActionType.NOTE, {"body": "1/3"})
PENDING = (ActionType.SET_STATUS, {"status": "pending"})
SOLVED = (ActionType.SET_STATUS, {"status": "solved"})
OPEN = (ActionType.SET_STATUS, {"status": "open"})
TO_UNRESPONSIVE = (ActionType.SET_ASSIGNEE, {"assignee": "Unresponsive Customers/Roxy V"})


@pytest.mark.parametrize(
    ("actions", "closed", "handed", "awaits"),
    [
        ((NOTE, PENDING), False, False, True),
        ((NOTE, TO_UNRESPONSIVE, SOLVED), True, False, False),
        ((NOTE, TO_UNRESPONSIVE, OPEN), False, True, False),
        ((NOTE, SOLVED), True, False, False),
        ((NOTE,), False, False, True),  # the case was PENDING already and stays so
    ],
)
def test_what_a_follow_up_counts_as(
    actions: tuple[tuple[ActionType, dict[str, Any]], ...],
    closed: bool,
    handed: bool,
    awaits: bool,
) -> None:
    log = DayLog(date(2026, 3, 2), done=[done(make_case("1"), *actions)])

    assert (bool(log.closed()), bool(log.handed_to_owner())) == (closed, handed)
    assert log.done[0].awaits_customer is awaits


def test_only_applied_follow_ups_are_counted() -> None:
    log = DayLog(
        date(2026, 3, 2),
        done=[
            done(make_case("1"), NOTE, PENDING),
            done(make_case("2"), NOTE, PENDING, outcome=Outcome.FAILED),
            done(make_case("3"), NOTE, PENDING, outcome=Outcome.ALREADY_APPLIED),
        ],
    )

    assert log.notes() == {"general-inquiry 1/3": 1}
    assert log.statuses() == {"pending": 1}
    assert [d.report.case_ref for d in log.failed] == ["zendesk:2"]
    assert not log.ok


def test_a_first_step_after_the_customer_acted_is_a_restart() -> None:
    acted, quiet = make_case("1"), make_case("2")
    log = DayLog(
        date(2026, 3, 3),
        activity=[CustomerActivity(acted.ref, "missed_call")],
        done=[
            done(acted, NOTE, PENDING, step=1),
            done(quiet, NOTE, PENDING, step=1),
        ],
    )

    assert [d.item.case.ref for d in log.restarted()] == [acted.ref]


def _chased(case: Case) -> PlanItem:
    return make_item(case, 2)


def test_only_zendesk_requesters_with_a_phone_miss_calls() -> None:
    with_phone = dataclasses.replace(make_case("1"), requester=Requester("r1", phone="+1555"))
    without_phone = dataclasses.replace(make_case("2"), requester=Requester("r2"))
    conversation = dataclasses.replace(make_case("3"), source=Source.INTERCOM)
    chased = {case.ref: _chased(case) for case in (with_phone, without_phone, conversation)}
    options = DemoOptions(replies_per_day=0, missed_calls_per_day=3)

    chosen = choose_activity(random.Random(1), chased, options)

    assert chosen == [CustomerActivity(with_phone.ref, "missed_call")]


def test_the_same_seed_tells_the_same_story() -> None:
    chased = {case.ref: _chased(case) for case in map(make_case, "123456789")}
    options = DemoOptions(replies_per_day=2, missed_calls_per_day=0)

    first = choose_activity(random.Random(7), chased, options)
    again = choose_activity(random.Random(7), chased, options)

    assert first == again
    assert len({a.case_ref for a in first}) == 2
