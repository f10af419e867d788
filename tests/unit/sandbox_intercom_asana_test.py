"""The sandbox's Intercom and Asana: searches, pages, writes that stick, vendor errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from sandbox.limits import VendorLimit
from sandbox.state import Sandbox
from sandbox.tenant import ASANA_FIELDS, ASANA_PROJECT_GID, PRIORITY_OPTIONS
from tests.unit.sandbox_support import ASANA_AUTH, INTERCOM_AUTH, client_for, small_sandbox

ASANA = "/asana/api/1.0"
PRIORITY, _, LAST_FOLLOW_UP, _ = (spec.gid for spec in ASANA_FIELDS)


@pytest.fixture
def sandbox() -> Sandbox:
    return small_sandbox()


@pytest.fixture
async def client(sandbox: Sandbox) -> AsyncIterator[Any]:
    async with client_for(sandbox) as client:
        yield client


async def intercom(client: Any, method: str, path: str, **kwargs: Any) -> Any:
    return await client.request(method, f"/intercom{path}", headers=INTERCOM_AUTH, **kwargs)


async def test_intercom_wrong_token_gets_error_list(client: Any) -> None:
    response = await client.get("/intercom/contacts", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    body = response.json()
    assert body["type"] == "error.list"
    assert body["errors"][0]["code"] == "unauthorized"


async def test_contact_search_pages_walk_every_match_once(client: Any, sandbox: Sandbox) -> None:
    query = {"field": "role", "operator": "IN", "value": ["lead"]}
    seen: list[str] = []
    pagination: dict[str, Any] = {"per_page": 7}
    while True:
        body = (
            await intercom(
                client, "POST", "/contacts/search", json={"query": query, "pagination": pagination}
            )
        ).json()
        seen += [contact["id"] for contact in body["data"]]
        if "next" not in body["pages"]:
            break
        pagination = {"per_page": 7, "starting_after": body["pages"]["next"]["starting_after"]}
    expected = [c["id"] for c in sandbox.intercom.contacts() if c["role"] == "lead"]
    assert seen == expected
    assert len(seen) == body["total_count"] > 7


async def test_admin_note_and_close_are_seen_on_the_next_read(client: Any) -> None:
    search = {"query": {"field": "state", "operator": "=", "value": "open"}}
    conversation = (await intercom(client, "POST", "/conversations/search", json=search)).json()[
        "conversations"
    ][0]
    path = f"/conversations/{conversation['id']}"
    note = {"message_type": "note", "type": "admin", "admin_id": "991001", "body": "1/3"}
    assert (await intercom(client, "POST", f"{path}/reply", json=note)).status_code == 200
    close = {"message_type": "close", "type": "admin", "admin_id": "991001"}
    assert (await intercom(client, "POST", f"{path}/parts", json=close)).status_code == 200

    again = (await intercom(client, "GET", path)).json()
    assert (again["state"], again["open"]) == ("closed", False)
    parts = again["conversation_parts"]["conversation_parts"]
    assert [p["part_type"] for p in parts[-2:]] == ["note", "close"]


async def test_admin_comment_is_emailed_note_is_not(client: Any) -> None:
    path = "/conversations/10001"
    for message_type in ("note", "comment"):
        body = {"message_type": message_type, "type": "admin", "admin_id": "991002",
                "body": f"a {message_type}"}  # fmt: skip
        await intercom(client, "POST", f"{path}/reply", json=body)
    outbox = (await client.get("/_admin/outbox", params={"ref": "intercom:10001"})).json()
    assert [m["body"] for m in outbox["messages"]] == ["a comment"]


async def test_customer_reply_reopens_a_closed_conversation(client: Any) -> None:
    close = {"message_type": "close", "type": "admin", "admin_id": "991001"}
    await intercom(client, "POST", "/conversations/10002/parts", json=close)
    await client.post(
        "/_admin/activity", json={"vendor": "intercom", "id": "10002", "kind": "customer_reply"}
    )
    conversation = (await intercom(client, "GET", "/conversations/10002")).json()
    assert conversation["state"] == "open"
    assert conversation["waiting_since"] == conversation["statistics"]["last_contact_reply_at"]


async def test_unknown_admin_and_bad_snooze_are_refused(client: Any) -> None:
    assign = {
        "message_type": "assignment",
        "type": "admin",
        "admin_id": "1",
        "assignee_id": "991001",
    }
    response = await intercom(client, "POST", "/conversations/10003/parts", json=assign)
    assert response.status_code == 404
    snooze = {"message_type": "snoozed", "admin_id": "991001", "snoozed_until": 5}
    response = await intercom(client, "POST", "/conversations/10003/parts", json=snooze)
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "parameter_invalid"


async def test_a_ticket_takes_only_a_state_linked_to_its_type(client: Any) -> None:
    """vendor-behaviours I2: each state lists its ticket types; ``PUT /tickets/{id}`` with a
    state not linked to the ticket's type answers 400 ``ticket_state_id_invalid``."""
    states = (await intercom(client, "GET", "/ticket_states")).json()["data"]
    ticket = (await intercom(client, "GET", "/tickets/20001")).json()
    kind = ticket["ticket_type"]["id"]
    waiting = [s for s in states if s["category"] == "waiting_on_customer"]
    linked = [s for s in waiting if kind in {t["id"] for t in s["ticket_types"]["data"]}]
    unlinked = [s for s in waiting if s not in linked]
    assert len(linked) == len(unlinked) == 1

    refused = await intercom(
        client, "PUT", "/tickets/20001", json={"ticket_state_id": unlinked[0]["id"]}
    )
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["code"] == "ticket_state_id_invalid"
    response = await intercom(
        client, "PUT", "/tickets/20001", json={"ticket_state_id": linked[0]["id"]}
    )
    assert response.json()["ticket_state"]["category"] == "waiting_on_customer"
    shown = (await intercom(client, "GET", "/tickets/20001")).json()["ticket_state"]
    assert shown["id"] == linked[0]["id"]


