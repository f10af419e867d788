"""The domain model: what the planner reads (cases, accounts, activity) and decides (actions).

Everything here is immutable and vendor-neutral. Connectors translate vendor JSON into these
types and plan actions back into vendor calls; the planner never sees a vendor payload.

A *case* is anything a customer waits on: a Zendesk ticket, an Intercom conversation or an
Asana bug task. Where a case stands in a follow-up sequence is read from the case itself: the
worker's own earlier follow-ups (:class:`FollowUpMark`, parsed from its notes/tags) since the
customer last spoke. That keeps the helpdesk the source of truth (DESIGN.md, "Follow-up state
lives in the helpdesk").
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

__all__ = [
    "MARKER_PREFIX",
    "Account",
    "Action",
    "ActionType",
    "Activity",
    "ActivityKind",
    "Case",
    "CaseKind",
    "Channel",
    "FollowUpMark",
    "PlanItem",
    "PlanTier",
    "Priority",
    "Requester",
    "Source",
    "Status",
    "Turn",
    "Unjudged",
    "idempotency_key",
    "marker_tag",
]


class Source(StrEnum):
    ZENDESK = "zendesk"
    INTERCOM = "intercom"
    ASANA = "asana"


class CaseKind(StrEnum):
    TICKET = "ticket"
    CONVERSATION = "conversation"
    BUG = "bug"


class Status(StrEnum):
    """Zendesk's status categories; Intercom and Asana states are normalised onto them."""

    NEW = "new"
    OPEN = "open"
    PENDING = "pending"
    HOLD = "hold"
    SOLVED = "solved"
    CLOSED = "closed"


class Priority(StrEnum):
    """Ordered from least to most severe; Asana's "Medium" is NORMAL."""

    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _PRIORITY_RANK[self]


_PRIORITY_RANK = {p: i for i, p in enumerate(Priority)}


class PlanTier(StrEnum):
    ENTERPRISE = "enterprise"
    STANDARD = "standard"
    COMMUNITY = "community"
    TRIAL = "trial"


class ActivityKind(StrEnum):
    """Inbound activity restarts a follow-up sequence (seeds 002, 004); the rest does not."""

    CUSTOMER_REPLY = "customer_reply"
    MISSED_CALL = "missed_call"
    ABANDONED_CALL = "abandoned_call"
    MISSED_EMAIL = "missed_email"
    AGENT_UPDATE = "agent_update"  # an agent's public message to the customer
    AGENT_NOTE = "agent_note"  # an agent's internal comment: the customer never sees it
    ENGINEER_UPDATE = "engineer_update"

    @property
    def is_inbound(self) -> bool:
        return self in _INBOUND

    @property
    def is_attempt(self) -> bool:
        """A missed or abandoned call or email: the customer tried to reach us and failed."""
        return self in _ATTEMPTS


_ATTEMPTS = frozenset(
    {ActivityKind.MISSED_CALL, ActivityKind.ABANDONED_CALL, ActivityKind.MISSED_EMAIL}
)
_INBOUND = _ATTEMPTS | {ActivityKind.CUSTOMER_REPLY}


class Channel(StrEnum):
    """How a follow-up reaches the customer (seed 004: "EMAIL, CALL and TEXT")."""

    EMAIL = "email"
    CALL = "call"
    TEXT = "text"


@dataclass(frozen=True, slots=True)
class Requester:
    id: str
    name: str = ""
    email: str | None = None
    phone: str | None = None


@dataclass(frozen=True, slots=True)
class Account:
    """The customer's account: plan tier and the flags that silence follow-ups.

    ``plan`` is None when the account's plan could not be read or is not one we know; the
    planner reports such cases instead of guessing. ``open_cases`` is the number of open
    cases (tickets or bugs) of the account, which the Community rule of seeds 000/001 needs;
    ``open_case_refs`` names them (``Case.ref``) so one bundled update can speak for all of
    them, and ``open_case_titles`` gives their subjects by ref, so it names each by its title.
    ``max_open_priority`` is the most severe priority among them: seed 001's Standard rules
    depend on whether the *account* has "at least one high-priority ticket".
    """

    id: str
    name: str = ""
    plan: PlanTier | None = None
    canceled: bool = False
    stop_followups: bool = False
    inactive: bool = False
    open_cases: int = 0
    raw_plan: str | None = None
    open_case_refs: tuple[str, ...] = ()
    max_open_priority: Priority | None = None
    open_case_titles: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Activity:
    kind: ActivityKind
    at: datetime


@dataclass(frozen=True, slots=True)
class FollowUpMark:
    """One follow-up the worker already made, read back from the helpdesk (note footer or tag)."""

    policy: str
    step: int
    at: datetime
    key: str


