"""Rate-limit windows, fault injection, the request log and the clock, as a client sees them."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from sandbox.errors import ConnectionDropped
from sandbox.faults import FaultPlan, FaultRule, parse_fault
from sandbox.limits import RateLimiter, VendorLimit
from sandbox.patterns import endpoint_matches
from sandbox.state import Sandbox
from tests.unit.sandbox_support import (
    ASANA_AUTH,
    INTERCOM_AUTH,
    START,
    ZENDESK_AUTH,
    client_for,
    small_sandbox,
)

TICKET = "/zendesk/api/v2/tickets/3"


@pytest.fixture
def sandbox() -> Sandbox:
    return small_sandbox()


@pytest.fixture
async def client(sandbox: Sandbox) -> AsyncIterator[Any]:
    async with client_for(sandbox) as client:
        yield client


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_window_refills_after_a_minute() -> None:
    clock = FakeMonotonic()
    limiter = RateLimiter({"zendesk": VendorLimit(2)}, monotonic=clock)
    assert [limiter.take("zendesk", "GET /x").allowed for _ in range(3)] == [True, True, False]
    clock.now += 59.0
    refused = limiter.take("zendesk", "GET /x")
    assert not refused.allowed
    assert refused.retry_after == 1
    clock.now += 1.0
    assert limiter.take("zendesk", "GET /x").allowed


def test_endpoint_budget_is_spent_alongside_the_vendor_budget() -> None:
    limiter = RateLimiter(
        {"zendesk": VendorLimit(10, {"PUT /api/v2/tickets/*": 1})}, monotonic=FakeMonotonic()
    )
    assert limiter.take("zendesk", "PUT /api/v2/tickets/{ticket_id:int}").allowed
    assert not limiter.take("zendesk", "PUT /api/v2/tickets/{ticket_id:int}").allowed
    reads = limiter.take("zendesk", "GET /api/v2/tickets/{ticket_id:int}")
    assert reads.allowed
    assert (reads.limit, reads.remaining) == (10, 8)


def test_z2_one_tickets_updates_have_their_own_ten_minute_window() -> None:
    """vendor-behaviours.md Z2: about 30 updates per ticket per 10 minutes, whatever the
    account's and the endpoint's budgets still allow."""
    clock = FakeMonotonic()
    limiter = RateLimiter(monotonic=clock)  # Zendesk's documented limits (DEFAULT_LIMITS)
    update = "PUT /api/v2/tickets/{ticket_id:int}"
    for _ in range(3):  # 10 a minute: inside Update Ticket's 100/min
        assert all(limiter.take("zendesk", update, "/t/5").allowed for _ in range(10))
        clock.now += 60.0
    refused = limiter.take("zendesk", update, "/t/5")
    assert not refused.allowed
    assert refused.retry_after == 420  # the ticket's window opened 3 minutes ago
    assert limiter.take("zendesk", update, "/t/6").allowed
    clock.now += 420.0
    assert limiter.take("zendesk", update, "/t/5").allowed


async def test_z2_endpoint_limits_are_enforced_but_only_the_account_limit_is_advertised(
    client: Any,
) -> None:
    """vendor-behaviours.md Z2: X-Rate-Limit carries the account-wide limit (700 here), not
    the export's 10/min; the 11th export of the minute gets 429 with Retry-After while the
    account budget is far from spent, and other endpoints still answer."""
    export = "/zendesk/api/v2/incremental/ticket_events?start_time=0"
    answers = [await client.get(export, headers=ZENDESK_AUTH) for _ in range(11)]
    assert [a.status_code for a in answers] == [200] * 10 + [429]
    assert {a.headers["X-Rate-Limit"] for a in answers} == {"700"}
    assert answers[9].headers["X-Rate-Limit-Remaining"] == "690"
    assert int(answers[10].headers["Retry-After"]) > 0
    assert int(answers[10].headers["X-Rate-Limit-Remaining"]) == 690
    assert (await client.get(TICKET, headers=ZENDESK_AUTH)).status_code == 200


async def test_zendesk_limit_headers_and_429(client: Any) -> None:
    await client.put("/_admin/limits", json={"zendesk": {"per_minute": 2}})
    first = await client.get(TICKET, headers=ZENDESK_AUTH)
    second = await client.get(TICKET, headers=ZENDESK_AUTH)
    third = await client.get(TICKET, headers=ZENDESK_AUTH)
    assert (first.headers["X-Rate-Limit"], first.headers["X-Rate-Limit-Remaining"]) == ("2", "1")
    assert second.headers["X-Rate-Limit-Remaining"] == "0"
    assert third.status_code == 429
    assert int(third.headers["Retry-After"]) >= 1
    assert third.json()["error"] == "APIRateLimitExceeded"


async def test_intercom_headers_and_asana_retry_after(client: Any) -> None:
    await client.put(
        "/_admin/limits", json={"intercom": {"per_minute": 5}, "asana": {"per_minute": 1}}
    )
    response = await client.get("/intercom/admins", headers=INTERCOM_AUTH)
    assert response.headers["X-RateLimit-Limit"] == "5"
    assert response.headers["X-RateLimit-Remaining"] == "4"
    assert int(response.headers["X-RateLimit-Reset"]) > START.timestamp()
    await client.get("/asana/api/1.0/users", headers=ASANA_AUTH)
    refused = await client.get("/asana/api/1.0/users", headers=ASANA_AUTH)
    assert refused.status_code == 429
    assert "Retry-After" in refused.headers
    assert refused.json()["errors"][0]["message"]


def always(kind: str, endpoint: str = "*", vendor: str = "zendesk") -> dict[str, Any]:
    return FaultPlan([FaultRule(vendor, kind, 1.0, endpoint)]).to_dict()


@pytest.mark.parametrize("status", ["429", "500", "502", "503"])
async def test_status_faults_answer_the_vendor_error_and_apply_nothing(
    client: Any, sandbox: Sandbox, status: str
) -> None:
    await client.put("/_admin/faults", json=always(status))
    change = {"ticket": {"tags": ["should_not_stick"]}}
    response = await client.put(TICKET, json=change, headers=ZENDESK_AUTH)
    assert response.status_code == int(status)
    assert "error" in response.json()
    assert "should_not_stick" not in sandbox.zendesk.record(3).ticket["tags"]


async def test_malformed_json_is_applied_but_unreadable(client: Any, sandbox: Sandbox) -> None:
    await client.put("/_admin/faults", json=always("malformed_json"))
    change = {"ticket": {"tags": ["applied_anyway"]}}
    response = await client.put(TICKET, json=change, headers=ZENDESK_AUTH)
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        response.json()
    assert "applied_anyway" in sandbox.zendesk.record(3).ticket["tags"]


@pytest.mark.parametrize(("kind", "applied"), [("drop_before", False), ("drop_after", True)])
async def test_dropped_connections_apply_or_not(
    client: Any, sandbox: Sandbox, kind: str, applied: bool
) -> None:
    await client.put("/_admin/faults", json=always(kind, "PUT *"))
    change = {"ticket": {"tags": ["maybe"]}}
    with pytest.raises(ConnectionDropped):
        await client.put(TICKET, json=change, headers=ZENDESK_AUTH)
    assert ("maybe" in sandbox.zendesk.record(3).ticket["tags"]) is applied
    stats = (await client.get("/_admin/stats")).json()
    assert stats["vendors"]["zendesk"]["writes_applied"] == int(applied)


async def test_faults_target_one_endpoint_and_stop_after_times(client: Any) -> None:
    plan = {"rules": [{"vendor": "zendesk", "kind": "503", "probability": 1.0,
                       "endpoint": "GET /api/v2/tickets/{ticket_id:int}", "times": 1}]}  # fmt: skip
    await client.put("/_admin/faults", json=plan)
    assert (await client.get("/zendesk/api/v2/groups", headers=ZENDESK_AUTH)).status_code == 200
    assert (await client.get(TICKET, headers=ZENDESK_AUTH)).status_code == 503
    assert (await client.get(TICKET, headers=ZENDESK_AUTH)).status_code == 200


def test_same_fault_seed_replays_the_same_failures() -> None:
    def run(seed: int) -> list[str | None]:
        plan = FaultPlan([parse_fault("zendesk:500=0.3")], seed=seed)
        return [plan.draw("zendesk", "GET /api/v2/tickets/{ticket_id:int}") for _ in range(50)]

    assert run(4) == run(4)
    assert run(4) != run(5)
    assert set(run(4)) == {None, "500"}


def test_fault_flag_syntax() -> None:
    rule = parse_fault("zendesk:drop_after=0.25@PUT /api/v2/tickets/*")
    assert (rule.vendor, rule.kind, rule.probability, rule.endpoint) == (
        "zendesk", "drop_after", 0.25, "PUT /api/v2/tickets/*"
    )  # fmt: skip
    with pytest.raises(ValueError, match="unknown fault kind"):
        parse_fault("zendesk:explode=1")


async def test_stats_count_reads_and_writes_per_vendor(client: Any) -> None:
    await client.get(TICKET, headers=ZENDESK_AUTH)
    await client.put(TICKET, json={"ticket": {"priority": "high"}}, headers=ZENDESK_AUTH)
    await client.get("/intercom/admins", headers=INTERCOM_AUTH)
    stats = (await client.get("/_admin/stats")).json()
    zendesk = stats["vendors"]["zendesk"]
    assert (zendesk["reads"], zendesk["writes"], zendesk["writes_applied"]) == (1, 1, 1)
    assert stats["vendors"]["intercom"]["writes"] == 0
    log = (await client.get("/_admin/requests", params={"vendor": "zendesk"})).json()["requests"]
    assert [(r["method"], r["endpoint"], r["status"]) for r in log] == [
        ("GET", "GET /api/v2/tickets/{ticket_id:int}", 200),
        ("PUT", "PUT /api/v2/tickets/{ticket_id:int}", 200),
    ]
    await client.post("/_admin/reset-stats")
    assert (await client.get("/_admin/stats")).json()["total"]["requests"] == 0


async def test_clock_set_and_advance_move_what_writes_stamp(client: Any) -> None:
    assert (await client.get("/_admin/clock")).json()["now"] == "2026-03-11T15:00:00Z"
    response = await client.post("/_admin/clock", json={"advance_days": 2})
    assert response.json()["now"] == "2026-03-13T15:00:00Z"
    await client.put(TICKET, json={"ticket": {"priority": "low"}}, headers=ZENDESK_AUTH)
    ticket = (await client.get(TICKET, headers=ZENDESK_AUTH)).json()["ticket"]
    assert ticket["updated_at"] == "2026-03-13T15:00:00Z"
    response = await client.post("/_admin/clock", json={"set": "2026-04-01T09:30:00Z"})
    assert response.json()["now"] == "2026-04-01T09:30:00Z"


async def test_admin_rejects_nonsense(client: Any) -> None:
    assert (await client.put("/_admin/faults", json={"rules": [{"vendor": "zendesk",
            "kind": "boom", "probability": 1}]})).status_code == 400  # fmt: skip
    assert (
        await client.put("/_admin/limits", json={"zendesk": {"per_minute": -1}})
    ).status_code == 400
    activity = {"vendor": "zendesk", "id": "3", "kind": "telepathy"}
    assert (await client.post("/_admin/activity", json=activity)).status_code == 400


async def test_admin_token_guards_the_admin_api_only() -> None:
    guarded = small_sandbox(admin_token="let-me-in")
    async with client_for(guarded) as client:
        assert (await client.get("/_admin/stats")).status_code == 401
        allowed = await client.get("/_admin/stats", headers={"Authorization": "Bearer let-me-in"})
        assert allowed.status_code == 200
        assert (await client.get(TICKET, headers=ZENDESK_AUTH)).status_code == 200


async def test_default_limits_include_zendesk_endpoint_limits(client: Any) -> None:
    export = "/zendesk/api/v2/incremental/tickets/cursor?start_time=0&per_page=1"
    answers = [(await client.get(export, headers=ZENDESK_AUTH)).status_code for _ in range(11)]
    assert answers == [200] * 10 + [429]
    assert (await client.get(TICKET, headers=ZENDESK_AUTH)).status_code == 200


@pytest.mark.parametrize(
    ("pattern", "matches"),
    [
        ("PUT /api/v2/tickets/{ticket_id:int}", True),
        ("PUT /api/v2/tickets/{ticket_id}", True),
        ("PUT *", True),
        ("*", True),
        ("GET *", False),
        ("PUT /api/v2/tickets/update_many", False),
    ],
)
def test_endpoint_patterns_may_leave_the_converter_out(pattern: str, matches: bool) -> None:
    assert endpoint_matches(pattern, "PUT /api/v2/tickets/{ticket_id:int}") is matches


@pytest.mark.parametrize(
    ("method", "path", "shape"),
    [
        ("DELETE", "/zendesk/api/v2/tickets/3", "error"),
        ("PATCH", "/intercom/contacts/600000000000000000000001", "type"),
        ("DELETE", "/asana/api/1.0/tasks/1206000000000001", "errors"),
    ],
)
async def test_wrong_method_gets_the_vendor_error_shape(
    client: Any, method: str, path: str, shape: str
) -> None:
    response = await client.request(method, path, headers=ZENDESK_AUTH)
    assert response.status_code == 405
    assert shape in response.json()
