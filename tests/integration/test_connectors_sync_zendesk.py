"""Zendesk ``changes(cursor, known)`` over real HTTP against the sandbox (issue 13): a full read,
then only what changed, from the three incremental exports continued where the cursor says
(vendor-behaviours.md Z8), with a changed ticket's evidence built from the stored copy plus the
comments the event export shows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.base import Checkpoint, Gone, Syncs
from connectors.errors import CursorExpired
from connectors.mapping import load_mapping
from connectors.settings import Timeouts, VendorLimits
from connectors.zendesk import ZendeskConnector
from policies.model import Account, ActivityKind, Case, Status
from tests.integration.sync_support import Store, of_type, vendor_calls

sandbox_server = pytest.importorskip("sandbox.server", reason="needs the sandbox package")
from sandbox.tenant import AGENTS  # noqa: E402

START = datetime(2026, 3, 11, 15, 0, tzinfo=UTC)
MAPPING = load_mapping(Path(__file__).parents[2] / "deploy" / "mapping.sandbox.yaml")
FAST = VendorLimits(requests_per_minute=None, backoff_initial=0.01, backoff_max=0.05)
ADMIN_AUTH = ("worker@example.com/token", "zd-sandbox-token")


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Any]:
    with sandbox_server.run_in_thread(tickets=150, seed=23, start=START, frozen_clock=True) as sb:
        yield sb


@pytest.fixture
def admin(sandbox: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.urls["admin"]) as client:
        client.put("/limits", json={"zendesk": {"per_minute": None}})
        yield client


def connect(sandbox: Any) -> ZendeskConnector:
    assert MAPPING.zendesk is not None
    return ZendeskConnector.connect(
        sandbox.urls["zendesk"],
        "worker@example.com",
        "zd-sandbox-token",
        MAPPING.zendesk.model_copy(update={"endpoint_limits": {}}),
        limits=FAST,
        timeouts=Timeouts(),
        clock=lambda: START,
    )


def settle(admin: httpx.Client) -> None:
    """Past the minute the incremental exports leave out (Z8)."""
    admin.post("/clock", json={"advance_seconds": 120}).raise_for_status()


def vendor(sandbox: Any) -> httpx.Client:
    return httpx.Client(base_url=sandbox.urls["zendesk"], auth=ADMIN_AUTH)


async def test_a_cycle_reads_only_what_changed_and_another_replica_goes_on_from_the_cursor(
    sandbox: Any, admin: httpx.Client
) -> None:
    settle(admin)
    store = Store()
    async with connect(sandbox) as first:
        assert isinstance(first, Syncs)
        full = await store.sync(first)
        # The full read is what cases() yields, then one checkpoint at the end.
        assert [case.id for case in of_type(full, Case)] == [c.id async for c in first.cases()]
        assert isinstance(full[-1], Checkpoint)
        assert len(of_type(full, Checkpoint)) == 1
        assert of_type(full, Account)
        assert not of_type(full, Gone)

        admin.post("/reset-stats")
        again = await store.sync(first)
        # Nothing changed: no case, no account, one page of each export.
        assert of_type(again, Case) == of_type(again, Gone) == of_type(again, Account) == []
        assert isinstance(again[-1], Checkpoint)
        assert sum(vendor_calls(admin, "zendesk").values()) <= 3

    replied, commented, solved = [
        case for case in store.cases.values() if case.status is Status.PENDING
    ][:3]
    with vendor(sandbox) as api:
        agent_note = {"body": "Looked at it again.", "public": True, "author_id": AGENTS[1].id}
        api.put(
            f"/api/v2/tickets/{commented.id}", json={"ticket": {"comment": agent_note}}
        ).raise_for_status()
        api.put(
            f"/api/v2/tickets/{solved.id}",
            json={"ticket": {"status": "solved", "assignee_id": AGENTS[0].id}},
        ).raise_for_status()
    admin.post(
        "/activity", json={"vendor": "zendesk", "id": replied.id, "kind": "customer_reply"}
    ).raise_for_status()
    settle(admin)

    admin.post("/reset-stats")
    async with connect(sandbox) as replica:  # a replica taking the tenant over
        changed = await store.sync(replica)
    cases = {case.id: case for case in of_type(changed, Case)}
    assert set(cases) == {replied.id, commented.id}
    assert [gone.case_id for gone in of_type(changed, Gone)] == [solved.id]
    assert solved.id not in store.cases
    # The customer's reply is the latest activity: its follow-up sequence starts again.
    assert cases[replied.id].status is Status.OPEN
    assert cases[replied.id].history[-1].kind is ActivityKind.CUSTOMER_REPLY
    assert cases[commented.id].history[-1].kind is ActivityKind.AGENT_UPDATE
    for case in cases.values():
        # The stored evidence is kept, what came since added once.
        before = {replied.id: replied, commented.id: commented}[case.id]
        assert case.history[:-1] == before.history
        assert case.followups == before.followups
    # Built from the stored copies and the event export: no ticket's own comments read.
    calls = vendor_calls(admin, "zendesk")
    assert "GET /api/v2/tickets/{ticket_id:int}/comments" not in calls
    async with connect(sandbox) as fresh:
        for case in cases.values():
            read = await fresh.fetch_case(case.id)
            assert read.history[-1] == case.history[-1]
            assert (read.status, read.tags, read.followups) == (
                case.status,
                case.tags,
                case.followups,
            )


async def test_a_changed_organization_comes_as_an_account(
    sandbox: Any, admin: httpx.Client
) -> None:
    settle(admin)
    store = Store()
    async with connect(sandbox) as connector:
        full = await store.sync(connector)
        org = of_type(full, Account)[0]
        admin.post(
            "/organization",
            json={"id": int(org.id), "organization_fields": {"stop_followups": True}},
        ).raise_for_status()
        settle(admin)
        changed = await store.sync(connector)
    accounts = of_type(changed, Account)
    assert [account.id for account in accounts] == [org.id]
    assert accounts[0].stop_followups
    assert not org.stop_followups


async def test_a_ticket_back_after_it_was_gone_is_read_from_the_reply_that_reopened_it(
    sandbox: Any, admin: httpx.Client
) -> None:
    """A ticket the store no longer holds (solved, then a customer's reply reopened it): what
    it is owed starts at that reply, which the event export shows, so its history is read
    from there, as a fresh read of its comments gives it (back to the latest inbound one)."""
    settle(admin)
    store = Store()
    async with connect(sandbox) as connector:
        await store.sync(connector)
        ticket = next(case for case in store.cases.values() if case.status is Status.PENDING)
        with vendor(sandbox) as api:
            api.put(
                f"/api/v2/tickets/{ticket.id}",
                json={"ticket": {"status": "solved", "assignee_id": AGENTS[0].id}},
            ).raise_for_status()
        settle(admin)
        gone = await store.sync(connector)
        assert [g.case_id for g in of_type(gone, Gone)] == [ticket.id]
        admin.post(
            "/activity", json={"vendor": "zendesk", "id": ticket.id, "kind": "customer_reply"}
        ).raise_for_status()
        settle(admin)
        back = of_type(await store.sync(connector), Case)
        fresh = await connector.fetch_case(ticket.id)
    assert [case.id for case in back] == [ticket.id]
    assert back[0].status is Status.OPEN
    assert back[0].history == fresh.history[-1:]
    assert back[0].history[-1].kind is ActivityKind.CUSTOMER_REPLY


async def test_a_cursor_it_cannot_read_is_expired(sandbox: Any) -> None:
    async with connect(sandbox) as connector:
        with pytest.raises(CursorExpired):
            async for _ in connector.changes("not a cursor", lambda case_id: None):
                pass


async def test_a_ticket_cursor_zendesk_refuses_is_expired(
    sandbox: Any, admin: httpx.Client
) -> None:
    """A kept after_cursor the export answers 400 to: the caller reads in full."""
    settle(admin)
    refused = json.dumps({"tickets": "bm90LWEtY3Vyc29y", "events": 0, "organizations": 0})
    async with connect(sandbox) as connector:
        with pytest.raises(CursorExpired):
            async for _ in connector.changes(refused, lambda case_id: None):
                pass
