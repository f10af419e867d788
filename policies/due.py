"""Provisional: replaced by branch `due` at merge.

``next_due`` answers ``now`` always: every stored case is planned every cycle, which is what
the planner did before the due index, so it is never wrong, only not yet cheaper.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from policies.calendar import BusinessCalendar
from policies.model import Account, Case
from policies.rules import Rulebook

__all__ = ["next_due"]


def next_due(
    case: Case,
    accounts: Mapping[str, Account],
    now: datetime,
    policies: Rulebook,
    calendar: BusinessCalendar,
) -> datetime | None:
    """The earliest instant >= ``now`` at which planning ``case`` could yield anything."""
    return now
