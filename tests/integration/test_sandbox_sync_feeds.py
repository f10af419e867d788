"""The sandbox's change feeds, as the vendors document them (issue 13): Zendesk's incremental
exports continued from a kept position (vendor-behaviours.md Z7, Z8), Intercom's searches on
``updated_at`` (I6), Asana's Events API with sync tokens. Lines cited are of the descriptions
in shared/specs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

sandbox_server = pytest.importorskip("sandbox.server", reason="needs the sandbox package")
from sandbox.tenant import AGENTS, ASANA_PROJECT_GID  # noqa: E402

START = datetime(2026, 3, 11, 15, 0, tzinfo=UTC)
ZENDESK_ADMIN = ("worker@example.com/token", "zd-sandbox-token")


@pytest.fixture
def sandbox() -> Iterator[Any]:
    with sandbox_server.run_in_thread(tickets=80, seed=31, start=START, frozen_clock=True) as sb:
        yield sb


@pytest.fixture
def admin(sandbox: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.urls["admin"]) as client:
        yield client


@contextmanager
def deliberately_invalid(sandbox: Any) -> Iterator[None]:
    """A request the description refuses, sent on purpose: out of the run's summary, whose
    goal is 0 rejected."""
    contract = sandbox.sandbox.contract
    assert contract is not None
    tally, contract.process_tally = contract.process_tally, None
    try:
        yield
    finally:
        contract.process_tally = tally


def advance(admin: httpx.Client, seconds: float) -> None:
    admin.post("/clock", json={"advance_seconds": seconds}).raise_for_status()


def now(admin: httpx.Client) -> int:
    return int(datetime.fromisoformat(admin.get("/clock").json()["now"]).timestamp())


@pytest.fixture
def zendesk(sandbox: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.urls["zendesk"], auth=ZENDESK_ADMIN) as client:
        yield client


@pytest.fixture
def asana(sandbox: Any) -> Iterator[httpx.Client]:
    headers = {"Authorization": "Bearer as-sandbox-token"}
    with httpx.Client(base_url=sandbox.urls["asana"], headers=headers) as client:
        yield client


@pytest.fixture
def intercom(sandbox: Any) -> Iterator[httpx.Client]:
    headers = {"Authorization": "Bearer ic-sandbox-token"}
    with httpx.Client(base_url=sandbox.urls["intercom"], headers=headers) as client:
        yield client


def export_to_the_end(zendesk: httpx.Client, cursor: str) -> tuple[list[int], str]:
    """Ticket ids the cursor export shows from ``cursor`` on, and the cursor it ends at."""
    shown: list[int] = []
    while True:
        page = zendesk.get("/api/v2/incremental/tickets/cursor", params={"cursor": cursor}).json()
        shown += [ticket["id"] for ticket in page["tickets"]]
        cursor = page["after_cursor"]
        if page["end_of_stream"]:
            return shown, cursor


# --- Zendesk ----------------------------------------------------------------------------------


def test_zendesk_a_kept_cursor_shows_only_what_changed_after_the_minute_left_out(
    zendesk: httpx.Client, admin: httpx.Client
) -> None:
    """Z8: what a page ends at is kept between runs; a change of the last minute is left out
    (oas 5059) and shows once that minute has passed."""
    advance(admin, 120)
    first = zendesk.get(
        "/api/v2/incremental/tickets/cursor", params={"start_time": 0, "per_page": 1000}
    ).json()
    assert first["end_of_stream"]
    kept = first["after_cursor"]
    assert export_to_the_end(zendesk, kept)[0] == []  # nothing changed since

    ticket = first["tickets"][0]["id"]
    note = {"body": "Checked.", "public": False, "author_id": AGENTS[0].id}
    zendesk.put(f"/api/v2/tickets/{ticket}", json={"ticket": {"comment": note}}).raise_for_status()
    assert export_to_the_end(zendesk, kept)[0] == []  # within the minute left out
    advance(admin, 61)
    shown, after = export_to_the_end(zendesk, kept)
    assert shown == [ticket]
    assert export_to_the_end(zendesk, after)[0] == []


def test_zendesk_event_export_from_a_kept_end_time_shows_new_comments_after_the_minute(
    zendesk: httpx.Client, admin: httpx.Client
) -> None:
    advance(admin, 120)
    kept = now(admin) - 60
    events = "/api/v2/incremental/ticket_events"
    params = {"start_time": kept, "include": "comment_events"}
    assert zendesk.get(events, params=params).json()["ticket_events"] == []
    admin.post(
        "/activity", json={"vendor": "zendesk", "id": 3, "kind": "customer_reply"}
    ).raise_for_status()
    assert zendesk.get(events, params=params).json()["ticket_events"] == []
    advance(admin, 61)
    page = zendesk.get(events, params=params).json()
    assert [event["ticket_id"] for event in page["ticket_events"]] == [3]
    comments = [c for c in page["ticket_events"][0]["child_events"] if c["event_type"] == "Comment"]
    assert comments[0]["body"] == "Hello, any update?"
    assert page["end_time"] >= kept


def test_zendesk_organization_export_shows_an_edited_organization_from_a_kept_end_time(
    sandbox: Any, zendesk: httpx.Client, admin: httpx.Client
) -> None:
    """Incremental Organization Export (oas 4931-4957), time-based, admins only (oas 4943)."""
    path = "/api/v2/incremental/organizations"
    whole = zendesk.get(path, params={"start_time": 0}).json()
    orgs = whole["organizations"]
    assert whole["end_of_stream"]
    assert len(orgs) == int(admin.get("/tenant").json()["organizations"])
    kept = now(admin) - 60
    assert zendesk.get(path, params={"start_time": kept}).json()["organizations"] == []
    admin.post(
        "/organization", json={"id": orgs[0]["id"], "organization_fields": {"plan": "trial"}}
    ).raise_for_status()
    advance(admin, 61)
    page = zendesk.get(path, params={"start_time": kept}).json()
    assert [(o["id"], o["organization_fields"]["plan"]) for o in page["organizations"]] == [
        (orgs[0]["id"], "trial")
    ]
    with deliberately_invalid(sandbox):  # start_time is required (oas 27128-27135)
        assert zendesk.get(path).status_code == 400
    agent = httpx.BasicAuth("agent@example.com/token", "zd-agent-token")
    assert zendesk.get(path, params={"start_time": 0}, auth=agent).status_code == 403


# --- Asana ------------------------------------------------------------------------------------


def events(asana: httpx.Client, sync: str | None = None) -> httpx.Response:
    params = {"resource": ASANA_PROJECT_GID}
    if sync is not None:
        params["sync"] = sync
    return asana.get("/events", params=params)


def test_asana_first_call_answers_412_with_a_token_then_events_since_it(
    asana: httpx.Client, admin: httpx.Client
) -> None:
    """oas 16557-16566: no token on the first request, 412 with a fresh one."""
    first = events(asana)
    assert first.status_code == 412
    token = first.json()["sync"]
    nothing = events(asana, token).json()
    assert (nothing["data"], nothing["has_more"]) == ([], False)

    tasks = asana.get(f"/projects/{ASANA_PROJECT_GID}/tasks", params={"limit": 2}).json()["data"]
    commented, completed = (task["gid"] for task in tasks)
    admin.post("/asana/story", json={"id": commented, "text": "On it."}).raise_for_status()
    asana.put(f"/tasks/{completed}", json={"data": {"completed": True}}).raise_for_status()
    # Setting what is already set changes nothing: no event (a retried write).
    asana.put(f"/tasks/{completed}", json={"data": {"completed": True}}).raise_for_status()
    answer = events(asana, token).json()
    story, change = answer["data"]
    assert (story["resource"]["resource_type"], story["action"]) == ("story", "added")
    assert story["parent"]["gid"] == commented
    assert (change["resource"]["gid"], change["action"]) == (completed, "changed")
    assert change["change"]["field"] == "completed"
    # Re-requesting the same token gives the same events (oas 634-636); the new one, none.
    assert events(asana, token).json()["data"] == answer["data"]
    assert events(asana, answer["sync"]).json()["data"] == []


def test_asana_more_than_100_events_page_with_has_more(
    asana: httpx.Client, admin: httpx.Client
) -> None:
    """oas 16583: a single sync token gives at most 100 events, has_more for the rest."""
    token = events(asana).json()["sync"]
    task = asana.get(f"/projects/{ASANA_PROJECT_GID}/tasks", params={"limit": 1}).json()["data"]
    for n in range(130):
        admin.post("/asana/story", json={"id": task[0]["gid"], "text": f"#{n}"}).raise_for_status()
    first = events(asana, token).json()
    assert (len(first["data"]), first["has_more"]) == (100, True)
    rest = events(asana, first["sync"]).json()
    assert (len(rest["data"]), rest["has_more"]) == (30, False)


def test_asana_a_token_past_24_hours_or_unreadable_answers_412_with_a_fresh_one(
    asana: httpx.Client, admin: httpx.Client
) -> None:
    """oas 644: "Sync tokens always expire after 24 hours"."""
    token = events(asana).json()["sync"]
    advance(admin, 24 * 3600 - 1)
    assert events(asana, token).status_code == 200
    token = events(asana).json()["sync"]
    advance(admin, 24 * 3600 + 1)
    expired = events(asana, token)
    assert expired.status_code == 412
    assert events(asana, expired.json()["sync"]).status_code == 200
    assert events(asana, "not-a-token").status_code == 412


# --- Intercom ---------------------------------------------------------------------------------


def search(intercom: httpx.Client, since: int, per_page: int = 150) -> httpx.Response:
    query = {"field": "updated_at", "operator": ">", "value": since}
    body = {"query": query, "pagination": {"per_page": per_page}}
    return intercom.post("/conversations/search", json=body)


def test_intercom_search_by_updated_at_shows_a_change_from_its_own_second_on(
    sandbox: Any, intercom: httpx.Client, admin: httpx.Client
) -> None:
    """``>`` is "Greater (or equal) than" (intercom-2.16.yaml 11702); per_page at most 150
    (I6)."""
    at = now(admin)
    conversation = intercom.get("/conversations", params={"per_page": 1}).json()
    conversation_id = conversation["conversations"][0]["id"]
    assert conversation_id not in {c["id"] for c in search(intercom, at).json()["conversations"]}
    admin.post(
        "/activity", json={"vendor": "intercom", "id": conversation_id, "kind": "customer_reply"}
    ).raise_for_status()
    found = {c["id"]: c["updated_at"] for c in search(intercom, at).json()["conversations"]}
    assert found[conversation_id] == at
    later = search(intercom, at + 1).json()["conversations"]
    assert conversation_id not in {c["id"] for c in later}
    with deliberately_invalid(sandbox):
        assert search(intercom, at, per_page=151).status_code == 400


def test_intercom_search_pages_with_starting_after(intercom: httpx.Client) -> None:
    first = search(intercom, 0, per_page=5).json()
    after = first["pages"]["next"]["starting_after"]
    body = {
        "query": {"field": "updated_at", "operator": ">", "value": 0},
        "pagination": {"per_page": 5, "starting_after": after},
    }
    second = intercom.post("/conversations/search", json=body).json()
    ids = [c["id"] for c in first["conversations"] + second["conversations"]]
    assert len(ids) == len(set(ids)) == 10
