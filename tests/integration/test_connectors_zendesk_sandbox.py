"""The Zendesk connector over real HTTP against the sandbox: streaming pages, one update per
ticket, and no duplicate note through 429 storms, 5xx, timeouts, dropped answers and conflicts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.base import WriteOutcome
from connectors.mapping import load_mapping
from connectors.settings import Timeouts, VendorLimits
from connectors.zendesk import ZendeskConnector
from policies.model import Action, ActionType, Case, PlanItem, Status, idempotency_key

sandbox_server = pytest.importorskip("sandbox.server", reason="needs the sandbox package")

START = datetime(2026, 3, 11, 15, 0, tzinfo=UTC)
MAPPING = load_mapping(Path(__file__).parents[2] / "deploy" / "mapping.sandbox.yaml")
DEFAULT_TIMEOUTS = Timeouts()
FAST = VendorLimits(
    requests_per_minute=None, backoff_initial=0.01, backoff_max=0.05, read_attempts=6
)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Any]:
    with sandbox_server.run_in_thread(tickets=120, seed=11, start=START, frozen_clock=True) as sb:
        yield sb


@pytest.fixture
def admin(sandbox: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.urls["admin"]) as client:
        client.put("/limits", json={"zendesk": {"per_minute": None}})
        client.put("/faults", json={"rules": []})
        client.post("/reset-stats")
        yield client
        client.put("/faults", json={"rules": []})


def fault(
    admin: httpx.Client,
    kind: str,
    endpoint: str,
    probability: float = 1.0,
    times: int | None = None,
    slow_seconds: float = 30.0,
) -> None:
    rule = {
        "vendor": "zendesk",
        "kind": kind,
        "probability": probability,
        "endpoint": endpoint,
        "times": times,
    }
    admin.put(
        "/faults", json={"seed": 3, "slow_seconds": slow_seconds, "rules": [rule]}
    ).raise_for_status()


def endpoint_calls(admin: httpx.Client) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in admin.get("/stats").json()["endpoints"]:
        counts[row["endpoint"]] = counts.get(row["endpoint"], 0) + row["count"]
    return counts


@pytest.fixture
async def zendesk(sandbox: Any) -> AsyncIterator[ZendeskConnector]:
    async with connect(sandbox) as connector:
        yield connector


def connect(
    sandbox: Any,
    limits: VendorLimits = FAST,
    timeouts: Timeouts = DEFAULT_TIMEOUTS,
    page_size: int = 1000,
) -> ZendeskConnector:
    assert MAPPING.zendesk is not None
    return ZendeskConnector.connect(
        sandbox.urls["zendesk"],
        "worker@example.com",
        "zd-sandbox-token",
        MAPPING.zendesk,
        limits=limits,
        timeouts=timeouts,
        page_size=page_size,
        clock=lambda: START,
    )


async def candidate_ids(connector: ZendeskConnector) -> list[str]:
    return [case.id async for case in connector.cases()]


@pytest.mark.parametrize("page_size", [1, 100, 1000])
async def test_candidates_stream_the_same_in_any_page_size_without_user_lookups(
    sandbox: Any, admin: httpx.Client, page_size: int
) -> None:
    async with connect(sandbox, page_size=page_size) as connector:
        found = await candidate_ids(connector)
    calls = endpoint_calls(admin)
    tickets = sandbox.config.tickets
    assert len(found) == len(set(found)) > 0
    # One export call per page of tickets (candidates or not), and no more.
    pages = calls["GET /api/v2/incremental/tickets/cursor"]
    assert len(found) / page_size <= pages <= tickets // page_size + 1
    assert calls["GET /api/v2/tickets/{ticket_id:int}/comments"] == len(found)
    assert "GET /api/v2/users/{user_id:int}" not in calls
    assert "GET /api/v2/users/show_many" not in calls


async def first_pending(connector: ZendeskConnector, skip: set[str] = frozenset()) -> Case:
    async for case in connector.cases():
        if case.status is Status.PENDING and case.id not in skip and not case.followups:
            return case
    raise AssertionError("the sandbox has no pending ticket")


USED: set[str] = set()


def plan_for(case: Case, *extra: Action) -> PlanItem:
    key = idempotency_key("general_inquiry", case.ref, 2, case.updated_at.isoformat())
    actions = (Action(ActionType.NOTE, {"body": "2/3"}), *extra)
    return PlanItem(case, "general_inquiry", "day3", 2, 3, actions, "2 days pending", key)


async def take_pending(connector: ZendeskConnector) -> Case:
    case = await first_pending(connector, USED)
    USED.add(case.id)
    return case


async def markers(connector: ZendeskConnector, case_id: str, key: str) -> int:
    fresh = await connector.fetch_case(case_id)
    return sum(mark.key == key for mark in fresh.followups)


async def test_one_update_carries_note_status_assignee_field_and_tags(
    zendesk: ZendeskConnector, admin: httpx.Client
) -> None:
    case = await take_pending(zendesk)
    item = plan_for(
        case,
        Action(ActionType.SET_STATUS, {"status": "solved"}),
        Action(ActionType.SET_ASSIGNEE, {"assignee": "Unresponsive Customers/Roxy V"}),
        Action(ActionType.SET_FIELD, {"field": "order_status", "value": "Unresponsive"}),
        Action(ActionType.ADD_TAGS, {"tags": ["fu_closed"]}),
    )
    admin.post("/reset-stats")
    result = await zendesk.apply(item)
    assert (result.outcome, result.calls) == (WriteOutcome.APPLIED, 1)
    fresh = await zendesk.fetch_case(case.id)
    assert (fresh.status, fresh.assignee, fresh.group) == (
        Status.SOLVED,
        "Roxy V",
        "Unresponsive Customers",
    )
    assert fresh.fields["order_status"] == "unresponsive"
    assert {"followup_worker", "fu_closed"} <= fresh.tags
    assert [m.key for m in fresh.followups] == [item.key]


async def test_reply_and_note_email_the_customer_once(
    zendesk: ZendeskConnector, admin: httpx.Client
) -> None:
    case = await take_pending(zendesk)
    item = plan_for(case, Action(ActionType.REPLY, {"template": "t", "body": "Any news?"}))
    admin.delete("/outbox")
    first = await zendesk.apply(item)
    again = await zendesk.apply(item)  # e.g. a retried run that did not see the first
    assert first.outcome is WriteOutcome.APPLIED
    assert again.outcome in (WriteOutcome.CONFLICT, WriteOutcome.ALREADY_APPLIED)
    outbox = admin.get("/outbox").json()["messages"]
    assert sum("Any news?" in str(m) for m in outbox) == 1
    assert await markers(zendesk, case.id, item.key) == 1
    fresh = await zendesk.fetch_case(case.id)
    assert f"fw-{item.key}" not in fresh.tags  # the note's footer took over from the tag


async def test_answer_dropped_after_apply_leaves_exactly_one_note(
    zendesk: ZendeskConnector, admin: httpx.Client
) -> None:
    case = await take_pending(zendesk)
    item = plan_for(case)
    fault(admin, "drop_after", "PUT /api/v2/tickets/*", times=1)
    result = await zendesk.apply(item)
    assert result.outcome is WriteOutcome.ALREADY_APPLIED
    assert await markers(zendesk, case.id, item.key) == 1


async def test_answer_dropped_before_apply_is_written_once_more(
    zendesk: ZendeskConnector, admin: httpx.Client
) -> None:
    case = await take_pending(zendesk)
    item = plan_for(case)
    fault(admin, "drop_before", "PUT /api/v2/tickets/*", times=1)
    result = await zendesk.apply(item)
    assert result.outcome is WriteOutcome.APPLIED
    assert await markers(zendesk, case.id, item.key) == 1


async def test_5xx_after_send_is_checked_not_blindly_retried(
    zendesk: ZendeskConnector, admin: httpx.Client
) -> None:
    case = await take_pending(zendesk)
    item = plan_for(case)
    fault(admin, "502", "PUT /api/v2/tickets/*", times=1)
    result = await zendesk.apply(item)
    assert result.outcome is WriteOutcome.APPLIED
    assert await markers(zendesk, case.id, item.key) == 1


async def test_slow_write_past_the_timeout_cannot_land_twice(
    sandbox: Any, admin: httpx.Client
) -> None:
    """The slow first PUT applies after we gave up on it; our second carries the same
    updated_stamp, so whichever lands second is refused (409) instead of duplicating."""
    async with connect(sandbox, timeouts=Timeouts(read=0.3)) as zendesk:
        case = await take_pending(zendesk)
        item = plan_for(case)
        fault(admin, "slow", "PUT /api/v2/tickets/*", times=1, slow_seconds=0.8)
        result = await zendesk.apply(item)
        await asyncio.sleep(1.0)  # let the slow request land
        assert result.outcome in (WriteOutcome.APPLIED, WriteOutcome.ALREADY_APPLIED)
        assert await markers(zendesk, case.id, item.key) == 1


async def test_an_agents_change_meanwhile_is_a_conflict_not_overwritten(
    zendesk: ZendeskConnector, admin: httpx.Client
) -> None:
    case = await take_pending(zendesk)
    admin.post("/clock", json={"advance_seconds": 60})
    admin.post(
        "/activity", json={"vendor": "zendesk", "id": case.id, "kind": "customer_reply"}
    ).raise_for_status()
    result = await zendesk.apply(
        plan_for(case, Action(ActionType.SET_STATUS, {"status": "solved"}))
    )
    assert result.outcome is WriteOutcome.CONFLICT
    fresh = await zendesk.fetch_case(case.id)
    assert fresh.status is Status.OPEN  # the customer's reply reopened it; we did not solve it
    assert not fresh.followups


@pytest.mark.parametrize(
    ("kind", "probability"), [("503", 0.3), ("drop_before", 0.2), ("malformed_json", 0.2)]
)
async def test_reads_ride_out_server_errors_and_resets(
    sandbox: Any, admin: httpx.Client, kind: str, probability: float
) -> None:
    async with connect(sandbox) as clean:
        expected = await candidate_ids(clean)
    fault(admin, kind, "GET /api/v2/tickets/*/comments", probability)
    async with connect(sandbox) as zendesk:
        assert await candidate_ids(zendesk) == expected
    assert endpoint_calls(admin)["GET /api/v2/tickets/{ticket_id:int}/comments"] > len(expected)


async def test_429_storm_waits_retry_after_and_loses_nothing(
    sandbox: Any, admin: httpx.Client
) -> None:
    async with connect(sandbox) as clean:
        expected = await candidate_ids(clean)
    fault(admin, "429", "GET /api/v2/tickets/*/comments", 0.5, times=4)
    async with connect(sandbox) as zendesk:
        assert await candidate_ids(zendesk) == expected
        assert zendesk._client.calls["rate_limited"] == 4


async def pending_items(connector: ZendeskConnector, count: int) -> list[PlanItem]:
    found = []
    async for case in connector.cases():
        if case.status is Status.PENDING and case.id not in USED and not case.followups:
            USED.add(case.id)
            found.append(plan_for(case, Action(ActionType.ADD_TAGS, {"tags": ["fu_bulk"]})))
            if len(found) == count:
                break
    return found


def bulk_mapping() -> Any:
    assert MAPPING.zendesk is not None
    return MAPPING.zendesk.model_copy(update={"bulk_updates": True})


async def test_bulk_updates_take_one_job_per_hundred_tickets(
    sandbox: Any, admin: httpx.Client
) -> None:
    async with ZendeskConnector.connect(
        sandbox.urls["zendesk"],
        "worker@example.com",
        "zd-sandbox-token",
        bulk_mapping(),
        limits=FAST,
        timeouts=DEFAULT_TIMEOUTS,
        clock=lambda: START,
    ) as zendesk:
        items = await pending_items(zendesk, 12)
        admin.post("/reset-stats")
        results = await zendesk.apply_many(items)
        calls = endpoint_calls(admin)
        assert {r.outcome for r in results} == {WriteOutcome.APPLIED}
        assert calls["PUT /api/v2/tickets/update_many"] == 1
        assert "PUT /api/v2/tickets/{ticket_id:int}" not in calls
        for item in items[:3]:
            assert await markers(zendesk, item.case.id, item.key) == 1


async def test_bulk_job_answer_dropped_after_apply_duplicates_nothing(
    sandbox: Any, admin: httpx.Client
) -> None:
    async with ZendeskConnector.connect(
        sandbox.urls["zendesk"],
        "worker@example.com",
        "zd-sandbox-token",
        bulk_mapping(),
        limits=FAST,
        timeouts=DEFAULT_TIMEOUTS,
        clock=lambda: START,
    ) as zendesk:
        items = await pending_items(zendesk, 3)
        fault(admin, "drop_after", "PUT /api/v2/tickets/update_many", times=1)
        results = await zendesk.apply_many(items)
        assert {r.outcome for r in results} == {WriteOutcome.ALREADY_APPLIED}
        for item in items:
            assert await markers(zendesk, item.case.id, item.key) == 1
