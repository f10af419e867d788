"""Validated policies compiled into plain frozen objects the planner can run millions of times.

pydantic stays at the edge (:mod:`policies.language`); here a selector is a tuple of
:class:`Check` closures, a step is a tuple of action renderers, and a cadence is an object
with one ``evaluate`` method. Checks are three-valued: True, False, or None when the case lacks
the data to tell (no account, unknown plan), which the planner reports instead of guessing.
"""

from __future__ import annotations

import string
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import partial
from typing import Any

import jinja2

from policies.calendar import BusinessCalendar
from policies.language import (
    ActionSpec,
    EveryCadence,
    FieldCondition,
    Interval,
    Pack,
    PhaseCadence,
    Policy,
    PriorityRange,
    Selector,
    SequenceCadence,
)
from policies.model import (
    Account,
    Action,
    ActionType,
    ActivityKind,
    Case,
    CaseKind,
    Channel,
    FollowUpMark,
    Priority,
    Status,
)

__all__ = [
    "Check",
    "CompiledPolicy",
    "Due",
    "MissingData",
    "NotDue",
    "Rulebook",
    "StepContext",
    "Unknown",
    "compile_pack",
]

Tri = bool | None


class MissingData(Exception):
    """A step needs data the case does not have (e.g. no assignee for "{agent}")."""


# -- selectors ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Check:
    """One selector condition: ``label`` says what the policy requires, ``observed`` what the
    case has (both for explanations); ``test`` answers True, False or None (cannot tell)."""

    label: str
    test: Callable[[Case, Account | None], Tri]
    observed: Callable[[Case, Account | None], str]
    # For checks that only accept listed values of one dimension ("kind", "status",
    # "field:<name>"): the planner routes cases by these instead of running the test.
    routes_on: str | None = None
    accepts: frozenset[str] = frozenset()


def _names(values: Sequence[object]) -> str:
    return "/".join(str(v) for v in values)


def _compile_selector(selector: Selector) -> tuple[Check, ...]:
    """Cheap case-only checks first, so most cases are rejected before touching the account."""
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
    if selector.assigned is not None:
        assigned = selector.assigned
        checks.append(
            Check(
                "assigned" if assigned else "unassigned",
                lambda c, a: (c.assignee is not None) is assigned,
                lambda c, a: f"assignee {c.assignee or 'none'}",
            )
        )
    if not selector.include_canceled:
        checks.append(
            Check(
                "account not canceled",
                lambda c, a: a is None or not a.canceled,
                lambda c, a: "canceled" if a is not None and a.canceled else "not canceled",
            )
        )
    if not selector.include_stopped:
        checks.append(
            Check(
                "account not flagged to stop follow-ups",
                lambda c, a: a is None or not a.stop_followups,
                lambda c, a: (
                    "stop flag set" if a is not None and a.stop_followups else "no stop flag"
                ),
            )
        )
    if selector.plan is not None:
        plans = frozenset(selector.plan)
        checks.append(
            Check(
                f"plan is {_names(selector.plan)}",
                lambda c, a: None if a is None or a.plan is None else a.plan in plans,
                _observed_plan,
            )
        )
    if selector.priority is not None:
        checks.append(_priority_check("priority", selector.priority, _case_priority))
    if selector.account_priority is not None:
        checks.append(
            _priority_check(
                "account's highest open priority", selector.account_priority, _account_priority
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
            )
        )
    return tuple(checks)


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


# -- actions -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StepContext:
    """What an action renderer may use for one step of one case."""

    case: Case
    account: Account | None
    n: int
    max: int
    today: date
    previous_followup: datetime | None
    covers: tuple[str, ...] = ()
    phase: int | None = None
    phase_name: str = ""
    within: str = ""
    what_it_means: str = ""
    next_steps: str = ""

    def template_vars(self) -> dict[str, Any]:
        requester = self.case.requester
        return {
            "customer_name": (requester.name if requester and requester.name else "there"),
            "issue": self.case.subject or self.case.ref,
            "agent_name": self.case.assignee or "The Support Team",
            "case_ref": self.case.ref,
            "n": self.n,
            "max": self.max,
            "covers": list(self.covers),
            "phase": self.phase,
            "phase_name": self.phase_name,
            "what_it_means": self.what_it_means,
            "next_steps": self.next_steps,
        }


