"""Selectors compiled into checks: which cases a policy applies to.

A check is three-valued: True, False, or None when the case lacks the data to tell (no
account, unknown plan); the planner reports the last kind instead of guessing. Checks on a
closed list of values (kind, status, a field's value) also say so, so the rulebook can route
cases by them instead of testing each policy in turn.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from policies.language import FieldCondition, PriorityRange, Selector
from policies.model import Account, Case, Priority

__all__ = ["Check", "Tri", "compile_selector", "match_checks", "may_match"]

Tri = bool | None


@dataclass(frozen=True, slots=True)
class Check:
    """One selector condition: ``label`` says what the policy requires, ``observed`` what the
    case has (both for explanations); ``test`` answers True, False or None (cannot tell)."""

    label: str
    test: Callable[[Case, Account | None], Tri]
    observed: Callable[[Case, Account | None], str]
    # For checks that only accept listed values of one dimension ("kind", "status", "plan",
    # "field:<name>"): the planner routes cases by these instead of running the test.
    routes_on: str | None = None
    accepts: frozenset[str] = frozenset()
    # Reads the account: its own attributes (plan, flags), known once accounts are read...
    reads_account: bool = False
    # ... or its open-case totals (open cases, highest open priority), known only once every
    # case is in.
    reads_totals: bool = False


def _names(values: Sequence[object]) -> str:
    return "/".join(str(v) for v in values)


def compile_selector(selector: Selector) -> tuple[Check, ...]:
    """Checks in the order that rejects most cases soonest: what the case is, then which
    account it belongs to (plan tiers split the bug policies), then the rarer exclusions."""
    checks: list[Check] = []
    if selector.kind is not None:
        kinds = frozenset(selector.kind)
        checks.append(
            Check(
                f"kind is {_names(selector.kind)}",
                lambda c, a: c.kind in kinds,
                lambda c, a: f"kind {c.kind}",
                "kind",
                frozenset(str(k) for k in kinds),
            )
        )
    if selector.status is not None:
        statuses = frozenset(selector.status)
        checks.append(
            Check(
                f"status is {_names(selector.status)}",
                lambda c, a: c.status in statuses,
                lambda c, a: f"status {c.status}",
                "status",
                frozenset(str(s) for s in statuses),
            )
        )
    for name, condition in selector.fields.items():
        checks.append(_field_check(name, condition))
    if selector.tags_all:
        wanted = frozenset(selector.tags_all)
        checks.append(
            Check(
                f"tags include {_names(sorted(wanted))}",
                lambda c, a: wanted <= c.tags,
                lambda c, a: f"tags {_names(sorted(c.tags)) or 'none'}",
            )
        )
    if selector.tags_none:
        banned = frozenset(selector.tags_none)
        checks.append(
            Check(
                f"no tag {_names(sorted(banned))}",
                lambda c, a: not (banned & c.tags),
                lambda c, a: f"tags {_names(sorted(c.tags)) or 'none'}",
            )
        )
    if selector.industry_not_in:
        excluded = frozenset(selector.industry_not_in)
        checks.append(
            Check(
                f"industry not {_names(sorted(excluded))}",
                lambda c, a: c.industry not in excluded,
                lambda c, a: f"industry {c.industry or 'unset'}",
            )
        )
    if selector.plan is not None:
        plans = frozenset(selector.plan)
        checks.append(
            Check(
                f"plan is {_names(selector.plan)}",
                lambda c, a: None if a is None or a.plan is None else a.plan in plans,
                _observed_plan,
                "plan",
                frozenset(str(p) for p in plans),
                reads_account=True,
            )
        )
    if selector.priority is not None:
        checks.append(_priority_check("priority", selector.priority, _case_priority))
    if selector.account_priority is not None:
        checks.append(
            dataclasses.replace(
                _priority_check(
                    "account's highest open priority", selector.account_priority, _account_priority
                ),
                reads_account=True,
                reads_totals=True,
            )
        )
    if selector.open_cases is not None:
        low, high = selector.open_cases.min, selector.open_cases.max
        label = " and ".join(
            part
            for part in (
                f">= {low}" if low is not None else "",
                f"<= {high}" if high is not None else "",
            )
            if part
        )
        checks.append(
            Check(
                f"account's open cases {label}",
                lambda c, a: (
                    None
                    if a is None
                    else (
                        (low is None or a.open_cases >= low)
                        and (high is None or a.open_cases <= high)
                    )
                ),
                lambda c, a: "no account" if a is None else f"{a.open_cases} open cases",
                reads_account=True,
                reads_totals=True,
            )
        )
    if selector.account_inactive is not None:
        inactive = selector.account_inactive
        checks.append(
            Check(
                "account inactive" if inactive else "account active",
                lambda c, a: None if a is None else a.inactive is inactive,
                lambda c, a: (
                    "no account" if a is None else ("inactive" if a.inactive else "active")
                ),
                reads_account=True,
            )
        )
    if selector.assigned is not None:
        assigned = selector.assigned
        checks.append(
            Check(
                "assigned" if assigned else "unassigned",
                lambda c, a: (c.assignee is not None) is assigned,
                lambda c, a: f"assignee {c.assignee or 'none'}",
            )
        )
    silencing = _silencing_check(selector.include_canceled, selector.include_stopped)
    if silencing is not None:
        checks.append(silencing)
    return tuple(checks)


def _silencing_check(include_canceled: bool, include_stopped: bool) -> Check | None:
    """Canceled accounts and accounts advised to stop (seeds 000/001) get nothing, unless a
    policy opts in. One check for both flags: it runs for nearly every case."""
    canceled, stopped = not include_canceled, not include_stopped
    if not (canceled or stopped):
        return None
    wanted = " and ".join(
        ([] if not canceled else ["not canceled"])
        + ([] if not stopped else ["not flagged to stop follow-ups"])
    )

    def test(case: Case, account: Account | None) -> bool:
        return account is None or not (
            (canceled and account.canceled) or (stopped and account.stop_followups)
        )

    def observed(case: Case, account: Account | None) -> str:
        if account is None:
            return "no account"
        flags = [
            f
            for f, on in (("canceled", account.canceled), ("stop flag set", account.stop_followups))
            if on
        ]
        return ", ".join(flags) or "neither canceled nor flagged"

    return Check(f"account {wanted}", test, observed, reads_account=True)


def _observed_plan(case: Case, account: Account | None) -> str:
    if account is None:
        return f"no account {case.account_id!r}" if case.account_id else "no account"
    if account.plan is None:
        return f"account {account.id} has no known plan (raw: {account.raw_plan!r})"
    return f"plan {account.plan}"


def _field_check(name: str, condition: FieldCondition) -> Check:
    def observed(case: Case, account: Account | None) -> str:
        return f"{name} {case.fields.get(name) or 'unset'}"

    listed = (
        frozenset({condition.equals})
        if condition.equals is not None
        else frozenset(condition.in_)
        if condition.in_ is not None
        else None
    )
    if listed is not None and condition.present is None and condition.not_in is None:
        # The common case, kept to one set lookup and routable by the planner.
        label = (
            f"{name} = {condition.equals}"
            if condition.equals is not None
            else (f"{name} in {_names(sorted(listed))}")
        )
        return Check(
            label, lambda c, a: c.fields.get(name) in listed, observed, f"field:{name}", listed
        )
    parts: list[str] = []
    tests: list[Callable[[str | None], bool]] = []
    if condition.present is not None:
        present = condition.present
        parts.append("set" if present else "unset")
        tests.append(lambda v: (v is not None and v != "") is present)
    if listed is not None:
        parts.append(f"in {_names(sorted(listed))}")
        tests.append(lambda v: v in listed)
    if condition.not_in is not None:
        banned = frozenset(condition.not_in)
        parts.append(f"not in {_names(sorted(banned))}")
        tests.append(lambda v: v not in banned)
    label = f"{name} {' and '.join(parts)}"
    if len(tests) == 1:
        (only,) = tests
        return Check(label, lambda c, a: only(c.fields.get(name)), observed)
    return Check(label, lambda c, a: all(t(c.fields.get(name)) for t in tests), observed)


def _case_priority(case: Case, account: Account | None) -> Priority | None:
    return case.priority


def _account_priority(case: Case, account: Account | None) -> Priority | None:
    # The account's aggregate when reported; the case's own priority stands in otherwise.
    if account is not None and account.max_open_priority is not None:
        return account.max_open_priority
    return case.priority


def _priority_check(
    what: str, wanted: PriorityRange, read: Callable[[Case, Account | None], Priority | None]
) -> Check:
    low = wanted.at_least.rank if wanted.at_least else None
    high = wanted.below.rank if wanted.below else None
    label = " and ".join(
        p
        for p in (
            f"at least {wanted.at_least}" if wanted.at_least else "",
            f"below {wanted.below}" if wanted.below else "",
        )
        if p
    )

    def test(case: Case, account: Account | None) -> Tri:
        priority = read(case, account)
        if priority is None:
            return None
        rank = priority.rank
        return (low is None or rank >= low) and (high is None or rank < high)

    def observed(case: Case, account: Account | None) -> str:
        priority = read(case, account)
        if read is _account_priority and (account is None or account.max_open_priority is None):
            return f"account priority unknown; this case's own: {priority or 'unset'}"
        return f"{what} {priority or 'unset'}"

    return Check(f"{what} {label}", test, observed)


def may_match(checks: Sequence[Check], case: Case, account: Account | None = None) -> bool:
    """Whether the checks could pass for ``case`` once its account's open-case totals are
    known: False only when a check on the case itself (kind, status, fields, tags, industry,
    priority, assignee) fails, or one on the account's own attributes (plan, flags) does with
    ``account`` given. Checks on the totals count as passable, and so do all the account's
    without ``account``. None of them reads a case's history or follow-ups."""
    for check in checks:
        if check.reads_totals or (check.reads_account and account is None):
            continue
        if check.test(case, account) is False:
            return False
    return True


def match_checks(
    checks: Sequence[Check], case: Case, account: Account | None
) -> tuple[Tri, Check | None]:
    """(True, None) on a match; (False, the failed check); (None, the check that could not
    tell) when nothing failed but data was missing."""
    unknown: Check | None = None
    for check in checks:
        result = check.test(case, account)
        if result is False:
            return False, check
        if result is None and unknown is None:
            unknown = check
    return (None, unknown) if unknown is not None else (True, None)
