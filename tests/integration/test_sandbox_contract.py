"""What the sandbox serves validates against the vendors' own OpenAPI descriptions.

The sandbox validates every request itself (sandbox/contract.py); here each answer is checked
too, with the same validator and its response allowances (Zendesk's description leaves
``nullable`` off fields the live API answers with null; checkbox organization fields are
booleans). The descriptions live in ``../shared/specs`` beside the repository
(``FOLLOWUP_SPECS_DIR`` overrides the place); the tests skip with a message when they are absent.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from sandbox.app import build_app
from sandbox.config import SandboxConfig
from sandbox.faults import FaultPlan
from sandbox.generator_intercom import intercom_company_id, intercom_contact_id
from sandbox.state import Sandbox
from sandbox.tenant import ASANA_FIELDS, ASANA_PROJECT_GID, PRIORITY_OPTIONS
from tests.contract.contract_support import SPECS, contract, note_validated, specs_present
from tests.unit.sandbox_support import ASANA_AUTH, INTERCOM_AUTH, START, ZENDESK_AUTH

# (path prefix the description's server holds, path prefix the sandbox serves the vendor under)
SERVERS = {
    "zendesk": ("", "/zendesk", ZENDESK_AUTH),
    "intercom": ("", "/intercom", INTERCOM_AUTH),
    "asana": ("/api/1.0", "/asana/api/1.0", ASANA_AUTH),
}

pytestmark = pytest.mark.skipif(
    not specs_present(), reason=f"vendor descriptions not found in {SPECS} (set FOLLOWUP_SPECS_DIR)"
)


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return Sandbox(
        SandboxConfig(tickets=200, seed=11, start=START, frozen_clock=True, faults=FaultPlan())
    )


@pytest.fixture
async def client(sandbox: Sandbox) -> Any:
    app = build_app(sandbox.config, sandbox)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sandbox"
    ) as client:
        yield client


async def served(
    client: Any,
    vendor: str,
    method: str,
    path: str,
    *,
    params: dict[str, str] | None = None,
    body: Any = None,
    auth: bool = True,
) -> httpx.Response:
    """Call the sandbox, then validate the answer against the vendor's description."""
    spec_prefix, sandbox_prefix, headers = SERVERS[vendor]
    response = await client.request(
        method, sandbox_prefix + path, params=params, json=body, headers=headers if auth else {}
    )
    note_validated(vendor, "sandbox", method, spec_prefix + path)
    problems = contract().check_response(
        vendor,
        method,
        path,
        response.status_code,
        response.headers.get("content-type", ""),
        response.content,
    )
    if problems:
        pytest.fail(f"{vendor} {method} {path}: {'; '.join(problems)}")
    return response


ZENDESK_READS = [
    ("/api/v2/tickets/3", {"include": "users,organizations,groups,metric_sets"}),
    ("/api/v2/tickets", {"page[size]": "20"}),
    ("/api/v2/tickets/show_many", {"ids": "1,2,3"}),
    ("/api/v2/tickets/3/comments", {"page[size]": "5", "sort": "-created_at"}),
    ("/api/v2/tickets/3/audits", {}),
    ("/api/v2/search/export", {"query": "status:pending", "filter[type]": "ticket",
                               "page[size]": "10"}),
    ("/api/v2/search", {"query": "type:ticket status:open"}),
    ("/api/v2/incremental/tickets/cursor", {"start_time": "0", "include": "users"}),
    ("/api/v2/incremental/ticket_events", {"start_time": "0", "include": "comment_events"}),
    ("/api/v2/users", {"page[size]": "10"}),
    ("/api/v2/users/1001", {}),
    ("/api/v2/users/show_many", {"ids": "1001,1002"}),
    ("/api/v2/organizations", {}),
    ("/api/v2/organizations/3000001", {}),
    ("/api/v2/organizations/show_many", {"ids": "3000001,3000002"}),
    ("/api/v2/groups", {}),
    ("/api/v2/groups/504", {}),
    ("/api/v2/ticket_fields", {}),
    ("/api/v2/ticket_fields/9001", {}),
]  # fmt: skip


@pytest.mark.parametrize(("path", "params"), ZENDESK_READS)
async def test_zendesk_reads_match_the_description(
    client: Any, path: str, params: dict[str, str]
) -> None:
    assert (await served(client, "zendesk", "GET", path, params=params)).status_code == 200


async def test_zendesk_writes_match_the_description(client: Any, sandbox: Sandbox) -> None:
    stamp = sandbox.zendesk.record(5).ticket["updated_at"]
    update = {"ticket": {"status": "pending", "assignee_id": 1001, "safe_update": True,
                         "updated_stamp": stamp, "tags": ["followup_worker"],
                         "custom_fields": [{"id": 9003, "value": "awaiting_customer"}],
                         "comment": {"body": "1/3", "public": False}}}  # fmt: skip
    assert (
        await served(client, "zendesk", "PUT", "/api/v2/tickets/5", body=update)
    ).status_code == 200
    bulk = await served(client, "zendesk", "PUT", "/api/v2/tickets/update_many",
                        params={"ids": "6,7"}, body={"ticket": {"priority": "high"}})  # fmt: skip
    job = bulk.json()["job_status"]["id"]
    assert (
        await served(client, "zendesk", "GET", f"/api/v2/job_statuses/{job}")
    ).status_code == 200