async def test_ticket_search_finds_customer_tickets_by_the_request_term(client: Any) -> None:
    async def search(category: str) -> list[dict[str, Any]]:
        query = {"operator": "AND", "value": [
            {"field": "open", "operator": "=", "value": True},
            {"field": "category", "operator": "=", "value": category}]}  # fmt: skip
        body = {"query": query, "pagination": {"per_page": 150}}
        return list(
            (await intercom(client, "POST", "/tickets/search", json=body)).json()["tickets"]
        )

    found = await search("request")
    assert found
    assert all(t["open"] and t["category"] == "Customer" for t in found)
    assert await search("Customer") == []  # the category's name is not its search term


async def test_ticket_note_and_state_change_become_ticket_parts(client: Any) -> None:
    note = {"message_type": "note", "type": "admin", "admin_id": "991001", "body": "1/3"}
    part = (await intercom(client, "POST", "/tickets/20003/reply", json=note)).json()
    assert (part["type"], part["part_type"], part["body"]) == ("ticket_part", "note", "1/3")
    update = {"ticket_state_id": "4004", "admin_id": 991001}
    ticket = (await intercom(client, "PUT", "/tickets/20003", json=update)).json()
    parts = ticket["ticket_parts"]["ticket_parts"]
    assert [p["part_type"] for p in parts] == ["note", "ticket_state_updated_by_admin"]
    assert (parts[1]["ticket_state"], ticket["open"]) == ("resolved", False)
    refused = await intercom(client, "PUT", "/tickets/20003", json={"ticket_state_id": "1"})
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["code"] == "ticket_state_id_invalid"


async def test_asana_offset_pages_walk_every_task_once(client: Any, sandbox: Sandbox) -> None:
    seen: list[str] = []
    path: str | None = f"/projects/{ASANA_PROJECT_GID}/tasks?limit=9&opt_fields=name,completed"
    while path:
        body = (await client.get(f"{ASANA}{path}", headers=ASANA_AUTH)).json()
        seen += [task["gid"] for task in body["data"]]
        assert set(body["data"][0]) == {"gid", "resource_type", "name", "completed"}
        path = body["next_page"]["path"] if body["next_page"] else None
    assert seen == [task["gid"] for _, task in sandbox.asana.tasks()]