Renderer = Callable[[StepContext], tuple[Action, ...]]


def _agent(ctx: StepContext) -> str:
    if not ctx.case.assignee:
        raise MissingData("the case has no assignee to name in '{agent}'")
    return ctx.case.assignee


_PLACEHOLDER_VALUES: Mapping[str, Callable[[StepContext], object]] = {
    "n": lambda ctx: ctx.n,
    "max": lambda ctx: ctx.max,
    "agent": _agent,
    "today": lambda ctx: ctx.today.isoformat(),
    "phase": lambda ctx: ctx.phase,
    "phase_name": lambda ctx: ctx.phase_name,
    "within": lambda ctx: ctx.within,
}
Text = Callable[[StepContext], str]


def _compile_text(template: str) -> Text:
    """A text with ``{placeholders}`` (validated by the policy language), as a function that
    computes only the values the text uses: a missing agent only matters where it is named."""
    names = sorted({name for _, name, _, _ in string.Formatter().parse(template) if name})
    if not names:
        return lambda ctx: template
    getters = tuple((name, _PLACEHOLDER_VALUES[name]) for name in names)
    return lambda ctx: template.format_map({name: get(ctx) for name, get in getters})


def _compile_action(spec: ActionSpec, env: jinja2.Environment) -> Renderer:
    if spec.note is not None:
        note = _compile_text(spec.note)
        return lambda ctx: (Action(ActionType.NOTE, {"body": note(ctx)}),)
    if spec.reply is not None:
        name = spec.reply
        template = env.get_template(f"{name}.j2")
        return lambda ctx: (
            Action(
                ActionType.REPLY,
                {"template": name, "body": template.render(ctx.template_vars()).strip()},
            ),
        )
    if spec.contact is not None:
        return _compile_contact(spec, env)
    if spec.status is not None:
        status = str(spec.status)
        return lambda ctx: (Action(ActionType.SET_STATUS, {"status": status}),)
    if spec.assignee is not None:
        assignee = _compile_text(spec.assignee)
        return lambda ctx: (Action(ActionType.SET_ASSIGNEE, {"assignee": assignee(ctx)}),)
    if spec.group is not None:
        group = _compile_text(spec.group)
        return lambda ctx: (Action(ActionType.SET_GROUP, {"group": group(ctx)}),)
    if spec.fields is not None:
        fields = tuple((k, _compile_text(v)) for k, v in spec.fields.items())
        return lambda ctx: tuple(
            Action(ActionType.SET_FIELD, {"field": k, "value": v(ctx)}) for k, v in fields
        )
    if spec.add_tags is not None:
        added = list(spec.add_tags)
        return lambda ctx: (Action(ActionType.ADD_TAGS, {"tags": list(added)}),)
    if spec.remove_tags is not None:
        removed = list(spec.remove_tags)
        return lambda ctx: (Action(ActionType.REMOVE_TAGS, {"tags": list(removed)}),)
    if spec.escalate is not None:
        escalate_to, reason = spec.escalate.group, _compile_text(spec.escalate.reason)
        return lambda ctx: (
            Action(ActionType.ESCALATE, {"group": escalate_to, "reason": reason(ctx)}),
        )
    if spec.bug_fields is not None:
        bug_fields = tuple((k, _compile_text(v)) for k, v in spec.bug_fields.items())
        return lambda ctx: tuple(
            Action(
                ActionType.SET_BUG_FIELD,
                {
                    "field": k,
                    "value": v(ctx),
                    # A bundled update refreshes every bug it speaks for (seed 001 Community).
                    **({"cases": [ctx.case.ref, *ctx.covers]} if ctx.covers else {}),
                },
            )
            for k, v in bug_fields
        )
    if spec.notify_engineer is not None:
        return _compile_nudge(spec)
    raise AssertionError("ActionSpec validation guarantees one action key")


