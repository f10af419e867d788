"""Cases and accounts as JSON-ready dicts and back, losslessly (the case store's format).

A case is written in the shape of a case entry of ``followup plan``'s input file
(:mod:`policies.snapshot`: ``account`` for the account id, ``history`` and ``followups`` as
lists of small dicts), plus ``updated_stamp``; :mod:`policies.snapshot` decodes its entries
with :func:`case_from_json` once it has filled in its defaults. Instants are ISO-8601 with
their UTC offset and microseconds (an instant without a zone stays without one, so the planner
still reports it), enums their values, ``tags`` a sorted list; every field comes back equal.

What a round trip does not keep is the *name* of an instant's zone: ``09:00 America/New_York``
comes back as ``09:00-05:00``, the same instant. The planner only compares instants and counts
days in the tenant's calendar zone, so nothing it decides depends on it; connectors produce
UTC instants, which come back as :data:`datetime.UTC` itself.
"""

from __future__ import annotations

from collections.abc import Mapping
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
        "priority": case.priority.value if case.priority is not None else None,
        "requester": None
        if requester is None
        else {
            "id": requester.id,
            "name": requester.name,
            "email": requester.email,
            "phone": requester.phone,
        },
        "account": case.account_id,
        "assignee": case.assignee,
        "group": case.group,
        "brand": case.brand,
        "fields": dict(case.fields),
        "tags": sorted(case.tags),
        "history": [{"kind": a.kind.value, "at": a.at.isoformat()} for a in case.history],
        "followups": [
            {"policy": m.policy, "step": m.step, "at": m.at.isoformat(), "key": m.key}
            for m in case.followups
        ],
        "updated_stamp": case.updated_stamp,
    }


def case_from_json(data: Mapping[str, Any]) -> Case:
    """The case :func:`case_to_json` wrote (``KeyError``/``ValueError`` on anything else)."""
    requester = data["requester"]
    priority = data["priority"]
    return Case(
        source=Source(data["source"]),
        id=data["id"],
        kind=CaseKind(data["kind"]),
        status=Status(data["status"]),
        created_at=datetime.fromisoformat(data["created_at"]),
        updated_at=datetime.fromisoformat(data["updated_at"]),
        subject=data["subject"],
        priority=Priority(priority) if priority is not None else None,
        requester=None
        if requester is None
        else Requester(requester["id"], requester["name"], requester["email"], requester["phone"]),
        account_id=data["account"],
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
            FollowUpMark(m["policy"], m["step"], datetime.fromisoformat(m["at"]), m["key"])
            for m in data["followups"]
        ),
        updated_stamp=data["updated_stamp"],
    )


def account_to_json(account: Account) -> dict[str, Any]:
    return {
        "id": account.id,
        "name": account.name,
        "plan": account.plan.value if account.plan is not None else None,
        "raw_plan": account.raw_plan,
        "canceled": account.canceled,
        "stop_followups": account.stop_followups,
        "inactive": account.inactive,
        "open_cases": account.open_cases,
        "open_case_refs": list(account.open_case_refs),
        "max_open_priority": account.max_open_priority.value
        if account.max_open_priority is not None
        else None,
        "open_case_titles": dict(account.open_case_titles),
    }


def account_from_json(data: Mapping[str, Any]) -> Account:
    """The account :func:`account_to_json` wrote (``KeyError``/``ValueError`` on anything
    else). Unlike an input file's ``plan``, which is the vendor's word for it, ``plan`` here is
    the tier already read from ``raw_plan``."""
    plan = data["plan"]
    top = data["max_open_priority"]
    return Account(
        id=data["id"],
        name=data["name"],
        plan=PlanTier(plan) if plan is not None else None,
        canceled=data["canceled"],
        stop_followups=data["stop_followups"],
        inactive=data["inactive"],
        open_cases=data["open_cases"],
        raw_plan=data["raw_plan"],
        open_case_refs=tuple(data["open_case_refs"]),
        max_open_priority=Priority(top) if top is not None else None,
        open_case_titles=dict(data["open_case_titles"]),
    )
