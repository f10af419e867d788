"""The fixed part of the sandbox tenant: agents, groups, ticket fields, Asana fields, plans.

These are the names the worker's tenant mapping resolves (see the sandbox contract); the ids
are the sandbox's own. Everything here is small and constant; the per-ticket data is built
lazily by :mod:`sandbox.generator`.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "AGENTS",
    "API_USER",
    "ASANA_FIELDS",
    "ASANA_PROJECT_GID",
    "ASANA_USERS",
    "ASANA_WORKSPACE_GID",
    "GROUPS",
    "INTERCOM_TICKET_STATES",
    "INTERCOM_TICKET_TYPES",
    "PHASE_FIELD",
    "PHASE_SINCE_FIELD",
    "PRIORITY_OPTIONS",
    "TICKET_FIELDS",
    "Agent",
    "AsanaField",
    "TicketField",
    "TicketState",
    "TicketType",
    "field_by_title",
]


@dataclass(frozen=True, slots=True)
class Agent:
    id: int
    name: str
    email: str
    intercom_id: str
    role: str = "agent"


API_USER = Agent(1000, "Followup Worker", "worker@example.com", "991000", role="admin")
AGENTS = (
    Agent(1001, "Roxy V", "roxy.v@example.com", "991001"),
    Agent(1002, "Vincent Ryan V", "vincent.ryan.v@example.com", "991002"),
    Agent(1003, "Dana K", "dana.k@example.com", "991003"),
    Agent(1004, "Sam P", "sam.p@example.com", "991004"),
)

GROUPS = {501: "Support", 502: "Refunds", 503: "Escalations", 504: "Unresponsive Customers"}


@dataclass(frozen=True, slots=True)
class TicketField:
    id: int
    title: str
    # "tagger", "text", "date" (YYYY-MM-DD), "checkbox" (bool), "multiselect" (list of option
    # values), "integer" or "decimal" (numbers): Zendesk's typed values (vendor-behaviours Z4)
    type: str
    options: tuple[tuple[str, str], ...] = ()  # (value/tag, display name)

    @property
    def values(self) -> frozenset[str]:
        return frozenset(value for value, _ in self.options)


TICKET_FIELDS = (
    TicketField(
        9001,
        "Request type",
        "tagger",
        (
            ("refund_request", "Refund request"),
            ("general_inquiry", "General inquiry"),
            ("bot_tsa_ge_nexus_sentri", "Bot issue: TSA/GE/NEXUS/SENTRI"),
            ("bot_us_passport_missing_labels", "Bot issue: US Passport missing labels"),
            ("bot_ein", "Bot issue: EIN"),
            ("bug_report", "Bug report"),
            ("feature_request", "Feature request"),
            ("other_question", "Other question"),
        ),
    ),
    TicketField(9002, "Linked order", "text"),
    TicketField(
        9003,
        "Order status",
        "tagger",
        (
            ("processing", "Processing"),
            ("awaiting_customer", "Awaiting customer"),
            ("unresponsive", "Unresponsive"),
            ("completed", "Completed"),
        ),
    ),
    TicketField(
        9004,
        "Industry",
        "tagger",
        (
            ("us_passport", "US Passport"),
            ("tsa_precheck", "TSA PreCheck"),
            ("ein_services", "EIN services"),
            ("general", "General"),
        ),
    ),
    TicketField(
        9005,
        "Phase",
        "tagger",
        (
            ("phase_1", "Phase 1: Request received"),
            ("phase_2", "Phase 2: Under review by Support Team"),
            ("phase_3", "Phase 3: Bug identified"),
            ("phase_4", "Phase 4: Resolution plan determined"),
        ),
    ),
    TicketField(9006, "Phase since", "date"),  # the day the case entered its phase (seed 003)
    TicketField(9007, "Callback requested", "checkbox"),
    TicketField(
        9008,
        "Products",
        "multiselect",
        (("passport", "Passport"), ("tsa", "TSA PreCheck"), ("ein", "EIN")),
    ),
    TicketField(9009, "Contact attempts", "integer"),
    TicketField(9010, "Refund amount", "decimal"),
)
PHASE_FIELD = 9005
PHASE_SINCE_FIELD = 9006


def field_by_title(title: str) -> TicketField:
    return next(field for field in TICKET_FIELDS if field.title == title)


ASANA_WORKSPACE_GID = "1205000000000001"
ASANA_PROJECT_GID = "1205000000000010"
ASANA_API_USER_GID = "1205000000000200"
ASANA_USERS = (
    ("1205000000000200", "Followup Worker", "worker@example.com"),
    ("1205000000000201", "Priya N", "priya.n@example.com"),
    ("1205000000000202", "Tomas R", "tomas.r@example.com"),
    ("1205000000000203", "Lena K", "lena.k@example.com"),
    ("1205000000000204", "Omar S", "omar.s@example.com"),
)
ENGINEER_GIDS = tuple(gid for gid, _, _ in ASANA_USERS[1:])


@dataclass(frozen=True, slots=True)
class AsanaField:
    gid: str
    name: str
    subtype: str  # "enum", "date" or "text"
    options: tuple[tuple[str, str, str], ...] = ()  # (gid, name, color)


PRIORITY_OPTIONS = (
    ("1205000000000101", "Critical", "red"),
    ("1205000000000102", "Urgent", "orange"),
    ("1205000000000103", "High", "yellow-orange"),
    ("1205000000000104", "Medium", "yellow"),
    ("1205000000000105", "Low", "green"),
)
ASANA_FIELDS = (
    AsanaField("1205000000000100", "Priority", "enum", PRIORITY_OPTIONS),
    AsanaField("1205000000000110", "User last updated", "date"),
    AsanaField("1205000000000120", "Last follow-up date", "date"),
    AsanaField("1205000000000130", "Intercom contact", "text"),
)


@dataclass(frozen=True, slots=True)
class TicketType:
    id: str
    name: str
    category: str  # Customer, Back-office or Tracker


@dataclass(frozen=True, slots=True)
class TicketState:
    id: str
    category: str
    internal_label: str
    external_label: str
    ticket_types: tuple[str, ...]  # the ids of the ticket types it belongs to


INTERCOM_TICKET_TYPES = (
    TicketType("3001", "Order issue", "Customer"),
    TicketType("3002", "Refund", "Customer"),
)
# A state belongs to ticket types (vendor-behaviours I2): a refund waits on the customer in a
# state of its own, and "Waiting on customer" is not linked to it.
INTERCOM_TICKET_STATES = (
    TicketState("4001", "submitted", "Submitted", "Submitted", ("3001", "3002")),
    TicketState("4002", "in_progress", "In progress", "In progress", ("3001", "3002")),
    TicketState("4003", "waiting_on_customer", "Waiting on customer", "Waiting on you",
                ("3001",)),
    TicketState("4005", "waiting_on_customer", "Awaiting refund details", "Waiting on you",
                ("3002",)),
    TicketState("4004", "resolved", "Resolved", "Resolved", ("3001", "3002")),
)  # fmt: skip
