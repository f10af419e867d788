"""Asana: Bugs project tasks with exactly the opt_fields needed, fields then signed story."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import respx

from connectors.asana import TASK_FIELDS, AsanaConnector, AsanaIds, CustomField, task_changes
from connectors.base import WriteOutcome
from connectors.errors import OutcomeUnknown, PaginationStuck
from connectors.mapping import AsanaMapping
from policies.model import (
    Action,
    ActionType,
    ActivityKind,
    Case,
    CaseKind,
    PlanItem,
    Priority,
    Source,
    Status,
)
from tests.connectors_support import FakeClock, make_client

BASE = "https://app.asana.com/api/1.0"
KEY = "abcdefabcdef0123"
NOW = datetime(2026, 3, 10, 12, tzinfo=UTC)
FOOTER = f"— followup-worker · bug_enterprise · step 1/1 · fw-{KEY}"
MARKER = f"fw-{KEY}"


@pytest.fixture
def router() -> respx.MockRouter:
    router = respx.MockRouter(assert_all_called=False, base_url=BASE)
    router.get("/workspaces").respond(json={"data": [{"gid": "1", "name": "Acme"}]})
    router.get("/projects").respond(json={"data": [{"gid": "77", "name": "Bugs"}]})
    router.get("/projects/77").respond(
        json={
            "data": {
                "gid": "77",
                "custom_field_settings": [
                    {
                        "custom_field": {
                            "gid": "f1",
                            "name": "Priority",
                            "resource_subtype": "enum",
                            "enum_options": [
                                {"gid": "o-high", "name": "High"},
                                {"gid": "o-med", "name": "Medium"},
                            ],
                        }
                    },
                    {
                        "custom_field": {
                            "gid": "f2",
                            "name": "User last updated",
                            "resource_subtype": "date",
                        }
                    },
                    {
                        "custom_field": {
                            "gid": "f3",
                            "name": "Last follow-up date",
                            "resource_subtype": "date",
                        }
                    },
                    {
                        "custom_field": {
                            "gid": "f4",
                            "name": "Intercom contact",
                            "resource_subtype": "text",
                        }
                    },
                ],
            }
        }
    )
    router.get("/users/me").respond(json={"data": {"gid": "900", "name": "Followup Worker"}})
    return router


def connector(router: respx.MockRouter) -> AsanaConnector:
    client = make_client(router, FakeClock(), vendor="asana", base_url=BASE)
    return AsanaConnector(client, AsanaMapping(project="Bugs"))


def task(gid: str) -> dict[str, Any]:
    return {
        "gid": gid,
        "name": "Export broken",
        "completed": False,
        "created_at": "2026-02-01T10:00:00.000Z",
        "modified_at": "2026-03-01T10:00:00.000Z",
        "assignee": {"gid": "5", "name": "Eve Engineer"},
        "custom_fields": [
            {"gid": "f1", "enum_value": {"gid": "o-med", "name": "Medium"}},
            {"gid": "f2", "date_value": {"date": "2026-02-20"}},
            {"gid": "f3", "date_value": None},
            {"gid": "f4", "text_value": "contact-42"},
        ],
    }


async def test_open_bugs_stream_with_their_engineer_comments(router: respx.MockRouter) -> None:
    tasks = router.get("/projects/77/tasks").mock(
        side_effect=[
            httpx.Response(200, json={"data": [task("1")], "next_page": {"offset": "o2"}}),
            httpx.Response(200, json={"data": [task("2")], "next_page": None}),
        ]
    )
    router.get(url__regex=r"/tasks/\d/stories").respond(
        json={
            "data": [
                {
                    "resource_subtype": "comment_added",
                    "created_by": {"gid": "5"},
                    "text": "fixed on staging",
                    "created_at": "2026-03-02T10:00:00.000Z",
                },
                {
                    "resource_subtype": "assigned",
                    "created_by": {"gid": "5"},
                    "text": "assigned",
                    "created_at": "2026-03-02T11:00:00.000Z",
                },
                {
                    "resource_subtype": "comment_added",
                    "created_by": {"gid": "900"},
                    "text": f"Any news?\n\n{FOOTER}",
                    "created_at": "2026-03-03T10:00:00.000Z",
                },
            ],
            "next_page": None,
        }
    )
    async with connector(router) as asana:
        cases = [c async for c in asana.cases()]
    params = tasks.calls[0].request.url.params
    assert (params["completed_since"], params["opt_fields"]) == ("now", TASK_FIELDS)
    assert tasks.calls[1].request.url.params["offset"] == "o2"
    bug = cases[0]
    assert (bug.kind, bug.status, bug.priority) == (CaseKind.BUG, Status.OPEN, Priority.NORMAL)
    assert bug.fields == {"user_last_updated": "2026-02-20", "intercom_contact": "contact-42"}
    assert (bug.account_id, bug.assignee) == ("contact-42", "Eve Engineer")
    assert [a.kind for a in bug.history] == [ActivityKind.ENGINEER_UPDATE]
    assert [m.key for m in bug.followups] == [KEY]


async def test_a_date_value_is_read_in_either_form_the_documents_show(
    router: respx.MockRouter,
) -> None:
    """vendor-behaviours A2: ``{"date": "YYYY-MM-DD"}`` (the guide) or ``"YYYY-MM-DD"``."""
    bare = task("2")
    bare["custom_fields"][1] = {"gid": "f2", "date_value": "2026-02-21"}
    router.get("/projects/77/tasks").respond(json={"data": [task("1"), bare]})
    router.get(url__regex=r"/tasks/\d/stories").respond(json={"data": []})
    async with connector(router) as asana:
        cases = [c async for c in asana.cases()]
    assert [c.fields["user_last_updated"] for c in cases] == ["2026-02-20", "2026-02-21"]


async def test_an_offset_that_comes_back_stops_the_read_with_a_clear_error(
    router: respx.MockRouter,
) -> None:
    """vendor-behaviours A1: the official examples repeat ``next_page.offset``."""
    tasks = router.get("/projects/77/tasks").respond(
        json={"data": [task("1")], "next_page": {"offset": "eyJ0eXAiOJiKV1iQLCJhbGciOiJIUzI1NiJ9"}}
    )
    router.get(url__regex=r"/tasks/\d/stories").respond(json={"data": []})
    async with connector(router) as asana:
        with pytest.raises(PaginationStuck, match="came back: the list does not end"):
            _ = [c async for c in asana.cases()]
    assert tasks.call_count == 2  # the first page, and the one that repeated its offset


def item(*actions: Action) -> PlanItem:
    case = Case(Source.ASANA, "1", CaseKind.BUG, Status.OPEN, NOW, NOW)
    return PlanItem(case, "bug_enterprise", "every_5", 1, 1, actions, "5 business days", KEY)


async def test_fields_by_option_gid_and_date_then_the_signed_story(
    router: respx.MockRouter,
) -> None:
    put = router.put("/tasks/1").respond(json={"data": {}})
    story = router.post("/tasks/1/stories").respond(status_code=201, json={"data": {}})
    async with connector(router) as asana:
        result = await asana.apply(
            item(
                Action(ActionType.SET_BUG_FIELD, {"field": "priority", "value": "High"}),
                Action(
                    ActionType.SET_BUG_FIELD,
                    {"field": "last_followup_date", "value": "2026-03-10T12:00:00+00:00"},
                ),
                Action(ActionType.NOTIFY_ENGINEER, {"body": "Any news?"}),
            )
        )
    assert (result.outcome, result.calls) == (WriteOutcome.APPLIED, 2)
    assert json.loads(put.calls[0].request.content) == {
        "data": {"custom_fields": {"f1": "o-high", "f3": {"date": "2026-03-10"}}}
    }
    assert json.loads(story.calls[0].request.content) == {
        "data": {"text": f"Any news?\n\n{FOOTER}"}
    }


async def test_lost_story_absent_on_re_read_is_not_posted_twice_in_one_attempt(
    router: respx.MockRouter,
) -> None:
    # The 503 may come from a gateway while the story is still being written: a second post
    # now could make two. The next cycle reads the task again and finds it, or posts it.
    story = router.post("/tasks/1/stories").mock(
        side_effect=[httpx.Response(503), httpx.Response(201, json={"data": {}})]
    )
    looked = router.get("/tasks/1/stories").respond(json={"data": [], "next_page": None})
    async with connector(router) as asana:
        result = await asana.apply(item(Action(ActionType.NOTIFY_ENGINEER, {"body": "ping"})))
    assert result.outcome is WriteOutcome.FAILED
    assert (story.call_count, looked.call_count) == (1, 1)


async def test_unknown_priority_option_fails_without_a_call(router: respx.MockRouter) -> None:
    put = router.put("/tasks/1")
    async with connector(router) as asana:
        result = await asana.apply(
            item(Action(ActionType.SET_BUG_FIELD, {"field": "priority", "value": "Blocker"}))
        )
    assert result.outcome is WriteOutcome.FAILED
    assert not put.called


async def test_the_customer_s_update_is_emailed_to_the_bug_s_contact_before_the_story(
    router: respx.MockRouter,
) -> None:
    sent: list[tuple[str, str, str, str]] = []
    story = router.post("/tasks/1/stories").respond(status_code=201, json={"data": {}})

    async def mail(contact: str, subject: str, body: str, marker: str) -> bool:
        assert not story.called  # a recorded follow-up always has its email
        sent.append((contact, subject, body, marker))
        return True

    client = make_client(router, FakeClock(), vendor="asana", base_url=BASE)
    bug = dataclasses.replace(item().case, account_id="contact-42", subject="Export broken")
    update = dataclasses.replace(
        item(Action(ActionType.REPLY, {"template": "bug_update", "body": "Still on it."})),
        case=bug,
    )
    async with AsanaConnector(client, AsanaMapping(project="Bugs"), mailer=mail) as asana:
        result = await asana.apply(update)

    assert (result.outcome, result.calls) == (WriteOutcome.APPLIED, 2)
    # The mailer is given the item's marker, to find the email by if its answer is lost.
    assert sent == [
        ("contact-42", "Update on your bug report: Export broken", "Still on it.", MARKER)
    ]
    assert json.loads(story.calls[0].request.content)["data"]["text"].endswith(FOOTER)


async def test_an_update_for_the_customer_without_a_way_to_email_fails_before_any_call(
    router: respx.MockRouter,
) -> None:
    story = router.post("/tasks/1/stories")
    async with connector(router) as asana:
        result = await asana.apply(item(Action(ActionType.REPLY, {"body": "Still on it."})))
    assert result.outcome is WriteOutcome.FAILED
    assert "no Intercom configured" in result.detail
    assert not story.called


def bug_update(*actions: Action) -> PlanItem:
    """An update for the bug's customer (emailed through the mailer) and its engineer."""
    bug = dataclasses.replace(item().case, account_id="contact-42", subject="Export broken")
    reply = Action(ActionType.REPLY, {"template": "bug_update", "body": "Still on it."})
    return dataclasses.replace(item(reply, *actions), case=bug)