@dataclass(frozen=True, slots=True)
class Case:
    """A ticket, conversation or bug, with the evidence the rules need.

    ``fields`` holds tenant-mapped custom fields under their logical names (``request_type``,
    ``linked_order``, ``order_status``, ``industry``, ``phase``...), never vendor field ids.
    ``history`` is the inbound and agent activity, oldest first; ``followups`` the worker's own
    earlier follow-ups, oldest first. ``updated_stamp`` is what optimistic concurrency needs.
    """

    source: Source
    id: str
    kind: CaseKind
    status: Status
    created_at: datetime
    updated_at: datetime
    subject: str = ""
    priority: Priority | None = None
    requester: Requester | None = None
    account_id: str | None = None
    assignee: str | None = None
    group: str | None = None
    brand: str | None = None
    fields: dict[str, str] = field(default_factory=dict)
    tags: frozenset[str] = frozenset()
    history: tuple[Activity, ...] = ()
    followups: tuple[FollowUpMark, ...] = ()
    updated_stamp: str | None = None

    @property
    def ref(self) -> str:
        """Globally unique, human-readable reference: ``zendesk:1234``."""
        return f"{self.source}:{self.id}"

    @property
    def industry(self) -> str | None:
        return self.fields.get("industry")

    @property
    def linked_order(self) -> str | None:
        return self.fields.get("linked_order") or None

    def last_inbound(self) -> Activity | None:
        """The latest customer reply or missed/abandoned call or email, if any."""
        for activity in reversed(self.history):
            if activity.kind.is_inbound:
                return activity
        return None

    def last_of(self, kind: ActivityKind) -> Activity | None:
        for activity in reversed(self.history):
            if activity.kind is kind:
                return activity
        return None

    def turn(self, now: datetime) -> Turn:
        """Who owes the next message at ``now``, and since when (:class:`Turn`)."""
        customer, since = True, self.created_at
        for activity in self.history:
            if activity.at > now:
                break  # oldest first: the rest is not evidence yet
            kind = activity.kind
            if kind is ActivityKind.CUSTOMER_REPLY:
                customer, since = False, activity.at
            elif kind.is_attempt or (kind is ActivityKind.AGENT_UPDATE and not customer):
                customer, since = True, activity.at
        if not customer and self.status is Status.PENDING:
            customer = True  # the agent set the case to wait on the customer without answering
        return Turn(customer, since)


@dataclass(frozen=True, slots=True)
class Turn:
    """Whose move it is on a case (issue 14, seeds 002 and 004).

    A follow-up chases a customer who owes us a message: seed 004 follows up when the customer
    "did not provide any information / did not respond when requested". The turn is the
    customer's while the latest public message is the agent's, or the agent set the case
    PENDING (waiting on the customer); an unanswered customer message hands it to the agent.
    A missed or abandoned call or email hands it back to the customer at once: they tried
    and failed, and seed 004's sequence "starts again from the beginning". Internal notes
    (``AGENT_NOTE``) and engineers' comments move nothing.

    ``since`` is when the current turn began: for the customer's, the agent's first answer
    after the customer last spoke, the missed attempt, the case's creation when nobody has
    spoken, or the customer's message itself when the agent set PENDING without answering
    (the status change has no instant the case records); for the agent's, the customer's
    unanswered message.
    """

    customer: bool
    since: datetime


class ActionType(StrEnum):
    NOTE = "note"  # internal note, never seen by the customer
    REPLY = "reply"  # public reply rendered from a template: the customer gets it by email
    REACH_OUT = "reach_out"  # call / text tasks for the agent's dialer, with the channels to use
    SET_STATUS = "set_status"
    SET_ASSIGNEE = "set_assignee"
    SET_GROUP = "set_group"
    SET_FIELD = "set_field"
    ADD_TAGS = "add_tags"
    REMOVE_TAGS = "remove_tags"
    ESCALATE = "escalate"
    SET_BUG_FIELD = "set_bug_field"
    NOTIFY_ENGINEER = "notify_engineer"


@dataclass(frozen=True, slots=True)
class Action:
    """One change to a case. ``params`` is small and JSON-serialisable.

    Params by type: NOTE/NOTIFY_ENGINEER ``body``; REPLY ``template``, ``body`` (rendered);
    REACH_OUT ``channels`` (list of :class:`Channel` values); SET_STATUS ``status``;
    SET_ASSIGNEE ``assignee`` (logical agent name, may be "Unresponsive Customers/<name>");
    SET_GROUP ``group``; SET_FIELD / SET_BUG_FIELD ``field`` (logical name) and ``value``;
    ADD_TAGS / REMOVE_TAGS ``tags``; ESCALATE ``group`` and ``reason``.
    """

    type: ActionType
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"type": str(self.type), **self.params}


def idempotency_key(policy: str, case_ref: str, step: int, cycle: str) -> str:
    """Stable key for one follow-up step of one case.

    ``cycle`` identifies the sequence run the step belongs to: the instant of the inbound
    activity (or case creation) that started the sequence. A customer reply starts a new cycle,
    so the same step may legitimately happen again, under a new key.
    """
    digest = hashlib.sha256(f"{policy}|{case_ref}|{step}|{cycle}".encode()).hexdigest()
    return digest[:16]


MARKER_PREFIX = "fw-"


def marker_tag(key: str) -> str:
    """The tag (and note token) a write carries so a lost response can be checked on re-read."""
    return f"{MARKER_PREFIX}{key}"


@dataclass(frozen=True, slots=True)
class PlanItem:
    """One follow-up owed today: a case, the rule that owes it, the step and what to do.

    ``reason`` is for people ("pending since Tue 10:04; 2 business days without reply; step 2
    of 3"). ``key`` is :func:`idempotency_key` of (policy, case, step, cycle) and is carried by
    every write as its marker. ``covers`` lists other case refs a bundled update speaks for
    (seed 001: one Community update covering all outstanding bugs). ``dry_run`` is the
    policy's own override (None: follow the run's setting).
    """

    case: Case
    policy: str
    rule: str
    step: int
    max_steps: int
    actions: tuple[Action, ...]
    reason: str
    key: str
    covers: tuple[str, ...] = ()
    dry_run: bool | None = None

    @property
    def step_label(self) -> str:
        """``2/3``; ``#4`` for open-ended cadences (``max_steps`` 0); ``after 3/3`` for what
        a policy does once its attempts are used up (``step`` beyond ``max_steps``)."""
        if self.max_steps == 0:
            return f"#{self.step}"
        if self.step > self.max_steps:
            return f"after {self.max_steps}/{self.max_steps}"
        return f"{self.step}/{self.max_steps}"


@dataclass(frozen=True, slots=True)
class Unjudged:
    """A case no policy could judge (missing data, unknown plan...), reported, never dropped."""

    case_ref: str
    reason: str
