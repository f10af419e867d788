"""What the console reads from the vendors: a tenant's cases as they are now, planned ahead.

Nothing here is the console's own logic: the forward preview is
:func:`policies.planner.preview` (``followup plan --horizon``) and the rule-by-rule account
is :func:`policies.planner.explain` (``followup explain``), fed from the tenant's connectors
instead of a file. Each call reads the tenant's vendors afresh (it counts in the tenant's
vendor calls, as a cycle's read would), so it is only done on a page's request.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Protocol, runtime_checkable
from urllib.parse import quote

from connectors.errors import ConnectorError
from connectors.resolution import NameCheck
from policies.calendar import BusinessCalendar
from policies.model import Account, Case, PlanItem, Source, Unjudged
from policies.planner import Explanation, explain, preview, with_open_cases
from policies.rules import Rulebook
from worker.runtime.cycle import Tenant, read_accounts
from worker.settings import Settings

__all__ = [
    "CHECKS_KEPT_FOR",
    "Forecast",
    "MappingChecks",
    "TenantView",
    "explain_live",
    "forecast",
    "helpdesk_link",
    "read_live",
]

CHECKS_KEPT_FOR = timedelta(minutes=10)
"""How long the console trusts a check of the mapped names before asking the vendors again."""


@dataclass(frozen=True, slots=True)
class TenantView:
    """A tenant as the console reads it: its connectors, calendar, pack and settings."""

    tenant: Tenant
    settings: Settings
    calendar: BusinessCalendar
    rulebook: Rulebook


async def read_live(view: TenantView) -> tuple[list[Case], dict[str, Account]]:
    """Every case of the tenant's vendors, and the accounts with their open cases summed (as
    a cycle plans them)."""
    connectors = view.tenant.connectors.values()
    accounts = await read_accounts(connectors)
    cases = [case for connector in connectors async for case in connector.cases()]
    return cases, with_open_cases(accounts, cases)


@dataclass(slots=True)
class Forecast:
    """The preview over ``days``: the items of each day, counts by day and by policy/step."""

    days: list[date]
    items: dict[date, list[PlanItem]] = field(default_factory=dict)
    by_step: Counter[tuple[str, str, date]] = field(default_factory=Counter)
    unjudged: list[Unjudged] = field(default_factory=list)

    def count(self, day: date) -> int:
        return len(self.items.get(day, []))

    def steps(self) -> list[tuple[str, str]]:
        """(policy, step) pairs due on some day, sorted."""
        return sorted({(policy, step) for policy, step, _ in self.by_step})


async def forecast(view: TenantView, now: datetime, horizon: int) -> Forecast:
    """What is due today and over the next ``horizon`` business days, if nobody replies."""
    cases, accounts = await read_live(view)
    # The planner's work is CPU, the page's alone: off the loop the cycles run on.
    return await asyncio.to_thread(_ahead, view, cases, accounts, now, horizon)


def _ahead(
    view: TenantView, cases: list[Case], accounts: dict[str, Account], now: datetime, horizon: int
) -> Forecast:
    calendar = view.calendar
    local = calendar.local_date(now)
    days = [local] + [calendar.add_business_days(local, k) for k in range(1, horizon + 1)]
    result = Forecast(days)
    for step in preview(cases, accounts, now, view.rulebook, calendar, horizon):
        if isinstance(step.result, Unjudged):
            result.unjudged.append(step.result)
            continue
        day = calendar.local_date(step.at)
        result.items.setdefault(day, []).append(step.result)
        result.by_step[(step.result.policy, step.result.step_label, day)] += 1
    return result


async def explain_live(
    view: TenantView, case_ref: str, now: datetime
) -> tuple[Case, list[Explanation]] | None:
    """``followup explain`` on the case as the vendor has it now; None when not found."""
    cases, accounts = await read_live(view)
    case = next((case for case in cases if case.ref == case_ref), None)
    if case is None:
        return None
    return case, explain(case, accounts, now, view.rulebook, view.calendar)


@runtime_checkable
class _Checks(Protocol):
    async def check(self) -> list[NameCheck]: ...


class MappingChecks:
    """The mapped names (fields, groups, agents, states) each tenant's vendors do not have, as
    ``followup connectors check`` finds them; asked again after :data:`CHECKS_KEPT_FOR`."""

    def __init__(self) -> None:
        self._checked: dict[str, tuple[datetime, list[NameCheck]]] = {}

    async def unresolved(self, view: TenantView, now: datetime) -> list[NameCheck]:
        name = view.tenant.name
        kept = self._checked.get(name)
        if kept is None or now - kept[0] > CHECKS_KEPT_FOR:
            found: list[NameCheck] = []
            for connector in view.tenant.connectors.values():
                if not isinstance(connector, _Checks):
                    continue
                try:
                    found += [check for check in await connector.check() if not check.ok]
                except ConnectorError as exc:
                    found.append(NameCheck(connector.source, "vendor", f"unreachable: {exc}", None))
            kept = self._checked[name] = (now, found)
        return kept[1]


def helpdesk_link(settings: Settings, case_ref: str) -> str | None:
    """Where an agent opens the case: the Zendesk agent view, the Intercom inbox, the Asana
    task. None for a vendor the tenant does not use."""
    vendor, _, case_id = case_ref.partition(":")
    quoted = quote(case_id, safe="")
    if vendor == Source.ZENDESK and settings.zendesk_url is not None:
        return f"{str(settings.zendesk_url).rstrip('/')}/agent/tickets/{quoted}"
    if vendor == Source.INTERCOM and settings.intercom_url is not None:
        return f"https://app.intercom.com/a/inbox/_/inbox/conversation/{quoted}"
    if vendor == Source.ASANA and settings.asana_url is not None:
        return f"https://app.asana.com/0/0/{quoted}/f"
    return None
