"""Intercom ``changes(cursor, known)`` over real HTTP against the sandbox (issue 13): a full
read, then only the conversations, tickets and contacts whose ``updated_at`` is at or after the
kept instant (``>`` is "greater or equal", intercom-2.16.yaml 11702), found by their searches."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.base import Checkpoint, Gone, Syncs
from connectors.errors import CursorExpired
from connectors.intercom import IntercomConnector
from connectors.mapping import load_mapping
from connectors.settings import Timeouts, VendorLimits
from policies.model import Account, ActivityKind, Case
from tests.integration.sync_support import Store, of_type, vendor_calls

sandbox_server = pytest.importorskip("sandbox.server", reason="needs the sandbox package")

START = datetime(2026, 3, 11, 15, 0, tzinfo=UTC)
MAPPING = load_mapping(Path(__file__).parents[2] / "deploy" / "mapping.sandbox.yaml")
FAST = VendorLimits(backoff_initial=0.01, backoff_max=0.05)
CONVERSATION_READ = "GET /conversations/{conversation_id}"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Any]:
    with sandbox_server.run_in_thread(tickets=60, seed=9, start=START, frozen_clock=True) as sb:
        yield sb


@pytest.fixture
def admin(sandbox: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.urls["admin"]) as client:
        client.post("/reset-stats")
        yield client


def connect(sandbox: Any) -> IntercomConnector:
    assert MAPPING.intercom is not None
    return IntercomConnector.connect(
        sandbox.urls["intercom"],
        "ic-sandbox-token",
        MAPPING.intercom,
        limits=FAST,
        timeouts=Timeouts(),
        plans=MAPPING.plans,
        clock=lambda: START,
    )


def intercom_api(sandbox: Any) -> httpx.Client:
    return httpx.Client(
        base_url=sandbox.urls["intercom"], headers={"Authorization": "Bearer ic-sandbox-token"}
    )


async def test_a_cycle_reads_only_what_changed_and_a_replica_goes_on(
    sandbox: Any, admin: httpx.Client
) -> None:
    store = Store()
    async with connect(sandbox) as first:
        assert isinstance(first, Syncs)
        full = await store.sync(first)
        assert [case.id for case in of_type(full, Case)] == [c.id async for c in first.cases()]
        assert of_type(full, Account)
        assert isinstance(full[-1], Checkpoint)

        admin.post("/reset-stats")
        again = await store.sync(first)
        # Nothing changed: the overlap shows nothing newer than the store holds.
        assert of_type(again, Case) == of_type(again, Gone) == []
        assert isinstance(again[-1], Checkpoint)
        assert sum(vendor_calls(admin, "intercom").values()) <= 3

    answered, replied, closed = [
        case for case in store.cases.values() if not case.id.startswith("ticket:")
    ][:3]
    with intercom_api(sandbox) as api:
        me = api.get("/me").json()["id"]  # the worker's own replies are not an answer
        admin_id = next(a["id"] for a in api.get("/admins").json()["admins"] if a["id"] != me)
        api.post(
            f"/conversations/{answered.id}/reply",
            json={"type": "admin", "admin_id": admin_id, "message_type": "comment",
                  "body": "Any news on your side?"},
        ).raise_for_status()  # fmt: skip
        api.post(
            f"/conversations/{closed.id}/parts",
            json={"type": "admin", "admin_id": admin_id, "message_type": "close"},
        ).raise_for_status()
    admin.post(
        "/activity", json={"vendor": "intercom", "id": replied.id, "kind": "customer_reply"}
    ).raise_for_status()
    admin.post("/clock", json={"advance_seconds": 60}).raise_for_status()

    admin.post("/reset-stats")
    async with connect(sandbox) as replica:  # a replica taking the tenant over
        changed = await store.sync(replica)
    cases = of_type(changed, Case)
    assert [case.id for case in cases] == [answered.id]
    # The customer wrote back, so nothing is owed to them; the closed one is finished.
    assert sorted(gone.case_id for gone in of_type(changed, Gone)) == sorted(
        [replied.id, closed.id]
    )
    assert cases[0].history[-1].kind is ActivityKind.AGENT_UPDATE
    assert cases[0].history[-1].at > answered.history[-1].at
    # Only the changed conversation was read in full.
    assert vendor_calls(admin, "intercom").get(CONVERSATION_READ) == 1


async def test_a_cursor_it_cannot_read_is_expired(sandbox: Any) -> None:
    async with connect(sandbox) as connector:
        with pytest.raises(CursorExpired):
            async for _ in connector.changes("{}", lambda case_id: None):
                pass


async def test_a_record_stamped_ahead_of_the_clock_hides_no_later_change(
    sandbox: Any, admin: httpx.Client
) -> None:
    """Each search goes on from when it began, not from the newest stamp it saw: a record
    stamped an hour ahead (a skewed clock) must not hide a change made before that hour."""
    store = Store()
    async with connect(sandbox) as connector:
        await store.sync(connector)
        ahead, later = [case for case in store.cases.values() if case.id.isdigit()][:2]
        with intercom_api(sandbox) as api:
            admin_id = api.get("/admins").json()["admins"][0]["id"]
            note = {"type": "admin", "admin_id": admin_id, "message_type": "note", "body": "x"}
            now = datetime.fromisoformat(admin.get("/clock").json()["now"])
            admin.post("/clock", json={"set": (now + timedelta(hours=1)).isoformat()})
            api.post(f"/conversations/{ahead.id}/reply", json=note).raise_for_status()
            admin.post("/clock", json={"set": (now + timedelta(seconds=30)).isoformat()})
            assert [c.id for c in of_type(await store.sync(connector), Case)] == [ahead.id]
            api.post(f"/conversations/{later.id}/reply", json=note).raise_for_status()
        assert [c.id for c in of_type(await store.sync(connector), Case)] == [later.id]
