"""Every request the Zendesk connector sends, and every response it parses, against the
Zendesk Support OpenAPI description: resolving names, the ticket event export with comments,
the incremental export with side-loaded users, comments, organizations, a fresh ticket read,
and the reply + note ticket updates."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
import respx

from connectors.base import Checkpoint
from connectors.mapping import ZendeskMapping
from connectors.settings import Timeouts, VendorLimits
from connectors.zendesk import ZendeskConnector
from policies.model import Action, ActionType, Case, CaseKind, PlanItem, Source, Status
from tests.contract.contract_support import Recorder, contract_errors, openapi

BASE = "https://example.zendesk.com"
STAMP = "2026-03-09T10:00:00Z"
FOOTER = "— followup-worker · refund · step 2/3 · fw-00000000000000aa"


@pytest.fixture(scope="module", autouse=True)
def spec_loaded() -> None:
    openapi("zendesk")


def ticket(id: int, status: str) -> dict[str, object]:
    return {
        "id": id,
        "url": f"{BASE}/api/v2/tickets/{id}.json",
        "status": status,
        "subject": "Refund",
        "created_at": "2026-03-01T09:00:00Z",
        "updated_at": STAMP,
        "requester_id": 501,
        "organization_id": 900,
        "assignee_id": 21,
        "group_id": 12,
        "priority": "normal",
        "tags": ["refund"],
        "custom_fields": [{"id": 101, "value": "refund_request"}, {"id": 102, "value": ""}],
    }


def comment(id: int, author: int, body: str, public: bool) -> dict[str, object]:
    return {
        "id": id,
        "type": "Comment",
        "author_id": author,
        "body": body,
        "public": public,
        "created_at": "2026-03-05T10:00:00Z",
        "via": {"channel": "email"},
    }


def cursor_page(key: str, items: list[dict[str, object]]) -> dict[str, object]:
    return {
        key: items,
        "meta": {"has_more": False, "after_cursor": None, "before_cursor": None},
        "links": {"next": None, "prev": None},
    }


@pytest.fixture
def router() -> respx.MockRouter:
    # Not every test uses every route (the bulk test only needs names and the job).
    router = respx.MockRouter(assert_all_called=False, base_url=BASE)
    router.get("/api/v2/ticket_fields").respond(
        json={
            "ticket_fields": [
                {
                    "id": 101,
                    "title": "Request type",
                    "type": "tagger",
                    "custom_field_options": [
                        {"id": 1, "name": "Refund request", "value": "refund_request"}
                    ],
                },
                {
                    "id": 102,
                    "title": "Order status",
                    "type": "tagger",
                    "custom_field_options": [
                        {"id": 2, "name": "Unresponsive", "value": "unresponsive"}
                    ],
                },
            ],
            "next_page": None,
            "previous_page": None,
            "count": 2,
        }
    )
    router.get("/api/v2/groups").respond(
        json={
            "groups": [{"id": 12, "name": "Unresponsive Customers"}],
            "next_page": None,
            "previous_page": None,
            "count": 1,
        }
    )
    router.get("/api/v2/users").respond(
        json={
            "users": [{"id": 21, "name": "Roxy V", "email": "roxy@example.com", "role": "agent"}],
            "next_page": None,
            "previous_page": None,
            "count": 1,
        }
    )
    router.get("/api/v2/users/me").respond(
        json={
            "user": {"id": 99, "name": "Followup Worker", "email": "w@example.com", "role": "agent"}
        }
    )
    router.get("/api/v2/organization_fields").respond(
        json={
            "organization_fields": [{"key": "plan", "title": "Plan", "type": "text"}],
            "next_page": None,
            "previous_page": None,
            "count": 1,
        }
    )
    router.get("/api/v2/incremental/tickets/cursor").respond(
        json={
            "tickets": [ticket(7, "pending"), ticket(8, "closed")],
            "users": [{"id": 501, "name": "Ann", "email": "ann@example.com"}],
            "after_url": f"{BASE}/api/v2/incremental/tickets/cursor.json?cursor=MTU3NjYxMzUzOS4w",
            "after_cursor": "MTU3NjYxMzUzOS4w",
            "before_url": None,
            "before_cursor": None,
            "end_of_stream": True,
        }
    )
    # The description types these events with its ticket *metric* event schema (none of whose
    # properties is required); the shape is the audit the developer docs show.
    router.get("/api/v2/incremental/ticket_events").respond(
        json={
            "ticket_events": [
                {
                    "id": 9001,
                    "ticket_id": 7,
                    "timestamp": 1773050400,  # STAMP
                    "created_at": STAMP,
                    "updater_id": 21,
                    "via": {"channel": "api"},
                    "event_type": "Audit",
                    "child_events": [
                        {**comment(2, 21, f"1/3\n\n{FOOTER}", public=False),
                         "event_type": "Comment", "audit_id": 9001, "created_at": STAMP},
                    ],
                },
                {
                    "id": 9002,
                    "ticket_id": 8,
                    "timestamp": 1773050400,
                    "created_at": STAMP,
                    "updater_id": 21,
                    "via": {"channel": "api"},
                    "event_type": "Audit",
                    "child_events": [
                        {"id": 9003, "event_type": "Change", "field_name": "status",
                         "value": "closed", "previous_value": "solved"},
                    ],
                },
            ],
            "next_page": f"{BASE}/api/v2/incremental/ticket_events.json?start_time=1773050400",
            "count": 2,
            "end_of_stream": True,
            "end_time": 1773050400,
        }
    )  # fmt: skip
    router.get("/api/v2/tickets/7/comments").respond(
        json=cursor_page(
            "comments",
            [
                comment(2, 21, f"1/3\n\n{FOOTER}", public=False),
                comment(1, 501, "refund?", public=True),
            ],
        )
    )
    router.get("/api/v2/organizations").respond(
        json=cursor_page(
            "organizations",
            [{"id": 900, "name": "Acme", "organization_fields": {"plan": "enterprise"}}],
        )
    )
    router.get("/api/v2/incremental/organizations").respond(
        json={
            "organizations": [{"id": 900, "name": "Acme",
                               "url": f"{BASE}/api/v2/organizations/900.json",
                               "organization_fields": {"plan": "standard"},
                               "created_at": STAMP, "updated_at": STAMP}],
            "next_page": f"{BASE}/api/v2/incremental/organizations.json?start_time=1773050400",
            "count": 1,
            "end_of_stream": True,
            "end_time": 1773050400,
        }
    )  # fmt: skip
    router.get("/api/v2/tickets/7").respond(json={"ticket": ticket(7, "pending")})
    router.put("/api/v2/tickets/7").respond(
        json={
            "ticket": {**ticket(7, "solved"), "updated_at": "2026-03-10T12:00:00Z"},
            "audit": {
                "id": 555,
                "ticket_id": 7,
                "created_at": "2026-03-10T12:00:00Z",
                "author_id": 21,
                "events": [],
            },
        }
    )
    return router


async def test_zendesk_requests_and_responses_follow_the_description(
    router: respx.MockRouter,
) -> None:
    recorder = Recorder(router)
    mapping = ZendeskMapping(
        ticket_fields={"request_type": "Request type", "order_status": "Order status"},
        groups=["Unresponsive Customers"],
        agents=["Roxy V"],
    )
    zendesk = ZendeskConnector.connect(
        BASE,
        "worker@example.com",
        "token",
        mapping,
        limits=VendorLimits(),
        timeouts=Timeouts(),
        transport=recorder,
        clock=lambda: datetime(2026, 3, 10, tzinfo=UTC),
    )
    async with zendesk:
        await zendesk.check()
        cases = [c async for c in zendesk.cases()]
        _ = [a async for a in zendesk.accounts()]
        full = [change async for change in zendesk.changes(None, lambda case_id: None)]
        assert isinstance(full[-1], Checkpoint)
        since = [change async for change in zendesk.changes(full[-1].cursor, {"7": cases[0]}.get)]
        await zendesk.fetch_case("7")
        now = datetime(2026, 3, 10, tzinfo=UTC)
        case = Case(
            Source.ZENDESK, "7", CaseKind.TICKET, Status.PENDING, now, now, updated_stamp=STAMP
        )
        actions = (
            Action(ActionType.REPLY, {"template": "final", "body": "We are closing this."}),
            Action(ActionType.NOTE, {"body": "customer unresponsive - closing ticket"}),
            Action(ActionType.SET_STATUS, {"status": "solved"}),
            Action(ActionType.SET_ASSIGNEE, {"assignee": "Unresponsive Customers/Roxy V"}),
            Action(ActionType.SET_FIELD, {"field": "order_status", "value": "Unresponsive"}),
            Action(ActionType.REMOVE_TAGS, {"tags": ["fu_active"]}),
        )
        await zendesk.apply(PlanItem(case, "refund", "final", 3, 3, actions, "r", "ab12"))
    assert [c.id for c in cases] == ["7"]
    # The same ticket from the kept cursor, and the organization the export shows.
    assert [type(change).__name__ for change in since] == ["Account", "Case", "Gone", "Checkpoint"]
    # users/me, the three exports read once by check (Z1), and one page of each read from
    # scratch and from the kept cursor (Z8)
    assert len(recorder.exchanges) == 21
    errors = contract_errors("zendesk", recorder.exchanges)
    assert not errors, "\n".join(errors)


def test_the_check_catches_a_request_the_description_forbids() -> None:
    bad = httpx.Request(
        "PUT",
        f"{BASE}/api/v2/tickets/7",
        json={"ticket": {"status": "waiting"}},
        headers={"Authorization": "Basic eDp5"},
    )
    ok = httpx.Response(200, json={"ticket": ticket(7, "open")})
    errors = contract_errors("zendesk", [(bad, ok)])
    assert any("ticket/status" in e for e in errors), errors
