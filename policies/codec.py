"""Provisional: replaced by branch `due` at merge.

Cases and accounts as JSON-ready dicts and back, losslessly, through the model's dataclasses.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from policies.model import (
    Account,
    Activity,
    ActivityKind,
    Case,
    CaseKind,
    FollowUpMark,
    PlanTier,
    Priority,
    Requester,
    Source,
    Status,
)

__all__ = ["account_from_json", "account_to_json", "case_from_json", "case_to_json"]


def case_to_json(case: Case) -> dict[str, Any]:
    requester = case.requester
    return {
        "source": case.source.value,
        "id": case.id,
        "kind": case.kind.value,
        "status": case.status.value,
        "created_at": case.created_at.isoformat(),
        "updated_at": case.updated_at.isoformat(),
        "subject": case.subject,
        "priority": None if case.priority is None else case.priority.value,
        "requester": None
        if requester is None
        else {
            "id": requester.id,
            "name": requester.name,
            "email": requester.email,
            "phone": requester.phone,
        },
        "account_id": case.account_id,
        "assignee": case.assignee,
        "group": case.group,
        "brand": case.brand,
        "fields": dict(case.fields),
        "tags": sorted(case.tags),
        "history": [{"kind": a.kind.value, "at": a.at.isoformat()} for a in case.history],
        "followups": [
            {"policy": f.policy, "step": f.step, "at": f.at.isoformat(), "key": f.key}
            for f in case.followups
        ],
        "updated_stamp": case.updated_stamp,
    }


def case_from_json(data: dict[str, Any]) -> Case:
    requester = data["requester"]
    return Case(
        source=Source(data["source"]),
        id=data["id"],
        kind=CaseKind(data["kind"]),
        status=Status(data["status"]),
        created_at=datetime.fromisoformat(data["created_at"]),
        updated_at=datetime.fromisoformat(data["updated_at"]),
        subject=data["subject"],
        priority=None if data["priority"] is None else Priority(data["priority"]),
        requester=None if requester is None else Requester(**requester),
        account_id=data["account_id"],
        assignee=data["assignee"],
        group=data["group"],
        brand=data["brand"],
        fields=dict(data["fields"]),
        tags=frozenset(data["tags"]),
        history=tuple(
            Activity(ActivityKind(a["kind"]), datetime.fromisoformat(a["at"]))
            for a in data["history"]
        ),
        followups=tuple(
            FollowUpMark(f["policy"], f["step"], datetime.fromisoformat(f["at"]), f["key"])
            for f in data["followups"]
        ),
        updated_stamp=data["updated_stamp"],
    )


def account_to_json(account: Account) -> dict[str, Any]:
    return {
        "id": account.id,
        "name": account.name,
        "plan": None if account.plan is None else account.plan.value,
        "canceled": account.canceled,
        "stop_followups": account.stop_followups,
        "inactive": account.inactive,
        "open_cases": account.open_cases,
        "raw_plan": account.raw_plan,
        "open_case_refs": list(account.open_case_refs),
        "max_open_priority": None
        if account.max_open_priority is None
        else account.max_open_priority.value,
        "open_case_titles": dict(account.open_case_titles),
    }


def account_from_json(data: dict[str, Any]) -> Account:
    return Account(
        id=data["id"],
        name=data["name"],
        plan=None if data["plan"] is None else PlanTier(data["plan"]),
        canceled=data["canceled"],
        stop_followups=data["stop_followups"],
        inactive=data["inactive"],
        open_cases=data["open_cases"],
        raw_plan=data["raw_plan"],
        open_case_refs=tuple(data["open_case_refs"]),
        max_open_priority=None
        if data["max_open_priority"] is None
        else Priority(data["max_open_priority"]),
        open_case_titles=dict(data["open_case_titles"]),
    )
