"""Business calendar: business days across holidays and closures, business hours across DST."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from policies.calendar import BusinessCalendar

NEW_YORK = BusinessCalendar(timezone="America/New_York", country="US")
BERLIN = BusinessCalendar(timezone="Europe/Berlin", country="DE", subdivision="BE")
BAVARIA = BusinessCalendar(timezone="Europe/Berlin", country="DE", subdivision="BY")
NY = ZoneInfo("America/New_York")


@pytest.mark.parametrize(
    ("calendar", "start", "end", "expected"),
    [
        (NEW_YORK, date(2026, 3, 2), date(2026, 3, 9), 5),  # Monday to Monday
        (NEW_YORK, date(2026, 3, 6), date(2026, 3, 9), 1),  # Friday to Monday
        (NEW_YORK, date(2026, 3, 7), date(2026, 3, 8), 0),  # a weekend
        (NEW_YORK, date(2026, 3, 9), date(2026, 3, 2), 0),  # backwards
        (NEW_YORK, date(2026, 11, 23), date(2026, 11, 30), 4),  # Thanksgiving Thu 26 Nov
        (NEW_YORK, date(2026, 12, 21), date(2027, 1, 4), 8),  # Christmas + New Year, two years
        (BERLIN, date(2026, 3, 30), date(2026, 4, 6), 3),  # Good Friday, Easter Monday
        (BERLIN, date(2027, 3, 1), date(2027, 3, 8), 4),  # Berlin only: Women's Day, Mon 8 Mar
        (BAVARIA, date(2027, 3, 1), date(2027, 3, 8), 5),
    ],
)
def test_business_days_between(
    calendar: BusinessCalendar, start: date, end: date, expected: int
) -> None:
    assert calendar.business_days_between(start, end) == expected


def test_business_days_between_agrees_with_stepping_day_by_day() -> None:
    start = date(2026, 1, 1)
    for offset in range(0, 400, 7):
        end = date.fromordinal(start.toordinal() + offset)
        stepped = sum(
            NEW_YORK.is_business_day(date.fromordinal(o))
            for o in range(start.toordinal() + 1, end.toordinal() + 1)
        )
        assert NEW_YORK.business_days_between(start, end) == stepped


@pytest.mark.parametrize(
    ("start", "n", "expected"),
    [
        (date(2026, 3, 6), 1, date(2026, 3, 9)),  # Friday + 1 = Monday
        (date(2026, 3, 7), 1, date(2026, 3, 9)),  # from a Saturday
        (date(2026, 3, 7), 0, date(2026, 3, 9)),  # 0 rolls a closed day forward
        (date(2026, 3, 4), 0, date(2026, 3, 4)),
        (date(2026, 11, 25), 1, date(2026, 11, 27)),  # skips Thanksgiving
        (date(2026, 7, 2), 1, date(2026, 7, 6)),  # Independence Day observed Fri 3 Jul
    ],
)
def test_add_business_days(start: date, n: int, expected: date) -> None:
    assert NEW_YORK.add_business_days(start, n) == expected


def test_extra_closures_are_not_business_days() -> None:
    calendar = BusinessCalendar(timezone="UTC", closures=frozenset({date(2026, 3, 4)}))
    assert not calendar.is_business_day(date(2026, 3, 4))
    assert calendar.add_business_days(date(2026, 3, 3), 1) == date(2026, 3, 5)
    assert calendar.business_days_between(date(2026, 3, 2), date(2026, 3, 9)) == 4


def test_business_hours_across_spring_forward() -> None:
    # Fri 6 Mar 16:00 EST + 4 working hours = 1h on Friday + 3h on Mon 9 Mar, now EDT.
    friday = datetime(2026, 3, 6, 16, 0, tzinfo=NY)
    result = NEW_YORK.add_business_hours(friday, 4)
    assert result.astimezone(NY) == datetime(2026, 3, 9, 12, 0, tzinfo=NY)
    assert result.astimezone(NY).utcoffset() != friday.utcoffset()
    assert NEW_YORK.business_hours_between(friday, result) == 4


@pytest.mark.parametrize(
    ("monday", "label"),
    [
        (date(2026, 3, 2), "EST"),
        (date(2026, 3, 9), "spring"),
        (date(2026, 10, 26), "EDT"),
        (date(2026, 11, 2), "fall"),
    ],
)
def test_a_working_week_has_forty_hours_whatever_the_dst_changes(monday: date, label: str) -> None:
    start = datetime.combine(monday, time(0), tzinfo=NY)
    end = datetime.combine(date.fromordinal(monday.toordinal() + 7), time(0), tzinfo=NY)
    assert NEW_YORK.business_hours_between(start, end) == 40, label


def test_opening_is_local_nine_before_and_after_dst() -> None:
    assert NEW_YORK.opening(date(2026, 3, 6)) == datetime(2026, 3, 6, 14, 0, tzinfo=UTC)
    assert NEW_YORK.opening(date(2026, 3, 9)) == datetime(2026, 3, 9, 13, 0, tzinfo=UTC)


def test_local_date_uses_the_tenant_zone() -> None:
    late_evening_ny = datetime(2026, 3, 10, 2, 30, tzinfo=UTC)  # 22:30 on the 9th in New York
    assert NEW_YORK.local_date(late_evening_ny) == date(2026, 3, 9)


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (date(2026, 1, 31), 1, date(2026, 2, 28)),
        (date(2025, 12, 4), 3, date(2026, 3, 4)),
        (date(2024, 1, 31), 1, date(2024, 2, 29)),
    ],
)
def test_calendar_months_clamp_to_month_end(start: date, months: int, expected: date) -> None:
    assert NEW_YORK.add_months(start, months) == expected


def test_invalid_calendars_are_refused() -> None:
    with pytest.raises(ValueError, match="workdays"):
        BusinessCalendar(workdays=frozenset())
    with pytest.raises(ValueError, match="opens"):
        BusinessCalendar(opens=time(17), closes=time(9))
