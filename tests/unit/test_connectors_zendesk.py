"""Zendesk: the requests the connector sends and what it makes of the answers."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import respx

from connectors.base import WriteOutcome
from connectors.errors import MappingError, PaginationStuck
from connectors.mapping import ZendeskMapping
from connectors.settings import Timeouts
from connectors.zendesk import ZendeskConnector, endpoint_classes
from connectors.zendesk_json import (
    ZendeskIds,
    comment_activity,
    indexed_comment,
    ticket_case,
    ticket_updates,
)
from policies.model import (
    Action,
    ActionType,
    Activity,
    ActivityKind,
    Case,
    CaseKind,
    FollowUpMark,
    PlanItem,
    PlanTier,
    Source,
    Status,
)
from tests.connectors_support import FakeClock, make_client

BASE = "https://acme.zendesk.com"
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
STAMP = "2026-03-09T10:00:00Z"
KEY = "0123456789abcdef"

MAPPING = ZendeskMapping(
    ticket_fields={"request_type": "Request type", "order_status": "Order status"},
    groups=["Support", "Unresponsive Customers"],
    agents=["Roxy V"],
)
IDS = ZendeskIds(
    me=21,
    fields={"request_type": 101, "order_status": 102},
    options={"order_status": {"unresponsive": "unresponsive"}},
    groups={"Support": 11, "Unresponsive Customers": 12},
    agents={"Roxy V": 21},
)


def case(**changes: Any) -> Case:
    fields: dict[str, Any] = {
        "source": Source.ZENDESK,
        "id": "7",
        "kind": CaseKind.TICKET,
        "status": Status.PENDING,
        "created_at": NOW,
        "updated_at": NOW,
        "updated_stamp": STAMP,
    }
    return Case(**{**fields, **changes})


def item(*actions: Action, on: Case | None = None) -> PlanItem:
    return PlanItem(
        case=on or case(),
        policy="general_inquiry",
        rule="day3",
        step=2,
        max_steps=3,
        actions=actions,
        reason="pending 2 business days",
        key=KEY,
    )


NOTE = Action(ActionType.NOTE, {"body": "2/3"})
REPLY = Action(ActionType.REPLY, {"template": "final", "body": "Hello again"})
FOOTER = f"— followup-worker · general_inquiry · step 2/3 · fw-{KEY}"


# -- plan item -> update bodies (pure) ----------------------------------------------------


def test_all_changes_of_a_ticket_go_in_one_note_update() -> None:
    updates = ticket_updates(
        item(
            NOTE,
            Action(ActionType.REACH_OUT, {"channels": ["call", "text"]}),
            Action(ActionType.SET_STATUS, {"status": "solved"}),
            Action(ActionType.SET_ASSIGNEE, {"assignee": "Unresponsive Customers/Roxy V"}),
            Action(ActionType.SET_FIELD, {"field": "order_status", "value": "Unresponsive"}),
            Action(ActionType.ADD_TAGS, {"tags": ["fu_done"]}),
            Action(ActionType.REMOVE_TAGS, {"tags": ["fu_active"]}),
        ),
        IDS,
    )
    assert updates.reply is None
    assert updates.note == {
        "comment": {"body": f"2/3\n\nReach out by: call, text\n\n{FOOTER}", "public": False},
        "status": "solved",
        "group_id": 12,
        "assignee_id": 21,
        "custom_fields": [{"id": 102, "value": "unresponsive"}],
        "tags": ["followup_worker", "fu_done"],
    }


def test_z3_the_whole_tag_list_goes_with_each_update() -> None:
    """vendor-behaviours.md Z3: the single update's ``tags`` replaces the ticket's tags (no
    additional_tags/remove_tags), so the tags read are kept, the added ones join and the
    removed ones leave; safe_update guards what was read."""
    read = case(tags=frozenset({"vip", "fu_active", f"fw-{KEY}"}))
    updates = ticket_updates(
        item(REPLY, NOTE, Action(ActionType.REMOVE_TAGS, {"tags": ["fu_active"]}), on=read), IDS
    )
    assert updates.reply is not None
    assert updates.reply["tags"] == ["followup_worker", "fu_active", f"fw-{KEY}", "vip"]
    assert updates.note["tags"] == ["followup_worker", "vip"]
    assert not {"additional_tags", "remove_tags"} & {*updates.reply, *updates.note}


def test_a_reply_goes_first_tagged_with_the_marker_and_the_note_removes_the_tag() -> None:
    updates = ticket_updates(item(REPLY, NOTE), IDS)
    assert updates.reply == {
        "comment": {"body": "Hello again", "public": True},
        "tags": ["followup_worker", f"fw-{KEY}"],
    }
    assert updates.note["comment"] == {"body": f"2/3\n\n{FOOTER}", "public": False}
    assert updates.note["tags"] == ["followup_worker"]


def test_a_change_without_a_note_still_leaves_a_signed_note() -> None:
    updates = ticket_updates(item(Action(ActionType.SET_STATUS, {"status": "pending"})), IDS)
    assert updates.note["comment"]["body"] == f"pending 2 business days\n\n{FOOTER}"


def test_vendor_option_values_read_as_the_policies_words_and_write_back() -> None:
    # The tenant's Phase options are phase_1..phase_4; the policies count phases 1..4.
    ids = ZendeskIds(
        me=21,
        fields={"phase": 105},
        options={"phase": {"phase 2: review": "phase_2", "phase_2": "phase_2"}},
        values={"phase": {"phase_1": "1", "phase_2": "2"}},
    )
    ticket = {
        "id": 7, "status": "open", "created_at": STAMP, "updated_at": STAMP,
        "custom_fields": [{"id": 105, "value": "phase_2"}, {"id": 999, "value": "x"}],
    }  # fmt: skip

    assert ticket_case(ticket, {}, [], ids).fields == {"phase": "2"}
    updates = ticket_updates(
        item(Action(ActionType.SET_FIELD, {"field": "phase", "value": "2"})), ids
    )
    assert updates.note["custom_fields"] == [{"id": 105, "value": "phase_2"}]


def _api_comment(body: str, *, public: bool, at: str = "2026-03-09T10:00:00Z") -> dict[str, Any]:
    return {"author_id": 21, "body": body, "public": public, "created_at": at,
            "via": {"channel": "api"}}  # fmt: skip


@pytest.mark.parametrize(
    "tags",
    [
        pytest.param(["vip", f"fw-{KEY}"], id="the last reply's note never came"),
        pytest.param(["vip"], id="every reply has its note"),
    ],
)
def test_the_workers_own_replies_are_never_an_agents_answer(tags: list[str]) -> None:
    # Whether or not a writer died between a reply and its note: were the worker's reply an
    # agent's answer, a phase update would start seed 002's "did the solution work?" sequence
    # (from whenever a fault let the update land) and a half-done follow-up would restart the
    # customer's wait. A human's public answer, under their own user or typed as the worker's
    # user in the agent interface, is an answer.
    ticket = {"id": 7, "status": "pending", "created_at": STAMP, "updated_at": STAMP,
              "requester_id": 501, "tags": tags}  # fmt: skip
    earlier_footer = "1/3\n\n— followup-worker · awaiting-customer · step 1/3 · fw-00aa"
    comments = [
        _api_comment("Any news?", public=True, at="2026-03-05T10:00:00Z"),
        _api_comment(earlier_footer, public=False, at="2026-03-05T10:00:01Z"),
        {**_api_comment("Try clearing the cache.", public=True, at="2026-03-06T10:00:00Z"),
         "author_id": 1002, "via": {"channel": "web"}},
        {**_api_comment("Did that help?", public=True, at="2026-03-06T11:00:00Z"),
         "via": {"channel": "web"}},
        _api_comment("Still there?", public=True, at="2026-03-09T10:00:00Z"),
    ]  # fmt: skip

    read = ticket_case(ticket, {}, comments, IDS)

    assert read.history == (
        Activity(ActivityKind.AGENT_UPDATE, datetime(2026, 3, 6, 10, tzinfo=UTC)),
        Activity(ActivityKind.AGENT_UPDATE, datetime(2026, 3, 6, 11, tzinfo=UTC)),
    )
    assert [mark.key for mark in read.followups] == ["00aa"]


@pytest.mark.parametrize(
    "action",
    [
        Action(ActionType.SET_ASSIGNEE, {"assignee": "Nobody"}),
        Action(ActionType.SET_GROUP, {"group": "Nowhere"}),
        Action(ActionType.SET_FIELD, {"field": "phase", "value": "x"}),
        Action(ActionType.SET_FIELD, {"field": "order_status", "value": "lost"}),
        Action(ActionType.SET_BUG_FIELD, {"field": "priority", "value": "High"}),
    ],
    ids=["agent", "group", "unmapped-field", "unknown-option", "not-a-zendesk-action"],
)
def test_unknown_names_fail_before_any_call(action: Action) -> None:
    with pytest.raises(MappingError):
        ticket_updates(item(action), IDS)


# -- the connector over respx ---------------------------------------------------------------


@pytest.fixture
def router() -> respx.MockRouter:
    router = respx.MockRouter(assert_all_called=False, base_url=BASE)
    router.get("/api/v2/ticket_fields").respond(
        json={
            "ticket_fields": [
                {
                    "id": 101,
                    "title": "Request type",
                    "custom_field_options": [{"name": "Refund request", "value": "refund_request"}],
                },
                {
                    "id": 102,
                    "title": "Order status",
                    "custom_field_options": [{"name": "Unresponsive", "value": "unresponsive"}],
                },
            ],
            "meta": {"has_more": False},
            "links": {"next": None},
        }
    )
    router.get("/api/v2/groups").respond(
        json={"groups": [{"id": 12, "name": "Unresponsive Customers"}], "next_page": None}
    )
    router.get("/api/v2/users").respond(
        json={"users": [{"id": 21, "name": "Roxy V"}], "next_page": None}
    )
    router.get("/api/v2/users/me").respond(json={"user": {"id": 99, "name": "followup-worker"}})
    return router


def connector(router: respx.MockRouter, **options: Any) -> ZendeskConnector:
    client = make_client(router, FakeClock(), base_url=BASE)
    return ZendeskConnector(client, MAPPING, clock=lambda: NOW, **options)


def ticket(id: int, status: str = "pending", **extra: Any) -> dict[str, Any]:
    return {
        "id": id,
        "status": status,
        "created_at": "2026-03-01T09:00:00Z",
        "updated_at": STAMP,
        "requester_id": 500 + id,
        "organization_id": 900,
        "assignee_id": 21,
        "group_id": 12,
        "custom_fields": [{"id": 101, "value": "refund_request"}, {"id": 999, "value": "x"}],
        "tags": ["vip"],
        **extra,
    }


def comments_page(*comments: dict[str, Any], has_more: bool = False) -> dict[str, Any]:
    return {
        "comments": list(comments),
        "meta": {"has_more": has_more, "after_cursor": "c2"},
        "links": {"next": f"{BASE}/api/v2/tickets/1/comments?page[after]=c2" if has_more else None},
    }


def unix(at: str) -> int:
    return int(datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp())


def audit(ticket_id: int, at: str, *comments: dict[str, Any]) -> dict[str, Any]:
    """One ticket update as the ticket event export shows it, ``comments`` as its children."""
    return {
        "id": ticket_id * 10**10 + unix(at),
        "ticket_id": ticket_id,
        "timestamp": unix(at),
        "created_at": at,
        "updater_id": 99,
        "via": {"channel": "api"},
        "event_type": "Audit",
        "child_events": [
            {"id": n, "event_type": "Comment", "type": "Comment", "created_at": at,
             "public": True, "via": {"channel": "web"}, "html_body": "<p>...</p>",
             "attachments": [], **comment}
            for n, comment in enumerate(comments, start=1)
        ],
    }  # fmt: skip


def events_page(*events: dict[str, Any], end_of_stream: bool = True) -> dict[str, Any]:
    end = max((event["timestamp"] for event in events), default=unix(STAMP))
    return {"ticket_events": list(events), "count": len(events), "next_page": None,
            "end_of_stream": end_of_stream, "end_time": end}  # fmt: skip


def one_page(*tickets: dict[str, Any]) -> dict[str, Any]:
    return {"tickets": list(tickets), "users": [], "after_url": None, "end_of_stream": True}


MISSED_CALL = {"author_id": 501, "type": "VoiceComment", "public": False,
               "via": {"channel": "voice"},
               "data": {"from": "+1555", "call_duration": 0, "answered_by_id": None}}  # fmt: skip
VOICE = {"event_type": "VoiceComment"}  # how an audit names it; the export may do the same
SIGNED_NOTE = {"author_id": 99, "body": f"1/3\n\n{FOOTER}", "public": False}


async def test_cases_stream_with_side_loaded_requesters_and_comments_from_the_event_export(
    router: respx.MockRouter,
) -> None:
    export = router.get("/api/v2/incremental/tickets/cursor").mock(
        side_effect=[
            httpx.Response(
                200,
                json={
                    "tickets": [ticket(1), ticket(2, "solved"), ticket(3, "deleted")],
                    "users": [{"id": 501, "name": "Ann", "email": "ann@x.test", "phone": None}],
                    "after_url": f"{BASE}/api/v2/incremental/tickets/cursor?cursor=abc",
                    "after_cursor": "abc",
                    "end_of_stream": False,
                },
            ),
            httpx.Response(
                200,
                json={
                    "tickets": [ticket(4, "open")],
                    "users": [{"id": 504, "name": "Bo", "phone": "+1555"}],
                    "after_url": None,
                    "end_of_stream": True,
                },
            ),
        ]
    )
    events = router.get("/api/v2/incremental/ticket_events").respond(
        json=events_page(
            audit(1, "2026-03-04T10:00:00Z", MISSED_CALL),
            audit(1, "2026-03-05T10:00:00Z", SIGNED_NOTE),
            audit(2, "2026-03-06T10:00:00Z", {"author_id": 502, "body": "thanks"}),
            audit(1, STAMP),  # a change without a comment: the ticket's updated_at
            audit(4, STAMP),
        )
    )
    comments = router.get(url__regex=r"/api/v2/tickets/\d+/comments")
    users = router.get(url__regex=r"/api/v2/users/\d+")

    async with connector(router) as zendesk:
        cases = [c async for c in zendesk.cases()]

    assert [c.id for c in cases] == ["1", "4"]
    first = cases[0]
    assert first.requester is not None
    assert first.requester.email == "ann@x.test"
    assert first.fields == {"request_type": "refund_request"}
    assert (first.assignee, first.group, first.account_id) == (
        "Roxy V",
        "Unresponsive Customers",
        "900",
    )
    assert [a.kind for a in first.history] == [ActivityKind.MISSED_CALL]
    assert [(m.policy, m.step, m.key) for m in first.followups] == [("general_inquiry", 2, KEY)]
    assert first.updated_stamp == STAMP
    assert cases[1].history == ()
    params = export.calls[0].request.url.params
    assert params["include"] == "users"
    since = str(int(datetime(2025, 3, 10, 12, tzinfo=UTC).timestamp()))
    assert params["start_time"] == since
    second = export.calls[1].request.url.params
    assert (second["cursor"], second["include"], "start_time" in second) == ("abc", "users", False)
    read = events.calls[0].request.url.params
    assert (read["start_time"], read["include"]) == (since, "comment_events")
    assert events.call_count == 1
    assert not users.called
    assert not comments.called  # no call per ticket


async def test_event_pages_go_on_from_end_time_and_repeats_count_once(
    router: respx.MockRouter,
) -> None:
    reply = {"author_id": 501, "body": "hi", "via": {"channel": "email"}}
    repeated = audit(1, "2026-03-05T10:00:00Z", reply)
    pages = [
        events_page(audit(1, "2026-03-04T10:00:00Z", MISSED_CALL), repeated, end_of_stream=False),
        events_page(repeated, audit(1, STAMP, {"author_id": 99, "body": "agent"})),
    ]
    events = router.get("/api/v2/incremental/ticket_events").mock(
        side_effect=[httpx.Response(200, json=page) for page in pages]
    )
    router.get("/api/v2/incremental/tickets/cursor").respond(json=one_page(ticket(1)))
    async with connector(router, page_size=2) as zendesk:
        (found,) = [c async for c in zendesk.cases()]
    assert [a.kind for a in found.history] == [
        ActivityKind.MISSED_CALL,
        ActivityKind.CUSTOMER_REPLY,
        ActivityKind.AGENT_UPDATE,
    ]
    second = events.calls[1].request.url.params
    assert second["start_time"] == str(unix("2026-03-05T10:00:00Z"))
    assert (second["include"], second["per_page"]) == ("comment_events", "2")


async def test_a_ticket_changed_since_the_export_showed_it_reads_its_own_comments(
    router: respx.MockRouter,
) -> None:
    # The export's last event of ticket 1 is older than its updated_at: whatever changed then
    # (a customer's reply, say) is not in the index, and safe_update would not catch it.
    router.get("/api/v2/incremental/ticket_events").respond(
        json=events_page(audit(1, "2026-03-05T10:00:00Z", SIGNED_NOTE), audit(4, STAMP))
    )
    router.get("/api/v2/incremental/tickets/cursor").respond(
        json=one_page(ticket(1), ticket(4, "open"))
    )
    own = router.get("/api/v2/tickets/1/comments").respond(
        json=comments_page(
            {"id": 2, "author_id": 501, "body": "here it is", "public": True,
             "via": {"channel": "email"}, "created_at": STAMP},
            {"id": 1, **SIGNED_NOTE, "created_at": "2026-03-05T10:00:00Z"},
        )
    )  # fmt: skip
    others = router.get("/api/v2/tickets/4/comments")
    async with connector(router) as zendesk:
        first, _ = [c async for c in zendesk.cases()]
    assert own.call_count == 1
    assert not others.called
    assert [a.kind for a in first.history] == [ActivityKind.CUSTOMER_REPLY]


async def test_an_old_ticket_without_inbound_activity_in_the_window_reads_its_own(
    router: respx.MockRouter,
) -> None:
    # Window: the last 5 days. Ticket 1 (created before it) shows only the worker's note in
    # the window: the reply that started its sequence is older, so it is read from the ticket.
    # Ticket 4 (also older) shows a missed call in the window: that is its latest inbound.
    router.get("/api/v2/incremental/ticket_events").respond(
        json=events_page(
            audit(4, "2026-03-06T10:00:00Z", {**MISSED_CALL, "author_id": 504, **VOICE}),
            audit(1, "2026-03-07T10:00:00Z", SIGNED_NOTE),
            audit(1, STAMP),
            audit(4, STAMP),
        )
    )
    router.get("/api/v2/incremental/tickets/cursor").respond(
        json=one_page(ticket(1), ticket(4, "open"))
    )
    own = router.get("/api/v2/tickets/1/comments").respond(
        json=comments_page(
            {"id": 2, **SIGNED_NOTE, "created_at": "2026-03-07T10:00:00Z"},
            {"id": 1, "author_id": 501, "body": "refund?", "public": True,
             "via": {"channel": "email"}, "created_at": "2026-03-02T10:00:00Z"},
        )
    )  # fmt: skip
    others = router.get("/api/v2/tickets/4/comments")
    client = make_client(router, FakeClock(), base_url=BASE)
    week = MAPPING.model_copy(update={"lookback_days": 5})
    async with ZendeskConnector(client, week, clock=lambda: NOW) as zendesk:
        first, fourth = [c async for c in zendesk.cases()]
    assert own.call_count == 1
    assert not others.called
    assert [a.kind for a in first.history] == [ActivityKind.CUSTOMER_REPLY]
    assert [a.kind for a in fourth.history] == [ActivityKind.MISSED_CALL]


async def test_an_event_that_names_no_ticket_makes_every_ticket_read_its_own(
    router: respx.MockRouter,
) -> None:
    router.get("/api/v2/incremental/ticket_events").respond(
        json=events_page(audit(1, STAMP), {**audit(4, STAMP), "ticket_id": None})
    )
    router.get("/api/v2/incremental/tickets/cursor").respond(json=one_page(ticket(1)))
    own = router.get("/api/v2/tickets/1/comments").respond(json=comments_page())
    async with connector(router) as zendesk:
        _ = [c async for c in zendesk.cases()]
    assert own.call_count == 1


async def test_the_index_keeps_a_half_written_follow_up_the_workers_not_an_agents(
    router: respx.MockRouter,
) -> None:
    # The worker's reply went out (tagged with the marker), its note never came: read from
    # the export, the reply is still not an agent's update that would restart the wait.
    reply = {"author_id": 99, "body": "Any news?", "via": {"channel": "api"}}
    router.get("/api/v2/incremental/ticket_events").respond(
        json=events_page(
            audit(1, "2026-03-04T10:00:00Z", {"author_id": 501, "body": "help", "via": {}}),
            audit(1, STAMP, reply),
        )
    )
    half_done = ticket(1, tags=["vip", f"fw-{KEY}"])
    router.get("/api/v2/incremental/tickets/cursor").respond(json=one_page(half_done))
    async with connector(router) as zendesk:
        (found,) = [c async for c in zendesk.cases()]
    assert [a.kind for a in found.history] == [ActivityKind.CUSTOMER_REPLY]


def test_the_index_keeps_only_what_the_translation_reads() -> None:
    child = {
        "id": 5, "event_type": "Comment", "type": "Comment", "author_id": 501,
        "body": "a long customer email " * 100, "html_body": "<p>...</p>" * 100,
        "attachments": [{"url": "x"}], "public": False, "created_at": STAMP,
        "via": {"channel": "email", "source": {"from": {"address": "ann@x.test"}}},
        "metadata": {"custom": {"missed": True}, "system": {"client": "x"}},
    }  # fmt: skip
    compact = indexed_comment(child)
    assert compact is not None
    assert compact.as_comment() == {
        "author_id": 501, "created_at": STAMP, "public": False, "type": "Comment",
        "via": {"channel": "email"}, "body": "", "metadata": {"custom": {"missed": True}},
    }  # fmt: skip
    signed = indexed_comment({**child, "body": f"2/3\n\n{FOOTER}"})
    assert signed is not None
    assert signed.body.endswith(FOOTER)
    assert indexed_comment({**child, "public": "yes"}) is None  # not Zendesk's: read alone


async def test_a_ticket_the_export_did_not_show_reads_newest_first_back_to_the_last_inbound(
    router: respx.MockRouter,
) -> None:
    router.get("/api/v2/incremental/ticket_events").respond(json=events_page())
    router.get("/api/v2/incremental/tickets/cursor").respond(
        json={
            "tickets": [ticket(1)],
            "users": [],
            "after_url": None,
            "end_of_stream": True,
        }
    )
    comments = router.get("/api/v2/tickets/1/comments").mock(
        side_effect=[
            httpx.Response(
                200,
                json=comments_page(
                    {
                        "id": 9,
                        "author_id": 99,
                        "body": "agent",
                        "public": True,
                        "created_at": "2026-03-06T10:00:00Z",
                    },
                    has_more=True,
                ),
            ),
            httpx.Response(
                200,
                json=comments_page(
                    {
                        "id": 8,
                        "author_id": 501,
                        "body": "hi",
                        "public": True,
                        "via": {"channel": "email"},
                        "created_at": "2026-03-05T10:00:00Z",
                    },
                    {
                        "id": 7,
                        "author_id": 501,
                        "body": "missed",
                        "public": False,
                        "via": {"channel": "email"},
                        "metadata": {"custom": {"missed": True}},
                        "created_at": "2026-03-04T10:00:00Z",
                    },
                    has_more=True,
                ),
            ),
        ]
    )
    async with connector(router) as zendesk:
        (found,) = [c async for c in zendesk.cases()]
    assert comments.call_count == 2  # the third page is older than the last customer reply
    assert comments.calls[0].request.url.params["sort"] == "-created_at"
    assert [a.kind for a in found.history] == [
        ActivityKind.MISSED_EMAIL,
        ActivityKind.CUSTOMER_REPLY,
        ActivityKind.AGENT_UPDATE,
    ]


async def test_accounts_read_plan_and_flags_from_organization_fields(
    router: respx.MockRouter,
) -> None:
    router.get("/api/v2/organizations").respond(
        json={
            "organizations": [
                {
                    "id": 1,
                    "name": "A",
                    "organization_fields": {
                        "plan": "Enterprise",
                        "account_status": "active",
                        "stop_followups": False,
                    },
                },
                {
                    "id": 2,
                    "name": "B",
                    "organization_fields": {
                        "plan": "legacy_gold",
                        "account_status": "canceled",
                        "stop_followups": True,
                    },
                },
            ],
            "meta": {"has_more": False},
            "links": {"next": None},
        }
    )
    async with connector(router) as zendesk:
        accounts = [a async for a in zendesk.accounts()]
    assert [(a.id, a.plan, a.raw_plan, a.canceled, a.stop_followups) for a in accounts] == [
        ("1", PlanTier.ENTERPRISE, "Enterprise", False, False),
        ("2", None, "legacy_gold", True, True),
    ]


def put_body(route: respx.Route, n: int = 0) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(route.calls[n].request.content)["ticket"]
    return body


async def test_apply_is_one_safe_update(router: respx.MockRouter) -> None:
    put = router.put("/api/v2/tickets/7").respond(
        json={"ticket": {"id": 7, "updated_at": "2026-03-10T12:00:01Z"}, "audit": {"id": 55}}
    )
    async with connector(router) as zendesk:
        result = await zendesk.apply(
            item(NOTE, Action(ActionType.SET_STATUS, {"status": "pending"}))
        )
    assert (result.outcome, result.calls, result.request_ids) == (WriteOutcome.APPLIED, 1, ("55",))
    body = put_body(put)
    assert (body["safe_update"], body["updated_stamp"], body["status"]) == (True, STAMP, "pending")


async def test_reply_and_note_are_two_updates_the_second_on_the_new_stamp(
    router: respx.MockRouter,
) -> None:
    put = router.put("/api/v2/tickets/7").mock(
        side_effect=[
            httpx.Response(200, json={"ticket": {"updated_at": "2026-03-10T12:00:01Z"}}),
            httpx.Response(200, json={"ticket": {"updated_at": "2026-03-10T12:00:02Z"}}),
        ]
    )
    async with connector(router) as zendesk:
        result = await zendesk.apply(item(REPLY, NOTE))
    assert (result.outcome, result.calls) == (WriteOutcome.APPLIED, 2)
    assert put_body(put, 0)["comment"]["public"] is True
    assert put_body(put, 1)["comment"]["public"] is False
    assert put_body(put, 1)["updated_stamp"] == "2026-03-10T12:00:01Z"


async def test_a_retried_item_whose_reply_went_out_does_not_email_again(
    router: respx.MockRouter,
) -> None:
    put = router.put("/api/v2/tickets/7").respond(json={"ticket": {"updated_at": STAMP}})
    told: list[str] = []
    async with connector(router) as zendesk:
        result = await zendesk.apply(
            item(REPLY, NOTE, on=case(tags=frozenset({f"fw-{KEY}"}))),
            replied=lambda: told.append("out"),
        )
    assert result.outcome is WriteOutcome.APPLIED
    assert told == ["out"]  # found out (the marker tag): the worker records it as well
    assert put.call_count == 1
    assert put_body(put)["comment"]["public"] is False


async def test_a_reply_out_and_its_note_refused_is_incomplete(router: respx.MockRouter) -> None:
    put = router.put("/api/v2/tickets/7").mock(
        side_effect=[
            httpx.Response(200, json={"ticket": {"updated_at": "2026-03-10T12:00:01Z"}}),
            httpx.Response(422, json={"error": "RecordInvalid"}),
        ]
    )
    told: list[int] = []
    async with connector(router) as zendesk:
        result = await zendesk.apply(item(REPLY, NOTE), replied=lambda: told.append(put.call_count))
    assert result.outcome is WriteOutcome.INCOMPLETE  # finished next cycle, without the reply
    assert told == [1]  # between the reply and the note


async def test_the_rest_of_a_half_done_item_takes_its_marker_tag_off(
    router: respx.MockRouter,
) -> None:
    put = router.put("/api/v2/tickets/7").respond(json={"ticket": {"updated_at": STAMP}})
    async with connector(router) as zendesk:
        result = await zendesk.apply(item(NOTE, on=case(tags=frozenset({f"fw-{KEY}"}))))
    assert result.outcome is WriteOutcome.APPLIED
    assert put_body(put)["tags"] == ["followup_worker"]


async def test_a_note_alone_that_fails_is_failed(router: respx.MockRouter) -> None:
    router.put("/api/v2/tickets/7").respond(status_code=422, json={"error": "RecordInvalid"})
    async with connector(router) as zendesk:
        result = await zendesk.apply(item(NOTE))
    assert result.outcome is WriteOutcome.FAILED  # nothing landed: the plan decides again


async def test_conflict_is_reported_for_a_re_plan(router: respx.MockRouter) -> None:
    router.put("/api/v2/tickets/7").respond(status_code=409)
    async with connector(router) as zendesk:
        result = await zendesk.apply(item(NOTE))
    assert result.outcome is WriteOutcome.CONFLICT


async def test_z2_a_ticket_s_update_past_its_ten_minute_budget_is_refused_unsent(
    router: respx.MockRouter,
) -> None:
    """vendor-behaviours.md Z2: about 30 updates per ticket per 10 minutes. The client keeps
    each ticket's updates under it (headroom kept: 28) and refuses the next one before it is
    sent, with the reason; other tickets are not held, and the window rolls."""
    put = router.put("/api/v2/tickets/7").respond(json={"ticket": {"updated_at": STAMP}})
    other_put = router.put("/api/v2/tickets/8").respond(json={"ticket": {"updated_at": STAMP}})
    clock = FakeClock()
    client = make_client(router, clock, base_url=BASE, classes=endpoint_classes(MAPPING))

    def note(n: int, ticket: str = "7") -> PlanItem:
        return dataclasses.replace(item(NOTE, on=case(id=ticket)), key=f"{n:016x}")

    async with ZendeskConnector(client, MAPPING, clock=lambda: NOW) as zendesk:
        sent = [await zendesk.apply(note(n)) for n in range(28)]
        refused = await zendesk.apply(note(28))
        other = await zendesk.apply(note(29, ticket="8"))
        assert (put.call_count, other_put.call_count) == (28, 1)  # the refused one never left
        clock.now += 600.0
        later = await zendesk.apply(note(28))
    assert {r.outcome for r in sent} == {WriteOutcome.APPLIED}
    assert refused.outcome is WriteOutcome.FAILED  # nothing landed: a later cycle sends it
    assert "PUT /api/v2/tickets/7: 28 requests to it in 600s" in refused.detail
    assert (other.outcome, later.outcome) == (WriteOutcome.APPLIED, WriteOutcome.APPLIED)


def fresh_ticket(router: respx.MockRouter, *comments: dict[str, Any]) -> None:
    router.get("/api/v2/tickets/7").respond(
        json={"ticket": {**ticket(7), "updated_at": "2026-03-10T12:00:05Z"}, "users": []}
    )
    router.get("/api/v2/tickets/7/comments").respond(json=comments_page(*comments))


async def test_lost_answer_with_the_marker_on_the_ticket_is_already_applied(
    router: respx.MockRouter,
) -> None:
    put = router.put("/api/v2/tickets/7").mock(side_effect=httpx.ReadTimeout("lost"))
    fresh_ticket(
        router,
        {
            "id": 1,
            "author_id": 99,
            "body": f"2/3\n\n{FOOTER}",
            "public": False,
            "created_at": "2026-03-10T12:00:00Z",
        },
    )
    async with connector(router) as zendesk:
        result = await zendesk.apply(item(NOTE))
    assert result.outcome is WriteOutcome.ALREADY_APPLIED
    assert put.call_count == 1


async def test_lost_answer_without_the_marker_is_written_once_more_on_the_old_stamp(
    router: respx.MockRouter,
) -> None:
    put = router.put("/api/v2/tickets/7").mock(
        side_effect=[
            httpx.Response(502),
            httpx.Response(200, json={"ticket": {"updated_at": STAMP}}),
        ]
    )
    fresh_ticket(router)
    async with connector(router) as zendesk:
        result = await zendesk.apply(item(NOTE))
    assert result.outcome is WriteOutcome.APPLIED
    assert put.call_count == 2
    assert put_body(put, 1)["updated_stamp"] == STAMP


async def test_twice_lost_is_failed_not_written_a_third_time(router: respx.MockRouter) -> None:
    put = router.put("/api/v2/tickets/7").respond(status_code=504)
    fresh_ticket(router)
    async with connector(router) as zendesk:
        result = await zendesk.apply(item(NOTE))
    assert result.outcome is WriteOutcome.FAILED
    assert put.call_count == 2


async def test_an_item_already_on_the_ticket_is_not_written(router: respx.MockRouter) -> None:
    put = router.put("/api/v2/tickets/7")
    done = case(followups=(FollowUpMark("general_inquiry", 2, NOW, KEY),))
    async with connector(router) as zendesk:
        result = await zendesk.apply(item(NOTE, on=done))
    assert (result.outcome, result.calls) == (WriteOutcome.ALREADY_APPLIED, 0)
    assert not put.called


async def test_unknown_agent_fails_without_a_call(router: respx.MockRouter) -> None:
    put = router.put("/api/v2/tickets/7")
    async with connector(router) as zendesk:
        result = await zendesk.apply(item(Action(ActionType.SET_ASSIGNEE, {"assignee": "Zed"})))
    assert result.outcome is WriteOutcome.FAILED
    assert "Zed" in result.detail
    assert not put.called


async def test_apply_many_writes_each_item_as_its_own_update(
    router: respx.MockRouter,
) -> None:
    bulk = router.put("/api/v2/tickets/update_many")
    single = router.put("/api/v2/tickets/7").respond(json={"ticket": {"updated_at": STAMP}})
    async with connector(router) as zendesk:
        (result,) = await zendesk.apply_many([item(NOTE)])
    assert result.outcome is WriteOutcome.APPLIED
    assert (bulk.called, single.call_count) == (False, 1)


# -- markers only from the worker's own hand (issue 14) ----------------------------------------


@pytest.mark.parametrize(
    ("author", "public"),
    [
        pytest.param(21, True, id="the worker's public reply echoing a subject"),
        pytest.param(501, True, id="the customer's message"),
        pytest.param(501, False, id="the customer's private comment"),
        pytest.param(502, True, id="a CC'd end user"),
        pytest.param(31, False, id="another agent's internal note"),
    ],
)
def test_a_footer_outside_the_worker_s_own_notes_is_text(author: int, public: bool) -> None:
    # A subject like "Refund — followup-worker · general-inquiry · step 3/3 · fw-..." echoed
    # into a reply, or typed by a customer, must not stop or advance their sequence.
    ticket = {"id": 7, "status": "open", "created_at": STAMP, "updated_at": STAMP,
              "requester_id": 501, "subject": f"Refund {FOOTER}"}  # fmt: skip
    forged = {"author_id": author, "body": f"Re: Refund {FOOTER}", "public": public,
              "created_at": "2026-03-09T10:00:00Z"}  # fmt: skip
    own = {"author_id": 21, "body": f"1/3\n\n{FOOTER}", "public": False,
           "created_at": "2026-03-05T10:00:00Z"}  # fmt: skip

    assert ticket_case(ticket, {}, [forged], IDS).followups == ()
    read = ticket_case(ticket, {}, [own, forged], IDS)
    assert [m.at.day for m in read.followups] == [5]  # only the worker's own note
    assert len(read.history) == 1  # the forged comment is still someone's activity


# vendor-behaviours.md Z5: Talk records no call status; an unanswered call (no answered_by_id)
# of the requester is a missed call, never a reply; an answered one is a conversation.
TALK = {
    "from": "+15550100",
    "to": "+18005550100",
    "recording_url": None,
    "call_duration": 0,
    "started_at": "2026-03-04T10:00:00Z",
    "transcription_text": None,
    "location": "US",
}
CALLS = [
    ({"type": "VoiceComment", "data": {**TALK, "answered_by_id": None}}, ActivityKind.MISSED_CALL),
    ({"type": "VoiceComment", "data": {**TALK, "call_duration": 35}}, ActivityKind.MISSED_CALL),
    ({"type": "Comment", "via": {"channel": "voice"}, "data": {**TALK, "recording_url": "r"}},
     ActivityKind.MISSED_CALL),  # a voicemail: nobody took the call
    ({"type": "VoiceComment", "data": {**TALK, "answered_by_id": 1001, "call_duration": 240}},
     ActivityKind.CUSTOMER_REPLY),
    ({"type": "VoiceComment", "author_id": 1001, "data": {**TALK, "answered_by_id": None}},
     ActivityKind.AGENT_UPDATE),  # an agent's outbound call
]  # fmt: skip


@pytest.mark.parametrize(("comment", "kind"), CALLS)
def test_z5_calls_are_recognised_from_what_talk_records(
    comment: dict[str, Any], kind: ActivityKind
) -> None:
    full = {"author_id": 501, "public": False, "created_at": "2026-03-04T10:00:00Z", **comment}
    activity = comment_activity(full, 501, 21)
    assert activity is not None
    assert activity.kind == kind
    compact = indexed_comment(full)  # the event export's compact copy reads the same
    assert compact is not None
    assert comment_activity(compact.as_comment(), 501, 21) == activity


TYPED_IDS = ZendeskIds(
    me=21,
    fields={"callback": 1, "products": 2, "attempts": 3, "amount": 4},
    options={"products": {"passport": "passport", "ein": "ein"}},
    values={"products": {"passport": "pp"}},
    types={"callback": "checkbox", "products": "multiselect", "attempts": "integer",
           "amount": "decimal"},
)  # fmt: skip
TYPED_VALUES = [  # vendor-behaviours.md Z4: (field, policy value, written, read back)
    ("callback", "true", True, "true"),
    ("callback", "no", False, "false"),
    ("products", "pp,ein", ["passport", "ein"], "pp,ein"),
    ("attempts", "3", 3, "3"),
    ("amount", "12.5", 12.5, "12.5"),
]


@pytest.mark.parametrize(("logical", "value", "written", "read"), TYPED_VALUES)
def test_z4_every_field_type_is_written_and_read_in_its_type(
    logical: str, value: str, written: Any, read: str
) -> None:
    assert TYPED_IDS.write_value(logical, value) == written
    assert TYPED_IDS.read_value(logical, written) == read


@pytest.mark.parametrize(("logical", "value"), [("callback", "maybe"), ("attempts", "x")])
def test_z4_a_value_the_field_type_cannot_take_is_a_mapping_error(logical: str, value: str) -> None:
    with pytest.raises(MappingError, match=logical):
        TYPED_IDS.write_value(logical, value)


def stuck_export(cursor: str) -> dict[str, Any]:
    return {"tickets": [ticket(1)], "users": [], "after_cursor": cursor, "end_of_stream": False,
            "after_url": f"{BASE}/api/v2/incremental/tickets/cursor?cursor={cursor}"}  # fmt: skip


async def test_z7_a_repeated_cursor_ends_the_stream_with_a_clear_error(
    router: respx.MockRouter,
) -> None:
    """vendor-behaviours.md Z7: a real export moves its cursor on; one that hands back a
    cursor already followed would loop forever, spending the export's 10 requests a minute."""
    export = router.get("/api/v2/incremental/tickets/cursor").mock(
        side_effect=[httpx.Response(200, json=stuck_export(c)) for c in ("a", "b", "a", "c")]
    )
    router.get("/api/v2/incremental/ticket_events").respond(json=events_page())
    router.get("/api/v2/tickets/1/comments").respond(json=comments_page())
    async with connector(router) as zendesk:
        with pytest.raises(PaginationStuck, match="page 3 repeats cursor=a"):
            [case async for case in zendesk.cases()]
    assert export.call_count == 3


