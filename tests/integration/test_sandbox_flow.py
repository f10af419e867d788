"""A worker-shaped client against the real server: find owed tickets, write a marked note
through lost answers without duplicating it, and see the customer's reply reopen the ticket."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from sandbox.faults import FaultPlan, FaultRule
from sandbox.server import run_in_thread

START = datetime(2026, 3, 11, 15, 0, tzinfo=UTC)
MARKER = "fw-0123456789abcdef"


def pending_general_inquiries(client: httpx.Client) -> list[dict[str, object]]:
    found: list[dict[str, object]] = []
    url: str | None = "/search/export"
    params: dict[str, str] | None = {
        "query": "status:pending custom_field_9001:general_inquiry",
        "filter[type]": "ticket",
        "page[size]": "50",
        "include": "users,organizations",
    }
    while url:
        body = client.get(url, params=params).json()
        found += body["results"]
        url, params = body["links"]["next"], None
    return found


def write_once(client: httpx.Client, ticket_id: int) -> int:
    """Write the note; when the answer is lost, re-read and look for the marker first."""
    attempts = 0
    while True:
        ticket = client.get(f"/tickets/{ticket_id}").json()["ticket"]
        if MARKER in ticket["tags"]:
            return attempts
        attempts += 1
        change = {
            "ticket": {
                "status": "pending",
                "safe_update": True,
                "updated_stamp": ticket["updated_at"],
                "tags": [*ticket["tags"], "followup_worker", MARKER],
                "comment": {
                    "body": "Unable to reach the customer. 2/3\n\n— followup-worker · "
                    f"general_inquiry · step 2/3 · {MARKER}",
                    "public": False,
                },
            }
        }
        try:
            response = client.put(f"/tickets/{ticket_id}", json=change)
        except httpx.TransportError:
            continue  # outcome unknown: the re-read decides
        if response.status_code == 200:
            return attempts


def test_worker_shaped_flow_survives_lost_answers_and_sees_the_reply() -> None:
    # The first ticket update is applied, then its connection is cut: the nasty case.
    lost_answer = FaultRule("zendesk", "drop_after", 1.0, "PUT /api/v2/tickets/{ticket_id}", 1)
    faults = FaultPlan([lost_answer])
    with run_in_thread(tickets=400, seed=5, start=START, frozen_clock=True, faults=faults) as run:
        auth = httpx.BasicAuth("worker@example.com/token", "zd-sandbox-token")
        base = f"{run.urls['zendesk']}/api/v2"
        with httpx.Client(base_url=base, auth=auth, timeout=5) as client:
            owed = pending_general_inquiries(client)
            assert owed
            ticket_id = int(owed[0]["id"])  # type: ignore[call-overload]
            assert write_once(client, ticket_id) == 1  # one PUT; the re-read found the marker
            notes = [
                c
                for c in client.get(f"/tickets/{ticket_id}/comments").json()["comments"]
                if MARKER in c["body"]
            ]
            assert len(notes) == 1

            admin = httpx.Client(base_url=run.urls["admin"], timeout=5)
            admin.post("/clock", json={"advance_days": 1})
            admin.post(
                "/activity",
                json={
                    "vendor": "zendesk",
                    "id": str(ticket_id),
                    "kind": "customer_reply",
                    "body": "Here you go",
                },
            )
            ticket = client.get(f"/tickets/{ticket_id}").json()["ticket"]
            assert ticket["status"] == "open"
            stats = admin.get("/stats").json()["vendors"]["zendesk"]
            assert (stats["writes"], stats["writes_applied"], stats["faults"]) == (1, 1, 1)
            admin.close()
