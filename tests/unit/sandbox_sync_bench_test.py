"""What the sync benchmark needs of the sandbox: ``POST /_admin/change`` (a share of each
vendor's cases changed as customers and agents would, through the desks' own writes, so the
changes show in the vendors' feeds), and ``--time-scale`` (clock and rate windows scaled
together)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from sandbox.limits import RateLimiter
from sandbox.options import config_from_args
from sandbox.state import Sandbox
from tests.unit.sandbox_gate_test import FakeMonotonic
from tests.unit.sandbox_support import (
    INTERCOM_AUTH,
    START,
    ZENDESK_AUTH,
    client_for,
    small_sandbox,
)


async def _change(sandbox: Sandbox, **body: Any) -> list[dict[str, Any]]:
    async with client_for(sandbox) as client:
        answer = await client.post("/_admin/change", json=body)
    assert answer.status_code == 200, answer.text
    changes: list[dict[str, Any]] = answer.json()["changes"]
    return changes


async def test_a_tenth_of_the_tickets_change_and_the_incremental_export_lists_them() -> None:
    sandbox = small_sandbox()
    [zendesk] = await _change(sandbox, fraction=0.1, vendors=["zendesk"], seed=3)
    assert zendesk["cases"] == 300
    assert zendesk["changed"] == 30
    assert zendesk["kinds"] == {"customer_reply": 10, "agent_comment": 10, "solve": 10}
    sandbox.clock.advance(120)  # the export leaves out the last minute (Z8)
    start = int(START.timestamp())
    async with client_for(sandbox) as client:
        answer = await client.get(
            f"/zendesk/api/v2/incremental/tickets/cursor?start_time={start}", headers=ZENDESK_AUTH
        )
    exported = answer.json()["tickets"]
    assert len(exported) == 30  # generated tickets were all updated before the start
    assert {ticket["updated_at"] for ticket in exported} == {"2026-03-11T15:00:00Z"}
    assert sum(ticket["status"] == "solved" for ticket in exported) >= 10


async def test_conversations_and_bugs_change_too_and_intercom_search_finds_them() -> None:
    sandbox = small_sandbox()
    intercom, asana = await _change(sandbox, fraction=0.2, vendors=["intercom", "asana"])
    assert intercom["changed"] == round(intercom["cases"] * 0.2) > 0
    assert asana["changed"] == round(asana["cases"] * 0.2) > 0
    assert set(asana["kinds"]) <= {"reassign", "user_updated", "complete"}
    query = {"query": {"field": "updated_at", "operator": ">", "value": int(START.timestamp()) - 1}}
    async with client_for(sandbox) as client:
        found = await client.post(
            "/intercom/conversations/search", json=query, headers=INTERCOM_AUTH
        )
    assert found.json()["total_count"] == intercom["changed"]
    modified = [task for task, _ in sandbox.asana.changed.values()]
    assert len(modified) == asana["changed"]
    assert {task["modified_at"][:19] for task in modified} == {"2026-03-11T15:00:00"}


async def test_the_same_seed_changes_the_same_cases() -> None:
    first, second = small_sandbox(), small_sandbox()
    for sandbox in (first, second):
        await _change(sandbox, fraction=0.05, vendors=["zendesk"], seed=11)
    assert sorted(first.zendesk.changed) == sorted(second.zendesk.changed)
    assert len(first.zendesk.changed) == 15


async def test_a_bad_change_request_is_refused() -> None:
    sandbox = small_sandbox()
    async with client_for(sandbox) as client:
        unknown = await client.post("/_admin/change", json={"fraction": 0.1, "vendors": ["x"]})
        too_much = await client.post("/_admin/change", json={"fraction": 2})
    assert unknown.status_code == too_much.status_code == 400
    assert not sandbox.zendesk.changed


def test_time_scale_shrinks_every_window_alike() -> None:
    """Under --time-scale 60 "10 exports a minute" is 10 per real second, and one ticket's
    30 updates per 10 minutes 30 per 10 real seconds (vendor-behaviours.md Z2)."""
    clock = FakeMonotonic()
    limiter = RateLimiter(monotonic=clock, time_scale=60)
    export = "GET /api/v2/incremental/ticket_events"
    assert [limiter.take("zendesk", export).allowed for _ in range(11)] == [True] * 10 + [False]
    clock.now += 1.0
    assert limiter.take("zendesk", export).allowed
    update = "PUT /api/v2/tickets/{ticket_id:int}"
    assert all(limiter.take("zendesk", update, "/t/5").allowed for _ in range(30))
    assert not limiter.take("zendesk", update, "/t/5").allowed
    clock.now += 10.0
    assert limiter.take("zendesk", update, "/t/5").allowed


def test_the_scaled_clock_ticks_faster(monkeypatch: Any) -> None:
    real = [100.0]
    monkeypatch.setattr("sandbox.clock.time.monotonic", lambda: real[0])
    sandbox = small_sandbox(frozen_clock=False, time_scale=30)
    real[0] += 2.0
    assert sandbox.clock.now() == START + timedelta(seconds=60)


def test_the_time_scale_flag_and_its_environment_twin() -> None:
    config, _ = config_from_args(["--time-scale", "30"], environ={})
    assert config.time_scale == 30
    config, _ = config_from_args([], environ={"SANDBOX_TIME_SCALE": "12.5"})
    assert config.time_scale == 12.5
    with pytest.raises(SystemExit):
        config_from_args(["--time-scale", "0"], environ={})
