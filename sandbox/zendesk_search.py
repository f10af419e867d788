"""Zendesk search syntax, the part the worker needs, as a pure ticket predicate."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sandbox.clock import parse_iso
from sandbox.zendesk import STATUSES, error

__all__ = ["ticket_matcher"]

Predicate = Callable[[dict[str, Any]], bool]


def ticket_matcher(query: str) -> Predicate:
    """Zendesk search syntax, the part the worker needs: ``status:pending``, ``status<solved``,
    ``tags:x``, ``-tags:x``, ``updated>ISO``, ``created<ISO``, ``assignee:ID|none``,
    ``group:ID``, ``organization:ID``, ``requester:ID``, ``custom_field_<id>:value`` and free
    words (subject/description). Same key twice: either value; different keys: all."""
    alternatives: dict[str, list[Predicate]] = {}
    for term in query.split():
        negate = term.startswith("-")
        body = term[1:] if negate else term
        test, key = _term(body)
        if negate:
            alternatives.setdefault(f"-{key}", []).append(_negated(test))
        else:
            alternatives.setdefault(key, []).append(test)
    groups = list(alternatives.items())

    def matches(ticket: dict[str, Any]) -> bool:
        for key, tests in groups:
            combine = all if key.startswith("-") else any
            if not combine(test(ticket) for test in tests):
                return False
        return True

    return matches


def _negated(test: Predicate) -> Predicate:
    return lambda ticket: not test(ticket)


_OPERATOR = re.compile(r"^([A-Za-z_0-9]+)([:<>])(.+)$")


def _term(term: str) -> tuple[Predicate, str]:
    keyed = _OPERATOR.match(term)  # the first operator splits: "updated>2026-03-10T12:00"
    if keyed:
        key, operator, value = keyed.groups()
        return _keyed_term(key.lower(), operator, value), key.lower()
    word = term.lower()
    return (lambda t: word in t["subject"].lower() or word in t["description"].lower()), "text"


def _keyed_term(key: str, operator: str, value: str) -> Predicate:
    if key == "type":
        raise error(400, "InvalidSearchQuery", "Use filter[type], not type: in the query")
    if key == "status":
        if value not in STATUSES:
            raise error(400, "InvalidSearchQuery", f"Unknown status {value!r}")
        rank = STATUSES.index(value)
        if operator == "<":
            return lambda t: STATUSES.index(t["status"]) < rank
        if operator == ">":
            return lambda t: STATUSES.index(t["status"]) > rank
        return lambda t: t["status"] == value
    if key in ("tags", "tag"):
        return lambda t: value in t["tags"]
    if key in ("updated", "created"):
        instant = _search_instant(value)
        field = f"{key}_at"
        if operator == ">":
            return lambda t: parse_iso(t[field]) > instant
        if operator == "<":
            return lambda t: parse_iso(t[field]) < instant
        return lambda t: parse_iso(t[field]).date() == instant.date()
    attribute = {"assignee": "assignee_id", "group": "group_id", "organization": "organization_id",
                 "requester": "requester_id", "priority": "priority"}.get(key)  # fmt: skip
    if attribute is not None:
        expected: Any = None if value == "none" else value
        return lambda t: (str(t[attribute]) if t[attribute] is not None else None) == expected
    if key.startswith("custom_field_"):
        field_id = int(key.removeprefix("custom_field_")) if key[13:].isdigit() else -1
        return lambda t: any(
            f["id"] == field_id and str(f["value"]) == value for f in t["custom_fields"]
        )
    raise error(400, "InvalidSearchQuery", f"Unsupported search term {key}{operator}{value}")


def _search_instant(value: str) -> datetime:
    try:
        return parse_iso(value if "T" in value else f"{value}T00:00:00Z")
    except ValueError as exc:
        raise error(400, "InvalidSearchQuery", f"{value!r} is not a date") from exc
