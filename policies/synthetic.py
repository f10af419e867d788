"""Deterministic synthetic cases for ``followup bench plan``: a realistic mix of every flow the
default pack handles, generated lazily so the benchmark itself holds no list of cases."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

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

__all__ = ["synthetic_accounts", "synthetic_cases"]

_TIERS = (PlanTier.ENTERPRISE, PlanTier.STANDARD, PlanTier.COMMUNITY, PlanTier.TRIAL)
_REQUEST_TYPES = (
    "general_inquiry",
    "refund",
    "bot_tsa_ge_nexus_sentri",
    "bot_ein",
    "question",
    "bug",
    "feature_request",
    "",
)
_STATUSES = (Status.NEW, Status.OPEN, Status.PENDING, Status.PENDING, Status.SOLVED)
_PRIORITIES = (Priority.LOW, Priority.NORMAL, Priority.HIGH, Priority.URGENT, Priority.CRITICAL)
_REQUESTERS = (
    Requester("r1", "Ann", email="ann@example.com"),
    Requester("r2", "Bo", phone="+15550100"),
    Requester("r3", "Cy", email="cy@example.com", phone="+15550101"),
)


def synthetic_accounts(count: int = 1000) -> dict[str, Account]:
    return {
        f"acct-{i}": Account(
            id=f"acct-{i}",
            plan=_TIERS[i % 4] if i % 97 else None,  # a few unknown plans, as in real data
            canceled=i % 50 == 0,
            open_cases=i % 6,
            open_case_refs=tuple(f"asana:{i}-{k}" for k in range(i % 6)),
            max_open_priority=_PRIORITIES[i % 5],
        )
        for i in range(count)
    }


def synthetic_cases(count: int, now: datetime, accounts: int = 1000) -> Iterator[Case]:
    """``count`` cases around ``now``: tickets of every request type and bugs of every tier,
    at every point of their sequences (a spread of ages, replies and earlier follow-ups)."""
    for i in range(count):
        age = timedelta(days=i % 23, hours=i % 7)
        created = now - age
        bug = i % 3 == 0
        request_type = _REQUEST_TYPES[i % len(_REQUEST_TYPES)]
        fields = {"request_type": request_type} if request_type and not bug else {}
        if request_type in ("question", "bug", "feature_request"):
            fields["phase"] = str(1 + i % 3)
            fields["phase_since"] = (created + timedelta(hours=i % 5)).isoformat()
        if i % 4 == 0:
            fields["linked_order"] = f"O-{i}"
        history: tuple[Activity, ...] = ()
        if i % 5 == 1:
            history = (Activity(ActivityKind.CUSTOMER_REPLY, created + timedelta(hours=1)),)
        elif i % 5 == 2:
            history = (Activity(ActivityKind.AGENT_UPDATE, created + timedelta(hours=2)),)
        followups: tuple[FollowUpMark, ...] = ()
        if i % 3 == 1:
            policy = "general-inquiry" if not bug else "bug-enterprise"
            followups = (FollowUpMark(policy, 1, created + timedelta(days=1), f"k{i}"),)
        yield Case(
            source=Source.ASANA if bug else Source.ZENDESK,
            id=str(i),
            kind=CaseKind.BUG if bug else CaseKind.TICKET,
            status=_STATUSES[i % len(_STATUSES)],
            created_at=created,
            updated_at=created,
            subject=f"Case {i}",
            priority=_PRIORITIES[i % 5],
            requester=_REQUESTERS[i % 3],
            account_id=f"acct-{i % accounts}",
            assignee=f"agent-{i % 17}" if i % 11 else None,
            fields=fields,
            history=history,
            followups=followups,
        )
