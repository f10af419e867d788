"""The demo: the worker, live, against the bundled sandbox, over simulated business days.

Each day the sandbox clock is set to the morning of that day, a few customers the worker has
been chasing reply or miss a call (chosen from the seed, so two runs tell the same story), then
one real cycle runs at :data:`CYCLE_HOUR` tenant time and what it did is kept as a
:class:`DayLog`. At the end every case the worker wrote to is read back through the vendors'
APIs: each follow-up applied must be there exactly once (its ``fw-<key>`` footer), and no key
may be there twice. :func:`simulate` does the work; ``worker.cli.demo`` shows it.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from policies.calendar import BusinessCalendar
from policies.model import Account, ActionType, Case, PlanItem, Source, Status, Unjudged
from sandbox.config import SandboxConfig
from sandbox.server import RunningSandbox
from worker.delivery.executor import ItemReport
from worker.delivery.ledger import Ledger, Outcome
from worker.runtime.cycle import PlanFunction, Runtime, run_cycle
from worker.runtime.wiring import build_calendar, open_runtime
from worker.settings import Settings

__all__ = [
    "CYCLE_HOUR",
    "CustomerActivity",
    "DayLog",
    "DemoOptions",
    "DemoReport",
    "DoneItem",
    "ReadBack",
    "Watchers",
    "demo_settings",
    "sandbox_config",
    "simulate",
]

TIMEZONE = "America/New_York"
HOLIDAYS_COUNTRY = "US"
CYCLE_HOUR = 10  # the cycle of each day, tenant time; customers act an hour before
MAPPING = Path(__file__).resolve().parents[1] / "deploy" / "mapping.sandbox.yaml"
UNRESPONSIVE_PREFIX = "Unresponsive Customers/"
_UNLIMITED = 1_000_000  # requests per minute: the sandbox runs without rate limits here


@dataclass(frozen=True, slots=True)
class DemoOptions:
    days: int = 10
    tickets: int = 200
    seed: int = 7
    # A Monday followed by two weeks without a US public holiday: the story is the same on
    # every run, whatever today is.
    first_day: date = date(2026, 3, 2)
    replies_per_day: int = 2
    missed_calls_per_day: int = 2


def sandbox_config(options: DemoOptions) -> SandboxConfig:
    """The sandbox the demo runs against: its data laid out around the first morning."""
    return SandboxConfig(
        tickets=options.tickets,
        seed=options.seed,
        start=_local(options.first_day, CYCLE_HOUR - 1),
        frozen_clock=True,  # the clock moves only when the demo moves it
        port=0,
        limits={},
    )


def demo_settings(running: RunningSandbox) -> Settings:
    """Worker settings pointing at ``running``; nothing from the environment or a ``.env``
    may point the demo at a real helpdesk, so every vendor setting is given here. (The ledger
    is the caller's: a throwaway one.)"""
    config, urls = running.config, running.urls
    return Settings(
        _env_file=None,  # pydantic-settings' init-only option: no .env either
        zendesk_url=urls["zendesk"],
        zendesk_email=config.zendesk_email,
        zendesk_token=config.zendesk_token,
        intercom_url=urls["intercom"],
        intercom_token=config.intercom_token,
        asana_url=urls["asana"],
        asana_token=config.asana_token,
        mapping=MAPPING,
        dry_run=False,
        timezone=TIMEZONE,
        holidays_country=HOLIDAYS_COUNTRY,
        holidays_subdivision=None,
        zendesk_rate_limit=_UNLIMITED,
        intercom_rate_limit=_UNLIMITED,
        asana_rate_limit=_UNLIMITED,
    )


def _local(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=ZoneInfo(TIMEZONE))


def _business_days(calendar: BusinessCalendar, first: date, count: int) -> list[date]:
    days: list[date] = []
    day = first
    while len(days) < count:
        if calendar.is_business_day(day):
            days.append(day)
        day += timedelta(days=1)
    return days


@dataclass(frozen=True, slots=True)
class CustomerActivity:
    """Something a customer did before the day's cycle: ``customer_reply`` or ``missed_call``."""

    case_ref: str
    kind: str


@dataclass(frozen=True, slots=True)
class DoneItem:
    """One follow-up of a cycle: what the executor reported, and the plan item it carried out."""

    report: ItemReport
    item: PlanItem

    def params(self, kind: ActionType) -> list[Mapping[str, Any]]:
        return [action.params for action in self.item.actions if action.type is kind]

    @property
    def applied(self) -> bool:
        return self.report.outcome is Outcome.APPLIED

    @property
    def awaits_customer(self) -> bool:
        """After this follow-up the case waits for the customer (PENDING): one being chased."""
        statuses = [str(p["status"]) for p in self.params(ActionType.SET_STATUS)]
        if statuses:
            return statuses[-1] == Status.PENDING.value
        return self.item.case.status is Status.PENDING

    @property
    def solves(self) -> bool:
        return any(p["status"] == "solved" for p in self.params(ActionType.SET_STATUS))

    @property
    def assigns_unresponsive(self) -> bool:
        return any(
            str(p["assignee"]).startswith(UNRESPONSIVE_PREFIX)
            for p in self.params(ActionType.SET_ASSIGNEE)
        )


@dataclass(slots=True)
class DayLog:
    """One simulated business day: the customers' activity, then the worker's cycle."""

    day: date
    activity: list[CustomerActivity] = field(default_factory=list)
    done: list[DoneItem] = field(default_factory=list)
    emails: list[dict[str, Any]] = field(default_factory=list)  # the sandbox outbox, today
    unjudged: list[Unjudged] = field(default_factory=list)
    errors: tuple[str, ...] = ()
    cases_read: int = 0

    @property
    def applied(self) -> list[DoneItem]:
        return [done for done in self.done if done.applied]

    @property
    def failed(self) -> list[DoneItem]:
        return [done for done in self.done if done.report.failed]

    @property
    def ok(self) -> bool:
        return not self.failed and not self.errors

    def notes(self) -> Counter[str]:
        """Internal notes by policy and step: ``general-inquiry 2/3``."""
        noted = (d for d in self.applied if d.params(ActionType.NOTE))
        return Counter(f"{d.item.policy} {d.item.step_label}" for d in noted)

    def statuses(self) -> Counter[str]:
        return Counter(
            str(p["status"]) for d in self.applied for p in d.params(ActionType.SET_STATUS)
        )

    def replies(self) -> Counter[str]:
        """Public replies by template: what customers get by email."""
        return Counter(str(p["template"]) for d in self.applied for p in d.params(ActionType.REPLY))

    def closed(self) -> list[DoneItem]:
        """Solved by the worker: it only closes a case nobody answered."""
        return [d for d in self.applied if d.solves]

    def handed_to_owner(self) -> list[DoneItem]:
        """Assigned to ``Unresponsive Customers/<owner>`` and left open (bot issues)."""
        return [d for d in self.applied if d.assigns_unresponsive and not d.solves]

    def escalated(self) -> list[DoneItem]:
        return [d for d in self.applied if d.params(ActionType.ESCALATE)]

    def bug_updates(self) -> list[DoneItem]:
        return [d for d in self.applied if d.params(ActionType.SET_BUG_FIELD)]

    def engineer_nudges(self) -> list[DoneItem]:
        return [d for d in self.applied if d.params(ActionType.NOTIFY_ENGINEER)]

    def restarted(self) -> list[DoneItem]:
        """First steps on cases whose customer acted this morning: the sequence began again."""
        touched = {activity.case_ref for activity in self.activity}
        return [
            d
            for d in self.applied
            if d.item.case.ref in touched and d.item.step == 1 and d.item.max_steps > 1
        ]

    def as_dict(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "cases_read": self.cases_read,
            "activity": [{"case": a.case_ref, "kind": a.kind} for a in self.activity],
            "follow_ups": len(self.done),
            "outcomes": dict(sorted(Counter(d.report.label for d in self.done).items())),
            "notes": dict(sorted(self.notes().items())),
            "statuses": dict(sorted(self.statuses().items())),
            "replies": dict(sorted(self.replies().items())),
            "emails": len(self.emails),
            "closed_unresponsive": len(self.closed()),
            "handed_to_owner": len(self.handed_to_owner()),
            "escalated": len(self.escalated()),
            "bug_updates": len(self.bug_updates()),
            "engineer_nudges": len(self.engineer_nudges()),
            "restarted": len(self.restarted()),
            "failed": [{"case": d.report.case_ref, "detail": d.report.detail} for d in self.failed],
            "unjudged": len(self.unjudged),
            "errors": list(self.errors),
        }


_SUMMED_DAY_FIGURES = (
    "follow_ups",
    "emails",
    "closed_unresponsive",
    "handed_to_owner",
    "escalated",
    "bug_updates",
    "engineer_nudges",
    "restarted",
    "unjudged",
)


@dataclass(frozen=True, slots=True)
class ReadBack:
    """Every case the worker wrote to, read again through the vendors' APIs at the end."""

    cases: int
    signed: int  # applied follow-ups whose fw-<key> footer is on their case
    missing: tuple[str, ...]  # keys applied but not found on their case
    duplicates: tuple[tuple[str, str, int], ...]  # (case, key, times found), times > 1


@dataclass(slots=True)
class DemoReport:
    days: list[DayLog]
    readback: ReadBack
    api: dict[str, Any]  # the sandbox's request counters
    wall_time_s: float
    example_email: dict[str, Any] | None = None  # a closing statement, as the customer got it
    example_note: str | None = None  # an internal note, as the agent sees it on the ticket

    @property
    def ok(self) -> bool:
        return (
            all(day.ok for day in self.days)
            and not self.readback.duplicates
            and not self.readback.missing
        )

    def as_dict(self) -> dict[str, Any]:
        days = [day.as_dict() for day in self.days]
        totals: Counter[str] = Counter()
        for day in days:
            for name in _SUMMED_DAY_FIGURES:
                totals[name] += day[name]
            totals["failed"] += len(day["failed"])
            totals["customer_activity"] += len(day["activity"])
        return {
            "ok": self.ok,
            "days": days,
            "totals": {
                **dict(sorted(totals.items())),
                "applied": sum(len(day.applied) for day in self.days),
                "notes": dict(sorted(sum((d.notes() for d in self.days), Counter()).items())),
                "statuses": dict(sorted(sum((d.statuses() for d in self.days), Counter()).items())),
                "by_policy": dict(
                    sorted(Counter(d.item.policy for day in self.days for d in day.applied).items())
                ),
            },
            "readback": {
                "cases": self.readback.cases,
                "signed": self.readback.signed,
                "missing": list(self.readback.missing),
                "duplicates": [
                    {"case": case, "key": key, "times": n}
                    for case, key, n in self.readback.duplicates
                ],
            },
            "api": self.api,
            "wall_time_s": round(self.wall_time_s, 2),
            "example_email": self.example_email,
            "example_note": self.example_note,
        }


def _ignore(*_: object) -> None:
    return None


@dataclass(frozen=True, slots=True)
class Watchers:
    """Who hears about the run as it goes: a progress bar, a timeline."""

    day_started: Callable[[date, list[CustomerActivity]], None] = _ignore
    item: Callable[[ItemReport], None] = _ignore
    day_done: Callable[[DayLog], None] = _ignore


def _remembering(plan: PlanFunction, planned: dict[str, PlanItem]) -> PlanFunction:
    """The tenant's planner, keeping each item by key: the executor's reports name the
    actions, the demo's timeline wants their parameters (which status, which template)."""

    def plan_and_remember(
        cases: Iterable[Case], accounts: Mapping[str, Account], now: datetime
    ) -> Iterator[PlanItem | Unjudged]:
        for entry in plan(cases, accounts, now):
            if isinstance(entry, PlanItem):
                planned[entry.key] = entry
            yield entry

    return plan_and_remember


def choose_activity(
    rng: random.Random, chased: Mapping[str, PlanItem], options: DemoOptions
) -> list[CustomerActivity]:
    """A few of the customers the worker is chasing answer today; a few others call and miss.

    ``chased``: case ref -> the latest follow-up the worker applied to it, for the cases it
    left waiting on their customer. Only a Zendesk
    requester with a phone number can miss a call (the sandbox refuses the others).
    """
    refs = sorted(chased)
    rng.shuffle(refs)
    replies = [ref for ref in refs if not ref.startswith(Source.ASANA.value)]
    chosen = replies[: options.replies_per_day]
    callers = [ref for ref in refs if ref not in chosen and _can_miss_a_call(chased[ref].case)]
    return [CustomerActivity(ref, "customer_reply") for ref in chosen] + [
        CustomerActivity(ref, "missed_call") for ref in callers[: options.missed_calls_per_day]
    ]


def _can_miss_a_call(case: Case) -> bool:
    return case.source is Source.ZENDESK and bool(case.requester and case.requester.phone)


async def simulate(
    running: RunningSandbox,
    ledger: Ledger,
    options: DemoOptions,
    watch: Watchers | None = None,
) -> DemoReport:
    """Run ``options.days`` business days of the worker against ``running``, live."""
    started = time.monotonic()
    settings = demo_settings(running)
    watch = watch or Watchers()
    async with (
        httpx.AsyncClient(base_url=running.urls["admin"], timeout=30) as admin,
        open_runtime(settings, ledger) as runtime,
    ):
        story = _Story(admin, runtime, options, watch)
        days = _business_days(build_calendar(settings), options.first_day, options.days)
        logs = [await story.live(day) for day in days]
        readback = await _read_back(runtime, logs)
        api = _api_figures(await _get(admin, "/stats"))  # before the showcase reads below
        email = await _example_email(admin, logs)
        note = await _example_note(running, logs)
    return DemoReport(logs, readback, api, time.monotonic() - started, email, note)


class _Story:
    """What carries over from one day to the next: who the worker is chasing, which emails
    were already counted, and every plan item by key (the reports only name the actions)."""

    def __init__(
        self, admin: httpx.AsyncClient, runtime: Runtime, options: DemoOptions, watch: Watchers
    ) -> None:
        self._admin = admin
        self._runtime = runtime
        self._options = options
        self._watch = watch
        self._rng = random.Random(options.seed)
        self._planned: dict[str, PlanItem] = {}
        self._chased: dict[str, PlanItem] = {}
        self._emails_seen = 0
        _remember_plans(runtime, self._planned)

    async def live(self, day: date) -> DayLog:
        """The customers act an hour before the cycle; then the cycle; then the outbox."""
        log = DayLog(day)
        await _set_clock(self._admin, _local(day, CYCLE_HOUR - 1))
        log.activity = await _act(
            self._admin, choose_activity(self._rng, self._chased, self._options)
        )
        self._watch.day_started(day, log.activity)
        await _set_clock(self._admin, _local(day, CYCLE_HOUR))

        def heard(report: ItemReport) -> None:
            log.done.append(DoneItem(report, self._planned[report.key]))
            self._watch.item(report)

        self._runtime.on_item = heard
        self._runtime.on_unjudged = log.unjudged.append
        summary = await run_cycle(self._runtime, at=_local(day, CYCLE_HOUR), dry_run=False)
        log.errors, log.cases_read = summary.errors, summary.cases
        log.emails = (await _get(self._admin, "/outbox", after=self._emails_seen))["messages"]
        self._emails_seen += len(log.emails)
        for done in log.applied:
            if done.awaits_customer:
                self._chased[done.item.case.ref] = done.item
            else:
                self._chased.pop(done.item.case.ref, None)
        for activity in log.activity:
            self._chased.pop(activity.case_ref, None)  # they answered; chase someone else
        self._watch.day_done(log)
        return log


def _remember_plans(runtime: Runtime, planned: dict[str, PlanItem]) -> None:
    runtime.tenants = [
        replace(tenant, plan=_remembering(tenant.plan, planned)) for tenant in runtime.tenants
    ]


async def _get(admin: httpx.AsyncClient, path: str, **params: Any) -> Any:
    response = await admin.get(path, params=params)
    response.raise_for_status()
    return response.json()


async def _set_clock(admin: httpx.AsyncClient, instant: datetime) -> None:
    response = await admin.post("/clock", json={"set": instant.isoformat()})
    response.raise_for_status()


async def _act(admin: httpx.AsyncClient, planned: list[CustomerActivity]) -> list[CustomerActivity]:
    """Post the customers' activity; keep what the sandbox accepted (a closed ticket takes
    none, as in Zendesk)."""
    done = []
    for activity in planned:
        vendor, _, case_id = activity.case_ref.partition(":")
        response = await admin.post(
            "/activity",
            json={
                "vendor": vendor,
                "id": case_id,
                "kind": activity.kind,
                "body": "Sorry for the delay - here is what you asked for."
                if activity.kind == "customer_reply"
                else "",
            },
        )
        if response.status_code == httpx.codes.OK:
            done.append(activity)
    return done


async def _read_back(runtime: Runtime, logs: list[DayLog]) -> ReadBack:
    """Re-read every case written to; count each applied key's footers on it."""
    applied: dict[str, set[str]] = {}
    for log in logs:
        for done in log.applied:
            applied.setdefault(done.item.case.ref, set()).add(done.item.key)
    connectors = runtime.tenants[0].connectors
    signed, missing, duplicates = 0, [], []
    for ref, keys in sorted(applied.items()):
        source, _, case_id = ref.partition(":")
        case = await connectors[Source(source)].fetch_case(case_id)
        found = Counter(mark.key for mark in case.followups)
        duplicates += [(ref, key, n) for key, n in sorted(found.items()) if n > 1]
        signed += sum(1 for key in keys if key in found)
        missing += sorted(key for key in keys if key not in found)
    return ReadBack(len(applied), signed, tuple(missing), tuple(duplicates))


def _api_figures(stats: Mapping[str, Any]) -> dict[str, Any]:
    rate_limited = sum(e["count"] for e in stats["endpoints"] if e["status"] == "429")
    return {
        **stats["total"],
        "rate_limited": rate_limited,
        "by_vendor": {
            vendor: {key: counts[key] for key in ("reads", "writes", "errors")}
            for vendor, counts in sorted(stats["vendors"].items())
        },
    }


async def _example_email(admin: httpx.AsyncClient, logs: list[DayLog]) -> dict[str, Any] | None:
    """The first closing statement delivered (the last email a silent customer gets), else
    the first email of the run with a recipient."""
    closing = [
        d.item.case.ref
        for log in logs
        for d in log.applied
        if any(p["template"] == "closing_statement" for p in d.params(ActionType.REPLY))
    ]
    for ref in closing:
        delivered = [m for m in (await _get(admin, "/outbox", ref=ref))["messages"] if m["to"]]
        if delivered:
            return dict(delivered[-1])
    emails = [email for log in logs for email in log.emails if email["to"]]
    return emails[0] if emails else None


async def _example_note(running: RunningSandbox, logs: list[DayLog]) -> str | None:
    """An internal note the worker left on a Zendesk ticket, read back as an agent sees it:
    preferably the one closing a ticket whose customer never answered."""
    notes = [
        d
        for log in logs
        for d in log.applied
        if d.item.case.source is Source.ZENDESK and d.params(ActionType.NOTE)
    ]
    if not notes:
        return None
    closing = [d for log in logs for d in log.closed() if d in notes]
    chosen = (closing or notes)[0]
    config = running.config
    async with httpx.AsyncClient(
        base_url=running.urls["zendesk"],
        auth=(f"{config.zendesk_email}/token", config.zendesk_token),
        timeout=30,
    ) as zendesk:
        response = await zendesk.get(f"/api/v2/tickets/{chosen.item.case.id}/comments.json")
        response.raise_for_status()
    bodies = [
        str(comment["body"])
        for comment in response.json()["comments"]
        if not comment.get("public", True) and chosen.item.key in str(comment["body"])
    ]
    return bodies[-1] if bodies else None
