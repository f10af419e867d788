"""The Zendesk connector over real HTTP against the sandbox: streaming pages with comments from
the ticket event export (a ticket's own comments read only when the export cannot tell), one
update per ticket, and no duplicate note through 429 storms, 5xx, timeouts, dropped answers and
conflicts."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.base import WriteOutcome
from connectors.mapping import ZENDESK_ENDPOINT_LIMITS, load_mapping
from connectors.settings import Timeouts, VendorLimits
from connectors.zendesk import ZendeskConnector
from connectors.zendesk_json import ticket_updates
from policies.model import (
    Action,
    ActionType,
    ActivityKind,
    Case,
    PlanItem,
    Status,
    idempotency_key,
)

sandbox_server = pytest.importorskip("sandbox.server", reason="needs the sandbox package")

from sandbox.limits import DEFAULT_LIMITS  # noqa: E402  (after the skip: needs the sandbox)

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


COMMENTS = "GET /api/v2/tickets/{ticket_id:int}/comments"
EVENTS = "GET /api/v2/incremental/ticket_events"


def comment_reads(admin: httpx.Client) -> set[str]:
    """The tickets whose own comments were read since the last stats reset."""
    log = admin.get("/requests", params={"vendor": "zendesk", "limit": 100_000}).json()
    paths = (entry["path"] for entry in log["requests"])
    return {m[1] for path in paths if (m := re.search(r"/tickets/(\d+)/comments$", path))}


def settle(admin: httpx.Client) -> None:
    """Move the clock past the minute the incremental exports leave out."""
    admin.post("/clock", json={"advance_seconds": 120}).raise_for_status()


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
    lookback_days: int = 365,
) -> ZendeskConnector:
    assert MAPPING.zendesk is not None
    return ZendeskConnector.connect(
        sandbox.urls["zendesk"],
        "worker@example.com",
        "zd-sandbox-token",
        # The sandbox runs without limits here (see admin): the streams are under test.
        MAPPING.zendesk.model_copy(update={"lookback_days": lookback_days, "endpoint_limits": {}}),
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
    # Comments come from the event export, a page per page_size events (each page repeats
    # the last second of the one before); no ticket's own comments are read.
    desk = sandbox.sandbox.zendesk
    events = sum(len(desk.record(i).audits) for i in desk.ticket_ids())
    assert calls[EVENTS] <= events // page_size + 1 if page_size > 1 else calls[EVENTS] <= events
    assert COMMENTS not in calls
    assert "GET /api/v2/users/{user_id:int}" not in calls
    assert "GET /api/v2/users/show_many" not in calls


async def test_cases_from_the_event_export_equal_a_fresh_read_of_each_ticket(
    zendesk: ZendeskConnector,
) -> None:
    streamed = [case async for case in zendesk.cases()]
    assert len(streamed) > 20
    for case in streamed:
        fresh = await zendesk.fetch_case(case.id)  # its own comments, read on their own
        assert (case.history, case.followups, case.tags) == (
            fresh.history,
            fresh.followups,
            fresh.tags,
        )


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
    # The next cycle reads the ticket from the event export: it sees the one note, and the
    # item is not written again.
    settle(admin)
    admin.post("/reset-stats")
    streamed = {found.id: found async for found in zendesk.cases()}
    assert case.id not in comment_reads(admin)
    assert [mark.key for mark in streamed[case.id].followups] == [item.key]
    again = await zendesk.apply(replace(item, case=streamed[case.id]))
    assert (again.outcome, again.calls) == (WriteOutcome.ALREADY_APPLIED, 0)


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
    async with connect(sandbox, page_size=50) as clean:
        expected = await candidate_ids(clean)
    pages = endpoint_calls(admin)[EVENTS]
    admin.post("/reset-stats")
    fault(admin, kind, "GET /api/v2/incremental/ticket_events", probability)
    async with connect(sandbox, page_size=50) as zendesk:
        assert await candidate_ids(zendesk) == expected
    assert endpoint_calls(admin)[EVENTS] > pages
    assert not comment_reads(admin)


async def test_429_storm_waits_retry_after_and_loses_nothing(
    sandbox: Any, admin: httpx.Client
) -> None:
    async with connect(sandbox, page_size=50) as clean:
        expected = await candidate_ids(clean)
    fault(admin, "429", "GET /api/v2/incremental/ticket_events", 0.5, times=4)
    async with connect(sandbox, page_size=50) as zendesk:
        assert await candidate_ids(zendesk) == expected
        assert zendesk._client.calls["rate_limited"] == 4


async def test_a_missed_call_reads_from_the_event_export_as_one(
    zendesk: ZendeskConnector, admin: httpx.Client
) -> None:
    case = None
    async for found in zendesk.cases():
        phone = found.requester.phone if found.requester else None
        fresh = found.id not in USED and not found.followups
        if found.status is Status.PENDING and phone and fresh:
            case = found
            break
    assert case is not None, "the sandbox has no pending ticket of a requester with a phone"
    USED.add(case.id)
    admin.post(
        "/activity", json={"vendor": "zendesk", "id": case.id, "kind": "missed_call"}
    ).raise_for_status()
    settle(admin)
    admin.post("/reset-stats")
    streamed = {found.id: found async for found in zendesk.cases()}
    assert case.id not in comment_reads(admin)
    assert streamed[case.id].history[-1].kind is ActivityKind.MISSED_CALL


async def test_a_reply_the_event_export_has_not_shown_yet_is_read_from_the_ticket(
    zendesk: ZendeskConnector, admin: httpx.Client, sandbox: Any, monkeypatch: Any
) -> None:
    case = await take_pending(zendesk)
    admin.post(
        "/activity", json={"vendor": "zendesk", "id": case.id, "kind": "customer_reply"}
    ).raise_for_status()
    settle(admin)
    desk = sandbox.sandbox.zendesk
    replied = datetime.fromisoformat(desk.record(int(case.id)).ticket["updated_at"])
    cutoff = int(replied.timestamp()) - 1
    shown = desk.events_since

    def read_before_the_reply(start: int, horizon: int, limit: int) -> Any:
        return shown(start, min(horizon, cutoff), limit)

    # The export as it stood just before the reply: the ticket then changed after it was read.
    monkeypatch.setattr(desk, "events_since", read_before_the_reply)
    admin.post("/reset-stats")
    streamed = {found.id: found async for found in zendesk.cases()}
    read_alone = comment_reads(admin)
    assert case.id in read_alone
    for ticket_id in read_alone:  # and only tickets changed after the export stopped
        updated = datetime.fromisoformat(desk.record(int(ticket_id)).ticket["updated_at"])
        assert updated.timestamp() > cutoff
    last = streamed[case.id].history[-1]
    assert (last.kind, last.at) == (ActivityKind.CUSTOMER_REPLY, replied)


async def test_an_older_ticket_without_inbound_activity_in_the_window_is_read_alone(
    sandbox: Any, admin: httpx.Client
) -> None:
    # Every sandbox ticket was created 30 to 90 days ago; the window is the last 20 days.
    async with connect(sandbox, lookback_days=20) as zendesk:
        streamed = [case async for case in zendesk.cases()]
        read_alone = comment_reads(admin)
        since = sandbox.sandbox.clock.now() - timedelta(days=20)
        fresh = {case.id: await zendesk.fetch_case(case.id) for case in streamed}
    without = {
        ticket_id
        for ticket_id, case in fresh.items()
        if not any(a.kind.is_inbound and a.at >= since for a in case.history)
    }
    assert 0 < len(without) < len(streamed)
    assert read_alone == without
    for case in streamed:  # the latest inbound activity, the anchor, is the same either way
        assert latest_inbound(case) == latest_inbound(fresh[case.id])


def latest_inbound(case: Case) -> datetime | None:
    return max((a.at for a in case.history if a.kind.is_inbound), default=None)


async def test_a_reply_whose_note_never_came_is_finished_once_from_the_event_export(
    zendesk: ZendeskConnector, admin: httpx.Client, sandbox: Any
) -> None:
    case = await take_pending(zendesk)
    item = plan_for(case, Action(ActionType.REPLY, {"template": "t", "body": "Still there?"}))
    admin.delete("/outbox")
    # The worker's reply went out, then it died before the note.
    updates = ticket_updates(item, await zendesk.resolve())
    assert updates.reply is not None
    body = {"ticket": {**updates.reply, "safe_update": True, "updated_stamp": case.updated_stamp}}
    auth = ("worker@example.com/token", "zd-sandbox-token")
    url = f"{sandbox.urls['zendesk']}/api/v2/tickets/{case.id}"
    httpx.put(url, json=body, auth=auth).raise_for_status()
    settle(admin)
    admin.post("/reset-stats")
    streamed = {found.id: found async for found in zendesk.cases()}
    half_done = streamed[case.id]
    assert case.id not in comment_reads(admin)
    # Its reply is the worker's, not an agent's update that would restart the wait.
    assert ActivityKind.AGENT_UPDATE not in {
        a.kind for a in half_done.history if a.at > case.updated_at
    }
    result = await zendesk.apply(replace(item, case=half_done))
    assert result.outcome is WriteOutcome.APPLIED
    outbox = admin.get("/outbox").json()["messages"]
    assert sum("Still there?" in str(m) for m in outbox) == 1
    assert await markers(zendesk, case.id, item.key) == 1


async def test_z4_a_checkbox_and_the_other_typed_fields_work_end_to_end(
    sandbox: Any, admin: httpx.Client, zendesk: ZendeskConnector
) -> None:
    """vendor-behaviours.md Z4: checkbox booleans, multiselect lists, integers and decimals
    are read (no bad record) and written in their types."""
    desk = sandbox.sandbox.zendesk
    ticket_id = next(
        i
        for i in desk.ticket_ids()
        if i % 3 == 0 and i % 5 == 0 and desk.record(i).ticket["status"] == "pending"
    )
    case = await zendesk.fetch_case(str(ticket_id))
    assert case.fields["callback_requested"] == "true"
    assert case.fields["refund_amount"] == format(round(ticket_id * 1.25, 2), "g")
    changes = [("callback_requested", "false"), ("products", "ein,passport"),
               ("contact_attempts", "2"), ("refund_amount", "19.5")]  # fmt: skip
    actions = [Action(ActionType.SET_FIELD, {"field": f, "value": v}) for f, v in changes]
    key = idempotency_key("general_inquiry", case.id, 2, "typed")
    item = PlanItem(case, "general_inquiry", "day3", 2, 3,
                    (Action(ActionType.NOTE, {"body": "2/3"}), *actions), "r", key)  # fmt: skip
    assert (await zendesk.apply(item)).outcome is WriteOutcome.APPLIED
    values = {f["id"]: f["value"] for f in desk.record(ticket_id).ticket["custom_fields"]}
    assert (values[9007], values[9008], values[9009], values[9010]) == (
        False, ["ein", "passport"], 2, 19.5)  # fmt: skip
    assert {"ein", "passport"} <= set(desk.record(ticket_id).ticket["tags"])
    again = await zendesk.fetch_case(str(ticket_id))
    assert [again.fields[f] for f, _ in changes] == ["false", "ein,passport", "2", "19.5"]


async def test_z2_the_client_keeps_one_tickets_updates_under_zendesks_own_limit(
    sandbox: Any, admin: httpx.Client
) -> None:
    """vendor-behaviours.md Z2: "about 30 updates per ticket per 10 minutes", which the
    sandbox enforces (sandbox_gate_test). With Zendesk's documented limits on both sides, the
    client stops at 28 updates of one ticket (its headroom) and refuses the next itself: the
    sandbox never answers 429."""
    zendesk_limits = DEFAULT_LIMITS["zendesk"].to_dict()
    admin.put("/limits", json={"zendesk": zendesk_limits}).raise_for_status()
    assert MAPPING.zendesk is not None
    documented = MAPPING.zendesk.model_copy(
        update={"endpoint_limits": dict(ZENDESK_ENDPOINT_LIMITS)}
    )
    async with ZendeskConnector.connect(
        sandbox.urls["zendesk"], "worker@example.com", "zd-sandbox-token", documented,
        limits=FAST, timeouts=DEFAULT_TIMEOUTS, clock=lambda: START,
    ) as zendesk:  # fmt: skip
        case = await take_pending(zendesk)
        outcomes = []
        for n in range(29):
            fresh = await zendesk.fetch_case(case.id)
            note = replace(plan_for(fresh), key=f"{n:016x}")
            outcomes.append(await zendesk.apply(note))
    assert [o.outcome for o in outcomes] == [WriteOutcome.APPLIED] * 28 + [WriteOutcome.FAILED]
    assert "28 requests to it in 600s" in outcomes[-1].detail
    rows = admin.get("/stats").json()["endpoints"]
    assert not [row for row in rows if row["status"] == "429"]
