"""Day-by-day driving of the planner for the seed scenarios: plan at 10:00 New York time on
each day, carry out what is due (as the worker would), and report what happened per day."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time
from typing import Any

from policies.calendar import BusinessCalendar
from policies.language import load_pack
from policies.model import (
    Account,
    Action,
    ActionType,
    Activity,
    ActivityKind,
    Case,
    CaseKind,
    PlanItem,
    Priority,
    Requester,
    Source,
    Status,
    Unjudged,
)
from policies.planner import apply_item, plan
from policies.rules import Rulebook, compile_pack

CALENDAR = BusinessCalendar(timezone="America/New_York", country="US")
RULES = compile_pack(load_pack())


def rules_with(**settings: str) -> Rulebook:
    return compile_pack(load_pack(overrides=settings))


def at(day: str, hour: int = 10, minute: int = 0) -> datetime:
    """``day`` (ISO date) at ``hour`` New York time."""
    return datetime.combine(date.fromisoformat(day), time(hour, minute), tzinfo=CALENDAR.zone)


def ticket(
    case_id: str = "1",
    *,
    created: str = "2026-03-02",
    status: Status = Status.OPEN,
    kind: CaseKind = CaseKind.TICKET,
    email: str | None = "cx@example.com",
    phone: str | None = None,
    assignee: str | None = "Dana Smith",
    account: str | None = None,
    priority: Priority | None = None,
    history: Iterable[tuple[ActivityKind, datetime]] = (),
    **fields: str,
) -> Case:
    source = Source.ASANA if kind is CaseKind.BUG else Source.ZENDESK
    return Case(
        source=source,
        id=case_id,
        kind=kind,
        status=status,
        created_at=at(created, 9),
        updated_at=at(created, 9),
        subject="my passport renewal",
        priority=priority,
        requester=Requester("cx", "Maria Lopez", email=email, phone=phone),
        account_id=account,
        assignee=assignee,
        fields=dict(fields),
        history=tuple(Activity(kind, when) for kind, when in history),
    )


def with_activity(case: Case, kind: ActivityKind, when: datetime, **changes: Any) -> Case:
    return dataclasses.replace(
        case, history=(*case.history, Activity(kind, when)), updated_at=when, **changes
    )


def run_day(
    case: Case,
    when: datetime,
    accounts: Mapping[str, Account] | None = None,
    rules: Rulebook = RULES,
) -> tuple[Case, list[PlanItem], list[Unjudged]]:
    """Plan one case at ``when`` and carry out what is due."""
    items: list[PlanItem] = []
    unjudged: list[Unjudged] = []
    for result in plan([case], accounts or {}, when, rules, CALENDAR):
        if isinstance(result, Unjudged):
            unjudged.append(result)
        else:
            items.append(result)
            case = apply_item(case, result, when)
    return case, items, unjudged


def run_days(
    case: Case,
    days: Iterable[str],
    accounts: Mapping[str, Account] | None = None,
    rules: Rulebook = RULES,
) -> tuple[Case, dict[str, list[PlanItem]]]:
    log: dict[str, list[PlanItem]] = {}
    for day in days:
        case, items, unjudged = run_day(case, at(day), accounts, rules)
        assert not unjudged, unjudged
        log[day] = items
    return case, log


def _all(actions: Iterable[Action], kind: ActionType) -> list[dict[str, Any]]:
    return [a.params for a in actions if a.type is kind]


def facts(item: PlanItem) -> dict[str, Any]:
    """What an agent would see of one plan item, flattened for table-driven assertions."""
    actions = item.actions
    one = {
        "status": ActionType.SET_STATUS,
        "assignee": ActionType.SET_ASSIGNEE,
        "escalate": ActionType.ESCALATE,
    }
    result: dict[str, Any] = {
        "policy": item.policy,
        "step": item.step_label,
        "note": " | ".join(p["body"] for p in _all(actions, ActionType.NOTE)) or None,
        "reply": " | ".join(p["template"] for p in _all(actions, ActionType.REPLY)) or None,
        "channels": [c for p in _all(actions, ActionType.REACH_OUT) for c in p["channels"]],
        "fields": {p["field"]: p["value"] for p in _all(actions, ActionType.SET_FIELD)},
        "bug_fields": {p["field"]: p["value"] for p in _all(actions, ActionType.SET_BUG_FIELD)},
        "tags": [t for p in _all(actions, ActionType.ADD_TAGS) for t in p["tags"]],
        "nudge": bool(_all(actions, ActionType.NOTIFY_ENGINEER)),
    }
    for name, kind in one.items():
        found = _all(actions, kind)
        result[name] = next(iter(found[0].values())) if found else None
    return result


def matches(item: PlanItem, expected: Mapping[str, Any]) -> bool:
    got = facts(item)
    return all(got[k] == v for k, v in expected.items())


def check_day(day: str, items: list[PlanItem], expected: Mapping[str, Any] | None) -> None:
    """One row of a day-by-day table: nothing at all, or exactly one matching item."""
    if expected is None:
        assert items == [], f"{day}: expected no action, got {[facts(i) for i in items]}"
        return
    assert len(items) == 1, f"{day}: expected one item, got {[facts(i) for i in items]}"
    assert matches(items[0], expected), f"{day}: {facts(items[0])}"
