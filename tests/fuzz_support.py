"""Hypothesis strategies that break valid inputs, and the checks the fuzz suites share.

A *mutation* takes a valid document (vendor JSON, or the data of a YAML file) and damages it
at one path: deletes the key, adds an unknown one, or swaps the value for another type, a huge
string, odd unicode, an unknown enum value, a malformed timestamp, a bad count or duration, or
a nested null. Starting from valid documents
keeps every example close to what a vendor (or a person editing a file) really sends.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from policies.model import Account, Activity, Case, FollowUpMark, Priority, Requester, Status

__all__ = [
    "FUZZ",
    "assert_account_well_typed",
    "assert_well_typed",
    "fuzz_settings",
    "mutated",
    "near_misses",
    "paths",
    "weird_values",
]


def fuzz_settings(examples: int = 150) -> settings:
    """Bounded so the whole fuzz suite stays well under 30 s on a shared machine;
    ``HYPOTHESIS_EXAMPLES`` raises every fuzzer's count for a deeper run."""
    return settings(
        max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", examples)),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


FUZZ = fuzz_settings()

HUGE = "x" * 100_000
ODD_UNICODE = [
    "\u202eevil\u202c",  # right-to-left override
    "nul\x00byte",
    "\\ud800",  # a lone surrogate, escaped as JSON would carry it
    "\U0001f4a9\U0001f525",
    "e\u0301\u0301\u0301",  # combining accents
    "\ufeffbom",
    "",
    " ",
]
UNKNOWN_ENUMS = ["archived", "p0", "legacy_gold", "SOLVED", "Pending", "deleted", "snoozed"]
BAD_TIMESTAMPS = [
    "2026-13-45T99:99:99Z",
    "yesterday",
    "2026-03-10T10:00:00",  # no offset
    "2026-03-10",
    "0000-00-00T00:00:00Z",
    "1e10",
]

BAD_COUNTS = [-1, 0, 1.5, 10**12, "3 days", "3d", "P3D", "${undefined_setting}"]

weird_values: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([HUGE, *ODD_UNICODE, *UNKNOWN_ENUMS, *BAD_TIMESTAMPS]),
    st.text(max_size=20),
    st.just([]),
    st.just({}),
    st.just([None]),
    st.just({"nested": None}),
    st.lists(st.integers(), max_size=3),
)


def paths(document: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every key path and list index in ``document`` (the empty path excluded)."""
    if isinstance(document, dict):
        items: Any = document.items()
    elif isinstance(document, list):
        items = enumerate(document)
    else:
        return
    for key, value in items:
        yield (*prefix, key)
        yield from paths(value, (*prefix, key))


def _damage(document: Any, path: tuple[Any, ...], value: Any, delete: bool) -> None:
    parent = _at(document, path[:-1])
    last = path[-1]
    if isinstance(parent, list) and not isinstance(last, int):
        return  # an unknown key beside a list item: there are no keys there
    if delete and isinstance(parent, dict):
        del parent[last]
    else:
        parent[last] = value


def _looks_like_timestamp(value: Any) -> bool:
    return isinstance(value, str) and len(value) >= 10 and value[4:5] == "-" and value[:4].isdigit()


def near_misses(old: Any) -> st.SearchStrategy[Any]:
    """The damage most likely to slip through for ``old``'s kind of value: a malformed
    timestamp for a timestamp, an unknown word for a word, another type for anything."""
    if _looks_like_timestamp(old) or (isinstance(old, int) and old > 10**9):
        return st.sampled_from(BAD_TIMESTAMPS) | st.floats()
    if isinstance(old, str) and old.isidentifier():
        return st.sampled_from(UNKNOWN_ENUMS)
    if isinstance(old, int) and not isinstance(old, bool):
        return st.sampled_from(BAD_COUNTS)
    return weird_values


@st.composite
def mutated(draw: st.DrawFn, valid: Any, max_mutations: int = 3) -> Any:
    """A deep copy of ``valid`` with one to ``max_mutations`` paths deleted or replaced."""
    document = copy.deepcopy(valid)
    for _ in range(draw(st.integers(1, max_mutations))):
        candidates = sorted(paths(document), key=repr)
        if not candidates:
            break
        path = draw(st.sampled_from(candidates))
        damage = draw(st.sampled_from(["delete", "near miss", "near miss", "anything", "add"]))
        kind = near_misses(_at(document, path)) if damage == "near miss" else weird_values
        value = copy.deepcopy(draw(kind))  # st.just hands out one shared object
        if damage == "add":  # an unknown key beside the one drawn, where there are keys
            path = (*path[:-1], "colour")
        _damage(document, path, value, delete=damage == "delete")
    return document


def _at(document: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        document = document[part]
    return document


def _aware(at: Any) -> bool:
    return isinstance(at, datetime) and at.utcoffset() is not None


def _optional_str(value: Any) -> bool:
    return value is None or isinstance(value, str)


def assert_well_typed(case: Case) -> None:
    """What the planner may rely on: every field of the declared type, instants aware."""
    assert isinstance(case.id, str)
    assert case.id
    assert isinstance(case.status, Status)
    assert _aware(case.created_at)
    assert _aware(case.updated_at)
    assert isinstance(case.subject, str)
    assert case.priority is None or isinstance(case.priority, Priority)
    if case.requester is not None:
        requester = case.requester
        assert isinstance(requester, Requester)
        assert isinstance(requester.id, str)
        assert isinstance(requester.name, str)
        assert _optional_str(requester.email)
        assert _optional_str(requester.phone)
    for value in (case.account_id, case.assignee, case.group, case.brand, case.updated_stamp):
        assert _optional_str(value), value
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in case.fields.items())
    assert isinstance(case.tags, frozenset)
    assert all(isinstance(t, str) for t in case.tags)
    assert all(isinstance(a, Activity) and _aware(a.at) for a in case.history)
    assert all(isinstance(m, FollowUpMark) and _aware(m.at) for m in case.followups)


def assert_account_well_typed(account: Account) -> None:
    assert isinstance(account.id, str)
    assert account.id
    assert isinstance(account.name, str)
    assert _optional_str(account.raw_plan)
    for flag in dataclasses.astuple(account)[3:6]:
        assert isinstance(flag, bool)