def _compile_contact(spec: ActionSpec, env: jinja2.Environment) -> Renderer:
    contact = spec.contact
    assert contact is not None
    template = env.get_template(f"{contact.template}.j2")
    name = contact.template

    def channels(case: Case) -> tuple[Channel, ...]:
        if case.linked_order:
            return tuple(contact.with_linked_order)
        email = case.requester.email if case.requester else None
        phone = case.requester.phone if case.requester else None
        if email and phone:
            return tuple(contact.phone_and_email)
        if phone:
            return tuple(contact.phone_only)
        if email:
            return tuple(contact.email_only)
        return ()

    def render(ctx: StepContext) -> tuple[Action, ...]:
        chosen = channels(ctx.case)
        actions: list[Action] = []
        if Channel.EMAIL in chosen:
            body = template.render(ctx.template_vars()).strip()
            actions.append(Action(ActionType.REPLY, {"template": name, "body": body}))
        spoken = [str(c) for c in chosen if c is not Channel.EMAIL]
        if spoken:
            actions.append(Action(ActionType.REACH_OUT, {"channels": spoken}))
        return tuple(actions)

    return render


def _compile_nudge(spec: ActionSpec) -> Renderer:
    nudge = spec.notify_engineer
    assert nudge is not None
    body = _compile_text(nudge.body)

    def render(ctx: StepContext) -> tuple[Action, ...]:
        if nudge.only_if_silent:
            engineer = ctx.case.last_of(ActivityKind.ENGINEER_UPDATE)
            since = ctx.previous_followup
            if engineer is not None and (since is None or engineer.at >= since):
                return ()
        return (Action(ActionType.NOTIFY_ENGINEER, {"body": body(ctx)}),)

    return render


def _compile_actions(specs: Sequence[ActionSpec], env: jinja2.Environment) -> tuple[Renderer, ...]:
    return tuple(_compile_action(s, env) for s in specs)


def render_actions(renderers: Sequence[Renderer], ctx: StepContext) -> tuple[Action, ...]:
    return tuple(action for render in renderers for action in render(ctx))


# -- cadences ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Due:
    step: int
    max_steps: int
    rule: str
    reason: str
    cycle: datetime
    renderers: tuple[Renderer, ...]
    context: StepContext


@dataclass(frozen=True, slots=True)
class NotDue:
    """Nothing owed. The reason is only formatted when someone asks (``explain``): the
    planner discards it for the vast majority of cases."""

    describe: Callable[[], str]

    @property
    def reason(self) -> str:
        return self.describe()


@dataclass(frozen=True, slots=True)
class Unknown:
    reason: str


Verdict = Due | NotDue | Unknown


@dataclass(frozen=True, slots=True)
class Evidence:
    """What every cadence needs from a case, computed once per (case, policy)."""

    cycle_start: datetime
    restarted_by: ActivityKind | None
    own: tuple[FollowUpMark, ...]  # this policy's, all cycles
    marks: tuple[FollowUpMark, ...]  # this policy's, since the cycle started
    previous_followup: datetime | None  # this policy's latest, any cycle


def _evidence(
    case: Case, policy: str, restart_on: frozenset[ActivityKind], now: datetime
) -> Evidence:
    """The case as of ``now``: activity and marks after it (planning a past instant from a
    later snapshot) are not evidence yet."""
    start, trigger = case.created_at, None
    for activity in reversed(case.history):
        if activity.kind in restart_on and activity.at <= now:
            start, trigger = activity.at, activity.kind
            break
    if not case.followups:
        return Evidence(start, trigger, (), (), None)
    own: list[FollowUpMark] = []
    current: list[FollowUpMark] = []
    for mark in case.followups:  # oldest first, so the latest is the last one kept
        if mark.policy == policy and mark.at <= now:
            own.append(mark)
            if mark.at >= start:
                current.append(mark)
    return Evidence(start, trigger, tuple(own), tuple(current), own[-1].at if own else None)


def _days(count: int) -> str:
    return f"{count} business day{'' if count == 1 else 's'}"


def _fmt_day(day: date) -> str:
    return f"{day:%a %d %b}"


def _fmt_instant(instant: datetime, calendar: BusinessCalendar) -> str:
    return f"{instant.astimezone(calendar.zone):%a %d %b %H:%M}"


@dataclass(frozen=True, slots=True)
class _Step:
    n: int
    day: int
    name: str
    renderers: tuple[Renderer, ...]


