"""Deterministic, lazy tenant data: every object is a pure function of (seed, start, id).

Nothing is built up front, so a million-ticket tenant costs no memory until something is
read; the store keeps only what a write changed. Ticket ids grow with ``created_at`` (as in
Zendesk), which makes id order the export order.

Each ticket draws a *scenario* covering one flow of the seed policy pack: refund and
general-inquiry sequences (with and without linked orders and phone numbers), the three bot
issues, US Passport, bug / feature / other-question phases (some past their phase
timeframe), customers who replied or called mid-sequence, and the background of
new/hold/solved/closed tickets. Tickets already some steps into a sequence carry the
worker's internal notes with the contract footer, so the worker reads its own history back.

This module holds the people, organizations and Zendesk tickets; ``generator_intercom`` and
``generator_asana`` build the other vendors' objects on top of the same people.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from sandbox.clock import format_iso
from sandbox.tenant import (
    AGENTS,
    API_USER,
    PHASE_FIELD,
    PHASE_SINCE_FIELD,
    TICKET_FIELDS,
)

__all__ = [
    "SCENARIOS",
    "SEQUENCE_FLOWS",
    "Generator",
    "TicketRecord",
    "add_inbound_comment",
    "comment_json",
    "footer",
    "marker_key",
]

END_USER_BASE = 2_000_000
ORG_BASE = 3_000_000
COMMENTS_PER_TICKET = 10_000  # comment id = ticket id * this + index: unique, no counter

# (scenario, weight). Sequence scenarios are named after their flow.
SCENARIOS: tuple[tuple[str, int], ...] = (
    ("refund_request", 14),
    ("general_inquiry", 14),
    ("bot_tsa_ge_nexus_sentri", 5),
    ("bot_us_passport_missing_labels", 5),
    ("bot_ein", 4),
    ("refund_us_passport", 3),
    ("replied_mid_sequence", 6),
    ("called_mid_sequence", 4),
    ("bug_report", 10),
    ("feature_request", 6),
    ("other_question", 4),
    ("fresh", 10),
    ("on_hold", 3),
    ("solved", 8),
    ("closed", 4),
)
_SCENARIO_NAMES = [name for name, _ in SCENARIOS]
_SCENARIO_CUMULATIVE: list[int] = []
for _, _weight in SCENARIOS:
    _SCENARIO_CUMULATIVE.append((_SCENARIO_CUMULATIVE[-1] if _SCENARIO_CUMULATIVE else 0) + _weight)

# Business-day offset (from the day the sequence started) of each numbered step the worker
# writes, per flow: seed 004 (general inquiry days 1/3/5, refund days 2/3).
SEQUENCE_FLOWS: dict[str, tuple[tuple[int, int], ...]] = {
    "general_inquiry": ((0, 1), (2, 2), (4, 3)),
    "refund_request": ((1, 2), (2, 3)),
    "bot_tsa_ge_nexus_sentri": ((0, 1), (2, 2), (4, 3)),
    "bot_us_passport_missing_labels": ((0, 1), (2, 2), (4, 3)),
    "bot_ein": ((0, 1), (2, 2), (4, 3)),
}
MAX_STEPS = 3
# The policy pack's name for each flow: the footers the generator writes must be the ones the
# worker would have written (policies/pack/unresponsive_callers.yaml), or it restarts at 1/3.
FLOW_POLICIES = {
    "general_inquiry": "general-inquiry",
    "refund_request": "refund-request",
    "bot_tsa_ge_nexus_sentri": "bot-issue-tsa",
    "bot_us_passport_missing_labels": "bot-issue-passport-labels",
    "bot_ein": "bot-issue-ein",
}
# Average timeframe upper bound in business days per phase (seed 003), None = open-ended.
PHASE_LIMITS = {"phase_1": 3, "phase_2": 10, "phase_3": 10, "phase_4": None}

FIRST_NAMES = (
    "Ava", "Ben", "Chloe", "Diego", "Elena", "Femi", "Grace", "Hiro", "Ines", "Jonas",
    "Kara", "Liam", "Mei", "Noah", "Olga", "Pavel", "Quinn", "Rosa", "Sami", "Tara",
)  # fmt: skip
LAST_NAMES = (
    "Adams", "Brooks", "Chen", "Diaz", "Evans", "Fischer", "Garcia", "Haddad", "Ito",
    "Jensen", "Kowalski", "Lopez", "Mensah", "Novak", "Okafor", "Patel", "Rossi", "Silva",
)  # fmt: skip
COMPANY_WORDS = (
    "Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Stark", "Wayne",
    "Tyrell", "Cyberdyne", "Soylent", "Wonka", "Aperture", "Gringotts", "Monarch",
)  # fmt: skip
PLANS = (("enterprise", 15), ("standard", 35), ("community", 30), ("trial", 10), ("legacy_gold", 5))
SUBJECTS = {
    "refund_request": "Refund for my order",
    "general_inquiry": "Question about my application",
    "bot_tsa_ge_nexus_sentri": "TSA PreCheck renewal stuck",
    "bot_us_passport_missing_labels": "Passport shipping labels missing",
    "bot_ein": "EIN application not received",
    "bug_report": "Export button does nothing",
    "feature_request": "Please add bulk editing",
    "other_question": "How do invoices work?",
}


def marker_key(policy: str, case_ref: str, step: int, cycle: str) -> str:
    """The contract's idempotency key (same recipe as the worker's; written down twice on
    purpose: the sandbox imports nothing of the product)."""
    return hashlib.sha256(f"{policy}|{case_ref}|{step}|{cycle}".encode()).hexdigest()[:16]


def footer(policy: str, step: int, max_steps: int, key: str) -> str:
    """The marker line the worker ends each of its internal notes with (sandbox contract)."""
    return f"— followup-worker · {policy} · step {step}/{max_steps} · fw-{key}"


def _weighted(rng: random.Random, options: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([name for name, _ in options], weights=[w for _, w in options])[0]


def _business_days_before(instant: datetime, days: int) -> datetime:
    current = instant
    while days > 0:
        current -= timedelta(days=1)
        if current.weekday() < 5:
            days -= 1
    return current


def _business_days_after(instant: datetime, days: int) -> datetime:
    current = instant
    while days > 0:
        current += timedelta(days=1)
        if current.weekday() < 5:
            days -= 1
    return current


def _at_hour(day: datetime, hour: int, minute: int) -> datetime:
    return day.replace(hour=hour, minute=minute, second=0, microsecond=0)


@dataclass(slots=True)
class TicketRecord:
    """One Zendesk ticket with its comments and audits, JSON-shaped (as the API serves them)."""

    ticket: dict[str, Any]
    comments: list[dict[str, Any]]
    audits: list[dict[str, Any]]
    scenario: str


def comment_json(
    comment_id: int,
    audit_id: int,
    at: datetime,
    author_id: int,
    body: str,
    *,
    public: bool,
    channel: str,
    html_body: str | None = None,
    voice: dict[str, Any] | None = None,
    custom: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A Zendesk ticket comment; ``voice`` makes it a VoiceComment carrying call data."""
    comment: dict[str, Any] = {
        "id": comment_id,
        "type": "VoiceComment" if voice else "Comment",
        "author_id": author_id,
        "body": body,
        "html_body": html_body or f'<div class="zd-comment"><p>{body}</p></div>',
        "plain_body": body,
        "public": public,
        "audit_id": audit_id,
        "attachments": [],
        "created_at": format_iso(at),
        "via": {"channel": channel, "source": {"from": {}, "to": {}, "rel": None}},
        "metadata": {"system": {}, "custom": custom or {}},
    }
    if voice:
        comment["data"] = voice
    return comment


