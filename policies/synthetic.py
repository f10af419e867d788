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
            since = created + timedelta(hours=i % 5)
            fields["phase_since"] = since.isoformat()
        if i % 4 == 0:
            fields["linked_order"] = f"O-{i}"
        history: tuple[Activity, ...] = ()
        if i % 5 == 1:
            history = (Activity(ActivityKind.CUSTOMER_REPLY, created + timedelta(hours=1)),)
        elif i % 5 == 2:
            history = (Activity(ActivityKind.AGENT_UPDATE, created + timedelta(hours=2)),)
        followups = _steady_state_marks(i, bug, request_type, created, now)
        if "phase" in fields:
            followups += _phase_marks(i, request_type, int(fields["phase"]), since, now)
        if bug:
            # "User last updated" a few days ago, as after the previous bug update.
            # (i // 3: bugs are every third case; decorrelates the modular arithmetic.)
            last = now - timedelta(days=(i // 3) % 12)
            fields["user_last_updated"] = last.date().isoformat()
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


_SEQUENCES = {
    "general_inquiry": "general-inquiry",
    "refund": "refund-request",
    "bot_tsa_ge_nexus_sentri": "bot-issue-tsa",
    "bot_ein": "bot-issue-ein",
    "": "awaiting-customer",
}


def _steady_state_marks(
    i: int, bug: bool, request_type: str, created: datetime, now: datetime
) -> tuple[FollowUpMark, ...]:
    """The marks a worker running every day would have left: roughly one step per two days
    of age, the latest yesterday or earlier. Most cases are therefore mid-sequence and not
    due today, as in a real helpdesk, rather than all overdue at once."""
    # Bugs carry their state in "User last updated" instead (set with each update).
    policy = None if bug else _SEQUENCES.get(request_type)
    if policy is None:
        return ()
    age_days = (now - created).days
    steps = min(4, age_days // 2)  # three attempts and the handling after them
    return tuple(
        FollowUpMark(policy, step, now - timedelta(days=1 + 2 * (steps - step)), f"k{i}-{step}")
        for step in range(1, steps + 1)
    )


def _phase_marks(
    i: int, request_type: str, phase: int, since: datetime, now: datetime
) -> tuple[FollowUpMark, ...]:
    """Most customers were told about their phase when it began; a phase entered more than a
    week ago has already been flagged overdue when it was, as a daily worker would have."""
    prefix = "bug" if request_type == "bug" else request_type.split("_")[0]
    marks: tuple[FollowUpMark, ...] = ()
    if (i // 8) % 4:  # i // 8: the request type is i % 8; keep the two independent
        marks += (FollowUpMark(f"{prefix}-phase-update", phase, since, f"p{i}"),)
    if now - since > timedelta(days=7):
        flagged = since + timedelta(days=7)
        marks += (FollowUpMark(f"{prefix}-phase-overdue", phase, flagged, f"o{i}"),)
    return marks
