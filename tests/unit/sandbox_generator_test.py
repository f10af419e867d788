"""The generated tenant: deterministic, lazy, and covering every flow of the seed pack."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from sandbox.clock import parse_iso
from sandbox.generator import SCENARIOS, Generator
from sandbox.generator_asana import AsanaGenerator
from sandbox.generator_intercom import IntercomGenerator

START = datetime(2026, 3, 11, 15, 0, tzinfo=UTC)


def fields_of(ticket: dict[str, object]) -> dict[int, object]:
    return {entry["id"]: entry["value"] for entry in ticket["custom_fields"]}  # type: ignore[attr-defined]


def test_same_seed_same_tenant_other_seed_other_tenant() -> None:
    first, again, other = (Generator(seed, 500, START) for seed in (3, 3, 4))
    assert first.ticket(42) == again.ticket(42)
    assert first.ticket(42) != other.ticket(42)
    assert IntercomGenerator(first).conversation(10_005) == IntercomGenerator(again).conversation(
        10_005
    )


def test_nothing_happened_after_the_clock_start() -> None:
    generator = Generator(9, 3_000, START)
    for ticket_id in range(1, 3_001):
        record = generator.ticket(ticket_id)
        assert all(parse_iso(c["created_at"]) < START for c in record.comments)


def test_every_flow_of_the_seed_pack_is_represented() -> None:
    generator = Generator(5, 3_000, START)
    records = [generator.ticket(i) for i in range(1, 3_001)]
    assert {record.scenario for record in records} == {name for name, _ in SCENARIOS}

    refunds = [r for r in records if r.scenario == "refund_request"]
    linked = Counter(bool(fields_of(r.ticket)[9002]) for r in refunds)
    assert set(linked) == {True, False}
    reach = Counter(
        (bool(user["email"]), bool(user["phone"]))
        for user in (generator.end_user(r.ticket["requester_id"]) for r in refunds)
    )
    assert {(True, False), (False, True), (True, True)} <= set(reach)
    passports = [r for r in records if fields_of(r.ticket)[9004] == "us_passport"]
    assert {r.scenario for r in passports} >= {
        "bot_us_passport_missing_labels",
        "refund_us_passport",
    }
    steps = Counter(
        body.split("· step ")[1][:3]
        for r in records
        for body in (c["body"] for c in r.comments)
        if "— followup-worker ·" in body
    )
    assert {"1/3", "2/3", "3/3"} <= set(steps)
    assert {r.ticket["status"] for r in records if r.scenario == "general_inquiry"} == {"pending"}


def test_plans_and_account_states_cover_the_tiers() -> None:
    generator = Generator(5, 3_000, START)
    orgs = [generator.organization(3_000_001 + i) for i in range(generator.org_count)]
    plans = Counter(org["organization_fields"]["plan"] for org in orgs)
    assert {"enterprise", "standard", "community", "trial", "legacy_gold"} <= set(plans)
    assert any(org["organization_fields"]["account_status"] == "canceled" for org in orgs)
    assert any(org["organization_fields"]["stop_followups"] for org in orgs)


def test_bugs_link_to_intercom_contacts_with_plans() -> None:
    generator = Generator(5, 3_000, START)
    task, stories = AsanaGenerator(generator).task(1_206_000_000_000_001)
    contact_id = task["custom_field_values"]["1205000000000130"]
    intercom = IntercomGenerator(generator)
    contact = intercom.contact(int(contact_id[1:], 16))
    assert contact["id"] == contact_id
    companies = contact["companies"]["data"]
    if companies:  # vendor-behaviours I3: the plan is the company's, not the contact's
        assert "plan" not in contact["custom_attributes"]
        assert intercom.company(int(companies[0]["id"][1:], 16))["plan"]["name"]
    else:
        assert contact["custom_attributes"]["plan"]
    assert stories[0]["type"] == "system"


def test_a_million_tickets_cost_nothing_until_read() -> None:
    generator = Generator(1, 1_000_000, START)
    newest = generator.ticket(1_000_000).ticket
    oldest = generator.ticket(1).ticket
    assert parse_iso(oldest["created_at"]) < parse_iso(newest["created_at"]) < START