@dataclass(frozen=True, slots=True)
class SequenceRule:
    anchor: str
    business_days: bool
    steps: tuple[_Step, ...]  # enabled steps only, in order, final handling included
    max_attempts: int

    def evaluate(
        self,
        case: Case,
        account: Account | None,
        ev: Evidence,
        now: datetime,
        today: date,
        calendar: BusinessCalendar,
    ) -> Verdict:
        anchor = self._anchor(case, ev, now)
        if anchor is None:
            start = ev.cycle_start
            return NotDue(
                lambda: (
                    "no agent answer yet since the customer's last message"
                    f" ({_fmt_instant(start, calendar)})"
                )
            )
        done = max((m.step for m in ev.marks), default=0)
        upcoming = next((s for s in self.steps if s.n > done), None)
        if upcoming is None:
            total = self.max_attempts
            return NotDue(lambda: f"sequence complete ({done}/{total} done this cycle)")
        day_one = self._day_one(calendar.local_date(anchor), calendar)
        due = self._day(day_one, upcoming.day - 1, calendar)
        previous = next((s for s in reversed(self.steps) if s.n <= done), None)
        if previous is not None and ev.marks:
            # Late runs keep the spacing: never two attempts closer than the policy's days.
            last_mark = ev.marks[-1].at
            gap = self._day(calendar.local_date(last_mark), upcoming.day - previous.day, calendar)
            due = max(due, gap)
        if today < due:
            return NotDue(
                lambda: f"{self._label(upcoming)} due {_fmt_day(due)} (Day {upcoming.day})"
            )
        label = self._label(upcoming)
        waited = calendar.business_days_between(day_one, today)
        what = "pending since" if self.anchor == "agent_reply" else "waiting on the customer since"
        restart = (
            f" (restarted by {ev.restarted_by})"
            if ev.restarted_by and self.anchor == "inbound"
            else ""
        )
        reason = (
            f"{what} {_fmt_instant(anchor, calendar)}{restart}; {_days(waited)} without"
            f" reply; {upcoming.name}: {label}"
        )
        ctx = StepContext(case, account, upcoming.n, self.max_attempts, today, ev.previous_followup)
        return Due(
            upcoming.n, self.max_attempts, upcoming.name, reason, anchor, upcoming.renderers, ctx
        )

    def _label(self, step: _Step) -> str:
        if step.n > self.max_attempts:
            return f"after attempt {self.max_attempts} of {self.max_attempts}"
        return f"step {step.n} of {self.max_attempts}"

    def _anchor(self, case: Case, ev: Evidence, now: datetime) -> datetime | None:
        if self.anchor == "inbound":
            return ev.cycle_start
        for activity in case.history:
            if activity.kind is ActivityKind.AGENT_UPDATE and ev.cycle_start < activity.at <= now:
                return activity.at
        return None

    def _day_one(self, day: date, calendar: BusinessCalendar) -> date:
        return calendar.next_business_day(day)

    def _day(self, start: date, offset: int, calendar: BusinessCalendar) -> date:
        if self.business_days:
            return calendar.add_business_days(start, offset)
        return calendar.next_business_day(calendar.add_calendar_days(start, offset))


def _deadline(interval: Interval, start: datetime, calendar: BusinessCalendar) -> datetime:
    """The instant ``interval`` after ``start`` (same local time on the target day)."""
    if interval.business_hours is not None:
        return calendar.add_business_hours(start, interval.business_hours)
    local = start.astimezone(calendar.zone)
    day = _due_day(interval, local.date(), calendar)
    return datetime.combine(day, local.time(), tzinfo=calendar.zone).astimezone(UTC)


def _due_day(interval: Interval, start: date, calendar: BusinessCalendar) -> date:
    """The business day an update is owed when the last one was on ``start``."""
    if interval.business_days is not None:
        return calendar.add_business_days(start, interval.business_days)
    if interval.days is not None:
        return calendar.next_business_day(calendar.add_calendar_days(start, interval.days))
    if interval.months is not None:
        return calendar.next_business_day(calendar.add_months(start, interval.months))
    raise AssertionError("business_hours intervals are handled by _deadline")


def _parse_instant(raw: str, calendar: BusinessCalendar) -> datetime:
    if len(raw) == 10:
        return calendar.opening(date.fromisoformat(raw))
    parsed = datetime.fromisoformat(raw)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=calendar.zone)


