"""The tenant mapping: which vendor objects mean what, by the names people see in the UI.

A helpdesk admin knows "Request type" and "Unresponsive Customers", not field 360012345.
The mapping file names them; each connector resolves the names to ids once, at start, and
``followup connectors check`` reports what it could and could not resolve. Validation errors
name the file, the line and the field.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from connectors.errors import MappingError
from policies.model import PlanTier, Status
from policies.yamlsource import Problem, SourceError, load_located, problems_from_validation

__all__ = [
    "ZENDESK_ENDPOINT_LIMITS",
    "AsanaMapping",
    "IntercomMapping",
    "PlanNames",
    "TenantMapping",
    "ZendeskMapping",
    "load_mapping",
]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PlanNames(_Strict):
    """Raw plan values, as the vendor stores them, per plan tier. Unlisted values stay unknown."""

    enterprise: list[str] = ["enterprise"]
    standard: list[str] = ["standard"]
    community: list[str] = ["community"]
    trial: list[str] = ["trial"]

    def tier(self, raw: str | None) -> PlanTier | None:
        if raw is None:
            return None
        wanted = raw.strip().lower()
        for tier in PlanTier:
            if wanted in (name.lower() for name in getattr(self, tier.value)):
                return tier
        return None


class AccountFlags(_Strict):
    """Where an account's plan and its "do not follow up" flags live (attribute/field keys)."""

    plan: str = "plan"
    account_status: str = "account_status"
    canceled_values: list[str] = ["canceled", "cancelled"]
    stop_followups: str = "stop_followups"


# Zendesk's documented endpoint limits (vendor-behaviours.md Z2, zendesk-notes.md).
ZENDESK_ENDPOINT_LIMITS = {"incremental_exports": 10, "update_ticket": 100, "search_export": 100}


class ZendeskMapping(_Strict):
    ticket_fields: dict[str, str] = Field(
        default_factory=dict,
        description="Logical name (request_type, linked_order, ...) -> ticket field title.",
    )
    field_values: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description=(
            "Logical field -> {vendor option value: value the policies use}, for tenants whose"
            " option values differ from the policies' words (phase_2 -> 2). Unlisted values"
            " pass through unchanged; writes translate back."
        ),
    )
    groups: list[str] = Field(default_factory=list, description="Group names the policies use.")
    agents: list[str] = Field(default_factory=list, description="Agent names the policies use.")
    organization_fields: AccountFlags = AccountFlags()
    lookback_days: int = Field(
        default=365,
        gt=0,
        description="Candidate tickets are those updated in this many days (incremental export).",
    )
    endpoint_limits: dict[str, int] = Field(
        default_factory=lambda: dict(ZENDESK_ENDPOINT_LIMITS),
        description=(
            "Requests per minute of the endpoints Zendesk limits apart from the account"
            " (paced apart; a 429 among them blocks them alone): incremental_exports (10, 30"
            " with the High Volume add-on), update_ticket (100; each ticket's updates are also"
            " kept under Zendesk's about 30 per 10 minutes), search_export (100). An endpoint"
            " left out is paced by the account's limit only."
        ),
    )

    @field_validator("endpoint_limits")
    @classmethod
    def _known_endpoints(cls, limits: dict[str, int]) -> dict[str, int]:
        unknown = sorted(set(limits) - set(ZENDESK_ENDPOINT_LIMITS))
        if unknown:
            raise ValueError(
                f"unknown endpoint(s) {unknown}: use {sorted(ZENDESK_ENDPOINT_LIMITS)}"
            )
        if any(rpm <= 0 for rpm in limits.values()):
            raise ValueError("endpoint limits are requests per minute, above 0")
        return limits


class IntercomMapping(_Strict):
    admin: str | None = Field(
        default=None, description="Admin name the worker writes as; default: the token's admin."
    )
    contact_attributes: AccountFlags = Field(
        default=AccountFlags(),
        description=(
            "Contact custom attributes: account status and stop flag, and the plan for a"
            " contact whose company has none (a company's plan.name comes first)."
        ),
    )
    admins: list[str] = Field(default_factory=list, description="Admin names policies assign to.")
    ticket_states: dict[Status, str] = Field(
        default_factory=dict,
        description=(
            "Policy status (pending, solved, open...) -> ticket state name (its internal label),"
            " chosen per ticket type among the states linked to it. Unnamed, or named but not"
            " linked to the type: the first state of the status's category linked to it"
            " (pending: waiting_on_customer; solved, closed: resolved; open: in_progress, else"
            " submitted)."
        ),
    )


class AsanaMapping(_Strict):
    project: str = Field(description="The bugs project: its name or its gid.")
    workspace: str | None = Field(
        default=None, description="Workspace name or gid; needed only to find a project by name."
    )
    custom_fields: dict[str, str] = Field(
        default_factory=lambda: {
            "priority": "Priority",
            "user_last_updated": "User last updated",
            "last_followup_date": "Last follow-up date",
            "intercom_contact": "Intercom contact",
        },
        description="Logical name -> project custom field name.",
    )


class TenantMapping(_Strict):
    zendesk: ZendeskMapping | None = None
    intercom: IntercomMapping | None = None
    asana: AsanaMapping | None = None
    plans: PlanNames = PlanNames()
    accept_unresolved: list[str] = Field(
        default_factory=list,
        description=(
            "Mapped names the vendors may lack, as `followup connectors check` prints them in"
            " its name column: a live run stops before any write on any other unresolved name."
        ),
    )


def load_mapping(path: Path) -> TenantMapping:
    """Read and validate a mapping file; MappingError lists each problem as file:line: field
    (the same located reading as policy files: :mod:`policies.yamlsource`)."""
    try:
        source = load_located(path)
    except SourceError as exc:
        raise _invalid(exc.problems) from exc
    try:
        return TenantMapping.model_validate(source.data or {})
    except ValidationError as exc:
        raise _invalid(problems_from_validation(source, exc)) from exc


def _invalid(problems: Sequence[Problem]) -> MappingError:
    return MappingError("invalid tenant mapping\n" + "\n".join(str(p) for p in problems))