class _TicketBuilder:
    """Accumulates comments/audits in time order for one generated ticket."""

    def __init__(
        self,
        ticket_id: int,
        comments: list[dict[str, Any]] | None = None,
        audits: list[dict[str, Any]] | None = None,
    ) -> None:
        self.ticket_id = ticket_id
        self.comments: list[dict[str, Any]] = [] if comments is None else comments
        self.audits: list[dict[str, Any]] = [] if audits is None else audits
        self.marks: list[str] = []  # marker keys of the worker notes written so far

    def tags(self) -> set[str]:
        """Tags the worker's notes brought along (contract: ``followup_worker`` + marker)."""
        if not self.marks:
            return set()
        return {"followup_worker", *(f"fw-{key}" for key in self.marks)}

    def comment(
        self,
        at: datetime,
        author_id: int,
        body: str,
        *,
        public: bool,
        channel: str,
        voice: dict[str, Any] | None = None,
        custom: dict[str, Any] | None = None,
        changes: tuple[tuple[str, Any, Any], ...] = (),
    ) -> None:
        # The audit shares the comment's id: both unique, no counter needed.
        comment_id = self.ticket_id * COMMENTS_PER_TICKET + len(self.comments) + 1
        audit_id = comment_id
        created = format_iso(at)
        comment = comment_json(
            comment_id, audit_id, at, author_id, body, public=public, channel=channel,
            voice=voice, custom=custom,
        )  # fmt: skip
        self.comments.append(comment)
        events: list[dict[str, Any]] = [
            {"id": comment_id * 10, "type": comment["type"], "author_id": author_id,
             "body": body, "public": public}
        ]  # fmt: skip
        for offset, (name, value, previous) in enumerate(changes, start=1):
            events.append(
                {"id": comment_id * 10 + offset, "type": "Change", "field_name": name,
                 "value": value, "previous_value": previous}
            )  # fmt: skip
        self.audits.append(
            {
                "id": audit_id,
                "ticket_id": self.ticket_id,
                "author_id": author_id,
                "created_at": created,
                "metadata": {"system": {}, "custom": {}},
                "via": {"channel": channel, "source": {"from": {}, "to": {}, "rel": None}},
                "events": events,
            }
        )


