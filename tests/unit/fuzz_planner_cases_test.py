"""Fuzz: odd cases and accounts straight into the planner, with the bundled pack.

Connectors hand the planner well-typed cases, but what is inside the types is the vendor's:
naive or far-off instants, field values no policy expects (a phase "x", a phase start
"yesterday", a 100k request type, RTL and NUL characters), an unknown plan, history out of
order. ``plan``, ``explain`` and ``preview`` must judge each such case or report it as
:class:`Unjudged` naming the case, and never raise.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from policies.calendar import BusinessCalendar
from policies.model import (
    Account,
    Activity,
    ActivityKind,
    Case,
    CaseKind,
    FollowUpMark,
    PlanItem,
    PlanTier,
    Priority,
    Requester,
    Source,
    Status,
    Unjudged,
)
from policies.planner import explain, plan, preview
from policies.rules import load_rulebook
from tests.fuzz_support import BAD_TIMESTAMPS, FUZZ, HUGE, ODD_UNICODE, UNKNOWN_ENUMS

RULES = load_rulebook()
CALENDAR = BusinessCalendar(timezone="America/New_York", country="US")
NOW = datetime(2026, 3, 20, 15, 0, tzinfo=UTC)
FIELD_NAMES = [
    "request_type",
    "phase",
    "phase_since",
    "linked_order",
    "order_status",
    "industry",
    "user_last_updated",
    "last_followup_date",
]
REQUEST_TYPES = ["general_inquiry", "refund", "bot_ein", "bug", "feature_request"]

odd_text = st.text(max_size=30) | st.sampled_from(
    [*REQUEST_TYPES, "1", "4", "-3", "9" * 40, *ODD_UNICODE, *UNKNOWN_ENUMS, *BAD_TIMESTAMPS, HUGE]
)
zones = st.sampled_from([UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12))])
instants = st.one_of(
    st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1), timezones=zones),
    st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 4, 1)),  # naive
    st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 4, 1), timezones=zones),
)


@st.composite
def odd_cases(draw: st.DrawFn) -> Case:
    kind = draw(st.sampled_from(CaseKind))
    return Case(
        source=draw(st.sampled_from(Source)),
        id=draw(st.sampled_from(["1", "2", "\u202e3", "9" * 200])),
        kind=kind,
        status=draw(st.sampled_from(Status)),
        created_at=draw(instants),
        updated_at=draw(instants),
        subject=draw(odd_text),
        priority=draw(st.none() | st.sampled_from(Priority)),
        requester=draw(st.none() | st.builds(Requester, id=odd_text, name=odd_text)),
        account_id=draw(st.sampled_from([None, "std", "legacy", "community", "missing"])),
        assignee=draw(st.none() | odd_text),
        fields=draw(st.dictionaries(st.sampled_from(FIELD_NAMES), odd_text, max_size=5)),
        tags=frozenset(draw(st.lists(odd_text, max_size=3))),
        history=tuple(
            draw(st.lists(st.builds(Activity, st.sampled_from(ActivityKind), instants), max_size=4))
        ),
        followups=tuple(
            draw(
                st.lists(
                    st.builds(
                        FollowUpMark,
                        st.sampled_from([p.name for p in RULES.policies] + ["gone"]),
                        st.integers(-1, 9),
                        instants,
                        st.text("0123456789abcdef", min_size=1, max_size=16),
                    ),
                    max_size=4,
                )
            )
        ),
    )


ACCOUNTS = {
    "std": Account("std", plan=PlanTier.STANDARD, open_cases=1, max_open_priority=Priority.HIGH),
    "legacy": Account("legacy", raw_plan="legacy_gold"),
    "community": Account("community", plan=PlanTier.COMMUNITY, open_cases=-1, open_case_refs=()),
}


def _reports_this_case(result: Any, case: Case) -> None:
    assert isinstance(result, PlanItem | Unjudged)
    if isinstance(result, Unjudged):
        assert result.case_ref == case.ref
        assert result.reason


@FUZZ
@given(case=odd_cases(), now=instants.filter(lambda at: at.tzinfo is not None))
def test_plan_judges_or_reports_every_case(case: Case, now: datetime) -> None:
    for result in plan([case], ACCOUNTS, now, RULES, CALENDAR):
        _reports_this_case(result, case)


@FUZZ
@given(case=odd_cases())
def test_explain_and_preview_never_raise(case: Case) -> None:
    explain(case, ACCOUNTS, NOW, RULES, CALENDAR)
    for step in preview([case], ACCOUNTS, NOW, RULES, CALENDAR, horizon=3):
        _reports_this_case(step.result, case)


def test_a_naive_instant_is_reported_not_raised() -> None:
    case = Case(
        source=Source.ZENDESK,
        id="9",
        kind=CaseKind.TICKET,
        status=Status.PENDING,
        created_at=datetime(2026, 3, 2, 9),
        updated_at=datetime(2026, 3, 2, 9),
    )
    (result,) = plan([case], ACCOUNTS, NOW, RULES, CALENDAR)
    assert isinstance(result, Unjudged)
    assert result.case_ref == "zendesk:9"
    assert "no time zone" in result.reason
