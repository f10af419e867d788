"""The planner: which follow-ups each case is owed at ``now``. Pure, deterministic, streaming.

``plan`` walks the cases one at a time and keeps nothing between them, so memory stays flat
however many cases stream through. Per case, policy groups are tried in pack order; inside a
group the first matching policy claims the case (e.g. a refund request is not also run
through the generic awaiting-customer sequence). A case a policy cannot judge (no account,
unknown plan, a phase without its start date...) comes out as :class:`Unjudged` with the
reason, never silently dropped.

Bundled updates (seed 001, Community accounts: "ONE update covering all outstanding bugs")
need no buffering: the account lists its open cases (``Account.open_case_refs``), the lowest
ref is the lead, and only the lead emits the update, naming the others in ``covers``.

``preview`` replays the same planner over the next N business days, assuming nobody replies:
each planned step is applied to the case (a new follow-up mark, status, assignee, fields,
tags), exactly as the helpdesk would show it the next morning.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from policies.actions import MissingData, echo, render_actions
from policies.cadences import Due, NotDue, Unknown, Verdict
from policies.calendar import BusinessCalendar
from policies.model import (
    Account,
    ActionType,
    Case,
    FollowUpMark,
    PlanItem,
    Priority,
    Status,
    Unjudged,
    idempotency_key,
)
from policies.rules import CompiledPolicy, Rulebook, claim
from policies.selectors import Tri

__all__ = [
    "Explanation",
    "OpenCaseTotals",
    "PreviewStep",
    "apply_item",
    "explain",
    "item_to_dict",
    "plan",
    "preview",
    "with_open_cases",
]

_FINISHED = frozenset({Status.SOLVED, Status.CLOSED})


class OpenCaseTotals:
    """What each account's open cases add up to (``open_cases``, ``open_case_refs``,
    ``open_case_titles``, ``max_open_priority``), summed as cases stream by: the Community and
    Standard rules of seeds 000/001 judge a bug by the account's other cases, which no vendor
    reports on the account. Keeps a ref and a capped title per open case of a known account,
    never the cases themselves."""

    def __init__(self, accounts: Mapping[str, Account]) -> None:
        self._accounts = accounts
        self._refs: dict[str, list[str]] = {}
        self._titles: dict[str, dict[str, str]] = {}
        self._top: dict[str, Priority] = {}

    def add(self, case: Case) -> None:
        owner = case.account_id
        if owner is None or owner not in self._accounts or case.status in _FINISHED:
            return
        self._refs.setdefault(owner, []).append(case.ref)
        if case.subject:  # what a bundled update calls it, as long as a reply would echo it
            self._titles.setdefault(owner, {})[case.ref] = echo(case.subject)
        top = self._top.get(owner)
        if case.priority is not None and (top is None or case.priority.rank > top.rank):
            self._top[owner] = case.priority

    def accounts(self) -> dict[str, Account]:
        summed = dict(self._accounts)
        for account_id, refs in self._refs.items():
            summed[account_id] = dataclasses.replace(
                self._accounts[account_id],
                open_cases=len(refs),
                open_case_refs=tuple(sorted(refs)),
                max_open_priority=self._top.get(account_id),
                open_case_titles=self._titles.get(account_id, {}),
            )
        return summed


def with_open_cases(accounts: Mapping[str, Account], cases: Iterable[Case]) -> dict[str, Account]:
    """The accounts with their open cases summed (:class:`OpenCaseTotals`)."""
    totals = OpenCaseTotals(accounts)
    for case in cases:
        totals.add(case)
    return totals.accounts()


def plan(
    cases: Iterable[Case],
    accounts: Mapping[str, Account],
    now: datetime,
    policies: Rulebook,
    calendar: BusinessCalendar,
) -> Iterator[PlanItem | Unjudged]:
    """Everything owed at ``now``, case by case, in input order then pack order."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    today = calendar.local_date(now)
    routes = policies.routes
    for case in cases:
        if (zoneless := _zoneless(case)) is not None:
            yield Unjudged(case.ref, zoneless)
            continue
        if case.created_at > now:
            continue  # planning a past instant from a later snapshot: not there yet
        account = accounts.get(case.account_id) if case.account_id is not None else None
        for group in routes[(case.kind, case.status)].candidates(case, account):
            claimed = claim(group, case, account)
            if claimed is None:
                continue
            policy, unknown = claimed
            if unknown is not None:
                observed = unknown.observed(case, account)
                yield Unjudged(case.ref, _cannot_tell(policy, unknown.label, observed))
                continue
            try:
                verdict = policy.cadence.evaluate(
                    case, account, policy.evidence(case, now), now, today, calendar
                )
                # NotDue is by far the most common verdict: nothing more to build.
                result = None if isinstance(verdict, NotDue) else _result(policy, case, verdict)
            except Exception as exc:
                # One malformed case (say, a naive timestamp from a connector) is
                # reported like any case the policy cannot judge; the run goes on.
                result = Unjudged(case.ref, _failed(policy, exc))
            if result is not None:
                yield result