class Generator:
    """Builds tenant objects on demand. Pure: the same (seed, start, id) gives the same data."""

    def __init__(self, seed: int, tickets: int, start: datetime) -> None:
        self.seed = seed
        self.ticket_count = tickets
        self.start = start.astimezone(UTC).replace(microsecond=0)
        self.org_count = max(12, tickets // 25)
        self.end_user_count = max(40, tickets // 3)
        self.contact_count = min(self.end_user_count, max(40, tickets // 10))
        self.conversation_count = max(40, tickets // 10)
        self.intercom_ticket_count = max(12, tickets // 50)
        self.task_count = max(40, tickets // 50)
        # Newest ticket 30 days old, oldest 90: room for every scenario's history.
        self._oldest = self.start - timedelta(days=90)
        self._spacing = timedelta(days=60) / max(1, tickets)
        # People and organizations are shared by many tickets: cache them (read-only dicts).
        self.end_user: Callable[[int], dict[str, Any]] = lru_cache(maxsize=16_384)(
            self._build_end_user
        )
        self.organization: Callable[[int], dict[str, Any]] = lru_cache(maxsize=4_096)(
            self._build_organization
        )

    def rng(self, kind: int, object_id: int) -> random.Random:
        """The random stream of one object: its own, so objects never depend on each other."""
        return random.Random((self.seed * 1_000_003 + kind) * 10_000_019 + object_id)

    # --- Zendesk -----------------------------------------------------------------------

    def has_ticket(self, ticket_id: int) -> bool:
        return 1 <= ticket_id <= self.ticket_count

    def scenario(self, ticket_id: int) -> str:
        rng = self.rng(1, ticket_id)
        draw = rng.random() * _SCENARIO_CUMULATIVE[-1]
        for name, bound in zip(_SCENARIO_NAMES, _SCENARIO_CUMULATIVE, strict=True):
            if draw < bound:
                return name
        return _SCENARIO_NAMES[-1]

    def has_end_user(self, user_id: int) -> bool:
        return 1 <= user_id - END_USER_BASE <= self.end_user_count

    def _build_end_user(self, user_id: int) -> dict[str, Any]:
        index = user_id - END_USER_BASE
        rng = self.rng(2, index)
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        reach = rng.choices(("email", "phone", "both"), weights=(45, 20, 35))[0]
        email = f"{first}.{last}.{index}@customer.example".lower() if reach != "phone" else None
        phone = f"+1555{index:07d}" if reach != "email" else None
        org_index = rng.randint(1, self.org_count) if rng.random() < 0.9 else None
        created = format_iso(self._oldest - timedelta(days=rng.randint(30, 900)))
        return {
            "id": user_id,
            "url": f"/api/v2/users/{user_id}.json",
            "name": f"{first} {last}",
            "email": email,
            "phone": phone,
            "role": "end-user",
            "active": True,
            "verified": True,
            "organization_id": ORG_BASE + org_index if org_index else None,
            "time_zone": "Eastern Time (US & Canada)",
            "iana_time_zone": "America/New_York",
            "locale": "en-US",
            "locale_id": 1,
            "tags": [],
            "user_fields": {},
            "created_at": created,
            "updated_at": created,
        }

    def has_organization(self, org_id: int) -> bool:
        return 1 <= org_id - ORG_BASE <= self.org_count

    def _build_organization(self, org_id: int) -> dict[str, Any]:
        index = org_id - ORG_BASE
        rng = self.rng(3, index)
        plan = _weighted(rng, PLANS)
        canceled = rng.random() < 0.08
        stop = rng.random() < 0.05
        name = (
            f"{rng.choice(COMPANY_WORDS)} {rng.choice(('Labs', 'Travel', 'Group', 'Inc'))} {index}"
        )
        created = format_iso(self._oldest - timedelta(days=rng.randint(100, 1500)))
        return {
            "id": org_id,
            "url": f"/api/v2/organizations/{org_id}.json",
            "name": name,
            "external_id": f"org-{index}",
            "domain_names": [f"org{index}.example"],
            "details": "",
            "notes": "",
            "group_id": None,
            "shared_tickets": False,
            "shared_comments": False,
            "tags": [plan],
            "organization_fields": {
                "plan": plan,
                "account_status": "canceled" if canceled else "active",
                "stop_followups": stop,
            },
            "created_at": created,
            "updated_at": created,
        }

    def plan_of_user(self, user_id: int) -> dict[str, Any]:
        user = self.end_user(user_id)
        if user["organization_id"] is None:
            rng = self.rng(5, user_id)
            return {"plan": _weighted(rng, PLANS), "account_status": "active",
                    "stop_followups": False}  # fmt: skip
        return dict(self.organization(user["organization_id"])["organization_fields"])

    def ticket(self, ticket_id: int) -> TicketRecord:
        scenario = self.scenario(ticket_id)
        rng = self.rng(4, ticket_id)
        requester_id = END_USER_BASE + rng.randint(1, self.end_user_count)
        requester = self.end_user(requester_id)
        created_at = self._oldest + self._spacing * (ticket_id - 1)
        builder = _TicketBuilder(ticket_id)
        agent = rng.choice(AGENTS)
        flow = _flow_of(scenario, rng)
        fields = _initial_fields(flow, scenario, rng)
        description = f"{SUBJECTS[fields['request_type']]}. Ticket {ticket_id}, please help."
        builder.comment(created_at, requester_id, description, public=True,
                        channel=rng.choice(("email", "web")))  # fmt: skip
        status, assignee_id, group_id = self._play_scenario(
            builder, scenario, flow, rng, agent.id, requester, created_at, fields
        )
        tags = {v for k, v in fields.items() if k not in ("linked_order", "phase_since") and v}
        tags.update(builder.tags())
        updated_at = builder.comments[-1]["created_at"]
        ticket = {
            "id": ticket_id,
            "url": f"/api/v2/tickets/{ticket_id}.json",
            "external_id": None,
            "type": "question",
            "subject": SUBJECTS[fields["request_type"]],
            "raw_subject": SUBJECTS[fields["request_type"]],
            "description": description,
            "priority": rng.choices(("low", "normal", "high", "urgent"), (20, 55, 18, 7))[0],
            "status": status,
            "recipient": "support@sandbox.example",
            "requester_id": requester_id,
            "submitter_id": requester_id,
            "assignee_id": assignee_id,
            "organization_id": requester["organization_id"],
            "group_id": group_id,
            "collaborator_ids": [],
            "follower_ids": [],
            "email_cc_ids": [],
            "has_incidents": False,
            "is_public": True,
            "due_at": None,
            "tags": sorted(tags),
            "custom_fields": [
                {"id": spec.id, "value": fields[_FIELD_KEYS[spec.id]] or None}
                for spec in TICKET_FIELDS
                if spec.id in _FIELD_KEYS
            ]
            + _typed_fields(ticket_id),
            "satisfaction_rating": None,
            "sharing_agreement_ids": [],
            "via": {
                "channel": builder.comments[0]["via"]["channel"],
                "source": {"from": {}, "to": {}, "rel": None},
            },
            "created_at": format_iso(created_at),
            "updated_at": updated_at,
            "generated_timestamp": int(datetime.fromisoformat(updated_at).timestamp()),
            "allow_attachments": True,
            "allow_channelback": False,
            "from_messaging_channel": False,
            "brand_id": 360000001,
            "ticket_form_id": 360000010,
        }
        return TicketRecord(ticket, builder.comments, builder.audits, scenario)

    def _play_scenario(
        self,
        builder: _TicketBuilder,
        scenario: str,
        flow: str | None,
        rng: random.Random,
        agent_id: int,
        requester: dict[str, Any],
        created_at: datetime,
        fields: dict[str, str],
    ) -> tuple[str, int | None, int | None]:
        """Write the ticket's history; answer (status, assignee_id, group_id)."""
        group_id = 502 if fields["request_type"] == "refund_request" else 501
        if flow is not None:
            status = self._play_sequence(builder, scenario, flow, rng, agent_id, requester,
                                         created_at)  # fmt: skip
            return status, agent_id, group_id
        if scenario in ("bug_report", "feature_request", "other_question"):
            return self._play_phase(builder, rng, agent_id, fields), agent_id, group_id
        if scenario == "fresh":
            if rng.random() < 0.5:
                return "new", None, None
            at = self.start - timedelta(hours=rng.randint(1, 20))
            builder.comment(at, requester["id"], "Any news on this?", public=True,
                            channel="email")  # fmt: skip
            return "open", agent_id, group_id
        at = created_at + timedelta(days=rng.randint(1, 5))
        if scenario == "on_hold":
            builder.comment(at, agent_id, "Waiting on our partner, we will get back to you.",
                            public=True, channel="web")  # fmt: skip
            return "hold", agent_id, group_id
        solved = (("status", "solved", "open"),)
        builder.comment(at, agent_id, "This is sorted now, thank you for your patience.",
                        public=True, channel="web", changes=solved)  # fmt: skip
        return ("closed" if scenario == "closed" else "solved"), agent_id, group_id

    def _play_sequence(
        self,
        builder: _TicketBuilder,
        scenario: str,
        flow: str,
        rng: random.Random,
        agent_id: int,
        requester: dict[str, Any],
        created_at: datetime,
    ) -> str:
        """A follow-up sequence started by an inbound activity, some steps already written."""
        days_in = rng.randint(0, 8)
        start_day = _business_days_before(self.start, days_in)
        started = _at_hour(start_day, rng.randint(8, 15), rng.randint(0, 59))
        if started > self.start - timedelta(hours=1):  # the agent answered before "now"
            started = self.start - timedelta(hours=rng.randint(1, 4))
        started = max(started, created_at + timedelta(hours=1))
        self._inbound(builder, rng, requester, started)
        builder.comment(started + timedelta(minutes=25), agent_id,
                        "Thanks for reaching out. Could you confirm your order details?",
                        public=True, channel="web")  # fmt: skip
        worker_ran = rng.random() < 0.8  # some tickets: the worker never ran, a backlog
        # The worker's cycle: the inbound instant as it reads it back (second precision, UTC,
        # ISO with an explicit offset), the sequence anchor of the contract's key recipe.
        cycle = started.astimezone(UTC).replace(microsecond=0).isoformat()
        policy = FLOW_POLICIES[flow]
        last_step_at = started + timedelta(minutes=25)
        for offset, step in SEQUENCE_FLOWS[flow]:
            at = _at_hour(_business_days_after(started, offset), 10, rng.randint(0, 59))
            at = max(at, started + timedelta(hours=1))
            if not worker_ran or at >= self.start:
                break
            key = marker_key(policy, f"zendesk:{builder.ticket_id}", step, cycle)
            body = (
                f"Unable to reach the customer (email, call, text). {step}/{MAX_STEPS}\n\n"
                f"{footer(policy, step, MAX_STEPS, key)}"
            )
            builder.comment(at, API_USER.id, body, public=False, channel="api")
            builder.marks.append(key)
            last_step_at = at
        if scenario in ("replied_mid_sequence", "called_mid_sequence"):
            at = last_step_at + timedelta(hours=rng.randint(2, 30))
            if at < self.start:
                if scenario == "replied_mid_sequence":
                    builder.comment(at, requester["id"], "Sorry for the delay, here it is.",
                                    public=True, channel="email")  # fmt: skip
                else:
                    self._inbound(builder, rng, requester, at, force_call=True)
                return "open"
        return "pending"

    def _inbound(
        self,
        builder: _TicketBuilder,
        rng: random.Random,
        requester: dict[str, Any],
        at: datetime,
        *,
        force_call: bool = False,
    ) -> None:
        kinds = ["customer_reply", "missed_email"]
        if requester["phone"]:
            kinds += ["missed_call", "abandoned_call"]
            if force_call:
                kinds = ["missed_call", "abandoned_call"]
        kind = rng.choice(kinds)
        add_inbound(builder, kind, requester, at, "I need help with my order.")

    def _play_phase(
        self, builder: _TicketBuilder, rng: random.Random, agent_id: int, fields: dict[str, str]
    ) -> str:
        phase = fields["phase"]
        limit = PHASE_LIMITS[phase] or 10
        # Half within the phase timeframe, half past it.
        days = rng.randint(0, limit) if rng.random() < 0.5 else rng.randint(limit + 1, limit + 8)
        entered = _at_hour(_business_days_before(self.start, days), rng.randint(9, 16), 0)
        entered = min(entered, self.start - timedelta(minutes=30))
        fields["phase_since"] = entered.date().isoformat()
        moved = (
            (str(PHASE_FIELD), phase, None),
            (str(PHASE_SINCE_FIELD), fields["phase_since"], None),
        )
        builder.comment(entered, agent_id, f"Moved to {phase.replace('_', ' ')}.", public=False,
                        channel="web", changes=moved)  # fmt: skip
        return rng.choice(("open", "pending"))


def _typed_fields(ticket_id: int) -> list[dict[str, Any]]:
    """The checkbox, multiselect, integer and decimal fields (vendor-behaviours.md Z4), from
    the ticket id alone, so the generator's random draws stay as they were."""
    products = [value for n, value in enumerate(("passport", "tsa", "ein")) if ticket_id >> n & 1]
    return [
        {"id": 9007, "value": ticket_id % 3 == 0},
        {"id": 9008, "value": products or None},
        {"id": 9009, "value": ticket_id % 4 or None},
        {"id": 9010, "value": round(ticket_id * 1.25, 2) if ticket_id % 5 == 0 else None},
    ]


_FIELD_KEYS = {9001: "request_type", 9002: "linked_order", 9003: "order_status",
               9004: "industry", 9005: "phase", 9006: "phase_since"}  # fmt: skip


def add_inbound_comment(
    record: TicketRecord,
    kind: str,
    requester: dict[str, Any],
    at: datetime,
    body: str,
    changes: tuple[tuple[str, Any, Any], ...] = (),
) -> dict[str, Any]:
    """Append a requester's inbound activity (and its audit) to a stored ticket."""
    builder = _TicketBuilder(record.ticket["id"], record.comments, record.audits)
    add_inbound(builder, kind, requester, at, body, changes)
    return record.comments[-1]


def add_inbound(
    builder: _TicketBuilder,
    kind: str,
    requester: dict[str, Any],
    at: datetime,
    body: str,
    changes: tuple[tuple[str, Any, Any], ...] = (),
) -> None:
    """A requester's inbound activity as Zendesk records it (sandbox contract)."""
    author = requester["id"]
    if kind == "customer_reply":
        builder.comment(at, author, body, public=True, channel="email", changes=changes)
    elif kind in ("missed_call", "abandoned_call"):
        # What Zendesk Talk records (oas 23667-23693, vendor-behaviours.md Z5): no call status;
        # an unanswered call has no answered_by_id. An abandoned call hung up in the queue.
        waited = 0 if kind == "missed_call" else 35
        voice = {"from": requester["phone"], "to": "+18005550100", "recording_url": None,
                 "started_at": format_iso(at), "call_duration": waited, "answered_by_id": None,
                 "transcription_text": None, "location": "US"}  # fmt: skip
        builder.comment(at, author, f"Call from: {requester['phone']}\nTime of call: "
                        f"{format_iso(at)}", public=False, channel="voice", voice=voice,
                        changes=changes)  # fmt: skip
    elif kind == "missed_email":
        builder.comment(at, author, body, public=False, channel="email", custom={"missed": True},
                        changes=changes)  # fmt: skip
    else:
        raise ValueError(f"unknown inbound kind {kind!r}")


def _flow_of(scenario: str, rng: random.Random) -> str | None:
    if scenario in SEQUENCE_FLOWS:
        return scenario
    if scenario == "refund_us_passport":
        return "refund_request"
    if scenario in ("replied_mid_sequence", "called_mid_sequence"):
        return rng.choice(tuple(SEQUENCE_FLOWS))
    return None


def _initial_fields(flow: str | None, scenario: str, rng: random.Random) -> dict[str, str]:
    request_type = flow or (
        scenario if scenario in SUBJECTS else rng.choice(("general_inquiry", "other_question"))
    )
    industry = {
        "bot_tsa_ge_nexus_sentri": "tsa_precheck",
        "bot_us_passport_missing_labels": "us_passport",
        "bot_ein": "ein_services",
    }.get(request_type) or rng.choice(("tsa_precheck", "ein_services", "general", "general"))
    if scenario == "refund_us_passport":
        industry = "us_passport"
    linked = rng.random() < 0.5
    # Only the phase scenarios get a phase: _play_phase writes when it was entered.
    phase = ""
    if scenario in ("bug_report", "feature_request"):
        phase = rng.choice(("phase_1", "phase_2", "phase_3", "phase_4"))
    elif scenario == "other_question":  # seed 003: questions have three phases
        phase = rng.choice(("phase_1", "phase_2", "phase_3"))
    return {
        "request_type": request_type,
        "linked_order": f"ORD-{rng.randint(100000, 999999)}" if linked else "",
        "order_status": "awaiting_customer" if flow else rng.choice(("processing", "completed")),
        "industry": industry,
        "phase": phase,
        "phase_since": "",  # set with the phase's history (_play_phase)
    }
