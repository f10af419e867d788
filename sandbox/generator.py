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
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sandbox.clock import format_iso
from sandbox.tenant import (
    AGENTS,
    API_USER,
    ASANA_FIELDS,
    ASANA_PROJECT_GID,
    ASANA_USERS,
    ENGINEER_GIDS,
    INTERCOM_TICKET_STATES,
    PHASE_FIELD,
    PRIORITY_OPTIONS,
    TICKET_FIELDS,
)

__all__ = [
    "SCENARIOS",
    "SEQUENCE_FLOWS",
    "Generator",
    "TicketRecord",
    "add_inbound_comment",
    "asana_time",
    "asana_users",
    "footer",
    "intercom_company_id",
    "intercom_contact_id",
    "intercom_ticket_state",
    "marker_key",
    "parse_intercom_id",
]

END_USER_BASE = 2_000_000
ORG_BASE = 3_000_000
COMMENTS_PER_TICKET = 10_000  # comment id = ticket id * this + index: unique, no counter
CONVERSATION_BASE = 10_000
INTERCOM_TICKET_BASE = 20_000
ASANA_TASK_BASE = 1_206_000_000_000_000
ASANA_STORY_BASE = 1_207_000_000_000_000
STORIES_PER_TASK = 1_000

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
    extra: dict[str, Any] = field(default_factory=dict)


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

    def _next_ids(self) -> tuple[int, int]:
        index = len(self.comments) + 1
        comment_id = self.ticket_id * COMMENTS_PER_TICKET + index
        return comment_id, comment_id  # the audit shares the comment's id: both unique

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
        comment_id, audit_id = self._next_ids()
        created = format_iso(at)
        comment: dict[str, Any] = {
            "id": comment_id,
            "type": "VoiceComment" if voice else "Comment",
            "author_id": author_id,
            "body": body,
            "html_body": f'<div class="zd-comment"><p>{body}</p></div>',
            "plain_body": body,
            "public": public,
            "audit_id": audit_id,
            "attachments": [],
            "created_at": created,
            "via": {"channel": channel, "source": {"from": {}, "to": {}, "rel": None}},
            "metadata": {"system": {}, "custom": custom or {}},
        }
        if voice:
            comment["data"] = voice
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

    def _rng(self, kind: int, object_id: int) -> random.Random:
        return random.Random((self.seed * 1_000_003 + kind) * 10_000_019 + object_id)

    # --- Zendesk -----------------------------------------------------------------------

    def has_ticket(self, ticket_id: int) -> bool:
        return 1 <= ticket_id <= self.ticket_count

    def scenario(self, ticket_id: int) -> str:
        rng = self._rng(1, ticket_id)
        draw = rng.random() * _SCENARIO_CUMULATIVE[-1]
        for name, bound in zip(_SCENARIO_NAMES, _SCENARIO_CUMULATIVE, strict=True):
            if draw < bound:
                return name
        return _SCENARIO_NAMES[-1]

    def has_end_user(self, user_id: int) -> bool:
        return 1 <= user_id - END_USER_BASE <= self.end_user_count

    def end_user(self, user_id: int) -> dict[str, Any]:
        index = user_id - END_USER_BASE
        rng = self._rng(2, index)
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

    def organization(self, org_id: int) -> dict[str, Any]:
        index = org_id - ORG_BASE
        rng = self._rng(3, index)
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

    def ticket(self, ticket_id: int) -> TicketRecord:
        scenario = self.scenario(ticket_id)
        rng = self._rng(4, ticket_id)
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
        tags = {value for key, value in fields.items() if key != "linked_order" and value}
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
            ],
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
        builder.comment(at, agent_id, "This is sorted now, thank you for your patience.",
                        public=True, channel="web")  # fmt: skip
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
        if started >= self.start:
            started = self.start - timedelta(hours=rng.randint(1, 4))
        started = max(started, created_at + timedelta(hours=1))
        self._inbound(builder, rng, requester, started)
        builder.comment(started + timedelta(minutes=25), agent_id,
                        "Thanks for reaching out. Could you confirm your order details?",
                        public=True, channel="web")  # fmt: skip
        worker_ran = rng.random() < 0.8  # some tickets: the worker never ran, a backlog
        cycle = format_iso(started)
        last_step_at = started + timedelta(minutes=25)
        for offset, step in SEQUENCE_FLOWS[flow]:
            at = _at_hour(_business_days_after(started, offset), 10, rng.randint(0, 59))
            at = max(at, started + timedelta(hours=1))
            if not worker_ran or at >= self.start:
                break
            key = marker_key(flow, f"zendesk:{builder.ticket_id}", step, cycle)
            body = (
                f"Unable to reach the customer (email, call, text). {step}/{MAX_STEPS}\n\n"
                f"{footer(flow, step, MAX_STEPS, key)}"
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
        kinds = ["reply", "missed_email"]
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
        builder.comment(entered, agent_id, f"Moved to {phase.replace('_', ' ')}.", public=False,
                        channel="web", changes=((str(PHASE_FIELD), phase, None),))  # fmt: skip
        return rng.choice(("open", "pending"))

    # --- Intercom ----------------------------------------------------------------------

    def plan_of_user(self, user_id: int) -> dict[str, Any]:
        user = self.end_user(user_id)
        if user["organization_id"] is None:
            rng = self._rng(5, user_id)
            return {"plan": _weighted(rng, PLANS), "account_status": "active",
                    "stop_followups": False}  # fmt: skip
        return dict(self.organization(user["organization_id"])["organization_fields"])

    def has_contact(self, index: int) -> bool:
        return 1 <= index <= self.contact_count

    def contact(self, index: int) -> dict[str, Any]:
        user = self.end_user(END_USER_BASE + index)
        attributes = self.plan_of_user(user["id"])
        created = _epoch(user["created_at"])
        email = user["email"] or ""
        companies = []
        if user["organization_id"] is not None:
            org_index = user["organization_id"] - ORG_BASE
            companies = [{"type": "company", "id": intercom_company_id(org_index),
                          "url": f"/companies/{intercom_company_id(org_index)}"}]  # fmt: skip
        return {
            "type": "contact",
            "id": intercom_contact_id(index),
            "workspace_id": "sandbox1",
            "external_id": str(user["id"]),
            "role": "user",
            "email": email,
            "email_domain": email.partition("@")[2],
            "phone": user["phone"],
            "name": user["name"],
            "owner_id": None,
            "has_hard_bounced": False,
            "marked_email_as_spam": False,
            "unsubscribed_from_emails": False,
            "created_at": created,
            "updated_at": created,
            "signed_up_at": created,
            "last_seen_at": None,
            "last_replied_at": None,
            "last_contacted_at": None,
            "custom_attributes": attributes,
            "tags": {"type": "list", "data": [], "url": "", "total_count": 0, "has_more": False},
            "companies": {
                "type": "list",
                "data": companies,
                "url": "",
                "total_count": len(companies),
                "has_more": False,
            },
            "location": {"type": "location", "country": None, "region": None, "city": None},
        }

    def company(self, org_index: int) -> dict[str, Any]:
        org = self.organization(ORG_BASE + org_index)
        fields = org["organization_fields"]
        created = _epoch(org["created_at"])
        return {
            "type": "company",
            "id": intercom_company_id(org_index),
            "company_id": org["external_id"],
            "app_id": "sandbox1",
            "name": org["name"],
            "plan": {"type": "plan", "id": str(org_index), "name": fields["plan"]},
            "created_at": created,
            "updated_at": created,
            "remote_created_at": created,
            "last_request_at": created,
            "monthly_spend": 0,
            "session_count": 0,
            "user_count": 1,
            "size": 10,
            "website": f"https://{org['domain_names'][0]}",
            "industry": "Travel",
            "custom_attributes": dict(fields),
            "tags": {"type": "tag.list", "tags": []},
            "segments": {"type": "segment.list", "segments": []},
        }

    def has_conversation(self, conversation_id: int) -> bool:
        return 1 <= conversation_id - CONVERSATION_BASE <= self.conversation_count

    def conversation(self, conversation_id: int) -> dict[str, Any]:
        index = conversation_id - CONVERSATION_BASE
        rng = self._rng(6, index)
        contact_index = rng.randint(1, self.contact_count)
        contact = self.contact(contact_index)
        admin = rng.choice(AGENTS)
        start = int(self.start.timestamp())
        created = start - rng.randint(2, 40) * 86_400
        parts: list[dict[str, Any]] = []
        admin_reply = created + rng.randint(600, 86_400)
        parts.append(_part(conversation_id, 1, "comment", "Happy to help, which order is it?",
                           admin_reply, "admin", admin.intercom_id, admin.name))  # fmt: skip
        last_contact = created
        if rng.random() < 0.5:
            last_contact = admin_reply + rng.randint(3_600, 3 * 86_400)
            parts.append(_part(conversation_id, 2, "comment", "It is order 1234.", last_contact,
                               "user", contact["id"], contact["name"]))  # fmt: skip
        state = rng.choices(("open", "snoozed", "closed"), (55, 15, 30))[0]
        updated = max(part["created_at"] for part in parts)
        waiting = last_contact if last_contact > admin_reply else None
        return {
            "type": "conversation",
            "id": str(conversation_id),
            "title": None,
            "created_at": created,
            "updated_at": updated,
            "waiting_since": waiting if state == "open" else None,
            "snoozed_until": start + 86_400 * rng.randint(1, 3) if state == "snoozed" else None,
            "open": state != "closed",
            "state": state,
            "read": True,
            "priority": rng.choice(("not_priority", "priority")),
            "admin_assignee_id": int(admin.intercom_id),
            "team_assignee_id": None,
            "tags": {"type": "tag.list", "tags": []},
            "source": {
                "type": "conversation",
                "id": f"{conversation_id}0",
                "delivered_as": "customer_initiated",
                "subject": "",
                "body": "<p>My order is stuck, can you help?</p>",
                "author": {
                    "type": "user",
                    "id": contact["id"],
                    "name": contact["name"],
                    "email": contact["email"],
                },
                "attachments": [],
                "url": None,
                "redacted": False,
            },
            "contacts": {
                "type": "contact.list",
                "contacts": [
                    {"type": "contact", "id": contact["id"], "external_id": contact["external_id"]}
                ],
            },
            "teammates": {
                "type": "admin.list",
                "teammates": [{"type": "admin", "id": admin.intercom_id}],
            },
            "custom_attributes": {},
            "statistics": {
                "type": "conversation_statistics",
                "first_contact_reply_at": created,
                "first_admin_reply_at": admin_reply,
                "last_contact_reply_at": last_contact,
                "last_admin_reply_at": admin_reply,
                "count_conversation_parts": len(parts),
            },
            "conversation_parts": {
                "type": "conversation_part.list",
                "conversation_parts": parts,
                "total_count": len(parts),
            },
        }

    def has_intercom_ticket(self, ticket_id: int) -> bool:
        return 1 <= ticket_id - INTERCOM_TICKET_BASE <= self.intercom_ticket_count

    def intercom_ticket(self, ticket_id: int) -> dict[str, Any]:
        index = ticket_id - INTERCOM_TICKET_BASE
        rng = self._rng(7, index)
        contact = self.contact(rng.randint(1, self.contact_count))
        state = rng.choice(INTERCOM_TICKET_STATES)
        created = int(self.start.timestamp()) - rng.randint(1, 30) * 86_400
        admin = rng.choice(AGENTS)
        return {
            "type": "ticket",
            "id": str(ticket_id),
            "ticket_id": str(index),
            "category": "Customer",
            "ticket_attributes": {"_default_title_": "Order problem",
                                  "_default_description_": "My order is stuck."},
            "ticket_state": intercom_ticket_state(state),
            "ticket_type": {"type": "ticket_type", "id": "3001", "name": "Order issue",
                            "category": "Customer", "description": "", "icon": "",
                            "workspace_id": "sandbox1", "archived": False,
                            "created_at": created, "updated_at": created},
            "contacts": {"type": "contact.list", "contacts": [
                {"type": "contact", "id": contact["id"], "external_id": contact["external_id"]}
            ]},
            "admin_assignee_id": int(admin.intercom_id),
            "team_assignee_id": 0,
            "created_at": created,
            "updated_at": created,
            "open": state[1] != "resolved",
            "snoozed_until": None,
            "is_shared": True,
            "previous_ticket_state_id": None,
            "ticket_parts": {"type": "ticket_part.list", "ticket_parts": [], "total_count": 0},
        }  # fmt: skip

    # --- Asana -------------------------------------------------------------------------

    def has_task(self, task_gid: int) -> bool:
        return 1 <= task_gid - ASANA_TASK_BASE <= self.task_count

    def task(self, task_gid: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """A bug task of the Bugs project and its stories."""
        index = task_gid - ASANA_TASK_BASE
        rng = self._rng(8, index)
        created = self.start - timedelta(days=rng.randint(5, 120), hours=rng.randint(0, 23))
        engineer = rng.choice(ENGINEER_GIDS) if rng.random() < 0.75 else None
        priority = rng.choices(PRIORITY_OPTIONS, (10, 15, 25, 30, 20))[0]
        user_updated = self.start - timedelta(days=rng.randint(0, 30))
        followed_up = (
            self.start - timedelta(days=rng.randint(0, 20)) if rng.random() < 0.6 else None
        )
        contact_index = rng.randint(1, self.contact_count)
        values: dict[str, Any] = {
            ASANA_FIELDS[0].gid: priority[0],
            ASANA_FIELDS[1].gid: user_updated.date().isoformat(),
            ASANA_FIELDS[2].gid: followed_up.date().isoformat() if followed_up else None,
            ASANA_FIELDS[3].gid: intercom_contact_id(contact_index),
        }
        stories = [
            _story(task_gid, 1, created, None, "system", "added to Bugs"),
        ]
        story_at = created
        for number in range(rng.randint(0, 3)):
            story_at = story_at + timedelta(days=rng.randint(1, 10), hours=rng.randint(0, 8))
            if story_at >= self.start or engineer is None:
                break
            stories.append(_story(task_gid, number + 2, story_at, engineer, "comment",
                                  "Looked into it; fix is in review."))  # fmt: skip
        modified = max(created, user_updated, *(_parse(story["created_at"]) for story in stories))
        task = {
            "gid": str(task_gid),
            "resource_type": "task",
            "resource_subtype": "default_task",
            "name": f"Bug {index}: {rng.choice(('Export fails', 'Login loop', 'Sync lag'))}",
            "notes": f"Reported by Intercom contact {intercom_contact_id(contact_index)}.",
            "completed": rng.random() < 0.15,
            "completed_at": None,
            "assignee": engineer,
            "created_at": asana_time(created),
            "modified_at": asana_time(modified),
            "due_on": None,
            "projects": [ASANA_PROJECT_GID],
            "custom_field_values": values,
        }
        if task["completed"]:
            task["completed_at"] = task["modified_at"]
        return task, stories


_FIELD_KEYS = {9001: "request_type", 9002: "linked_order", 9003: "order_status",
               9004: "industry", 9005: "phase"}  # fmt: skip


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
    if kind == "reply":
        builder.comment(at, author, body, public=True, channel="email", changes=changes)
    elif kind in ("missed_call", "abandoned_call"):
        status = "missed" if kind == "missed_call" else "abandoned"
        voice = {"call_status": status, "from": requester["phone"], "to": "+18005550100",
                 "call_duration": 0, "recording_url": None, "started_at": format_iso(at),
                 "answered_by_id": None, "location": "US"}  # fmt: skip
        builder.comment(at, author, f"Call from {requester['phone']}: {status}", public=False,
                        channel="voice", voice=voice, changes=changes)  # fmt: skip
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
    phase = ""
    if request_type in ("bug_report", "feature_request", "other_question"):
        phase = rng.choice(("phase_1", "phase_2", "phase_3", "phase_4"))
    return {
        "request_type": request_type,
        "linked_order": f"ORD-{rng.randint(100000, 999999)}" if linked else "",
        "order_status": "awaiting_customer" if flow else rng.choice(("processing", "completed")),
        "industry": industry,
        "phase": phase,
    }


def _epoch(iso: str) -> int:
    return int(_parse(iso).timestamp())


def _parse(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


def asana_time(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _story(
    task_gid: int, number: int, at: datetime, author: str | None, kind: str, text: str
) -> dict[str, Any]:
    return {
        "gid": str(ASANA_STORY_BASE + (task_gid - ASANA_TASK_BASE) * STORIES_PER_TASK + number),
        "resource_type": "story",
        "created_at": asana_time(at),
        "created_by": author,
        "resource_subtype": "comment_added" if kind == "comment" else "added_to_project",
        "type": kind,
        "text": text,
        "is_pinned": False,
        "is_edited": False,
    }


def _part(
    conversation_id: int,
    number: int,
    part_type: str,
    body: str,
    at: int,
    author_type: str,
    author_id: str,
    author_name: str,
) -> dict[str, Any]:
    return {
        "type": "conversation_part",
        "id": f"{conversation_id}{number:04d}",
        "part_type": part_type,
        "body": f"<p>{body}</p>",
        "created_at": at,
        "updated_at": at,
        "notified_at": at,
        "assigned_to": None,
        "author": {"type": author_type, "id": author_id, "name": author_name, "email": ""},
        "attachments": [],
        "external_id": None,
        "redacted": False,
    }


def intercom_contact_id(index: int) -> str:
    return f"6{index:023x}"


def intercom_company_id(index: int) -> str:
    return f"7{index:023x}"


def intercom_ticket_state(state: tuple[str, str, str, str]) -> dict[str, Any]:
    state_id, category, internal, external = state
    return {"type": "ticket_state", "id": state_id, "category": category,
            "internal_label": internal, "external_label": external}  # fmt: skip


def parse_intercom_id(text: str, prefix: str) -> int | None:
    if len(text) != 24 or not text.startswith(prefix):
        return None
    try:
        return int(text[1:], 16)
    except ValueError:
        return None


def asana_users() -> list[dict[str, Any]]:
    return [{"gid": gid, "resource_type": "user", "name": name, "email": email}
            for gid, name, email in ASANA_USERS]  # fmt: skip
