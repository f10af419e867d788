"""The due index: when a case could next be owed anything, if nothing about it changes.

An incremental cycle plans only the cases that changed since the last cycle or whose
:func:`next_due` has come (issue 13). Planning is a function of the case, its account and
``now``; with the first two fixed, what ``now`` changes is (a) which of the case's activity
and follow-up marks are already evidence (a snapshot may hold instants after ``now``) and
(b) where ``now`` stands against the instant each cadence compares it with. Selectors read no
clock, so which policy claims a case never changes with time.

(a) splits the future into stretches between the case's own instants; inside one, a
cadence's verdict only turns from "not due" to owed at the instant it compares ``now`` with,
which it hands back as :attr:`~policies.cadences.NotDue.due_at`. The rule's own deadline
arithmetic (business days, opening hours, holidays, phase timeframes) thus serves both the
planner and this index; nothing is computed twice in two ways.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from policies.cadences import NotDue
from policies.calendar import BusinessCalendar
from policies.model import Account, Case
from policies.planner import plan
from policies.rules import CompiledPolicy, Rulebook, claim

__all__ = ["next_due"]

# A rule's due_at is exact except for a phase that has not started yet, whose entry comes
# first and its deadline next: two hints. Beyond this many in one stretch, the index stops
# at the last hint, which is still safe (nothing is owed before it), only early.
_MAX_HINTS = 4


def next_due(
    case: Case,
    accounts: Mapping[str, Account],
    now: datetime,
    policies: Rulebook,
    calendar: BusinessCalendar,
) -> datetime | None:
    """The earliest instant at or after ``now`` at which ``plan([case], accounts, t, ...)``
    could yield anything (a plan item or an unjudged report) if the case and its account do
    not change; None when nothing can be owed without a change (no policy applies, the
    sequence is complete, the turn is the agent's...).

    Never later than the true first such instant; exact for every bundled cadence (the next
    step's opening, the next update's deadline, the instant just after a phase's timeframe).
    A case owed something at ``now``, or reported as unjudged, gives ``now``. The accounts are
    taken as given: callers re-plan a case whenever its account (or its open-case totals)
    change."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    # The planner itself answers for ``now``: what is due, what cannot be judged (a case
    # without time zones, an unknown plan, a missing field) and what fails to evaluate.
    if next(plan((case,), accounts, now, policies, calendar), None) is not None:
        return now
    if case.created_at > now:  # the planner skips a case until it exists
        return next_due(case, accounts, case.created_at, policies, calendar)
    account = accounts.get(case.account_id) if case.account_id is not None else None
    # Where the evidence changes: activity and follow-up marks not yet seen at ``now``.
    changes = sorted(
        {a.at for a in case.history if a.at > now} | {m.at for m in case.followups if m.at > now}
    )
    earliest: datetime | None = None
    for group in policies.routes[(case.kind, case.status)].candidates(case, account):
        claimed = claim(group, case, account)
        if claimed is None:
            continue
        # Matched outright: an undecidable check would have been reported at ``now``.
        policy, _ = claimed
        due = _first_owed(policy, case, account, now, changes, calendar)
        if due is not None and (earliest is None or due < earliest):
            earliest = due
    return earliest


def _first_owed(
    policy: CompiledPolicy,
    case: Case,
    account: Account | None,
    now: datetime,
    changes: list[datetime],
    calendar: BusinessCalendar,
) -> datetime | None:
    """When ``policy``'s cadence first owes ``case`` something from ``now`` on, following its
    ``due_at`` within each stretch of unchanged evidence (``changes`` bound the stretches)."""
    at = now
    for stretch_end in [*changes, None]:
        for _ in range(_MAX_HINTS):
            try:
                verdict = policy.cadence.evaluate(
                    case, account, policy.evidence(case, at), at, calendar.local_date(at), calendar
                )
            except Exception:
                return at  # the planner reports a failing evaluation: owed as a report
            if not isinstance(verdict, NotDue):
                return at
            hint = verdict.due_at
            if hint is None or (stretch_end is not None and hint >= stretch_end):
                break  # nothing in this stretch
            if hint <= at:
                return at  # a rule contradicting itself: re-plan now rather than miss it
            at = hint
        else:
            return at  # out of hints: early, never late
        if stretch_end is None:
            return None
        at = stretch_end
    raise AssertionError("the last stretch is open-ended")
