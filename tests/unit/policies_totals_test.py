"""Account totals (seeds 000/001): summed as cases stream, and which kinds must wait for them."""

import dataclasses
from datetime import UTC, datetime

from policies.model import Account, Case, CaseKind, PlanTier, Priority, Source, Status
from policies.planner import OpenCaseTotals
from policies.rules import load_rulebook

AT = datetime(2026, 3, 2, 10, tzinfo=UTC)


def case(n: int, account: str | None, status: Status, priority: Priority | None = None) -> Case:
    return Case(
        source=Source.ASANA,
        id=str(n),
        kind=CaseKind.BUG,
        status=status,
        created_at=AT,
        updated_at=AT,
        priority=priority,
        account_id=account,
    )


def test_totals_count_open_cases_of_known_accounts_only() -> None:
    totals = OpenCaseTotals({"a": Account("a"), "b": Account("b")})
    for c in (
        case(3, "a", Status.OPEN, Priority.HIGH),
        case(1, "a", Status.PENDING, Priority.CRITICAL),
        case(2, "a", Status.SOLVED, Priority.URGENT),  # finished: not outstanding
        case(4, "ghost", Status.OPEN),  # no such account: nothing to add it to
        case(5, None, Status.OPEN),
    ):
        totals.add(c)
    summed = totals.accounts()
    assert summed["a"].open_cases == 2
    assert summed["a"].open_case_refs == ("asana:1", "asana:3")
    assert summed["a"].max_open_priority is Priority.CRITICAL
    assert summed["b"].open_cases == 0
    assert "ghost" not in summed


def test_only_bug_policies_of_the_pack_wait_for_account_totals() -> None:
    # Tickets and conversations are planned as they stream; bugs once every case is counted.
    assert load_rulebook().reads_account_totals == frozenset({CaseKind.BUG})


def test_a_case_no_selector_can_take_whatever_its_account_is_may_not_be_planned() -> None:
    # What connectors ask before reading a case's evidence (parts, stories): selectors read
    # neither, and the account's checks (plan, open cases, priority) count as passable.
    rulebook = load_rulebook()
    open_bug = case(1, "a", Status.OPEN)
    assert rulebook.may_plan(dataclasses.replace(open_bug, assignee="Priya N"))
    assert not rulebook.may_plan(open_bug)  # every bug rule wants an engineer on it
    assert not rulebook.may_plan(
        dataclasses.replace(open_bug, assignee="Priya N", status=Status.SOLVED)
    )
    pending = dataclasses.replace(open_bug, kind=CaseKind.CONVERSATION, status=Status.PENDING)
    assert rulebook.may_plan(pending)  # the 3-Follow-Up protocol, whoever has it
    assert not rulebook.may_plan(dataclasses.replace(pending, status=Status.OPEN))
    phased = dataclasses.replace(pending, fields={"request_type": "bug", "phase": "2"})
    assert rulebook.may_plan(dataclasses.replace(phased, status=Status.OPEN))  # seed 003


def test_a_case_of_a_canceled_or_stopped_account_may_not_be_planned() -> None:
    # Account flags and plan are known before the cases (read with the accounts); the totals
    # (open cases, highest open priority) are not, and count as passable.
    rulebook = load_rulebook()
    bug = dataclasses.replace(case(1, "a", Status.OPEN), assignee="Priya N")
    pending = dataclasses.replace(bug, kind=CaseKind.CONVERSATION, status=Status.PENDING)
    for c in (bug, pending):
        assert rulebook.may_plan(c, Account("a"))
        assert not rulebook.may_plan(c, Account("a", canceled=True))
        assert not rulebook.may_plan(c, Account("a", stop_followups=True))
    # A Community account with no open case counted yet may still reach the bundle's three.
    assert rulebook.may_plan(bug, Account("a", plan=PlanTier.COMMUNITY))
    assert not rulebook.may_plan(bug, Account("a", plan=PlanTier.ENTERPRISE, canceled=True))
