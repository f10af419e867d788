"""Fuzz: damaged vendor records through the JSON translation and on into the planner.

Each example starts from a valid Zendesk ticket (with side-loaded users and comments), Intercom
conversation or contact, Zendesk organization, or Asana task (with custom fields and stories)
and damages it. The translation must either produce a case the planner can rely on (every
field of its declared type) or raise :class:`BadRecord` naming the record's id and a reason;
never anything else. Cases that translate go through the planner with the bundled pack, which
must not raise either.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.asana import AsanaIds, CustomField, task_case
from connectors.errors import BadRecord
from connectors.intercom import IntercomIds, conversation_case
from connectors.mapping import AccountFlags, PlanNames
from connectors.records import flagged_account
from connectors.zendesk_json import ZendeskIds, ticket_case
from policies.calendar import BusinessCalendar
from policies.model import Account, Case, PlanItem, PlanTier, Unjudged
from policies.planner import plan
from policies.rules import load_rulebook
from tests.fuzz_support import FUZZ, assert_account_well_typed, assert_well_typed, mutated

RULES = load_rulebook()
CALENDAR = BusinessCalendar(timezone="America/New_York", country="US")
NOW = datetime(2026, 3, 20, 15, 0, tzinfo=UTC)
ACCOUNTS = {
    "900": Account("900", plan=PlanTier.STANDARD),
    "c1": Account("c1", plan=None, raw_plan="legacy_gold"),
    "contact-42": Account("contact-42", plan=PlanTier.COMMUNITY, open_cases=2),
}
FOOTER = "— followup-worker · awaiting-customer · step 1/3 · fw-0123456789abcdef"

ZENDESK_IDS = ZendeskIds(
    fields={"request_type": 101, "order_status": 102, "linked_order": 103},
    groups={"Support": 11},
    agents={"Roxy V": 21},
)
TICKET = {
    "id": 4242,
    "status": "pending",
    "priority": "high",
    "subject": "Where is my order?",
    "created_at": "2026-03-02T14:00:00Z",
    "updated_at": "2026-03-05T14:00:00Z",
    "requester_id": 501,
    "assignee_id": 21,
    "group_id": 11,
    "organization_id": 900,
    "brand_id": 3,
    "tags": ["vip", "order"],
    "custom_fields": [
        {"id": 101, "value": "general_inquiry"},
        {"id": 102, "value": None},
        {"id": 103, "value": "ORD-77"},
    ],
}
USERS = {501: {"id": 501, "name": "Ann Customer", "email": "ann@example.com", "phone": "+1555"}}
COMMENTS = [
    {"id": 1, "author_id": 501, "public": True, "body": "Hi", "created_at": "2026-03-02T14:00:00Z"},
    {
        "id": 2,
        "author_id": 21,
        "public": True,
        "body": "Could you send the order number?",
        "created_at": "2026-03-02T16:00:00Z",
    },
    {
        "id": 3,
        "author_id": 21,
        "public": False,
        "body": "Reminder sent\n\n" + FOOTER,
        "created_at": "2026-03-05T14:00:00Z",
    },
    {
        "id": 4,
        "type": "VoiceComment",
        "author_id": 501,
        "public": False,
        "data": {"from": "+15550100", "call_duration": 0, "answered_by_id": None},
        "created_at": "2026-03-01T10:00:00Z",
    },
    {
        "id": 5,
        "author_id": 501,
        "public": False,
        "metadata": {"custom": {"missed": True}},
        "created_at": "2026-03-01T11:00:00Z",
    },
]

INTERCOM_IDS = IntercomIds("1", {"Followup Worker": "1", "Roxy V": "2"})
CONVERSATION = {
    "id": "777",
    "state": "open",
    "title": "Passport labels",
    "created_at": 1_772_460_000,
    "updated_at": 1_772_700_000,
    "source": {"author": {"type": "user", "id": "c1"}, "subject": "Help"},
    "contacts": {"contacts": [{"id": "c1"}]},
    "admin_assignee_id": 2,
    "statistics": {"last_admin_reply_at": 1_772_600_000, "last_contact_reply_at": 1_772_460_000},
    "tags": {"tags": [{"name": "passport"}]},
    "conversation_parts": {
        "conversation_parts": [
            {
                "part_type": "comment",
                "created_at": 1_772_600_000,
                "author": {"type": "admin", "id": "2"},
                "body": "<p>Could you check the labels?</p>",
            },
            {
                "part_type": "note",
                "created_at": 1_772_650_000,
                "author": {"type": "admin", "id": "1"},
                "body": FOOTER,
            },
        ]
    },
}
CONTACT = {
    "id": "c1",
    "name": "Ann",
    "custom_attributes": {"plan": "Standard", "account_status": "active", "stop_followups": False},
}
ORGANIZATION = {
    "id": 900,
    "name": "Acme",
    "organization_fields": {"plan": "enterprise", "account_status": "canceled"},
}

ASANA_IDS = AsanaIds(
    project="77",
    me="900",
    fields={
        "priority": CustomField("f1", "enum", {"high": "o-high", "medium": "o-med"}),
        "user_last_updated": CustomField("f2", "date"),
        "intercom_contact": CustomField("f4", "text"),
    },
)
TASK = {
    "gid": "1201",
    "name": "Export broken",
    "completed": False,
    "created_at": "2026-02-01T10:00:00.000Z",
    "modified_at": "2026-03-01T10:00:00.000Z",
    "assignee": {"gid": "5", "name": "Eve Engineer"},
    "custom_fields": [
        {"gid": "f1", "enum_value": {"gid": "o-high", "name": "High"}},
        {"gid": "f2", "date_value": {"date": "2026-02-20"}},
        {"gid": "f4", "text_value": "contact-42"},
    ],
}
STORIES = [
    {
        "resource_subtype": "comment_added",
        "created_at": "2026-02-10T10:00:00.000Z",
        "created_by": {"gid": "5", "name": "Eve Engineer"},
        "text": "Looking into it",
    },
    {
        "resource_subtype": "comment_added",
        "created_at": "2026-02-12T10:00:00.000Z",
        "created_by": {"gid": "900", "name": "Followup Worker"},
        "text": "Update sent\n\n" + FOOTER,
    },
    {"resource_subtype": "assigned", "created_at": "2026-02-02T10:00:00.000Z"},
]


def _outcome(translate: Callable[[], Any]) -> Any:
    try:
        return translate()
    except BadRecord as bad:
        return bad


def _check_report(bad: BadRecord, record: Any, valid_id: str, id_key: str) -> None:
    """A report names the record (when its id survived the damage) and says why."""
    if isinstance(record, dict) and str(record.get(id_key)) == valid_id:
        assert bad.record_id == valid_id
    assert bad.reason
    assert len(str(bad)) < 400  # a 100k value is clipped, not copied into the log line


def _expect_case_or_report(
    translate: Callable[[], Case], record: Any, valid_id: str, id_key: str
) -> Case | None:
    """The translated case, well typed; or None after checking the BadRecord names the record."""
    outcome = _outcome(translate)
    if isinstance(outcome, BadRecord):
        _check_report(outcome, record, valid_id, id_key)
        return None
    assert_well_typed(outcome)
    return outcome  # type: ignore[no-any-return]


def _plans_without_error(case: Case) -> None:
    for result in plan([case], ACCOUNTS, NOW, RULES, CALENDAR):
        assert isinstance(result, PlanItem | Unjudged)
        if isinstance(result, Unjudged):
            assert result.case_ref == case.ref
            assert result.reason


def test_the_valid_bases_translate_and_plan() -> None:
    """The bases are valid: if they were not, every damaged example would be vacuous."""
    cases = [
        ticket_case(TICKET, USERS, COMMENTS, ZENDESK_IDS),
        conversation_case(CONVERSATION, INTERCOM_IDS),
        task_case(TASK, STORIES, ASANA_IDS),
    ]
    for case in cases:
        assert_well_typed(case)
        assert case.history
        assert case.followups
        _plans_without_error(case)
    assert flagged_account(
        "zendesk", ORGANIZATION, "organization_fields", AccountFlags(), PlanNames()
    )
    assert flagged_account("intercom", CONTACT, "custom_attributes", AccountFlags(), PlanNames())


@FUZZ
@given(
    ticket=mutated(TICKET),
    users=mutated(USERS) | st.just(USERS),
    comments=mutated(COMMENTS) | st.just(COMMENTS),
)
def test_zendesk_ticket(ticket: Any, users: Any, comments: Any) -> None:
    case = _expect_case_or_report(
        lambda: ticket_case(ticket, users, comments, ZENDESK_IDS), ticket, "4242", "id"
    )
    if case is not None:
        _plans_without_error(case)


@FUZZ
@given(conversation=mutated(CONVERSATION, max_mutations=4))
def test_intercom_conversation(conversation: Any) -> None:
    case = _expect_case_or_report(
        lambda: conversation_case(conversation, INTERCOM_IDS), conversation, "777", "id"
    )
    if case is not None:
        _plans_without_error(case)


@FUZZ
@given(task=mutated(TASK), stories=mutated(STORIES) | st.just(STORIES))
def test_asana_task(task: Any, stories: Any) -> None:
    case = _expect_case_or_report(lambda: task_case(task, stories, ASANA_IDS), task, "1201", "gid")
    if case is not None:
        _plans_without_error(case)


@pytest.mark.parametrize(
    ("base", "values_key"),
    [(ORGANIZATION, "organization_fields"), (CONTACT, "custom_attributes")],
    ids=["zendesk-organization", "intercom-contact"],
)
@FUZZ
@given(data=st.data())
def test_account_record(base: dict[str, Any], values_key: str, data: st.DataObject) -> None:
    record = data.draw(mutated(base))
    outcome = _outcome(
        lambda: flagged_account("vendor", record, values_key, AccountFlags(), PlanNames())
    )
    if isinstance(outcome, BadRecord):
        _check_report(outcome, record, str(base["id"]), "id")
    else:
        assert_account_well_typed(outcome)


def _with(record: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(record)
    parent: Any = changed
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = value
    return changed


@pytest.mark.parametrize(
    ("translate", "reason"),
    [
        (lambda: ticket_case(_with(TICKET, ("status",), "archived"), USERS, COMMENTS, ZENDESK_IDS),
         "'archived' is not a valid Status"),
        (lambda: ticket_case(_with(TICKET, ("priority",), "p0"), USERS, COMMENTS, ZENDESK_IDS),
         "'p0' is not a valid Priority"),
        (lambda: ticket_case(
            _with(TICKET, ("created_at",), "2026-03-02T14:00:00"), USERS, COMMENTS, ZENDESK_IDS),
         "created_at: timestamp without a UTC offset"),
        (lambda: ticket_case(_with(TICKET, ("tags",), "vip"), USERS, COMMENTS, ZENDESK_IDS),
         "tags: expected a list of strings"),
        (lambda: ticket_case(_with(TICKET, ("subject",), {"a": 1}), USERS, COMMENTS, ZENDESK_IDS),
         "subject: expected a string"),
        (lambda: ticket_case(
            _with(TICKET, ("custom_fields", 0, "value"), ["a"]), USERS, COMMENTS, ZENDESK_IDS),
         "value: expected a string"),
        (lambda: ticket_case(TICKET, USERS, _with(COMMENTS, (1, "created_at"), None), ZENDESK_IDS),
         "created_at: expected an ISO timestamp"),
        (lambda: ticket_case(TICKET, USERS, _with(COMMENTS, (2, "body"), [1]), ZENDESK_IDS),
         "body: expected a string"),
        (lambda: ticket_case(_with(TICKET, ("updated_at",), "x" * 100_000), USERS, COMMENTS,
                             ZENDESK_IDS),
         "updated_at: not an ISO timestamp: 'xxx"),
        (lambda: conversation_case(_with(CONVERSATION, ("state",), "archived"), INTERCOM_IDS),
         "unknown conversation state 'archived'"),
        (lambda: conversation_case(_with(CONVERSATION, ("created_at",), "2026-03-01"),
                                   INTERCOM_IDS),
         "created_at: expected a Unix timestamp"),
        (lambda: conversation_case(_with(CONVERSATION, ("updated_at",), 10**20), INTERCOM_IDS),
         "updated_at: Unix timestamp out of range"),
        (lambda: conversation_case(
            _with(CONVERSATION, ("conversation_parts", "conversation_parts", 1, "body"), [5]),
            INTERCOM_IDS),
         "body: expected a string"),
        (lambda: task_case(_with(TASK, ("modified_at",), "2026-03-01T10:00:00"), STORIES,
                           ASANA_IDS),
         "modified_at: timestamp without a UTC offset"),
        (lambda: task_case(TASK, _with(STORIES, (0, "created_at"), "yesterday"), ASANA_IDS),
         "created_at: not an ISO timestamp"),
        (lambda: task_case(_with(TASK, ("custom_fields", 0), {"text_value": "x"}), STORIES,
                           ASANA_IDS),
         "missing field 'gid'"),
    ],
)  # fmt: skip
def test_known_bad_records_name_the_field(translate: Callable[[], Case], reason: str) -> None:
    with pytest.raises(BadRecord) as caught:
        translate()
    assert reason in caught.value.reason
    assert caught.value.record_id in ("4242", "777", "1201")
    assert len(str(caught.value)) < 400
