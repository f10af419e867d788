"""Asana ``changes(cursor, known)`` over real HTTP against the sandbox (issue 13): a sync token
taken before the full read (the events call without one answers 412 with a fresh one), then
only the tasks the project's events name, read again; a token past its 24 hours is refused."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.asana import AsanaConnector
from connectors.base import Checkpoint, Gone, Syncs
from connectors.errors import CursorExpired
from connectors.mapping import load_mapping
from connectors.settings import Timeouts, VendorLimits
from policies.model import ActivityKind, Case
from tests.integration.sync_support import Store, of_type, vendor_calls

sandbox_server = pytest.importorskip("sandbox.server", reason="needs the sandbox package")

START = datetime(2026, 3, 11, 15, 0, tzinfo=UTC)
MAPPING = load_mapping(Path(__file__).parents[2] / "deploy" / "mapping.sandbox.yaml")
FAST = VendorLimits(backoff_initial=0.01, backoff_max=0.05)
USER_LAST_UPDATED = "1205000000000110"  # the sandbox's "User last updated" date field
EVENTS = "GET /events"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Any]:
    with sandbox_server.run_in_thread(tickets=60, seed=5, start=START, frozen_clock=True) as sb:
        yield sb


@pytest.fixture
def admin(sandbox: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.urls["admin"]) as client:
        client.post("/reset-stats")
        yield client


def connect(sandbox: Any) -> AsanaConnector:
    assert MAPPING.asana is not None
    return AsanaConnector.connect(
        sandbox.urls["asana"], "as-sandbox-token", MAPPING.asana, limits=FAST, timeouts=Timeouts()
    )


def asana_api(sandbox: Any) -> httpx.Client:
    return httpx.Client(
        base_url=sandbox.urls["asana"], headers={"Authorization": "Bearer as-sandbox-token"}
    )


async def test_a_cycle_reads_only_the_tasks_the_events_name_and_a_replica_goes_on(
    sandbox: Any, admin: httpx.Client
) -> None:
    store = Store()
    async with connect(sandbox) as first:
        assert isinstance(first, Syncs)
        full = await store.sync(first)
        assert [case.id for case in of_type(full, Case)] == [c.id async for c in first.cases()]
        assert len(of_type(full, Checkpoint)) == 1
        assert isinstance(full[-1], Checkpoint)
        # The token came from one events call answering 412.
        refused = [
            row
            for row in admin.get("/stats").json()["endpoints"]
            if row["endpoint"] == EVENTS and row["status"] == "412"
        ]
        assert [row["count"] for row in refused] == [1]

        admin.post("/reset-stats")
        again = await store.sync(first)
        assert of_type(again, Case) == of_type(again, Gone) == []
        assert isinstance(again[-1], Checkpoint)
        assert sum(vendor_calls(admin, "asana").values()) <= 3

    commented, updated, completed = list(store.cases.values())[:3]
    admin.post(
        "/asana/story", json={"id": commented.id, "text": "Fixed on staging."}
    ).raise_for_status()
    with asana_api(sandbox) as api:
        # The support team records the customer's news in "User last updated".
        fields = {"custom_fields": {USER_LAST_UPDATED: "2026-03-11"}}
        api.put(f"/tasks/{updated.id}", json={"data": fields}).raise_for_status()
        api.put(f"/tasks/{completed.id}", json={"data": {"completed": True}}).raise_for_status()

    admin.post("/reset-stats")
    async with connect(sandbox) as replica:  # a replica taking the tenant over
        changed = await store.sync(replica)
    cases = {case.id: case for case in of_type(changed, Case)}
    assert set(cases) == {commented.id, updated.id}
    assert [gone.case_id for gone in of_type(changed, Gone)] == [completed.id]
    assert completed.id not in store.cases
    engineer = cases[commented.id].history
    assert engineer[-1].kind is ActivityKind.ENGINEER_UPDATE
    assert len(engineer) == len(commented.history) + 1
    assert cases[updated.id].fields["user_last_updated"] == "2026-03-11"
    # Only the named tasks were read again: no list of the project's tasks.
    assert "GET /projects/{project_gid}/tasks" not in vendor_calls(admin, "asana")


async def test_a_sync_token_past_its_24_hours_is_an_expired_cursor(
    sandbox: Any, admin: httpx.Client
) -> None:
    store = Store()
    async with connect(sandbox) as connector:
        await store.sync(connector)
        admin.post("/clock", json={"advance_seconds": 24 * 3600 + 60}).raise_for_status()
        with pytest.raises(CursorExpired):
            await store.sync(connector)
        # A full read takes a fresh token, which the next cycle goes on from.
        store.cursor = None
        await store.sync(connector)
        assert of_type(await store.sync(connector), Case) == []


async def test_more_than_100_events_are_read_in_turn_each_with_its_checkpoint(
    sandbox: Any, admin: httpx.Client
) -> None:
    store = Store()
    async with connect(sandbox) as connector:
        await store.sync(connector)
        busy = next(iter(store.cases.values()))
        for n in range(130):
            admin.post("/asana/story", json={"id": busy.id, "text": f"#{n}"}).raise_for_status()
        changed = await store.sync(connector)
        assert len(of_type(changed, Checkpoint)) == 2  # 100 events, then 30
        assert {case.id for case in of_type(changed, Case)} == {busy.id}
        assert len(store.cases[busy.id].history) == len(busy.history) + 130
        assert of_type(await store.sync(connector), Case) == []