def _zoneless(case: Case) -> str | None:
    """Why the case's instants cannot be placed on the calendar, if one has no time zone.

    Every comparison with ``now`` would fail on it, and business days are counted in the
    tenant's zone: the case is reported instead (connectors reject such records already)."""
    # Plain loops, not one ``any()`` over a tuple of generators: this runs for every case
    # and building those intermediates was about a sixth of the planner's time. Instants in
    # UTC (what connectors produce) are known to have an offset, so the identity test spares
    # the ``utcoffset()`` call for nearly all of them.
    if not (_zoned(case.created_at) and _zoned(case.updated_at)):
        return _ZONELESS
    for activity in case.history:
        if activity.at.tzinfo is not UTC and activity.at.utcoffset() is None:
            return _ZONELESS
    for mark in case.followups:
        if mark.at.tzinfo is not UTC and mark.at.utcoffset() is None:
            return _ZONELESS
    return None


def _zoned(at: datetime) -> bool:
    return at.tzinfo is UTC or at.utcoffset() is not None


_ZONELESS = "a timestamp of this case has no time zone: cannot count business days"


def _failed(policy: CompiledPolicy, exc: Exception) -> str:
    return f"{policy.name}: could not evaluate this case ({type(exc).__name__}: {exc})"


def _cannot_tell(policy: CompiledPolicy, label: str, observed: str) -> str:
    return f"{policy.name}: cannot tell whether {label} ({observed})"


def _result(policy: CompiledPolicy, case: Case, verdict: Due | Unknown) -> PlanItem | Unjudged:
    if isinstance(verdict, Unknown):
        return Unjudged(case.ref, f"{policy.name}: {verdict.reason}")
    try:
        actions = render_actions(verdict.renderers, verdict.context)
    except MissingData as exc:
        return Unjudged(case.ref, f"{policy.name}: {exc}")
    cycle = verdict.cycle.astimezone(UTC).isoformat()
    return PlanItem(
        case=case,
        policy=policy.name,
        rule=verdict.rule,
        step=verdict.step,
        max_steps=verdict.max_steps,
        actions=actions,
        reason=verdict.reason,
        key=idempotency_key(policy.name, case.ref, verdict.step, cycle),
        covers=verdict.context.covers,
        dry_run=policy.dry_run,
    )


# -- explain -------------------------------------------------------------------------------