async def test_asana_custom_field_update_by_option_gid_and_date(client: Any) -> None:
    task = (await client.get(f"{ASANA}/projects/{ASANA_PROJECT_GID}/tasks?limit=1",
                             headers=ASANA_AUTH)).json()["data"][0]  # fmt: skip
    high = next(gid for gid, name, _ in PRIORITY_OPTIONS if name == "High")
    change = {"custom_fields": {PRIORITY: high, LAST_FOLLOW_UP: {"date": "2026-03-11"}}}
    response = await client.put(f"{ASANA}/tasks/{task['gid']}", json={"data": change},
                                headers=ASANA_AUTH)  # fmt: skip
    assert response.status_code == 200

    fields = {
        f["name"]: f
        for f in (await client.get(f"{ASANA}/tasks/{task['gid']}", headers=ASANA_AUTH)).json()[
            "data"
        ]["custom_fields"]
    }
    assert fields["Priority"]["enum_value"]["name"] == "High"
    assert fields["Last follow-up date"]["date_value"]["date"] == "2026-03-11"


async def test_asana_tells_a_field_change_once_however_often_it_is_sent(client: Any) -> None:
    gid = "1206000000000002"
    change = {"data": {"custom_fields": {LAST_FOLLOW_UP: {"date": "2026-03-12"}}}}
    for _ in range(2):  # a retried update: same value again
        await client.put(f"{ASANA}/tasks/{gid}", json=change, headers=ASANA_AUTH)
    stories = (await client.get(f"{ASANA}/tasks/{gid}/stories", headers=ASANA_AUTH)).json()["data"]
    assert [s["text"] for s in stories].count('changed Last follow-up date to "2026-03-12"') == 1


@pytest.mark.parametrize(
    "change",
    [
        {"custom_fields": {PRIORITY: "High"}},  # by name, not by option gid
        {"custom_fields": {LAST_FOLLOW_UP: "11/03/2026"}},  # not YYYY-MM-DD
        {"custom_fields": {LAST_FOLLOW_UP: {"day": "2026-03-11"}}},
        {"custom_fields": {"123": "x"}},
        {"colour": "red"},
    ],
)
async def test_asana_refuses_malformed_updates(client: Any, change: dict[str, Any]) -> None:
    gid = next(iter((await client.get(f"{ASANA}/projects/{ASANA_PROJECT_GID}/tasks?limit=1",
                                      headers=ASANA_AUTH)).json()["data"]))["gid"]  # fmt: skip
    response = await client.put(f"{ASANA}/tasks/{gid}", json={"data": change}, headers=ASANA_AUTH)
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"]


@pytest.mark.parametrize("written", ["2026-03-13", {"date": "2026-03-13"}])
async def test_asana_takes_a_date_in_both_forms_the_documents_show(
    client: Any, written: Any
) -> None:
    """vendor-behaviours A2: the description's string, the custom-field guide's object."""
    gid = f"{1_206_000_000_000_000 + 3}"
    change = {"data": {"custom_fields": {LAST_FOLLOW_UP: written}}}
    response = await client.put(f"{ASANA}/tasks/{gid}", json=change, headers=ASANA_AUTH)
    assert response.status_code == 200, response.text
    fields = response.json()["data"]["custom_fields"]
    date_value = next(f for f in fields if f["gid"] == LAST_FOLLOW_UP)["date_value"]
    assert date_value["date"] == "2026-03-13"


async def test_asana_comment_is_listed_with_its_author(client: Any) -> None:
    gid = "1206000000000001"
    await client.post(f"{ASANA}/tasks/{gid}/stories", json={"data": {"text": "Any news?"}},
                      headers=ASANA_AUTH)  # fmt: skip
    stories = (await client.get(f"{ASANA}/tasks/{gid}/stories", headers=ASANA_AUTH)).json()["data"]
    assert stories[-1]["text"] == "Any news?"
    assert stories[-1]["created_by"]["name"] == "Followup Worker"