@dataclass(frozen=True, slots=True)
class EveryRule:
    rule: str
    interval: Interval
    since_field: str | None
    max_attempts: int | None
    bundle_account: bool
    renderers: tuple[Renderer, ...]

    def evaluate(
        self,
        case: Case,
        account: Account | None,
        ev: Evidence,
        now: datetime,
        today: date,
        calendar: BusinessCalendar,
    ) -> Verdict:
        covers: tuple[str, ...] = ()
        if self.bundle_account:
            if account is None or not account.open_case_refs:
                return Unknown(
                    "the account lists no open cases, so the bundled update cannot be addressed"
                )
            refs = set(account.open_case_refs) | {case.ref}
            lead = min(refs)
            if lead != case.ref:
                return NotDue(lambda: f"covered by the account's bundled update on {lead}")
            covers = tuple(sorted(refs - {lead}))
        attempts = len(ev.marks)
        if self.max_attempts is not None and attempts >= self.max_attempts:
            return NotDue(lambda: f"all {attempts} updates of this cycle sent")
        last, source = ev.cycle_start, "cycle start"
        if ev.previous_followup is not None and ev.previous_followup > last:
            last, source = ev.previous_followup, "our last follow-up"
        if self.since_field is not None and case.fields.get(self.since_field):
            raw = case.fields[self.since_field]
            try:
                recorded = _parse_instant(raw, calendar)
            except ValueError:
                return Unknown(f"field {self.since_field} is not a date: {raw!r}")
            if recorded > last:
                last, source = recorded, self.since_field
        if self.interval.business_hours is not None:
            deadline = _deadline(self.interval, last, calendar)
            is_due = now >= deadline
            due_label = partial(_fmt_instant, deadline, calendar)
        else:
            due_day = _due_day(self.interval, calendar.local_date(last), calendar)
            is_due = today >= due_day
            due_label = partial(_fmt_day, due_day)
        since = f"last update {{}} ({source})"
        if not is_due:
            return NotDue(
                lambda: (
                    f"{since.format(_fmt_instant(last, calendar))}; next update due"
                    f" {due_label()} ({self.rule})"
                )
            )
        since = since.format(_fmt_instant(last, calendar))
        step = attempts + 1
        waited = calendar.business_days_between(calendar.local_date(last), today)
        bundle = f"; one update for {len(covers) + 1} open cases" if covers else ""
        reason = f"{since}; {_days(waited)} without an update; {self.rule}{bundle}"
        ctx = StepContext(
            case, account, step, self.max_attempts or 0, today, ev.previous_followup, covers
        )
        return Due(
            step, self.max_attempts or 0, self.rule, reason, ev.cycle_start, self.renderers, ctx
        )


@dataclass(frozen=True, slots=True)
class _Phase:
    name: str
    within: Interval | None
    within_label: str  # "3 business days"; precomputed, the planner asks for it often
    what_it_means: str
    next_steps: str


@dataclass(frozen=True, slots=True)
class PhaseRule:
    """Seed 003 phases; the cycle is the phase entry, so a customer reply does not reset it."""

    on_overdue: bool
    phase_field: str
    since_field: str
    phases: tuple[_Phase, ...]
    renderers: tuple[Renderer, ...]

    def evaluate(
        self,
        case: Case,
        account: Account | None,
        ev: Evidence,
        now: datetime,
        today: date,
        calendar: BusinessCalendar,
    ) -> Verdict:
        raw = case.fields.get(self.phase_field, "")
        if not raw.isdigit() or not 1 <= int(raw) <= len(self.phases):
            return Unknown(f"{self.phase_field} {raw!r} is not a phase 1..{len(self.phases)}")
        phase = int(raw)
        current = self.phases[phase - 1]
        name, within, within_label = current.name, current.within, current.within_label
        since_raw = case.fields.get(self.since_field)
        if since_raw:
            try:
                since = _parse_instant(since_raw, calendar)
            except ValueError:
                return Unknown(f"{self.since_field} is not a date: {since_raw!r}")
        elif phase == 1:
            since = case.created_at
        else:
            return Unknown(f"phase {phase} without {self.since_field}: cannot tell since when")
        if since > now:
            return NotDue(lambda: f"phase {phase} only starts {_fmt_instant(since, calendar)}")

        def entered() -> str:
            return f"phase {phase} ({name}) since {_fmt_instant(since, calendar)}"

        # Counted from the phase entry, not from the customer's last reply.
        if any(m.step == phase and m.at >= since for m in ev.own):
            return NotDue(lambda: f"{entered()}; already handled")
        if not self.on_overdue:
            reason = f"{entered()}; the customer has not been told what it means"
            return self._due(
                phase, f"entered phase {phase}: {name}", reason, since, case, account, today, ev
            )
        if within is None:
            return NotDue(lambda: f"{entered()}; this phase has no timeframe")
        deadline = _deadline(within, since, calendar)
        if now <= deadline:
            return NotDue(
                lambda: (
                    f"{entered()}; within {within_label} until {_fmt_instant(deadline, calendar)}"
                )
            )
        reason = f"{entered()}; over its {within_label} timeframe"
        return self._due(phase, f"phase {phase} overdue", reason, since, case, account, today, ev)

    def _due(
        self,
        phase: int,
        rule: str,
        reason: str,
        since: datetime,
        case: Case,
        account: Account | None,
        today: date,
        ev: Evidence,
    ) -> Due:
        current = self.phases[phase - 1]
        ctx = StepContext(
            case,
            account,
            phase,
            len(self.phases),
            today,
            ev.previous_followup,
            phase=phase,
            phase_name=current.name,
            within=current.within_label,
            what_it_means=current.what_it_means,
            next_steps=current.next_steps,
        )
        return Due(phase, len(self.phases), rule, reason, since, self.renderers, ctx)


