"""The input file of ``followup plan`` / ``followup explain``: cases, accounts and a calendar.

A YAML (or JSON, which is YAML) document::

    calendar:                      # optional; defaults below
      timezone: America/New_York   # IANA zone (default UTC)
      workdays: [mon, tue, wed, thu, fri]
      opens: "09:00"
      closes: "17:00"
      country: US                  # public holidays (holidays package); omit for none
      subdivision: NY              # optional
      closures: [2026-12-24]       # extra days off
    accounts:
      - id: acme
        plan: Enterprise           # enterprise/standard/community/trial, any case; else unknown
        canceled: false
        stop_followups: false
        inactive: false
        open_cases: 3              # optional: counted from `cases` when omitted
        open_case_refs: [...]      # optional: likewise
        max_open_priority: high    # optional: likewise
    cases:
      - id: "101"                  # plus source (default zendesk)
        kind: ticket               # ticket / conversation / bug
        status: pending            # new/open/pending/hold/solved/closed
        created_at: 2026-03-02T09:00:00-05:00   # every instant needs a UTC offset
        updated_at: ...            # optional, defaults to created_at
        subject: "..."
        priority: high             # low/normal/high/urgent/critical, optional
        requester: {id: r1, name: Ann, email: ann@example.com, phone: "+1..."}
        account: acme
        assignee: Dana
        fields: {request_type: general_inquiry, linked_order: "A-1"}
        tags: [vip]
        history:                   # customer/agent activity, any order
          - {kind: customer_reply, at: 2026-03-02T09:00:00-05:00}
        followups:                 # the worker's own earlier follow-ups
          - {policy: general-inquiry, step: 1, at: 2026-03-02T10:00:00-05:00}

Account aggregates (``open_cases``, ``open_case_refs``, ``max_open_priority``) are derived from
the file's cases when an account omits them: the file is small and complete, unlike a stream.

The case store keeps cases in this shape too (:mod:`policies.codec`: every field written out,
plus ``updated_stamp``, which a file does not take); both are decoded by the same code.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, time
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveInt,
    ValidationError,
    field_validator,
    model_validator,
)

from policies.actions import echo
from policies.calendar import BusinessCalendar
from policies.codec import case_from_json
from policies.model import (
    Account,
    ActivityKind,
    Case,
    CaseKind,
    PlanTier,
    Priority,
    Source,
    Status,
    idempotency_key,
)
from policies.yamlsource import SourceError, load_located, problems_from_validation

__all__ = ["CalendarConfig", "Loaded", "Snapshot", "load_snapshot", "parse_snapshot"]

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CLOSED = frozenset({Status.SOLVED, Status.CLOSED})


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CalendarConfig(_Model):
    """A tenant's business calendar as configuration (also usable from a tenant mapping)."""

    timezone: str = "UTC"
    workdays: list[Weekday] = list(_WEEKDAYS[:5])
    opens: time = time(9, 0)
    closes: time = time(17, 0)
    country: str | None = None
    subdivision: str | None = None
    closures: list[date] = []

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _known_country(self) -> CalendarConfig:
        if self.country is not None:
            try:
                holidays.country_holidays(self.country, self.subdivision)
            except NotImplementedError as exc:
                raise ValueError(f"no public holidays known for {self.country!r}") from exc
        return self

    def build(self) -> BusinessCalendar:
        return BusinessCalendar(
            timezone=self.timezone,
            workdays=frozenset(_WEEKDAYS.index(d) for d in self.workdays),
            opens=self.opens,
            closes=self.closes,
            country=self.country,
            subdivision=self.subdivision,
            closures=frozenset(self.closures),
        )


class _Requester(_Model):
    id: str
    name: str = ""
    email: str | None = None
    phone: str | None = None


class _Account(_Model):
    id: str
    name: str = ""
    plan: str | None = None
    canceled: bool = False
    stop_followups: bool = False
    inactive: bool = False
    open_cases: NonNegativeInt | None = None
    open_case_refs: list[str] | None = None
    max_open_priority: Priority | None = None


class _Activity(_Model):
    kind: ActivityKind
    at: AwareDatetime


class _Mark(_Model):
    policy: str
    step: PositiveInt
    at: AwareDatetime
    key: str | None = None


class _Case(_Model):
    source: Source = Source.ZENDESK
    id: str
    kind: CaseKind
    status: Status
    created_at: AwareDatetime
    updated_at: AwareDatetime | None = None
    subject: str = ""
    priority: Priority | None = None
    requester: _Requester | None = None
    account: str | None = None
    assignee: str | None = None
    group: str | None = None
    brand: str | None = None
    fields: dict[str, str] = {}
    tags: list[str] = []
    history: list[_Activity] = []
    followups: list[_Mark] = []

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value


class Snapshot(_Model):
    calendar: CalendarConfig = CalendarConfig()
    accounts: list[_Account] = []
    cases: list[_Case] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Loaded:
    cases: tuple[Case, ...]
    accounts: Mapping[str, Account]
    calendar: BusinessCalendar


def load_snapshot(path: Path) -> Loaded:
    """Read an input file; :class:`SourceError` names file, line and field on bad input."""
    source = load_located(path)
    try:
        snapshot = Snapshot.model_validate(source.data or {})
    except ValidationError as exc:
        raise SourceError(problems_from_validation(source, exc)) from exc
    return parse_snapshot(snapshot)


def parse_snapshot(snapshot: Snapshot) -> Loaded:
    cases = tuple(_case(c) for c in snapshot.cases)
    accounts = {a.id: _account(a, cases) for a in snapshot.accounts}
    return Loaded(cases, accounts, snapshot.calendar.build())


def _case(raw: _Case) -> Case:
    """The entry with the file's conveniences made explicit (an omitted ``updated_at`` or
    mark key, activity in any order), decoded as the case store decodes its own."""
    ref = f"{raw.source}:{raw.id}"
    entry = raw.model_dump(mode="json")
    entry["updated_at"] = entry["updated_at"] or entry["created_at"]
    entry["updated_stamp"] = None
    for mark, dumped in zip(raw.followups, entry["followups"], strict=True):
        if mark.key is None:
            dumped["key"] = idempotency_key(mark.policy, ref, mark.step, mark.at.isoformat())
    case = case_from_json(entry)
    return dataclasses.replace(
        case,
        history=tuple(sorted(case.history, key=lambda a: a.at)),
        followups=tuple(sorted(case.followups, key=lambda m: m.at)),
    )


def _account(raw: _Account, cases: tuple[Case, ...]) -> Account:
    mine = [c for c in cases if c.account_id == raw.id and c.status not in _CLOSED]
    priorities = [c.priority for c in mine if c.priority is not None]
    plan = _plan(raw.plan)
    return Account(
        id=raw.id,
        name=raw.name,
        plan=plan,
        canceled=raw.canceled,
        stop_followups=raw.stop_followups,
        inactive=raw.inactive,
        open_cases=raw.open_cases if raw.open_cases is not None else len(mine),
        raw_plan=raw.plan,
        open_case_refs=tuple(
            raw.open_case_refs if raw.open_case_refs is not None else (c.ref for c in mine)
        ),
        max_open_priority=raw.max_open_priority
        or (max(priorities, key=lambda p: p.rank) if priorities else None),
        open_case_titles={c.ref: echo(c.subject) for c in mine if c.subject},
    )


def _plan(raw: str | None) -> PlanTier | None:
    try:
        return PlanTier(raw.strip().lower()) if raw else None
    except ValueError:
        return None
