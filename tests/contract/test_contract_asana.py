"""Every request the Asana connector sends, and every response it parses, against Asana's
OpenAPI description: workspace and project lookup, the project's custom fields, the Bugs
tasks with their opt_fields, stories, the custom field update and the signed comment."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import respx

from connectors.asana import AsanaConnector
from connectors.mapping import AsanaMapping
from connectors.settings import Timeouts, VendorLimits
from policies.model import Action, ActionType, Case, CaseKind, PlanItem, Source, Status
from tests.contract.contract_support import Recorder, contract_errors, openapi

BASE = "https://app.asana.com/api/1.0"
# The description itself uses the deprecated allowEmptyValue; nothing to do with our requests.
pytestmark = pytest.mark.filterwarnings("ignore:Use of allowEmptyValue:DeprecationWarning")


@pytest.fixture(scope="module", autouse=True)
def spec_loaded() -> None:
    openapi("asana")


def task(gid: str) -> dict[str, object]:
    return {
        "gid": gid,
        "resource_type": "task",
        "name": "Export broken",
        "completed": False,
        "created_at": "2026-02-01T10:00:00.000Z",
        "modified_at": "2026-03-01T10:00:00.000Z",
        "assignee": {"gid": "5", "resource_type": "user", "name": "Eve Engineer"},
        "custom_fields": [
            {
                "gid": "f1",
                "resource_type": "custom_field",
                "enum_value": {"gid": "o-med", "resource_type": "enum_option", "name": "Medium"},
            },
            {"gid": "f2", "resource_type": "custom_field", "date_value": {"date": "2026-02-20"}},
            {"gid": "f4", "resource_type": "custom_field", "text_value": "contact-42"},
        ],
    }


@pytest.fixture
def router() -> respx.MockRouter:
    router = respx.MockRouter(assert_all_called=True, base_url=BASE)
    router.get("/workspaces").respond(
        json={
            "data": [{"gid": "1", "resource_type": "workspace", "name": "Acme"}],
            "next_page": None,
        }
    )
    router.get("/projects").respond(
        json={
            "data": [{"gid": "77", "resource_type": "project", "name": "Bugs"}],
            "next_page": None,
        }
    )
    router.get("/projects/77").respond(
        json={
            "data": {
                "gid": "77",
                "resource_type": "project",
                "name": "Bugs",
                "custom_field_settings": [
                    {
                        "gid": "s1",
                        "resource_type": "custom_field_setting",
                        "custom_field": {
                            "gid": "f1",
                            "resource_type": "custom_field",
                            "name": "Priority",
                            "resource_subtype": "enum",
                            "enum_options": [
                                {"gid": "o-high", "resource_type": "enum_option", "name": "High"},
                                {"gid": "o-med", "resource_type": "enum_option", "name": "Medium"},
                            ],
                        },
                    },
                    {
                        "gid": "s2",
                        "resource_type": "custom_field_setting",
                        "custom_field": {
                            "gid": "f2",
                            "resource_type": "custom_field",
                            "name": "User last updated",
                            "resource_subtype": "date",
                        },
                    },
                    {
                        "gid": "s3",
                        "resource_type": "custom_field_setting",
                        "custom_field": {
                            "gid": "f3",
                            "resource_type": "custom_field",
                            "name": "Last follow-up date",
                            "resource_subtype": "date",
                        },
                    },
                    {
                        "gid": "s4",
                        "resource_type": "custom_field_setting",
                        "custom_field": {
                            "gid": "f4",
                            "resource_type": "custom_field",
                            "name": "Intercom contact",
                            "resource_subtype": "text",
                        },
                    },
                ],
            }
        }
    )
    router.get("/users/me").respond(
        json={"data": {"gid": "900", "resource_type": "user", "name": "Followup Worker"}}
    )
    router.get("/projects/77/tasks").respond(json={"data": [task("1")], "next_page": None})
    router.get("/tasks/1/stories").respond(
        json={
            "data": [
                {
                    "gid": "st1",
                    "resource_type": "story",
                    "resource_subtype": "comment_added",
                    "created_at": "2026-03-02T10:00:00.000Z",
                    "text": "fixed on staging",
                    "created_by": {"gid": "5", "resource_type": "user", "name": "Eve Engineer"},
                }
            ],
            "next_page": None,
        }
    )
    router.put("/tasks/1").respond(json={"data": task("1")})
    router.post("/tasks/1/stories").respond(
        status_code=201,
        json={
            "data": {
                "gid": "st2",
                "resource_type": "story",
                "resource_subtype": "comment_added",
                "created_at": "2026-03-10T10:00:00.000Z",
                "text": "ping",
            }
        },
    )
    return router


async def test_asana_requests_and_responses_follow_the_description(
    router: respx.MockRouter,
) -> None:
    recorder = Recorder(router)
    asana = AsanaConnector.connect(
        BASE,
        "token",
        AsanaMapping(project="Bugs"),
        limits=VendorLimits(),
        timeouts=Timeouts(),
        transport=recorder,
    )
    async with asana:
        (bug,) = [c async for c in asana.cases()]
        now = datetime(2026, 3, 10, tzinfo=UTC)
        case = Case(Source.ASANA, "1", CaseKind.BUG, Status.OPEN, now, now)
        actions = (
            Action(ActionType.SET_BUG_FIELD, {"field": "priority", "value": "High"}),
            Action(
                ActionType.SET_BUG_FIELD, {"field": "last_followup_date", "value": "2026-03-10"}
            ),
            Action(ActionType.NOTIFY_ENGINEER, {"body": "Any news on this one?"}),
        )
        await asana.apply(PlanItem(case, "bug_enterprise", "every_5", 1, 1, actions, "r", "ef56"))
    assert bug.account_id == "contact-42"
    errors = contract_errors("asana", recorder.exchanges)
    assert not errors, "\n".join(errors)
