"""A tenant's business calendar: working days, working hours, public holidays and closures.

Pure and clock-free: every function takes the instant it reasons about. Local dates are
computed in the tenant's IANA zone, so a follow-up due "3 business days later" lands on the
right day across DST changes. One pitfall this module exists to avoid: two aware datetimes
sharing a ``ZoneInfo`` subtract as *wall-clock* times in Python, which is wrong across a DST
change; durations are therefore always computed in UTC.

Business-day counting is O(log holidays): whole weeks are counted arithmetically and closures
(public holidays from the ``holidays`` package plus the tenant's own closure dates) are
subtracted with a binary search, so the planner can afford it for every case.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

import holidays
from dateutil.relativedelta import relativedelta

__all__ = ["BusinessCalendar"]

_ISO_WEEK = range(7)  # Monday=0 .. Sunday=6, as date.weekday()
_CACHE_LIMIT = 100_000  # (day, n) pairs; a planning run touches a few thousand at most


@dataclass(frozen=True)
class BusinessCalendar:
    """Working days and hours of one tenant.

    ``workdays`` uses ``date.weekday()`` numbering (Monday=0). ``country``/``subdivision``
    select public holidays from the ``holidays`` package (None: no public holidays);
    ``closures`` are extra dates the team does not work (company days off).
    """

    timezone: str = "UTC"
    workdays: frozenset[int] = frozenset({0, 1, 2, 3, 4})
    opens: time = time(9, 0)
    closes: time = time(17, 0)
    country: str | None = None
    subdivision: str | None = None
    closures: frozenset[date] = frozenset()
    _closed_by_year: dict[int, list[int]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _business_day_cache: dict[int, bool] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _added_cache: dict[tuple[int, int], date] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _months_cache: dict[tuple[int, int], date] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _opening_cache: dict[int, datetime] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if not self.workdays or not set(self.workdays) <= set(_ISO_WEEK):
            raise ValueError("workdays must be a non-empty subset of 0 (Monday) .. 6 (Sunday)")
        if self.opens >= self.closes:
            raise ValueError("opens must be before closes")

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @cached_property
    def _workdays_before(self) -> tuple[int, ...]:
        """``[r]`` = workdays among weekdays 0..r-1: the partial-week term of the count."""
        return tuple(sum(1 for w in range(r) if w in self.workdays) for r in range(8))

    # -- days ---------------------------------------------------------------------------

    def local_date(self, instant: datetime) -> date:
        return instant.astimezone(self.zone).date()

    def is_business_day(self, day: date) -> bool:
        ordinal = day.toordinal()
        cached = self._business_day_cache.get(ordinal)
        if cached is None:
            closed = self._closed_ordinals(day.year)
            index = bisect.bisect_left(closed, ordinal)
            is_closed = index < len(closed) and closed[index] == ordinal
            cached = day.weekday() in self.workdays and not is_closed
            self._business_day_cache[ordinal] = cached
        return cached

    def next_business_day(self, day: date) -> date:
        """``day`` itself if it is a business day, else the first one after it."""
        while not self.is_business_day(day):
            day += timedelta(days=1)
        return day

    def add_business_days(self, day: date, n: int) -> date:
        """The ``n``-th business day after ``day`` (``n`` >= 0; 0 rolls forward to one)."""
        if n < 0:
            raise ValueError("n must be >= 0")
        key = (day.toordinal(), n)
        cached = self._added_cache.get(key)
        if cached is None:
            cached = day if n else self.next_business_day(day)
            while n:
                cached += timedelta(days=1)
                if self.is_business_day(cached):
                    n -= 1
            if len(self._added_cache) < _CACHE_LIMIT:
                self._added_cache[key] = cached
        return cached

    def business_days_between(self, start: date, end: date) -> int:
        """Business days ``d`` with ``start < d <= end``: Monday to next Monday is 5."""
        if end <= start:
            return 0
        workdays = self._weekday_count(end.toordinal()) - self._weekday_count(start.toordinal())
        return workdays - self._closed_count(start, end)

    def add_calendar_days(self, day: date, n: int) -> date:
        return day + timedelta(days=n)

    def add_months(self, day: date, n: int) -> date:
        """Calendar months, clamped to month ends (Jan 31 + 1 month = Feb 28/29)."""
        key = (day.toordinal(), n)
        cached = self._months_cache.get(key)
        if cached is None:
            cached = day + relativedelta(months=n)
            if len(self._months_cache) < _CACHE_LIMIT:
                self._months_cache[key] = cached
        return cached

    # -- hours --------------------------------------------------------------------------

    def opening(self, day: date) -> datetime:
        """When the team starts working on ``day``, as an aware UTC instant."""
        ordinal = day.toordinal()
        cached = self._opening_cache.get(ordinal)
        if cached is None:
            cached = self._at(day, self.opens)
            if len(self._opening_cache) < _CACHE_LIMIT:
                self._opening_cache[ordinal] = cached
        return cached

    def closing(self, day: date) -> datetime:
        """When the team stops working on ``day``, as an aware UTC instant."""
        return self._at(day, self.closes)

    def business_hours_between(self, start: datetime, end: datetime) -> float:
        """Working hours in ``[start, end)``, counted per local day in UTC (DST-safe)."""
        if end <= start:
            return 0.0
        seconds = 0.0
        for day in self._days(self.local_date(start), self.local_date(end)):
            if not self.is_business_day(day):
                continue
            window_start = max(self._at(day, self.opens), start.astimezone(UTC))
            window_end = min(self._at(day, self.closes), end.astimezone(UTC))
            if window_end > window_start:
                seconds += (window_end - window_start).total_seconds()
        return seconds / 3600

    def add_business_hours(self, start: datetime, hours: float) -> datetime:
        """The instant when ``hours`` working hours have passed since ``start``."""
        if hours < 0:
            raise ValueError("hours must be >= 0")
        remaining = timedelta(hours=hours)
        cursor = start.astimezone(UTC)
        day = self.local_date(start)
        while True:
            if self.is_business_day(day):
                window_start = max(self._at(day, self.opens), cursor)
                window_end = self._at(day, self.closes)
                if window_end > window_start:
                    if window_end - window_start >= remaining:
                        return window_start + remaining
                    remaining -= window_end - window_start
            day += timedelta(days=1)
            cursor = max(cursor, self._at(day, time(0)))

    # -- internals ----------------------------------------------------------------------

    def _at(self, day: date, moment: time) -> datetime:
        # Through UTC so a wall time inside a DST gap or overlap resolves to one real instant.
        return datetime.combine(day, moment, tzinfo=self.zone).astimezone(UTC)

    @staticmethod
    def _days(first: date, last: date) -> Iterable[date]:
        for offset in range((last - first).days + 1):
            yield first + timedelta(days=offset)

    def _weekday_count(self, ordinal: int) -> int:
        """Workdays (ignoring closures) among ordinals 1..ordinal; ordinal 1 is a Monday."""
        weeks, rest = divmod(ordinal, 7)
        return weeks * len(self.workdays) + self._workdays_before[rest]

    def _closed_ordinals(self, year: int) -> list[int]:
        """Sorted ordinals of the year's closures that fall on workdays."""
        closed = self._closed_by_year.get(year)
        if closed is None:
            days = {d for d in self.closures if d.year == year}
            if self.country:
                days |= set(holidays.country_holidays(self.country, self.subdivision, years=year))
            closed = sorted(d.toordinal() for d in days if d.weekday() in self.workdays)
            self._closed_by_year[year] = closed
        return closed

    def _closed_count(self, start: date, end: date) -> int:
        """Closures on workdays with ``start < d <= end``."""
        low, high = start.toordinal(), end.toordinal()
        count = 0
        for year in range(start.year, end.year + 1):
            closed = self._closed_ordinals(year)
            count += bisect.bisect_right(closed, high) - bisect.bisect_right(closed, low)
        return count