async def test_asana_project_names_the_contract_fields(client: Any) -> None:
    settings = (await client.get(f"{ASANA}/projects/{ASANA_PROJECT_GID}/custom_field_settings",
                                 headers=ASANA_AUTH)).json()["data"]  # fmt: skip
    assert [s["custom_field"]["name"] for s in settings] == [
        "Priority", "User last updated", "Last follow-up date", "Intercom contact"
    ]  # fmt: skip


async def test_snoozed_conversation_reopens_when_the_clock_passes_its_snooze(client: Any) -> None:
    snooze = {
        "message_type": "snoozed",
        "admin_id": "991001",
        "snoozed_until": 1_773_241_200 + 86_400,
    }
    snoozed = (await intercom(client, "POST", "/conversations/10004/parts", json=snooze)).json()
    assert snoozed["state"] == "snoozed"
    await client.post("/_admin/clock", json={"advance_days": 2})
    woken = (await intercom(client, "GET", "/conversations/10004")).json()
    assert (woken["state"], woken["snoozed_until"]) == ("open", None)
    assert woken["conversation_parts"]["conversation_parts"][-1]["part_type"] == "timer_unsnooze"


async def test_asana_pages_of_incomplete_tasks_skip_completed_ones(
    client: Any, sandbox: Sandbox
) -> None:
    seen: list[str] = []
    path: str | None = f"/projects/{ASANA_PROJECT_GID}/tasks?limit=6&completed_since=now"
    while path:
        body = (await client.get(f"{ASANA}{path}", headers=ASANA_AUTH)).json()
        seen += [task["gid"] for task in body["data"]]
        path = body["next_page"]["path"] if body["next_page"] else None
    expected = [task["gid"] for _, task in sandbox.asana.tasks() if not task["completed"]]
    assert seen == expected
    assert len(expected) < sandbox.generator.task_count


async def test_outbound_email_message_lands_in_the_outbox(client: Any, sandbox: Sandbox) -> None:
    contact = next(c for c in sandbox.intercom.contacts() if c["email"])
    message = {"message_type": "email", "subject": "Your bug", "body": "Fixed next week.",
               "template": "plain", "from": {"type": "admin", "id": 991001},
               "to": {"type": "user", "id": contact["id"]}}  # fmt: skip
    sent = (await intercom(client, "POST", "/messages", json=message)).json()
    assert (sent["type"], sent["message_type"], sent["subject"]) == (
        "admin_message",
        "email",
        "Your bug",
    )
    outbox = (await client.get("/_admin/outbox")).json()["messages"]
    assert [(m["to"], m["subject"], m["body"]) for m in outbox] == [
        (contact["email"], "Your bug", "Fixed next week.")
    ]
    unknown = {**message, "to": {"type": "user", "id": "nobody"}}
    assert (await intercom(client, "POST", "/messages", json=unknown)).status_code == 404


async def test_intercom_search_pages_hold_at_most_150_and_go_on_from_pages_next(
    client: Any,
) -> None:
    """vendor-behaviours I6: ``pagination.per_page`` at most 150, ``starting_after`` from
    ``pages.next``."""
    query = {"field": "open", "operator": "=", "value": True}
    too_many = {"query": query, "pagination": {"per_page": 151}}
    refused = await intercom(client, "POST", "/conversations/search", json=too_many)
    assert refused.status_code == 400
    assert refused.json()["type"] == "error.list"

    first = (
        await intercom(client, "POST", "/conversations/search",
                       json={"query": query, "pagination": {"per_page": 5}})
    ).json()  # fmt: skip
    after = first["pages"]["next"]["starting_after"]
    second = (
        await intercom(client, "POST", "/conversations/search",
                       json={"query": query, "pagination": {"per_page": 5,
                                                            "starting_after": after}})
    ).json()  # fmt: skip
    ids = [c["id"] for c in first["conversations"] + second["conversations"]]
    assert len(ids) == len(set(ids)) == 10


