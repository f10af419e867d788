"""100,000 tickets stream through in flat memory: one export page at a time, cases yielded
before the next page is fetched, and the ticket event export read alongside, only as far as
the tickets streamed so far need, so its comments are held for a page or two of tickets."""

from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from connectors.http import VendorClient
from connectors.mapping import ZendeskMapping
from connectors.settings import Timeouts, VendorLimits
from connectors.zendesk import ZendeskConnector

BASE = "https://acme.zendesk.com"
TICKETS, PAGE = 100_000, 1000
FIRST_UPDATE = datetime(2026, 1, 2, tzinfo=UTC)  # ticket n was last updated n seconds later


def updated(ticket_id: int) -> datetime:
    return FIRST_UPDATE + timedelta(seconds=ticket_id)


def export_page(request: httpx.Request) -> httpx.Response:
    page = int(request.url.params.get("cursor") or 0)
    first = page * PAGE
    tickets: list[dict[str, Any]] = [
        {
            "id": first + n,
            # one candidate per page; the rest are done and only stream by
            "status": "pending" if n == 0 else "closed",
            "created_at": "2026-01-01T00:00:00Z",
            "updated_at": updated(first + n).isoformat(),
            "requester_id": 7,
            "subject": "x" * 200,
            "description": "y" * 300,
            "tags": ["a", "b"],
        }
        for n in range(PAGE)
    ]
    last = first + PAGE >= TICKETS
    return httpx.Response(200, json={
        "tickets": tickets, "users": [{"id": 7, "name": "Ann"}],
        "after_cursor": str(page + 1), "end_of_stream": last,
    })  # fmt: skip


def events_page(request: httpx.Request) -> httpx.Response:
    """Each ticket's one update, with a comment, at its updated_at; pages of 1,000 in time
    order, the next one starting at the last second shown (shown again)."""
    start = int(request.url.params["start_time"])
    first = max(0, start - int(FIRST_UPDATE.timestamp()))
    events = [
        {
            "id": ticket_id,
            "ticket_id": ticket_id,
            "timestamp": int(updated(ticket_id).timestamp()),
            "created_at": updated(ticket_id).isoformat(),
            "child_events": [
                {
                    "event_type": "Comment",
                    "type": "Comment",
                    "author_id": 7,
                    "body": "z" * 300,
                    "public": True,
                    "via": {"channel": "email"},
                    "created_at": updated(ticket_id).isoformat(),
                }
            ],
        }
        for ticket_id in range(first, min(first + PAGE, TICKETS))
    ]
    return httpx.Response(200, json={
        "ticket_events": events, "count": len(events), "end_time": events[-1]["timestamp"],
        "end_of_stream": first + PAGE >= TICKETS,
    })  # fmt: skip


class FakeZendesk:
    """A transport that answers without keeping requests (respx keeps every call it sees)."""

    def __init__(self) -> None:
        self.export_calls = 0
        self.event_calls = 0
        self.comment_calls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/api/v2/incremental/tickets/cursor":
            self.export_calls += 1
            return export_page(request)
        if path == "/api/v2/incremental/ticket_events":
            self.event_calls += 1
            return events_page(request)
        if path.endswith("/comments"):
            self.comment_calls += 1
            return httpx.Response(
                200, json={"comments": [], "meta": {"has_more": False}, "links": {"next": None}}
            )
        if path == "/api/v2/users/me":
            return httpx.Response(200, json={"user": {"id": 1000, "name": "followup-worker"}})
        key = path.rsplit("/", 1)[-1]  # ticket_fields, groups, users: none needed here
        return httpx.Response(200, json={key: [], "next_page": None})


async def test_a_hundred_thousand_tickets_stream_in_flat_memory() -> None:
    fake = FakeZendesk()
    client = VendorClient(
        "zendesk", BASE, limits=VendorLimits(), timeouts=Timeouts(),
        transport=httpx.MockTransport(fake),
    )  # fmt: skip
    zendesk = ZendeskConnector(client, ZendeskMapping(), clock=lambda: datetime.now(UTC))

    seen, pages_when_first_seen = 0, None
    tracemalloc.start()
    async with zendesk:
        async for _case in zendesk.cases():
            seen += 1
            if pages_when_first_seen is None:
                pages_when_first_seen = fake.export_calls
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    assert seen == TICKETS // PAGE
    assert pages_when_first_seen == 1  # streamed, not collected first
    assert fake.export_calls == TICKETS // PAGE
    assert fake.comment_calls == 0
    assert fake.event_calls <= TICKETS // (PAGE - 1) + 1  # pages overlap by one second
    # All 100,000 tickets held at once would take hundreds of MB; one page is a few MB.
    assert peak < 30 * 1024 * 1024, f"peak {peak / 1e6:.0f} MB"
