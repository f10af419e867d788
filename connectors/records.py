"""Vendor records that do not translate: one mechanism for every connector.

The JSON translation code reads a record as it comes (``ticket["status"]``,
``Status(...)``), through the typed readers below where a wrong type would otherwise slip
through unnoticed, and runs inside :func:`translating`. That turns whatever a malformed record
makes it raise (a missing key, a wrong type, an unknown enum value, a bad timestamp) into one
:class:`~connectors.errors.BadRecord` naming the record and the reason. A stream hands each
BadRecord to its ``report`` callable (default: :func:`log_bad_record`) and goes on with the
next record, so one bad ticket never costs the others their follow-ups.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import structlog

from connectors.errors import BadRecord
from connectors.mapping import AccountFlags, PlanNames
from policies.model import Account, Case

__all__ = [
    "Report",
    "case_or_bad",
    "flagged_account",
    "instant",
    "log_bad_record",
    "optional_text",
    "reported",
    "text",
    "translating",
    "unix_instant",
]

log = structlog.get_logger(__name__)

Report = Callable[[BadRecord], None]

# What reading a malformed record raises; anything else (a bug elsewhere) stays an error.
_MALFORMED = (LookupError, TypeError, ValueError, AttributeError, ArithmeticError)
_SHOWN = 120  # characters of a vendor value a reason quotes: a 100k subject stays out of logs


def _clip(value: str) -> str:
    return value if len(value) <= _SHOWN else value[:_SHOWN] + "..."


def _record_id(record: object, key: str = "id") -> str:
    """The record's id for a report, as far as it can be read ("?" when it cannot)."""
    value = record.get(key) if isinstance(record, Mapping) else None
    return "?" if value is None else _clip(str(value))


def _reason(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return _clip(f"missing field {exc.args[0]!r}")
    return _clip(f"{type(exc).__name__}: {exc}")


@contextmanager
def translating(vendor: str, record: object, key: str = "id", prefix: str = "") -> Iterator[None]:
    """Raise :class:`BadRecord` for ``record`` if the code inside cannot read it; its id is
    reported after ``prefix`` (an Intercom ticket as ``ticket:<id>``, as its case is named)."""
    try:
        yield
    except _MALFORMED as exc:
        raise BadRecord(vendor, prefix + _record_id(record, key), _reason(exc)) from exc


def log_bad_record(bad: BadRecord) -> None:
    log.warning("vendor_record_skipped", vendor=bad.vendor, record=bad.record_id, reason=bad.reason)


def text(record: Mapping[str, Any], key: str) -> str:
    """A required id or string: vendors send ids as numbers or strings, nothing else."""
    value = record[key]
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        raise TypeError(f"{key}: expected a string or number, got {_clip(repr(value))}")
    return str(value)


def optional_text(record: Mapping[str, Any], key: str) -> str | None:
    """Like :func:`text`, None when absent, null or empty."""
    if record.get(key) in (None, ""):
        return None
    return text(record, key)


def instant(record: Mapping[str, Any], key: str) -> datetime:
    """An ISO 8601 timestamp with its UTC offset (a naive one would be read in no zone)."""
    value = record[key]
    if not isinstance(value, str):
        raise TypeError(f"{key}: expected an ISO timestamp, got {_clip(repr(value))}")
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{key}: not an ISO timestamp: {_clip(repr(value))}") from None
    if at.utcoffset() is None:
        raise ValueError(f"{key}: timestamp without a UTC offset: {_clip(repr(value))}")
    return at


def unix_instant(record: Mapping[str, Any], key: str) -> datetime:
    """A Unix timestamp in seconds (Intercom's)."""
    value = record[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{key}: expected a Unix timestamp, got {_clip(repr(value))}")
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):  # beyond what the platform's clock can hold
        raise ValueError(f"{key}: Unix timestamp out of range: {_clip(repr(value))}") from None


def flagged_account(
    vendor: str, record: Mapping[str, Any], values_key: str, flags: AccountFlags, plans: PlanNames
) -> Account:
    """A Zendesk organization or an Intercom contact as an account: its plan and its "do not
    follow up" flags are read from ``record[values_key]`` under the mapped keys."""
    with translating(vendor, record):
        values = record.get(values_key) or {}
        if not isinstance(values, Mapping):
            raise TypeError(f"{values_key}: expected an object, got {type(values).__name__}")
        raw_plan = optional_text(values, flags.plan)
        status = (optional_text(values, flags.account_status) or "").lower()
        return Account(
            id=text(record, "id"),
            name=optional_text(record, "name") or "",
            plan=plans.tier(raw_plan),
            raw_plan=raw_plan,
            canceled=status in {v.lower() for v in flags.canceled_values},
            stop_followups=bool(values.get(flags.stop_followups)),
        )


async def case_or_bad(read: Awaitable[Case | None]) -> Case | BadRecord | None:
    """Await one record's read-and-translate, keeping a :class:`BadRecord` as a result so a
    gather over a page is not cut short by one record."""
    try:
        return await read
    except BadRecord as bad:
        return bad


def reported(results: Iterable[Case | BadRecord | None], report: Report) -> list[Case]:
    """The cases of a page; each bad record goes to ``report``, None (not a candidate) away."""
    cases = []
    for result in results:
        if isinstance(result, BadRecord):
            report(result)
        elif result is not None:
            cases.append(result)
    return cases
