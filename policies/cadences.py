"""Cadences: given a case's evidence and ``now``, is a step due, and which one?

Three kinds, one ``evaluate`` method each: fixed-day sequences (seeds 002, 004), recurring
updates (seeds 000/001) and phases (seed 003). Not-due reasons are formatted lazily: the
planner throws most of them away, ``explain`` prints them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import NamedTuple

import jinja2

from policies.actions import Renderer, StepContext, compile_actions
from policies.calendar import BusinessCalendar
from policies.language import EveryCadence, Interval, PhaseCadence, Policy, SequenceCadence
from policies.model import Account, ActivityKind, Case, FollowUpMark, Turn

__all__ = [
    "Cadence",
    "Due",
    "EveryRule",
    "Evidence",
    "NotDue",
    "PhaseRule",
    "SequenceRule",
    "Unknown",
    "Verdict",
    "compile_cadence",
    "gather_evidence",
]


@dataclass(frozen=True, slots=True)
class Due:
    """A step is owed: which one, why (for people), the cycle it belongs to (its idempotency
    key's ingredient) and what to render with which context."""

    step: int
    max_steps: int
    rule: str
    reason: str
    cycle: datetime
    renderers: tuple[Renderer, ...]
    context: StepContext


class NotDue(NamedTuple):
    """Nothing owed. The reason is only formatted when someone asks (``explain``): the
    planner discards it for the vast majority of cases.

    ``due_at`` is the earliest instant the rule could owe something if the evidence it judged
    stays as it is (no new activity or follow-up mark, same fields and account): nothing is
    owed before it, and None means never. It is the instant the rule has just compared
    ``now`` with, so it costs nothing, and it is exact but for a phase not entered yet, which
    gives its entry (its deadline is told from there); :func:`policies.due.next_due` reads
    it. A NamedTuple, like :class:`Evidence`: one is built for most cases the planner sees."""

    describe: Callable[[], str]
    due_at: datetime | None = None

    @property
    def reason(self) -> str:
        return self.describe()


@dataclass(frozen=True, slots=True)
class Unknown:
    """The policy applies but the case lacks what it needs to decide (reported, not guessed)."""

    reason: str


Verdict = Due | NotDue | Unknown


class Evidence(NamedTuple):
    """What every cadence needs from a case, computed once per (case, policy).

    A NamedTuple rather than a frozen dataclass: one is built for nearly every case, and a
    frozen dataclass's ``__init__`` (one ``object.__setattr__`` per field) costs about 2.5x
    as much; it is just as immutable."""

    cycle_start: datetime
    restarted_by: ActivityKind | None
    own: tuple[FollowUpMark, ...]  # this policy's, all cycles
    marks: tuple[FollowUpMark, ...]  # this policy's, since the cycle started
    previous_followup: datetime | None  # this policy's latest, any cycle
    turn: Turn  # whose move it is, and since when


def gather_evidence(
    case: Case, policy: str, restart_on: frozenset[ActivityKind], now: datetime
) -> Evidence:
    """The case as of ``now``: activity and marks after it (planning a past instant from a
    later snapshot) are not evidence yet."""
    start, trigger = case.created_at, None
    for activity in reversed(case.history):
        if activity.kind in restart_on and activity.at <= now:
            start, trigger = activity.at, activity.kind
            break
    turn = case.turn(now)
    if not case.followups:
        return Evidence(start, trigger, (), (), None, turn)
    own: list[FollowUpMark] = []
    current: list[FollowUpMark] = []
    for mark in case.followups:  # oldest first, so the latest is the last one kept
        if mark.policy == policy and mark.at <= now:
            own.append(mark)
            if mark.at >= start:
                current.append(mark)
    return Evidence(start, trigger, tuple(own), tuple(current), own[-1].at if own else None, turn)


def _days(count: int) -> str:
    return f"{count} business day{'' if count == 1 else 's'}"


def _fmt_opening(day: date, calendar: BusinessCalendar) -> str:
    return _fmt_instant(calendar.opening(day), calendar)


_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _fmt_instant(instant: datetime, calendar: BusinessCalendar) -> str:
    """ "Tue 10 Mar 10:04" in the tenant's zone. Not strftime: its day and month names follow
    the process locale, and reasons must read the same on every replica (and be cheap)."""
    t = instant.astimezone(calendar.zone)
    return (
        f"{_WEEKDAYS[t.weekday()]} {t.day:02d} {_MONTHS[t.month - 1]} {t.hour:02d}:{t.minute:02d}"
    )


@dataclass(frozen=True, slots=True)
class _Step:
    n: int
    day: int
    name: str
    renderers: tuple[Renderer, ...]


@dataclass(frozen=True, slots=True)
class SequenceRule:
    """Attempts on fixed days after Day 1 (seed 002's days 3/5/7, seed 004's days 1/3/5/6).

    A sequence chases a customer who owes us a message, so its clock runs only on the
    customer's turn (:class:`~policies.model.Turn`): while a customer message awaits an agent's
    answer nothing is due, and with ``anchor: inbound`` Day 1 is when the turn passed to the
    customer. Updates (``every``, phases) are the team's own news and do not wait for a turn.

    Where the case stands is the highest step among this cycle's marks; the next step is due
    on its Day, and never sooner after the previous attempt than the days between them.
    """

    anchor: str
    business_days: bool
    steps: tuple[_Step, ...]  # enabled steps only, in order, final handling included
    max_attempts: int
    # done -> (the last step at or before it, the next one after it), for every step number
    # a mark can carry; precomputed because the planner asks for every case.
    positions: Mapping[int, tuple[_Step | None, _Step | None]]

    def evaluate(
        self,
        case: Case,
        account: Account | None,
        ev: Evidence,
        now: datetime,
        today: date,
        calendar: BusinessCalendar,
    ) -> Verdict:
        if not ev.turn.customer:  # a sequence chases a customer who owes us, never one we owe
            since = ev.turn.since
            return NotDue(
                lambda: (
                    f"the customer's message of {_fmt_instant(since, calendar)} awaits an"
                    " agent's answer: the turn is the agent's"
                )
            )
        anchor = self._anchor(case, ev, now)
        if anchor is None:
            start = ev.cycle_start
            return NotDue(
                lambda: (
                    "no agent answer yet since the customer's last message"
                    f" ({_fmt_instant(start, calendar)})"
                )
            )
        done = max(m.step for m in ev.marks) if ev.marks else 0
        previous, upcoming = self.positions.get(done) or _position(self.steps, done)
        if upcoming is None:
            total = self.max_attempts
            return NotDue(lambda: f"sequence complete ({done}/{total} done this cycle)")
        day_one = self._day_one(calendar.local_date(anchor), calendar)
        due = self._day(day_one, upcoming.day - 1, calendar)
        if previous is not None and ev.marks:
            # Late runs keep the spacing: never two attempts closer than the policy's days.
            last_mark = ev.marks[-1].at
            gap = self._day(calendar.local_date(last_mark), upcoming.day - previous.day, calendar)
            due = max(due, gap)
        # A day's follow-ups start when the team's day does, never in the small hours.
        due_at = calendar.opening(due)
        if now < due_at:
            return NotDue(
                lambda: (
                    f"{self._label(upcoming)} due {_fmt_opening(due, calendar)}"
                    f" (Day {upcoming.day})"
                ),
                due_at,
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
        if self.anchor == "inbound":  # Day 1 is when the customer came to owe us a message
            return ev.turn.since
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


_DATE_ONLY = len("2026-03-02")
_JUST_AFTER = timedelta(microseconds=1)  # the next instant a datetime can tell apart


def _parse_instant(raw: str, calendar: BusinessCalendar) -> datetime:
    if len(raw) == _DATE_ONLY:
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
            # "ONE update covering all outstanding bugs": the account's open cases of the same
            # vendor as this one (its conversations count towards the threshold, not the bundle).
            same_source = f"{case.source}:"
            refs = {r for r in account.open_case_refs if r.startswith(same_source)} | {case.ref}
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
            due_at = _deadline(self.interval, last, calendar)
        else:  # day-based: owed from the opening of the due day
            due_at = calendar.opening(_due_day(self.interval, calendar.local_date(last), calendar))

        def since() -> str:
            return f"last update {_fmt_instant(last, calendar)} ({source})"

        if now < due_at:
            return NotDue(
                lambda: (
                    f"{since()}; next update due {_fmt_instant(due_at, calendar)} ({self.rule})"
                ),
                due_at,
            )
        step = attempts + 1
        waited = calendar.business_days_between(calendar.local_date(last), today)
        bundle = f"; one update for {len(covers) + 1} open cases" if covers else ""
        reason = f"{since()}; {_days(waited)} without an update; {self.rule}{bundle}"
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
    date_only_closing: bool  # a date-only entry counts its timeframe from that day's close

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
            # Due no sooner than the entry; from there the rule tells its own deadline.
            return NotDue(
                lambda: f"phase {phase} only starts {_fmt_instant(since, calendar)}", since
            )

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
        deadline = _deadline(within, self._counted_from(since_raw, since, calendar), calendar)
        if now <= deadline:
            return NotDue(
                lambda: (
                    f"{entered()}; within {within_label} until {_fmt_instant(deadline, calendar)}"
                ),
                deadline + _JUST_AFTER,  # overdue once the deadline has passed, not at it
            )
        reason = f"{entered()}; over its {within_label} timeframe"
        return self._due(phase, f"phase {phase} overdue", reason, since, case, account, today, ev)

    def _counted_from(
        self, raw: str | None, since: datetime, calendar: BusinessCalendar
    ) -> datetime:
        """Where a timeframe starts: the entry instant, or for an entry known only by its date
        and ``date_only_start: closing``, that day's close (the day itself is not counted)."""
        if raw is not None and len(raw) == _DATE_ONLY and self.date_only_closing:
            return calendar.closing(date.fromisoformat(raw))
        return since

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


def compile_cadence(policy: Policy, env: jinja2.Environment) -> Cadence:
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
            compile_actions(cadence.actions, env),
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
        renderers=compile_actions(cadence.actions, env),
        date_only_closing=cadence.date_only_start != "opening",
    )


def _compile_sequence(cadence: SequenceCadence, env: jinja2.Environment) -> SequenceRule:
    total = len(cadence.steps)
    steps = [
        _Step(n, s.day, s.name or f"Day {s.day}", compile_actions(s.actions, env))
        for n, s in enumerate(cadence.steps, start=1)
        if s.enabled
    ]
    after = cadence.after_last_attempt
    if after is not None:
        closing = compile_actions(after.actions, env)
        last = steps[-1] if steps else None
        if after.wait_days == 0 and last is not None and last.n == total:
            steps[-1] = _Step(
                last.n, last.day, f"{last.name}, then {after.name}", last.renderers + closing
            )
        else:
            final_day = cadence.steps[-1].day + after.wait_days
            steps.append(_Step(total + 1, final_day, after.name, closing))
    positions = {done: _position(steps, done) for done in range(total + 2)}
    return SequenceRule(
        cadence.anchor, cadence.day_unit == "business_days", tuple(steps), total, positions
    )


def _position(steps: Sequence[_Step], done: int) -> tuple[_Step | None, _Step | None]:
    previous = next((s for s in reversed(steps) if s.n <= done), None)
    upcoming = next((s for s in steps if s.n > done), None)
    return previous, upcoming
