"""The input file of `followup plan`: parsed into the domain model, errors with file:line."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from policies.model import PlanTier, Priority, Status
from policies.snapshot import Loaded, load_snapshot
from policies.yamlsource import SourceError

FILE = """\
calendar: {timezone: Europe/Berlin, country: DE, closures: [2026-03-13]}
accounts:
  - {id: acme, plan: " Enterprise "}
  - {id: odd, plan: Gold, open_cases: 7}
cases:
  - {id: 1, kind: bug, status: open, priority: high, account: acme,
     created_at: "2026-03-02T09:00:00+01:00"}
  - {id: 2, kind: bug, status: solved, priority: critical, account: acme,
     created_at: "2026-03-02T09:00:00+01:00"}
  - id: "3"
    source: intercom
    kind: conversation
    status: pending
    account: acme
    created_at: 2026-03-02T09:00:00+01:00
    history:
      - {kind: agent_update, at: "2026-03-03T09:00:00+01:00"}
      - {kind: customer_reply, at: "2026-03-02T10:00:00+01:00"}
    followups:
      - {policy: awaiting-customer, step: 1, at: "2026-03-05T09:00:00+01:00"}
"""


def load(tmp_path: Path, text: str) -> Loaded:
    path = tmp_path / "cases.yaml"
    path.write_text(text)
    return load_snapshot(path)


def test_cases_accounts_and_calendar_are_parsed(tmp_path: Path) -> None:
    loaded = load(tmp_path, FILE)
    cases = {c.ref: c for c in loaded.cases}
    assert set(cases) == {"zendesk:1", "zendesk:2", "intercom:3"}
    conversation = cases["intercom:3"]
    assert conversation.status is Status.PENDING
    assert [a.kind.value for a in conversation.history] == ["customer_reply", "agent_update"]
    assert conversation.followups[0].key  # derived when the file gives none
    calendar = loaded.calendar
    assert calendar.timezone == "Europe/Berlin"
    assert not calendar.is_business_day(date(2026, 3, 13))


def test_account_aggregates_are_derived_from_the_file_unless_given(tmp_path: Path) -> None:
    accounts = load(tmp_path, FILE).accounts
    acme = accounts["acme"]
    assert acme.plan is PlanTier.ENTERPRISE
    assert acme.open_cases == 2  # the solved bug does not count
    assert acme.open_case_refs == ("zendesk:1", "intercom:3")
    assert acme.max_open_priority is Priority.HIGH
    odd = accounts["odd"]
    assert odd.plan is None
    assert odd.raw_plan == "Gold"
    assert odd.open_cases == 7


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            'created_at: "2026-03-02T09:00:00+01:00"}\n  - {id: 2',
            'created_at: "2026-03-02T09:00:00"}\n  - {id: 2',
            ":7: cases.0.created_at: Input should have timezone info",
        ),
        (
            "timezone: Europe/Berlin",
            "timezone: Mars/Olympus",
            ":1: calendar.timezone: Value error, unknown IANA time zone 'Mars/Olympus'",
        ),
        ("kind: conversation", "kind: chat", ":12: cases.2.kind: Input should be"),
    ],
)
def test_errors_name_file_line_and_field(tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert old in FILE
    with pytest.raises(SourceError) as caught:
        load(tmp_path, FILE.replace(old, new))
    assert expected in str(caught.value)
    assert str(caught.value).startswith(str(tmp_path / "cases.yaml"))