REFRESH = Action(ActionType.SET_BUG_FIELD, {"field": "user_last_updated", "value": "2026-03-16"})


async def test_an_email_lost_on_its_way_leaves_the_bug_as_it_was(
    router: respx.MockRouter,
) -> None:
    put = router.put("/tasks/1").respond(json={"data": {}})
    story = router.post("/tasks/1/stories").respond(status_code=201, json={"data": {}})

    async def lost(contact: str, subject: str, body: str, marker: str) -> bool:
        raise OutcomeUnknown("intercom", "POST", "/messages", detail="ReadTimeout")

    told: list[str] = []
    client = make_client(router, FakeClock(), vendor="asana", base_url=BASE)
    async with AsanaConnector(client, AsanaMapping(project="Bugs"), mailer=lost) as asana:
        result = await asana.apply(bug_update(REFRESH), replied=lambda: told.append("out"))

    # Nothing the plan reads was written: the plan offers the update again next cycle.
    assert result.outcome is WriteOutcome.FAILED
    assert told == []  # not known to be out: the worker records nothing
    assert not put.called
    assert not story.called


async def test_fields_refused_after_the_email_went_out_is_incomplete(
    router: respx.MockRouter,
) -> None:
    router.put("/tasks/1").respond(status_code=400, json={"errors": [{"message": "nope"}]})
    story = router.post("/tasks/1/stories").respond(status_code=201, json={"data": {}})
    sent: list[str] = []

    async def mail(contact: str, subject: str, body: str, marker: str) -> bool:
        sent.append(body)
        return True

    told: list[int] = []
    client = make_client(router, FakeClock(), vendor="asana", base_url=BASE)
    async with AsanaConnector(client, AsanaMapping(project="Bugs"), mailer=mail) as asana:
        result = await asana.apply(bug_update(REFRESH), replied=lambda: told.append(len(sent)))

    # The customer has the email: the worker finishes the rest next cycle, without it.
    assert (result.outcome, sent) == (WriteOutcome.INCOMPLETE, ["Still on it."])
    assert told == [1]  # told once the email was out, before the fields were tried
    assert not story.called


def test_a_bundled_update_refreshes_the_fields_of_every_bug_it_covers() -> None:
    ids = AsanaIds(
        project="77", me="900", fields={"user_last_updated": CustomField("f2", "date", {})}
    )
    refresh = Action(
        ActionType.SET_BUG_FIELD,
        {"field": "user_last_updated", "value": "2026-03-16", "cases": ["asana:1", "asana:3"]},
    )
    changes = task_changes(item(refresh), ids)
    assert changes.values == {"f2": {"date": "2026-03-16"}}
    assert changes.covered == {"3": {"f2": {"date": "2026-03-16"}}}
