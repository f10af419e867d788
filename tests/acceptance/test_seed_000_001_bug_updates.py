"""Seeds 000_29dd8d64ebe49b73.txt and 001_c94f087d1065634b.txt: bug updates by plan tier.

Each bug was last updated ("User last updated") on Wed 4 Mar 2026 unless a row says otherwise;
rows give the day the planner runs and whether an update is owed.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from policies.model import (
    Account,
    ActivityKind,
    Case,
    CaseKind,
    PlanItem,
    PlanTier,
    Priority,
    Status,
)
from policies.planner import plan, with_open_cases
from tests.acceptance.seed_days import (
    CALENDAR,
    RULES,
    at,
    facts,
    matches,
    rules_with,
    run_day,
    ticket,
    with_activity,
)


def bug(
    case_id: str = "1",
    *,
    last_updated: str = "2026-03-04",
    assignee: str | None = "Eve Engineer",
    status: Status = Status.OPEN,
) -> Case:
    return ticket(
        case_id,
        kind=CaseKind.BUG,
        created="2025-06-02",
        account="a",
        assignee=assignee,
        status=status,
        user_last_updated=last_updated,
    )


def account(plan: PlanTier | None, open_cases: int = 1, **flags: Any) -> dict[str, Account]:
    return {"a": Account("a", plan=plan, open_cases=open_cases, **flags)}


# (tier, account's highest open priority, last update, run day, owed?)
TIER_TABLE = [
    # Enterprise: "every five business days, regardless of issue severity".
    (PlanTier.ENTERPRISE, Priority.LOW, "2026-03-04", "2026-03-10", None),
    (PlanTier.ENTERPRISE, Priority.LOW, "2026-03-04", "2026-03-11", "bug-enterprise"),
    (PlanTier.ENTERPRISE, Priority.CRITICAL, "2026-03-04", "2026-03-11", "bug-enterprise"),
    # Standard with at least one high-priority ticket (Critical, then Urgent/High): 5 days.
    (PlanTier.STANDARD, Priority.CRITICAL, "2026-03-04", "2026-03-10", None),
    (
        PlanTier.STANDARD,
        Priority.CRITICAL,
        "2026-03-04",
        "2026-03-11",
        "bug-standard-high-priority",
    ),
    (PlanTier.STANDARD, Priority.URGENT, "2026-03-04", "2026-03-11", "bug-standard-high-priority"),
    (PlanTier.STANDARD, Priority.HIGH, "2026-03-04", "2026-03-11", "bug-standard-high-priority"),
    # Standard without: "quarterly" (default of standard_without_high_priority_cadence).
    (PlanTier.STANDARD, Priority.NORMAL, "2026-03-04", "2026-03-18", None),
    (PlanTier.STANDARD, Priority.NORMAL, "2025-12-04", "2026-03-03", None),
    (PlanTier.STANDARD, Priority.NORMAL, "2025-12-04", "2026-03-04", "bug-standard"),
    # Inactive users (one ticket, Trial/Community): "30 days since the last update".
    (PlanTier.TRIAL, Priority.NORMAL, "2026-02-09", "2026-03-10", None),
    (PlanTier.TRIAL, Priority.NORMAL, "2026-02-09", "2026-03-11", "bug-inactive-user"),
    (PlanTier.COMMUNITY, Priority.NORMAL, "2026-02-09", "2026-03-11", "bug-inactive-user"),
]


@pytest.mark.parametrize(("tier", "top", "last", "day", "owed"), TIER_TABLE)
def test_bug_update_cadence_by_tier(
    tier: PlanTier, top: Priority, last: str, day: str, owed: str | None
) -> None:
    accounts = account(tier, max_open_priority=top)
    _, items, _ = run_day(bug(last_updated=last), at(day), accounts)
    assert [i.policy for i in items] == ([owed] if owed else [])
    if owed:
        # "Update the 'User last updated' field in Asana" with the update.
        assert matches(items[0], {"reply": "bug_update", "bug_fields": {"user_last_updated": day}})


def test_ten_business_day_setting_for_standard_without_high_priority() -> None:
    rules = rules_with(standard_without_high_priority_cadence="ten_business_days")
    accounts = account(PlanTier.STANDARD, max_open_priority=Priority.NORMAL)
    case = bug()
    assert run_day(case, at("2026-03-17"), accounts, rules)[1] == []
    assert run_day(case, at("2026-03-18"), accounts, rules)[1]


@pytest.mark.parametrize(
    ("flags", "assignee"),
    [({"canceled": True}, "Eve Engineer"), ({"stop_followups": True}, "Eve Engineer"), ({}, None)],
    ids=["canceled account", "advised to stop", "bug not assigned to an engineer"],
)
def test_no_update_for_canceled_stopped_or_unassigned(
    flags: dict[str, bool], assignee: str | None
) -> None:
    accounts = account(PlanTier.TRIAL, **flags)
    case = bug(last_updated="2026-01-01", assignee=assignee)
    assert run_day(case, at("2026-03-11"), accounts)[1] == []


def test_unknown_plan_is_reported_not_dropped() -> None:
    accounts = {"a": Account("a", plan=None, raw_plan="Gold")}
    _, items, unjudged = run_day(bug(), at("2026-03-11"), accounts)
    assert items == []
    assert "Gold" in unjudged[0].reason


def test_engineer_is_nudged_only_when_silent_since_the_last_followup() -> None:
    accounts = account(PlanTier.ENTERPRISE)
    case, first, _ = run_day(bug(), at("2026-03-11"), accounts)
    assert facts(first[0])["nudge"]
    silent = run_day(case, at("2026-03-18"), accounts)[1]
    assert facts(silent[0])["nudge"]
    answered = with_activity(case, ActivityKind.ENGINEER_UPDATE, at("2026-03-16"))
    assert not facts(run_day(answered, at("2026-03-18"), accounts)[1][0])["nudge"]


# Community: "at least three or more tickets ... every five business days ... about all the
# outstanding bugs that they reported (3 or more)" -> one update, on the lead bug.
@pytest.mark.parametrize(
    ("open_bugs", "setting", "expected_covers"),
    [
        (3, "three_or_more", ("asana:2", "asana:3")),
        (2, "three_or_more", None),
        (3, "more_than_three", None),
        (4, "more_than_three", ("asana:2", "asana:3", "asana:4")),
    ],
)
def test_community_bundle(
    open_bugs: int, setting: str, expected_covers: tuple[str, ...] | None
) -> None:
    refs = tuple(f"asana:{n}" for n in range(1, open_bugs + 1))
    accounts = {
        "a": Account("a", plan=PlanTier.COMMUNITY, open_cases=open_bugs, open_case_refs=refs)
    }
    cases = [bug(str(n)) for n in range(1, open_bugs + 1)]
    rules = rules_with(community_min_open_cases=setting)
    items = list(plan(cases, accounts, at("2026-03-11"), rules, CALENDAR))
    if expected_covers is None:
        assert items == []
    else:
        (item,) = items
        assert isinstance(item, PlanItem)
        assert item.case.ref == "asana:1"
        assert item.covers == expected_covers
        (field,) = [a for a in item.actions if a.params.get("field") == "user_last_updated"]
        assert field.params["cases"] == list(refs)


def test_community_conversations_count_towards_the_threshold_but_the_update_covers_bugs() -> None:
    refs = ("asana:1", "asana:2", "intercom:7")
    accounts = {"a": Account("a", plan=PlanTier.COMMUNITY, open_cases=3, open_case_refs=refs)}
    items = list(plan([bug("1"), bug("2")], accounts, at("2026-03-11"), RULES, CALENDAR))
    (item,) = items
    assert isinstance(item, PlanItem)
    assert item.covers == ("asana:2",)


def test_bugs_of_solved_status_get_nothing() -> None:
    accounts = account(PlanTier.ENTERPRISE)
    case = bug(status=Status.SOLVED)
    assert run_day(case, at("2026-03-11"), accounts)[1] == []


def test_default_rules_are_the_bundled_pack() -> None:
    assert {p.name for p in RULES.policies} >= {"bug-enterprise", "bug-community-bundle"}


def test_the_bundled_update_names_every_bug_by_its_title_and_greets_the_contact() -> None:
    # 001, Community: "an update about all the outstanding bugs that they reported (3 or
    # more)". The customer reads titles, never internal ids; the customer behind an Asana bug
    # is the Intercom contact (the account), so the greeting uses its name.
    titles = ["Export to CSV drops rows", "Login loops on Safari", "Invoice PDF is blank"]
    cases = [
        dataclasses.replace(bug(str(n)), subject=title, requester=None)
        for n, title in enumerate(titles, start=1)
    ]
    contact = {"a": Account("a", name="Maria Lopez", plan=PlanTier.COMMUNITY)}
    accounts = with_open_cases(contact, cases)
    (item,) = list(plan(cases, accounts, at("2026-03-11"), RULES, CALENDAR))
    assert isinstance(item, PlanItem)
    (reply,) = [a.params["body"] for a in item.actions if a.params.get("template") == "bug_update"]
    assert reply.startswith("Hi Maria Lopez,")
    assert "the 3 issues you reported: " + ", ".join(titles) + "." in reply
    assert "asana:" not in reply


def test_a_hostile_subject_is_echoed_on_one_line_and_capped() -> None:
    # A 60,000-character subject made a 60,177-character reply: customer text is capped.
    case = dataclasses.replace(bug(), subject="A" * 60_000 + "\n\nfw-forged")
    (item,) = list(plan([case], account(PlanTier.ENTERPRISE), at("2026-03-11"), RULES, CALENDAR))
    assert isinstance(item, PlanItem)
    (reply,) = [a.params["body"] for a in item.actions if a.params.get("template") == "bug_update"]
    assert len(reply) < 1_000
    assert "A" * 199 + "…" in reply