Outcome = Literal["due", "not due", "not applicable", "cannot judge", "claimed by another"]


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why one policy does or does not act on one case."""

    policy: str
    source: str
    outcome: Outcome
    detail: str
    checks: tuple[tuple[str, Tri, str], ...]
    item: PlanItem | None = None


def explain(
    case: Case,
    accounts: Mapping[str, Account],
    now: datetime,
    policies: Rulebook,
    calendar: BusinessCalendar,
) -> list[Explanation]:
    """Rule by rule, why ``case`` is or is not due at ``now`` (same logic as :func:`plan`)."""
    if (zoneless := _zoneless(case)) is not None:
        return [
            Explanation(p.name, p.source, "cannot judge", zoneless, ()) for p in policies.policies
        ]
    if case.created_at > now:
        detail = "the case did not exist yet at that instant"
        return [
            Explanation(p.name, p.source, "not applicable", detail, ()) for p in policies.policies
        ]
    today = calendar.local_date(now)
    account = accounts.get(case.account_id) if case.account_id is not None else None
    explanations = []
    for group in policies.groups:
        claimed_by: str | None = None
        for policy in group.policies:
            checks = tuple(
                (c.label, c.test(case, account), c.observed(case, account)) for c in policy.checks
            )
            matched, failed = policy.match(case, account)
            if claimed_by is not None:
                outcome: Outcome = "claimed by another"
                detail = f"group {group.name} already handled by {claimed_by}"
                item = None
            elif matched is False:
                assert failed is not None
                outcome, detail, item = (
                    "not applicable",
                    _not_met(failed.label, case, account, failed.observed),
                    None,
                )
            elif matched is None:
                assert failed is not None
                claimed_by = policy.name
                outcome, item = "cannot judge", None
                detail = _cannot_tell(policy, failed.label, failed.observed(case, account))
            else:
                claimed_by = policy.name
                verdict = policy.cadence.evaluate(
                    case, account, policy.evidence(case, now), now, today, calendar
                )
                outcome, detail, item = _explain_verdict(policy, case, verdict)
            explanations.append(
                Explanation(policy.name, policy.source, outcome, detail, checks, item)
            )
    return explanations


def _not_met(label: str, case: Case, account: Account | None, observed: Any) -> str:
    return f"needs {label}; has {observed(case, account)}"


def _explain_verdict(
    policy: CompiledPolicy, case: Case, verdict: Verdict
) -> tuple[Outcome, str, PlanItem | None]:
    if isinstance(verdict, NotDue):
        return "not due", verdict.reason, None
    result = _result(policy, case, verdict)
    if isinstance(result, PlanItem):
        return "due", result.reason, result
    return "cannot judge", result.reason, None


# -- forward preview -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PreviewStep:
    at: datetime
    result: PlanItem | Unjudged


def preview(
    cases: Iterable[Case],
    accounts: Mapping[str, Account],
    now: datetime,
    policies: Rulebook,
    calendar: BusinessCalendar,
    horizon: int,
) -> Iterator[PreviewStep]:
    """Every step over ``now`` and the next ``horizon`` business days (same local time of
    day), if nobody replies. A case that cannot be judged is reported once."""
    local = now.astimezone(calendar.zone)
    days = [local.date()] + [
        calendar.add_business_days(local.date(), k) for k in range(1, horizon + 1)
    ]
    instants = [
        datetime.combine(day, local.time(), tzinfo=calendar.zone).astimezone(UTC) for day in days
    ]
    for case in cases:
        reported: set[str] = set()
        current = case
        for at in instants:
            for result in plan((current,), accounts, at, policies, calendar):
                if isinstance(result, Unjudged):
                    if result.reason in reported:
                        continue
                    reported.add(result.reason)
                else:
                    current = apply_item(current, result, at)
                yield PreviewStep(at, result)


def apply_item(case: Case, item: PlanItem, at: datetime) -> Case:
    """The case as it looks after ``item`` was carried out at ``at``."""
    status, assignee, fields, tags = case.status, case.assignee, dict(case.fields), set(case.tags)
    for action in item.actions:
        params = action.params
        if action.type is ActionType.SET_STATUS:
            status = Status(params["status"])
        elif action.type is ActionType.SET_ASSIGNEE:
            assignee = params["assignee"]
        elif action.type in (ActionType.SET_FIELD, ActionType.SET_BUG_FIELD):
            fields[params["field"]] = params["value"]
        elif action.type is ActionType.ADD_TAGS:
            tags.update(params["tags"])
        elif action.type is ActionType.REMOVE_TAGS:
            tags.difference_update(params["tags"])
    mark = FollowUpMark(item.policy, item.step, at, item.key)
    return dataclasses.replace(
        case,
        status=status,
        assignee=assignee,
        fields=fields,
        tags=frozenset(tags),
        updated_at=at,
        followups=(*case.followups, mark),
    )


def item_to_dict(result: PlanItem | Unjudged) -> dict[str, Any]:
    """A JSON-ready view of one plan result (what ``followup plan --format json`` prints)."""
    if isinstance(result, Unjudged):
        return {"case": result.case_ref, "unjudged": True, "reason": result.reason}
    return {
        "case": result.case.ref,
        "policy": result.policy,
        "rule": result.rule,
        "step": result.step_label,
        "actions": [a.to_dict() for a in result.actions],
        "reason": result.reason,
        "key": result.key,
        "covers": list(result.covers),
        "dry_run": result.dry_run,
    }