Cadence = SequenceRule | EveryRule | PhaseRule


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


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    name: str
    group: str
    description: str
    source: str
    dry_run: bool | None
    checks: tuple[Check, ...]
    restart_on: frozenset[ActivityKind]
    cadence: Cadence

    def match(self, case: Case, account: Account | None) -> tuple[Tri, Check | None]:
        return match_checks(self.checks, case, account)

    def accepts(self, dimension: str, value: str) -> bool:
        return all(value in c.accepts for c in self.checks if c.routes_on == dimension)

    def constrains(self, dimension: str) -> bool:
        return any(c.routes_on == dimension for c in self.checks)

    def evidence(self, case: Case, now: datetime) -> Evidence:
        return _evidence(case, self.name, self.restart_on, now)


@dataclass(frozen=True, slots=True)
class Group:
    name: str
    policies: tuple[CompiledPolicy, ...]


Candidate = tuple[CompiledPolicy, tuple[Check, ...]]  # a policy and the checks left to run


@dataclass(frozen=True, slots=True)
class Route:
    """One group's candidates for cases of one (kind, status), indexed by the value of the
    field the group's policies discriminate on (seed 004's ``request_type``, typically)."""

    field: str | None
    by_value: Mapping[str, tuple[Candidate, ...]]
    otherwise: tuple[Candidate, ...]

    def candidates(self, case: Case) -> tuple[Candidate, ...]:
        if self.field is None:
            return self.otherwise
        value = case.fields.get(self.field)
        return self.otherwise if value is None else self.by_value.get(value, self.otherwise)


_MEMO_LIMIT = 4096  # distinct field-value combinations remembered per (kind, status)


