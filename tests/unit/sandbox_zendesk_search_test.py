"""Zendesk search terms as a table: query, ticket, does it match."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.errors import VendorError
from sandbox.zendesk_search import ticket_matcher

TICKET: dict[str, Any] = {
    "status": "pending",
    "tags": ["refund_request", "followup_worker"],
    "updated_at": "2026-03-10T12:00:00Z",
    "created_at": "2026-01-02T08:00:00Z",
    "assignee_id": 1001,
    "group_id": 502,
    "organization_id": None,
    "requester_id": 2000042,
    "priority": "high",
    "subject": "Refund for my order",
    "description": "Please refund order 123",
    "custom_fields": [{"id": 9001, "value": "refund_request"}, {"id": 9002, "value": None}],
}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status:pending", True),
        ("status:open", False),
        ("status:open status:pending", True),  # same key: either
        ("status<solved", True),
        ("status>pending", False),
        ("tags:followup_worker", True),
        ("-tags:followup_worker", False),
        ("-tags:stop_followups -tags:vip", True),
        ("status:pending tags:vip", False),  # different keys: all
        ("updated>2026-03-01", True),
        ("updated>2026-03-10T12:00:00Z", False),
        ("created<2026-01-03", True),
        ("assignee:1001 group:502", True),
        ("organization:none", True),
        ("requester:2000042 priority:high", True),
        ("custom_field_9001:refund_request", True),
        ("custom_field_9001:general_inquiry", False),
        ("refund", True),
        ("passport", False),
        ("", True),
    ],
)
def test_query_matches(query: str, expected: bool) -> None:
    assert ticket_matcher(query)(TICKET) is expected


@pytest.mark.parametrize("query", ["type:ticket", "status:waiting", "brand:7", "updated>yesterday"])
def test_unsupported_or_invalid_terms_are_refused(query: str) -> None:
    with pytest.raises(VendorError) as raised:
        ticket_matcher(query)
    assert raised.value.status == 400
