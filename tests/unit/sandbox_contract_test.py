"""The sandbox's request validation (sandbox/contract.py): the description defects it patches,
the vendor error shapes it answers with, and the counts it keeps."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sandbox.contract import PATCHES, Contract, SpecsMissing, ValidationTally
from tests.contract.contract_support import SPECS, specs_present
from tests.unit.sandbox_support import (
    ASANA_AUTH,
    INTERCOM_AUTH,
    ZENDESK_AUTH,
    client_for,
    small_sandbox,
)

pytestmark = pytest.mark.skipif(not specs_present(), reason=f"no vendor descriptions in {SPECS}")


@pytest.fixture(scope="module")
def contract() -> Contract:
    return Contract(SPECS, process_tally=None)


def check(contract: Contract, vendor: str, method: str, path: str, **request: Any) -> Any:
    body = request.pop("json", None)
    if body is not None:
        request.update(content_type="application/json", body=json.dumps(body).encode())
    return contract.check_request(vendor, method, path, **request)


# Each defect of vendor-behaviours.md ("Defects of the descriptions themselves"): a correct
# request the unpatched description refuses.
DEFECT_REQUESTS = [
    ("zendesk", "GET", "/api/v2/groups", {}),
    ("zendesk", "PUT", "/api/v2/tickets/5",
     {"json": {"ticket": {"custom_fields": [{"id": 9001, "value": True}]}}}),
    ("zendesk", "GET", "/api/v2/incremental/tickets/cursor", {"query": [("cursor", "abc")]}),
    ("zendesk", "PUT", "/api/v2/tickets/update_many",
     {"query": [("ids", "1,2")], "json": {"ticket": {"status": "open"}}}),
    ("asana", "PUT", "/tasks/1",
     {"json": {"data": {"custom_fields": {"1": {"date": "2026-03-11"}, "2": 3}}}}),
]  # fmt: skip


def test_every_listed_defect_has_one_patch() -> None:
    assert len(PATCHES) == len(DEFECT_REQUESTS) == 5


@pytest.mark.parametrize(("vendor", "method", "path", "request_"), DEFECT_REQUESTS)
def test_the_patched_descriptions_accept_what_the_vendor_accepts(
    contract: Contract, vendor: str, method: str, path: str, request_: dict[str, Any]
) -> None:
    assert check(contract, vendor, method, path, **request_) is None


REFUSED = [
    ("zendesk", "PUT", "/api/v2/tickets/5", {"json": {"ticket": {"status": "waiting"}}},
     "ticket/status: 'waiting' is not one of"),
    ("zendesk", "PUT", "/api/v2/tickets/5",
     {"json": {"ticket": {"custom_fields": [{"value": 1}]}}}, "'id' is a required property"),
    ("zendesk", "GET", "/api/v2/incremental/ticket_events", {"query": [("start_time", "x")]},
     "start_time: 'x' is not of type 'integer'"),
    ("zendesk", "PUT", "/api/v2/tickets/update_many",
     {"json": {"tickets": [{"id": 1}] * 101}}, "is too long"),
    ("intercom", "POST", "/messages", {"json": {"message_type": "email", "subject": "s",
     "body": "b", "from": {"type": "admin", "id": "1"}, "to": {"type": "user", "id": "c"}}},
     "from/id: '1' is not of type 'integer'"),
    ("asana", "GET", "/projects/1/tasks", {"query": [("limit", "500")]},
     "limit: 500 is greater than the maximum of 100"),
]  # fmt: skip


@pytest.mark.parametrize(("vendor", "method", "path", "request_", "message"), REFUSED)
def test_requests_the_description_forbids_are_refused_with_the_reason(
    contract: Contract, vendor: str, method: str, path: str, request_: Any, message: str
) -> None:
    rejection = check(contract, vendor, method, path, **request_)
    assert rejection is not None
    assert (rejection.status, message in rejection.message) == (400, True), rejection


def test_an_operation_the_description_lacks_is_not_found(contract: Contract) -> None:
    rejection = check(contract, "zendesk", "GET", "/api/v2/nothing_here")
    assert rejection is not None
    assert rejection.status == 404


def test_response_check_reports_a_wrong_answer(contract: Contract) -> None:
    problems = contract.check_response(
        "zendesk", "GET", "/api/v2/tickets/5", 200, "application/json",
        json.dumps({"ticket": {"id": "five"}}).encode(),
    )  # fmt: skip
    assert any("ticket/id" in problem for problem in problems), problems


def test_without_descriptions_validation_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(SpecsMissing, match="FOLLOWUP_SPECS_DIR"):
        Contract(tmp_path)


VENDOR_ERRORS = [
    ("/zendesk/api/v2/tickets/5", ZENDESK_AUTH, {"ticket": {"status": "waiting"}},
     lambda body: (body["error"], body["description"])),
    ("/intercom/tickets/20001", INTERCOM_AUTH, {"open": "yes"},
     lambda body: (body["errors"][0]["code"], body["errors"][0]["message"])),
    ("/asana/api/1.0/tasks/1206000000000002", ASANA_AUTH, {"data": {"completed": "yes"}},
     lambda body: ("errors", body["errors"][0]["message"])),
]  # fmt: skip


@pytest.mark.parametrize(("path", "auth", "body", "error_of"), VENDOR_ERRORS)
async def test_refusals_come_in_the_vendors_error_shape_and_are_counted(
    path: str, auth: dict[str, str], body: Any, error_of: Any
) -> None:
    sandbox = small_sandbox()
    # Deliberate refusals stay out of the run's summary (whose goal is 0 rejected).
    assert sandbox.contract is not None
    sandbox.contract.process_tally = None
    async with client_for(sandbox) as client:
        response = await client.put(path, json=body, headers=auth)
        assert response.status_code == 400
        code, message = error_of(response.json())
        assert code in ("InvalidValue", "parameter_invalid", "errors")
        assert "is not of type" in message or "is not one of" in message
        stats = (await client.get("/_admin/stats")).json()["validation"]
    assert (stats["enabled"], stats["requests"], stats["rejected"]) == (True, 1, 1)
    assert list(stats["problems"].values()) == [1]


def test_tallies_add_up_across_processes() -> None:
    ours, theirs = ValidationTally(), ValidationTally()
    ours.count(response=False, problem=None)
    theirs.count(response=False, problem="zendesk GET /x: bad")
    ours.absorb(theirs.to_dict())
    assert (ours.requests, ours.rejected, dict(ours.problems)) == (2, 1, {"zendesk GET /x: bad": 1})
