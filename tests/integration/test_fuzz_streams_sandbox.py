"""Corrupted records served over real HTTP by the sandbox: each connector's stream still yields
every other case (or account), and reports each corrupted one by its id and a reason."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.asana import AsanaConnector
from connectors.errors import BadRecord
from connectors.intercom import IntercomConnector
from connectors.mapping import load_mapping
from connectors.settings import Timeouts, VendorLimits
from connectors.zendesk import ZendeskConnector

sandbox_server = pytest.importorskip("sandbox.server", reason="needs the sandbox package")

START = datetime(2026, 3, 11, 15, 0, tzinfo=UTC)
MAPPING = load_mapping(Path(__file__).parents[2] / "deploy" / "mapping.sandbox.yaml")
FAST = VendorLimits(requests_per_minute=None, backoff_initial=0.01, backoff_max=0.05)


@pytest.fixture
def sandbox() -> Iterator[Any]:
    """A fresh sandbox per test (the tests corrupt its state, so its answers are not checked
    against the descriptions; the requests are), without its rate limits: the streams, not the
    pacing, are under test."""
    with sandbox_server.run_in_thread(
        tickets=60, seed=7, start=START, frozen_clock=True, check_responses=False
    ) as sb:
        unlimited = {vendor: {"per_minute": None} for vendor in ("zendesk", "intercom", "asana")}
        httpx.put(sb.urls["admin"] + "/limits", json=unlimited).raise_for_status()
        yield sb


def zendesk(sandbox: Any, report: Any) -> ZendeskConnector:
    assert MAPPING.zendesk is not None
    return ZendeskConnector.connect(
        sandbox.urls["zendesk"],
        "worker@example.com",
        "zd-sandbox-token",
        MAPPING.zendesk.model_copy(update={"endpoint_limits": {}}),  # sandbox unlimited
        limits=FAST,
        timeouts=Timeouts(),
        clock=lambda: START,
        report=report,
    )


def intercom(sandbox: Any, report: Any) -> IntercomConnector:
    assert MAPPING.intercom is not None
    return IntercomConnector.connect(
        sandbox.urls["intercom"],
        "ic-sandbox-token",
        MAPPING.intercom,
        limits=FAST,
        timeouts=Timeouts(),
        plans=MAPPING.plans,
        report=report,
    )


def asana(sandbox: Any, report: Any) -> AsanaConnector:
    assert MAPPING.asana is not None
    return AsanaConnector.connect(
        sandbox.urls["asana"],
        "as-sandbox-token",
        MAPPING.asana,
        limits=FAST,
        timeouts=Timeouts(),
        report=report,
    )


async def stream(connect: Any, sandbox: Any) -> tuple[list[str], list[BadRecord]]:
    reported: list[BadRecord] = []
    async with connect(sandbox, reported.append) as connector:
        ids = [case.id async for case in connector.cases()]
    return ids, reported


async def check(connect: Any, sandbox: Any, corrupt: Any) -> None:
    """Stream once clean, corrupt three of the cases, stream again."""
    clean, reported = await stream(connect, sandbox)
    assert len(clean) >= 4
    assert reported == []
    bad = {clean[0], clean[len(clean) // 2], clean[-1]}
    for n, case_id in enumerate(sorted(bad)):
        corrupt(sandbox.sandbox, case_id, n)
    again, reported = await stream(connect, sandbox)
    assert again == [i for i in clean if i not in bad]
    assert sorted(r.record_id for r in reported) == sorted(bad)
    assert all(r.reason for r in reported)


ZENDESK_DAMAGE = [
    ("status", "archived"),
    ("created_at", "yesterday"),
    ("tags", "vip"),
]


def corrupt_ticket(state: Any, ticket_id: str, n: int) -> None:
    desk = state.zendesk
    record = copy.deepcopy(desk.record(int(ticket_id)))
    key, value = ZENDESK_DAMAGE[n]
    record.ticket[key] = value
    desk.changed[int(ticket_id)] = record


INTERCOM_DAMAGE = [
    ("state", "archived"),
    ("title", {"not": "text"}),
    ("contacts", {"contacts": [{"name": "no id"}]}),
]


TICKET_DAMAGE = [
    ("ticket_state", {"id": "1", "category": "archived"}),
    ("created_at", "yesterday"),
    ("contacts", {"contacts": [{"name": "no id"}]}),
]


def corrupt_conversation(state: Any, case_id: str, n: int) -> None:
    """A conversation or (``ticket:<id>``) a ticket."""
    desk = state.intercom
    if case_id.startswith("ticket:"):
        number = case_id.removeprefix("ticket:")
        ticket = copy.deepcopy(desk.ticket(number))
        key, value = TICKET_DAMAGE[n]
        ticket[key] = value
        desk.tickets[int(number)] = ticket
        return
    conversation = copy.deepcopy(desk.conversation(case_id))
    key, value = INTERCOM_DAMAGE[n]
    conversation[key] = value
    desk.conversations[int(case_id)] = conversation


ASANA_DAMAGE = [  # keys of the sandbox's own task record, which it renders as Asana JSON
    ("created_at", "yesterday"),
    ("modified_at", None),
    ("name", ["not", "text"]),
]


def corrupt_task(state: Any, gid: str, n: int) -> None:
    desk = state.asana
    task, stories = copy.deepcopy(desk._record(gid))
    key, value = ASANA_DAMAGE[n]
    task[key] = value
    desk.changed[int(gid)] = (task, stories)


async def test_zendesk_stream_reports_corrupted_tickets_and_goes_on(sandbox: Any) -> None:
    await check(zendesk, sandbox, corrupt_ticket)


async def test_intercom_stream_reports_corrupted_conversations_and_tickets_and_goes_on(
    sandbox: Any,
) -> None:
    await check(intercom, sandbox, corrupt_conversation)


async def test_asana_stream_reports_corrupted_tasks_and_goes_on(sandbox: Any) -> None:
    await check(asana, sandbox, corrupt_task)


async def test_intercom_accounts_report_corrupted_contacts_and_go_on(
    sandbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    reported: list[BadRecord] = []
    async with intercom(sandbox, reported.append) as connector:
        clean = [account.id async for account in connector.accounts()]
    assert len(clean) >= 3
    bad = {clean[0], clean[-1]}
    desk = sandbox.sandbox.intercom
    generated = desk.contacts

    def corrupted(skip: int = 0) -> Iterator[dict[str, Any]]:
        for contact in generated(skip):
            if contact["id"] in bad:
                contact = {**contact, "custom_attributes": ["not", "an", "object"]}
            yield contact

    monkeypatch.setattr(desk, "contacts", corrupted)
    async with intercom(sandbox, reported.append) as connector:
        again = [account.id async for account in connector.accounts()]
    assert again == [i for i in clean if i not in bad]
    assert sorted(r.record_id for r in reported) == sorted(bad)
    assert all("custom_attributes: expected an object" in r.reason for r in reported)