async def test_asana_throttles_with_retry_after_and_no_remaining_count() -> None:
    """vendor-behaviours A3: 429 with ``Retry-After`` only; no rate-limit headers at all."""
    sandbox = small_sandbox(limits={"asana": VendorLimit(2)})
    async with client_for(sandbox) as client:
        answers = [await client.get(f"{ASANA}/users/me", headers=ASANA_AUTH) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert int(answers[2].headers["Retry-After"]) > 0
    for answer in answers:
        assert not [h for h in answer.headers if "ratelimit" in h.lower().replace("-", "")]


async def test_a_message_is_from_an_integer_admin_id_to_the_contact_s_role(
    client: Any, sandbox: Sandbox
) -> None:
    """vendor-behaviours I1: ``from.id`` an integer, ``to.type`` the contact's ``role``."""
    lead = next(c for c in sandbox.intercom.contacts() if c["role"] == "lead" and c["email"])
    message = {"message_type": "email", "subject": "Your bug", "body": "Fixed. fw-m1",
               "template": "plain", "from": {"type": "admin", "id": 991001},
               "to": {"type": "user", "id": lead["id"]}}  # fmt: skip
    as_user = await intercom(client, "POST", "/messages", json=message)
    assert as_user.status_code == 404  # a lead is not found among the users
    string_id = {**message, "from": {"type": "admin", "id": "991001"}}
    string_id["to"] = {"type": "lead", "id": lead["id"]}
    # A deliberate refusal stays out of the run's summary (whose goal is 0 rejected).
    assert sandbox.contract is not None
    tally, sandbox.contract.process_tally = sandbox.contract.process_tally, None
    try:
        assert (await intercom(client, "POST", "/messages", json=string_id)).status_code == 400
    finally:
        sandbox.contract.process_tally = tally
    as_lead = {**message, "to": {"type": "lead", "id": lead["id"]}}
    assert (await intercom(client, "POST", "/messages", json=as_lead)).status_code == 200
    outbox = (await client.get("/_admin/outbox")).json()["messages"]
    assert [m["to"] for m in outbox] == [lead["email"]]


async def test_a_sent_message_is_found_by_the_marker_in_its_body(client: Any) -> None:
    """vendor-behaviours I4: no idempotency key on ``POST /messages``, but its conversation
    is found by conversation search, ``source.body`` with ``~``; it stays out of the inbox."""
    message = {"message_type": "email", "subject": "Your bug", "body": "Fixed.\n\nRef: fw-x9",
               "template": "plain", "from": {"type": "admin", "id": 991001},
               "to": {"type": "user", "id": "6" + "1".zfill(23)}}  # fmt: skip
    sent = (await intercom(client, "POST", "/messages", json=message)).json()

    async def search(query: dict[str, Any]) -> list[dict[str, Any]]:
        body = {"query": query, "pagination": {"per_page": 150}}
        found = await intercom(client, "POST", "/conversations/search", json=body)
        return list(found.json()["conversations"])

    [found] = await search({"field": "source.body", "operator": "~", "value": "fw-x9"})
    assert (found["id"], found["state"]) == (sent["conversation_id"], "closed")
    assert await search({"field": "source.body", "operator": "~", "value": "fw-zz"}) == []
    inbox = await search({"field": "open", "operator": "=", "value": True})
    assert sent["conversation_id"] not in {c["id"] for c in inbox}


async def test_the_plan_lives_on_the_contact_s_company(client: Any) -> None:
    """vendor-behaviours I3: ``plan: {type, id, name}`` on the company, reached through
    ``/contacts/{id}/companies``; not among the contact's custom attributes."""
    contacts = (await intercom(client, "GET", "/contacts", params={"per_page": 150})).json()
    member = next(c for c in contacts["data"] if c["companies"]["data"])
    assert "plan" not in member["custom_attributes"]
    path = f"/contacts/{member['id']}/companies"
    [company] = (await intercom(client, "GET", path)).json()["data"]
    assert set(company["plan"]) == {"type", "id", "name"}
    loner = next(c for c in contacts["data"] if not c["companies"]["data"])
    assert loner["custom_attributes"]["plan"]  # without a company, the attribute remains