@dataclass(frozen=True)
class Router:
    """Every group's candidates for one (kind, status), memoised by the values of the fields
    the routes index, so a case costs one dict lookup however many groups the pack has."""

    routes: tuple[Route, ...]
    fields: tuple[str, ...]
    _memo: dict[object, tuple[tuple[Candidate, ...], ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def candidates(self, case: Case) -> tuple[tuple[Candidate, ...], ...]:
        """Per group with anything to try: its candidates, in order."""
        values = case.fields
        if len(self.fields) == 1:
            key: object = values.get(self.fields[0])
        else:
            key = tuple(values.get(name) for name in self.fields)
        found = self._memo.get(key)
        if found is None:
            found = tuple(c for route in self.routes if (c := route.candidates(case)))
            if len(self._memo) < _MEMO_LIMIT:
                self._memo[key] = found
        return found


@dataclass(frozen=True, slots=True)
class Rulebook:
    """A compiled pack: groups in pack order (for explanations) and, for the planner, a
    router per (kind, status) so a case only meets the policies that can apply to it."""

    policies: tuple[CompiledPolicy, ...]
    groups: tuple[Group, ...]
    routes: Mapping[tuple[CaseKind, Status], Router]
    settings: Mapping[str, Any]


def compile_pack(pack: Pack) -> Rulebook:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(list(pack.template_dirs)),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # plain-text emails; the helpdesk escapes on display
        keep_trailing_newline=False,
    )
    policies = tuple(_compile_policy(p, env) for p in pack.policies)
    group_names = list(dict.fromkeys(p.group for p in policies))
    groups = tuple(
        Group(name, tuple(p for p in policies if p.group == name)) for name in group_names
    )
    routers = {}
    for kind in CaseKind:
        for status in Status:
            routes = tuple(r for g in groups if (r := _route(g, kind, status)) is not None)
            fields = tuple(dict.fromkeys(r.field for r in routes if r.field is not None))
            routers[(kind, status)] = Router(routes, fields)
    return Rulebook(policies, groups, routers, dict(pack.choices))


def _route(group: Group, kind: CaseKind, status: Status) -> Route | None:
    applicable = [
        p for p in group.policies if p.accepts("kind", kind) and p.accepts("status", status)
    ]
    if not applicable:
        return None
    usage = Counter(
        c.routes_on
        for p in applicable
        for c in p.checks
        if c.routes_on is not None and c.routes_on.startswith("field:")
    )
    dimension = usage.most_common(1)[0][0] if usage else None
    routed = {"kind", "status"} if dimension is None else {"kind", "status", dimension}

    def candidates(value: str | None) -> tuple[Candidate, ...]:
        return tuple(
            (p, tuple(c for c in p.checks if c.routes_on not in routed))
            for p in applicable
            if dimension is None
            or not p.constrains(dimension)
            or (value is not None and p.accepts(dimension, value))
        )

    values = {
        v for p in applicable for c in p.checks if c.routes_on == dimension for v in c.accepts
    }
    return Route(
        field=dimension.removeprefix("field:") if dimension else None,
        by_value={v: candidates(v) for v in sorted(values)},
        otherwise=candidates(None),
    )


def _compile_policy(policy: Policy, env: jinja2.Environment) -> CompiledPolicy:
    return CompiledPolicy(
        name=policy.name,
        group=policy.group_name,
        description=policy.description,
        source=policy.source,
        dry_run=policy.dry_run,
        checks=_compile_selector(policy.selector),
        restart_on=frozenset(policy.restart_on),
        cadence=_compile_cadence(policy, env),
    )


def _compile_cadence(policy: Policy, env: jinja2.Environment) -> Cadence:
    cadence = policy.cadence
    if isinstance(cadence, SequenceCadence):
        return _compile_sequence(cadence, env)
    if isinstance(cadence, EveryCadence):
        return EveryRule(
            cadence.rule,
            cadence.interval,
            cadence.since_field,
            cadence.max_attempts,
            cadence.bundle_account,
            _compile_actions(cadence.actions, env),
        )
    assert isinstance(cadence, PhaseCadence)
    return PhaseRule(
        on_overdue=cadence.type == "phase_overdue",
        phase_field=cadence.phase_field,
        since_field=cadence.since_field,
        phases=tuple(
            _Phase(
                p.name,
                p.within,
                p.within.describe() if p.within else "",
                p.what_it_means,
                p.next_steps,
            )
            for p in cadence.phases
        ),
        renderers=_compile_actions(cadence.actions, env),
    )


def _compile_sequence(cadence: SequenceCadence, env: jinja2.Environment) -> SequenceRule:
    total = len(cadence.steps)
    steps = [
        _Step(n, s.day, s.name or f"Day {s.day}", _compile_actions(s.actions, env))
        for n, s in enumerate(cadence.steps, start=1)
        if s.enabled
    ]
    after = cadence.after_last_attempt
    if after is not None:
        closing = _compile_actions(after.actions, env)
        last = steps[-1] if steps else None
        if after.wait_days == 0 and last is not None and last.n == total:
            steps[-1] = _Step(
                last.n, last.day, f"{last.name}, then {after.name}", last.renderers + closing
            )
        else:
            final_day = cadence.steps[-1].day + after.wait_days
            steps.append(_Step(total + 1, final_day, after.name, closing))
    return SequenceRule(cadence.anchor, cadence.day_unit == "business_days", tuple(steps), total)