async def test_z7_a_list_past_the_page_budget_ends_with_a_clear_error(
    router: respx.MockRouter,
) -> None:
    pages = (httpx.Response(200, json=stuck_export(f"c{n}")) for n in range(100))
    export = router.get("/api/v2/incremental/tickets/cursor").mock(side_effect=pages)
    router.get("/api/v2/incremental/ticket_events").respond(json=events_page())
    router.get("/api/v2/tickets/1/comments").respond(json=comments_page())
    async with connector(router, max_pages=5) as zendesk:
        with pytest.raises(PaginationStuck, match="still more after 5 pages"):
            [case async for case in zendesk.cases()]
    assert export.call_count == 5


async def test_z6_export_pages_are_read_with_the_longer_timeout(
    router: respx.MockRouter,
) -> None:
    """vendor-behaviours.md Z6: an export page holds up to 1,000 ticket updates with their
    comments; a 30 s read cut short is retried, spending one of the export's 10 requests a
    minute. Export pages get the export timeout; every other read keeps the client's."""
    read_timeouts: dict[str, float] = {}

    def answer(body: dict[str, Any]) -> Any:
        def respond(request: httpx.Request) -> httpx.Response:
            read_timeouts[request.url.path] = request.extensions["timeout"]["read"]
            return httpx.Response(200, json=body)

        return respond

    export = {"tickets": [ticket(1)], "users": [], "after_cursor": "a", "end_of_stream": True,
              "after_url": None}  # fmt: skip
    router.get("/api/v2/incremental/tickets/cursor").mock(side_effect=answer(export))
    router.get("/api/v2/incremental/ticket_events").mock(side_effect=answer(events_page()))
    router.get("/api/v2/tickets/1/comments").mock(side_effect=answer(comments_page()))
    slow_pages = Timeouts(read=30.0, export_read=120.0).for_exports()
    async with connector(router, export_timeout=slow_pages) as zendesk:
        [case async for case in zendesk.cases()]
    assert read_timeouts["/api/v2/incremental/tickets/cursor"] == 120.0
    assert read_timeouts["/api/v2/incremental/ticket_events"] == 120.0
    assert read_timeouts["/api/v2/tickets/1/comments"] == 30.0


async def test_z8_each_export_page_is_read_from_the_cursor_the_last_one_gave(
    router: respx.MockRouter,
) -> None:
    """vendor-behaviours.md Z8: a page's ``after_cursor`` is where the next read starts; the
    first page alone carries ``start_time`` (the cursor replaces it). Keeping the cursor between
    cycles is the incremental sync's part (issue 13); within a cycle the stream moves on."""
    pages = [stuck_export("a"), {**stuck_export("b"), "end_of_stream": True}]
    export = router.get("/api/v2/incremental/tickets/cursor").mock(
        side_effect=[httpx.Response(200, json=page) for page in pages]
    )
    router.get("/api/v2/incremental/ticket_events").respond(json=events_page())
    router.get("/api/v2/tickets/1/comments").respond(json=comments_page())
    async with connector(router) as zendesk:
        [case async for case in zendesk.cases()]
    first, second = (call.request.url.params for call in export.calls)
    assert ("start_time" in first, "cursor" in first) == (True, False)
    assert ("start_time" in second, second.get("cursor")) == (False, "a")
