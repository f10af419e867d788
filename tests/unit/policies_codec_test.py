"""The case store's format (:mod:`policies.codec`): every case and account comes back equal
through JSON text, whatever its fields hold."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from policies.codec import account_from_json, account_to_json, case_from_json, case_to_json
from policies.model import (
    Account,
    Activity,
    ActivityKind,
    Case,
    CaseKind,
    FollowUpMark,
    PlanTier,
    Priority,
    Requester,
    Source,
    Status,
)
from policies.snapshot import Snapshot, parse_snapshot
from tests.fuzz_support import ODD_UNICODE
from tests.unit.policies_planner_properties_test import SETTINGS, cases

texts = st.text(max_size=12) | st.sampled_from(ODD_UNICODE)
maybe_texts = st.none() | texts
# Connectors give UTC; input files give fixed offsets (down to the second, as some zones had);
# a case may even carry a zoneless instant, which the planner reports: all must come back.
zones = st.sampled_from(
    [UTC, timezone(timedelta(hours=-5)), timezone(timedelta(hours=5, minutes=30, seconds=7))]
)
instants = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(2100, 1, 1), timezones=st.none() | zones
)

any_cases = st.builds(
    Case,
    source=st.sampled_from(Source),
    id=texts,
    kind=st.sampled_from(CaseKind),
    status=st.sampled_from(Status),
    created_at=instants,
    updated_at=instants,
    subject=texts,
    priority=st.none() | st.sampled_from(Priority),
    requester=st.none() | st.builds(Requester, texts, texts, maybe_texts, maybe_texts),
    account_id=maybe_texts,
    assignee=maybe_texts,
    group=maybe_texts,
    brand=maybe_texts,
    fields=st.dictionaries(texts, texts, max_size=3),
    tags=st.frozensets(texts, max_size=3),
    history=st.lists(st.builds(Activity, st.sampled_from(ActivityKind), instants), max_size=3).map(
        tuple
    ),
    followups=st.lists(
        st.builds(FollowUpMark, texts, st.integers(1, 9), instants, texts), max_size=3
    ).map(tuple),
    updated_stamp=maybe_texts,
)

any_accounts = st.builds(
    Account,
    id=texts,
    name=texts,
    plan=st.none() | st.sampled_from(PlanTier),
    canceled=st.booleans(),
    stop_followups=st.booleans(),
    inactive=st.booleans(),
    open_cases=st.integers(0, 10**6),
    raw_plan=maybe_texts,
    open_case_refs=st.lists(texts, max_size=3).map(tuple),
    max_open_priority=st.none() | st.sampled_from(Priority),
    open_case_titles=st.dictionaries(texts, texts, max_size=3),
)


def through_json(data: dict[str, Any]) -> Any:
    return json.loads(json.dumps(data))


@SETTINGS
@given(any_cases | cases())
def test_a_case_comes_back_equal(case: Case) -> None:
    back = case_from_json(through_json(case_to_json(case)))
    assert back == case
    # Equal instants are not enough: the same offset (or the lack of one) must come back.
    pairs = [
        (case.created_at, back.created_at),
        (case.updated_at, back.updated_at),
        *zip((a.at for a in case.history), (a.at for a in back.history), strict=True),
        *zip((m.at for m in case.followups), (m.at for m in back.followups), strict=True),
    ]
    for before, after in pairs:
        assert after.utcoffset() == before.utcoffset()
        assert (after.tzinfo is UTC) is (before.tzinfo is UTC)


@SETTINGS
@given(any_accounts)
def test_an_account_comes_back_equal(account: Account) -> None:
    assert account_from_json(through_json(account_to_json(account))) == account


def test_every_field_is_written() -> None:
    # A field added to the model later must be added to the format too, or it is lost.
    case = Case(
        Source.INTERCOM,
        "7",
        CaseKind.CONVERSATION,
        Status.OPEN,
        datetime.now(UTC),
        datetime.now(UTC),
    )
    renamed = {"account_id": "account"}
    assert set(case_to_json(case)) == {
        renamed.get(f.name, f.name) for f in dataclasses.fields(Case)
    }
    assert set(account_to_json(Account("a"))) == {f.name for f in dataclasses.fields(Account)}


def test_an_input_file_case_reads_as_the_store_writes_it() -> None:
    # One format: a case entry of `followup plan`'s input file decodes like a stored case.
    snapshot = Snapshot.model_validate(
        {
            "cases": [
                {
                    "id": 12,
                    "kind": "ticket",
                    "status": "pending",
                    "created_at": "2026-03-02T09:00:00-05:00",
                    "requester": {"id": "r1", "name": "Ann"},
                    "account": "acme",
                    "tags": ["vip"],
                    "history": [
                        {"kind": "agent_update", "at": "2026-03-02T10:00:00-05:00"},
                        {"kind": "customer_reply", "at": "2026-03-02T09:30:00-05:00"},
                    ],
                    "followups": [
                        {"policy": "awaiting-customer", "step": 1, "at": "2026-03-04T09:00:00Z"}
                    ],
                }
            ]
        }
    )
    (case,) = parse_snapshot(snapshot).cases
    assert case_from_json(through_json(case_to_json(case))) == case
    assert case.ref == "zendesk:12"
    assert case.updated_at == case.created_at
    assert [a.kind for a in case.history] == [
        ActivityKind.CUSTOMER_REPLY,
        ActivityKind.AGENT_UPDATE,
    ]
    assert case.followups[0].key  # derived when the file omits it
    assert case.followups[0].at.tzinfo is UTC