INTERCOM_CALLS: list[tuple[str, str, Any]] = [
    ("GET", "/admins", None),
    ("GET", "/admins/991001", None),
    ("GET", "/contacts", None),
    ("GET", f"/contacts/{intercom_contact_id(1)}", None),
    ("POST", "/contacts/search", {"query": {"field": "custom_attributes.plan", "operator": "=",
                                            "value": "enterprise"}, "pagination": {"per_page": 5}}),
    ("GET", f"/companies/{intercom_company_id(1)}", None),
    ("GET", f"/contacts/{intercom_contact_id(2)}/companies", None),
    ("GET", "/conversations", None),
    ("GET", "/conversations/10001", None),
    ("POST", "/conversations/search", {"query": {"operator": "AND", "value": [
        {"field": "state", "operator": "=", "value": "open"},
        {"field": "updated_at", "operator": ">", "value": 0}]}}),
    ("POST", "/conversations/10002/reply", {"message_type": "note", "type": "admin",
                                            "admin_id": "991001", "body": "1/3"}),
    ("POST", "/conversations/10002/reply", {"message_type": "comment", "type": "admin",
                                            "admin_id": "991001", "body": "Any news?"}),
    ("POST", "/conversations/10002/parts", {"message_type": "assignment", "type": "admin",
                                            "admin_id": "991001", "assignee_id": "991002"}),
    ("POST", "/conversations/10002/parts", {"message_type": "snoozed", "admin_id": "991001",
                                            "snoozed_until": 1900000000}),
    ("POST", "/conversations/10002/parts", {"message_type": "close", "type": "admin",
                                            "admin_id": "991001"}),
    ("POST", "/messages", {"message_type": "email", "subject": "Update on your bug",
                           "body": "We are on it.", "template": "plain",
                           "from": {"type": "admin", "id": 991001},
                           "to": {"type": "user", "id": intercom_contact_id(3)}}),
    ("GET", "/ticket_states", None),
    ("GET", "/tickets/20001", None),
    ("PUT", "/tickets/20001", {"ticket_state_id": "4002", "open": True}),  # linked to all types
    ("POST", "/tickets/search", {"query": {"operator": "AND", "value": [
        {"field": "open", "operator": "=", "value": True},
        {"field": "category", "operator": "=", "value": "request"}]},
        "pagination": {"per_page": 5}}),
    ("PUT", "/tickets/20002", {"ticket_state_id": "4004", "admin_id": 991001,
                               "assignee_id": "991002"}),
    ("POST", "/tickets/20002/reply", {"message_type": "note", "type": "admin",
                                      "admin_id": "991001", "body": "1/3"}),
    ("POST", "/tickets/20002/reply", {"message_type": "comment", "type": "admin",
                                      "admin_id": "991001", "body": "Any news?"}),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "body"), INTERCOM_CALLS)
async def test_intercom_calls_match_the_description(
    client: Any, method: str, path: str, body: Any
) -> None:
    response = await served(client, "intercom", method, path, body=body)
    assert response.status_code == 200, response.text


async def test_intercom_errors_match_the_description(client: Any) -> None:
    assert (await served(client, "intercom", "GET", "/admins", auth=False)).status_code == 401
    assert (await served(client, "intercom", "GET", "/conversations/1")).status_code == 404


TASK = "1206000000000002"
PRIORITY, _, LAST_FOLLOW_UP, _ = (spec.gid for spec in ASANA_FIELDS)
ASANA_CALLS: list[tuple[str, str, dict[str, str] | None, Any, int]] = [
    ("GET", "/users", {"workspace": "1205000000000001"}, None, 200),
    ("GET", "/users/me", None, None, 200),
    ("GET", "/workspaces", None, None, 200),
    ("GET", "/projects", {"workspace": "1205000000000001"}, None, 200),
    ("GET", f"/projects/{ASANA_PROJECT_GID}", None, None, 200),
    ("GET", f"/projects/{ASANA_PROJECT_GID}/tasks", {"limit": "5", "opt_fields":
        "name,completed,assignee.name,custom_fields.name,custom_fields.enum_value.name,"
        "custom_fields.date_value,custom_fields.text_value"}, None, 200),
    ("GET", f"/projects/{ASANA_PROJECT_GID}/custom_field_settings", None, None, 200),
    ("GET", f"/tasks/{TASK}", None, None, 200),
    ("PUT", f"/tasks/{TASK}", None, {"data": {"custom_fields": {
        PRIORITY: PRIORITY_OPTIONS[0][0], LAST_FOLLOW_UP: {"date": "2026-03-11"}}}}, 200),
    ("GET", f"/tasks/{TASK}/stories", {"limit": "10"}, None, 200),
    ("POST", f"/tasks/{TASK}/stories", None, {"data": {"text": "Any update?"}}, 201),
    ("GET", "/tasks/1", None, None, 404),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "params", "body", "status"), ASANA_CALLS)
async def test_asana_calls_match_the_description(
    client: Any, method: str, path: str, params: dict[str, str] | None, body: Any, status: int
) -> None:
    response = await served(client, "asana", method, path, params=params, body=body)
    assert response.status_code == status, response.text
