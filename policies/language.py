"""The policy language: what a YAML policy file may say, validated with pydantic.

A policy folder holds ``*.yaml`` files, each a list under ``policies:``, an optional
``settings.yaml`` (named, documented choices that policies reference as ``${name}``) and an
optional ``templates/`` folder of Jinja2 reply templates (the bundled ones are always there).

Policies speak in logical names only: assignees ("Unresponsive Customers/{agent}"), groups and
custom fields (``order_status``) are resolved to vendor ids later by the tenant mapping.

Text fields accept placeholders: ``{n}`` (attempt number), ``{max}`` (attempts in the
sequence), ``{agent}`` (the case's assignee), ``{today}`` (ISO date), ``{phase}``,
``{phase_name}`` and ``{within}`` (phase policies). An unknown placeholder is a load error.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveInt,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from policies.model import ActivityKind, CaseKind, Channel, PlanTier, Priority, Status
from policies.yamlsource import (
    Problem,
    SourceError,
    load_located,
    problems_from_validation,
)

__all__ = [
    "BUNDLED_PACK",
    "BUNDLED_TEMPLATES",
    "PLACEHOLDERS",
    "ActionSpec",
    "Interval",
    "Pack",
    "Policy",
    "PolicyFile",
    "Selector",
    "Setting",
    "SettingsFile",
    "load_pack",
    "policy_json_schema",
]

BUNDLED_PACK = Path(__file__).parent / "pack"
BUNDLED_TEMPLATES = Path(__file__).parent / "templates"
SETTINGS_FILE = "settings.yaml"
PLACEHOLDERS = frozenset({"n", "max", "agent", "today", "phase", "phase_name", "within"})
_INBOUND = [k for k in ActivityKind if k.is_inbound]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_placeholders(text: str) -> str:
    for _, name, _, _ in string.Formatter().parse(text):
        if name is not None and name not in PLACEHOLDERS:
            allowed = ", ".join("{" + p + "}" for p in sorted(PLACEHOLDERS))
            raise ValueError(f"unknown placeholder {{{name}}}; use one of {allowed}")
    return text


Text = Annotated[str, Field(min_length=1)]


class Interval(_Model):
    """Exactly one unit. ``months`` are calendar months (seed 001 "quarterly" = 3)."""

    business_days: PositiveInt | None = None
    business_hours: PositiveInt | None = None
    days: PositiveInt | None = None
    months: PositiveInt | None = None

    @model_validator(mode="after")
    def _one_unit(self) -> Self:
        if len(self.model_dump(exclude_none=True)) != 1:
            raise ValueError("give exactly one of business_days, business_hours, days, months")
        return self

    def describe(self) -> str:
        ((unit, count),) = self.model_dump(exclude_none=True).items()
        label = unit.replace("_", " ")
        return f"{count} {label[:-1] if count == 1 else label}"


class FieldCondition(_Model):
    """A condition on one logical custom field; all given parts must hold."""

    equals: str | None = None
    in_: list[str] | None = Field(default=None, alias="in")
    not_in: list[str] | None = None
    present: bool | None = None


class CountRange(_Model):
    min: NonNegativeInt | None = None
    max: NonNegativeInt | None = None


class PriorityRange(_Model):
    """``at_least: high`` matches high, urgent and critical; ``below: high`` the others."""

    at_least: Priority | None = None
    below: Priority | None = None


class Selector(_Model):
    """Which cases a policy applies to. Every given condition must hold.

    Canceled accounts and accounts flagged to stop follow-ups are excluded unless the policy
    opts in. ``account_priority`` is the account's most severe open priority (seed 001:
    "accounts with at least one high-priority ticket"); when the account does not report it,
    the case's own priority stands in and the reason says so.
    """

    kind: list[CaseKind] | None = None
    status: list[Status] | None = None
    plan: list[PlanTier] | None = None
    priority: PriorityRange | None = None
    account_priority: PriorityRange | None = None
    tags_all: list[str] = []
    tags_none: list[str] = []
    fields: dict[str, FieldCondition] = {}
    open_cases: CountRange | None = None
    industry_not_in: list[str] = []
    assigned: bool | None = None
    account_inactive: bool | None = None
    include_canceled: bool = False
    include_stopped: bool = False


class ContactSpec(_Model):
    """Reach the customer on the channels seed 004 prescribes for the contact data at hand.

    The defaults are the seed's table ("With linked order: EMAIL, CALL and TEXT. No order
    linked: If number only, call and text. If email only, send email. If they provided a phone
    number in the email, use the number to call them back and send a text."). Email goes out
    as a public reply from ``template``; calls and texts become a reach-out task.
    """

    template: Text
    with_linked_order: list[Channel] = [Channel.EMAIL, Channel.CALL, Channel.TEXT]
    phone_only: list[Channel] = [Channel.CALL, Channel.TEXT]
    email_only: list[Channel] = [Channel.EMAIL]
    phone_and_email: list[Channel] = [Channel.CALL, Channel.TEXT]

    @field_validator("template")
    @classmethod
    def _template_exists(cls, value: str, info: ValidationInfo) -> str:
        _known_template(value, info)
        return value


class EscalateSpec(_Model):
    group: Text
    reason: Text

    _placeholders = field_validator("reason")(_check_placeholders)


class NotifyEngineerSpec(_Model):
    """A comment to the assigned engineer; by default only when they have been silent since
    the previous follow-up (seed 001, "following up with the assigned Engineer")."""

    body: Text
    only_if_silent: bool = True

    _placeholders = field_validator("body")(_check_placeholders)


class ActionSpec(_Model):
    """One action; exactly one key per list entry."""

    note: Text | None = None
    reply: Text | None = None
    contact: ContactSpec | None = None
    status: Status | None = None
    assignee: Text | None = None
    group: Text | None = None
    fields: dict[str, str] | None = None
    add_tags: list[str] | None = None
    remove_tags: list[str] | None = None
    escalate: EscalateSpec | None = None
    bug_fields: dict[str, str] | None = None
    notify_engineer: NotifyEngineerSpec | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        given = self.model_dump(exclude_none=True)
        if len(given) != 1:
            keys = ", ".join(sorted(given)) or "nothing"
            raise ValueError(f"an action has exactly one key, got {keys}")
        return self

    @field_validator("note", "assignee", "group")
    @classmethod
    def _text_placeholders(cls, value: str | None) -> str | None:
        return None if value is None else _check_placeholders(value)

    @field_validator("fields", "bug_fields")
    @classmethod
    def _field_placeholders(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for text in (value or {}).values():
            _check_placeholders(text)
        return value

    @field_validator("reply")
    @classmethod
    def _template_exists(cls, value: str | None, info: ValidationInfo) -> str | None:
        return _known_template(value, info)


def _known_template(name: str | None, info: ValidationInfo) -> str | None:
    templates = (info.context or {}).get("templates")
    if name is not None and templates is not None and name not in templates:
        raise ValueError(f"unknown template {name!r}; known: {', '.join(sorted(templates))}")
    return name


Actions = Annotated[list[ActionSpec], Field(min_length=1)]


class Step(_Model):
    """Day ``day`` of the sequence (Day 1 is the day it starts)."""

    day: PositiveInt
    name: str | None = None
    enabled: bool = True
    actions: Actions


class AfterLastAttempt(_Model):
    """What happens once the attempts are used up. ``wait_days`` 0 merges these actions into
    the last attempt; 1 does them the next day (seed 004's Day 6)."""

    wait_days: NonNegativeInt = 1
    name: str = "after the last attempt"
    actions: Actions


class SequenceCadence(_Model):
    """Attempts on fixed days, e.g. days 1, 3, 5. Attempt n of the sequence is its n-th step.

    ``anchor`` picks Day 1: ``inbound`` is the customer's last contact (or the case's
    creation); ``agent_reply`` is the first agent update after it (seed 002's "Day 1:
    initial solution"). ``day_unit`` says whether Day numbers count business or calendar days.
    """

    type: Literal["sequence"]
    anchor: Literal["inbound", "agent_reply"] = "inbound"
    day_unit: Literal["business_days", "days"] = "business_days"
    steps: Annotated[list[Step], Field(min_length=1)]
    after_last_attempt: AfterLastAttempt | None = None

    @model_validator(mode="after")
    def _days_increase(self) -> Self:
        days = [s.day for s in self.steps]
        if days != sorted(set(days)):
            raise ValueError("step days must be strictly increasing")
        return self


class EveryCadence(_Model):
    """A recurring update every ``interval`` since the customer last heard from us: the later
    of our own last follow-up, the case field ``since_field`` (e.g. "User last updated") and
    the start of the cycle. Open-ended unless ``max_attempts`` is given."""

    type: Literal["every"]
    interval: Interval
    rule: Text
    since_field: str | None = None
    max_attempts: PositiveInt | None = None
    bundle_account: bool = False
    actions: Actions


class Phase(_Model):
    name: Text
    within: Interval | None = None
    what_it_means: Text
    next_steps: Text


class PhaseCadence(_Model):
    """Seed 003's phases. ``phase_update`` acts once when a case enters a phase (the
    customer's "what it means / next steps" update); ``phase_overdue`` once when a case stays
    in a phase beyond its ``within`` upper bound. The phase number (1-based) is read from
    ``phase_field``, the instant it was entered from ``since_field`` (phase 1 defaults to the
    case's creation)."""

    type: Literal["phase_update", "phase_overdue"]
    phase_field: str = "phase"
    since_field: str = "phase_since"
    phases: Annotated[list[Phase], Field(min_length=1)]
    actions: Actions
    # phase_overdue only: what an entry known only by its date means for the timeframe.
    # ``closing`` (the default): the phase began some time that day, so the day itself is not
    # counted (3 business days from a Monday run out at Thursday's close); ``opening``: the
    # day counts as the first (they run out at Thursday's opening).
    date_only_start: Literal["opening", "closing"] | None = None

    @model_validator(mode="after")
    def _date_only_for_overdue(self) -> Self:
        if self.date_only_start is not None and self.type != "phase_overdue":
            raise ValueError("date_only_start applies to phase_overdue timeframes only")
        return self


Cadence = Annotated[SequenceCadence | EveryCadence | PhaseCadence, Field(discriminator="type")]


class Policy(_Model):
    """One follow-up rule. Policies sharing a ``group`` exclude each other: a case gets the
    first matching one by ``order`` (then name), so e.g. a refund request is not also run
    through the generic awaiting-customer sequence."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$")]
    description: Text
    source: Text
    group: str | None = None
    order: int = 100
    dry_run: bool | None = None
    selector: Selector
    restart_on: list[ActivityKind] = _INBOUND
    cadence: Cadence

    @field_validator("restart_on")
    @classmethod
    def _inbound_only(cls, value: list[ActivityKind]) -> list[ActivityKind]:
        outbound = [str(k) for k in value if not k.is_inbound]
        if outbound:
            raise ValueError(f"only customer activity can restart a sequence, not {outbound}")
        return value

    @property
    def group_name(self) -> str:
        return self.group or self.name


class PolicyFile(_Model):
    """A policy file. Other top-level keys must start with ``x-``: they hold YAML anchors
    (shared steps, selectors) and are otherwise ignored."""

    model_config = ConfigDict(json_schema_extra={"patternProperties": {"^x-": {}}})

    policies: list[Policy]

    @model_validator(mode="before")
    @classmethod
    def _drop_anchor_holders(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if not str(k).startswith("x-")}
        return data


class Setting(_Model):
    """A named choice. With ``choices``, ``default`` (and any override) names one of them and
    policies receive its value; without, the value itself is the setting."""

    description: Text
    default: Any
    choices: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _default_is_a_choice(self) -> Self:
        # `default` names a choice: only a string can (a list would not even be looked up).
        if self.choices is not None and not (
            isinstance(self.default, str) and self.default in self.choices
        ):
            raise ValueError(f"default {self.default!r} is not one of {sorted(self.choices)}")
        return self

    def resolve(self, choice: Any) -> Any:
        if self.choices is None:
            return choice
        if choice not in self.choices:
            raise ValueError(f"{choice!r} is not one of {sorted(self.choices)}")
        return self.choices[choice]


class SettingsFile(_Model):
    settings: dict[str, Setting]


class Pack(_Model):
    """A loaded policy folder: policies in evaluation order, settings as chosen."""

    folder: str
    policies: tuple[Policy, ...]
    settings: dict[str, Any]
    choices: dict[str, Any]
    template_dirs: tuple[str, ...]


def load_pack(folder: Path = BUNDLED_PACK, overrides: Mapping[str, str] | None = None) -> Pack:
    """Load and validate every policy file in ``folder``; raise :class:`SourceError` listing
    every problem (file, line, field) rather than stopping at the first."""
    problems: list[Problem] = []
    choices, values = _load_settings(folder, overrides or {}, problems)
    template_dirs = tuple(str(d) for d in (folder / "templates", BUNDLED_TEMPLATES) if d.is_dir())
    templates = {p.stem for d in template_dirs for p in Path(d).glob("*.j2")}
    policies: list[Policy] = []
    for path in sorted(folder.glob("*.yaml")):
        if path.name == SETTINGS_FILE:
            continue
        try:
            source = load_located(path, values)
            policies.extend(
                PolicyFile.model_validate(source.data, context={"templates": templates}).policies
            )
        except SourceError as exc:
            problems.extend(exc.problems)
        except ValidationError as exc:
            problems.extend(problems_from_validation(source, exc))
    _check_unique_names(policies, problems, folder)
    if not policies and not problems:
        problems.append(Problem(str(folder), 1, "", "no policies (*.yaml files with policies:)"))
    if problems:
        raise SourceError(problems)
    ordered = tuple(sorted(policies, key=lambda p: (p.order, p.name)))
    return Pack(
        folder=str(folder),
        policies=ordered,
        settings=values,
        choices=choices,
        template_dirs=template_dirs,
    )


def _load_settings(
    folder: Path, overrides: Mapping[str, str], problems: list[Problem]
) -> tuple[dict[str, Any], dict[str, Any]]:
    path = folder / SETTINGS_FILE
    declared: dict[str, Setting] = {}
    if path.exists():
        try:
            source = load_located(path)
            declared = SettingsFile.model_validate(source.data).settings
        except SourceError as exc:
            problems.extend(exc.problems)
        except ValidationError as exc:
            problems.extend(problems_from_validation(source, exc))
    choices: dict[str, Any] = {}
    values: dict[str, Any] = {}
    for name in overrides:
        if name not in declared:
            problems.append(Problem(str(path), 1, name, "unknown setting override"))
    for name, setting in declared.items():
        choice = overrides.get(name, setting.default)
        try:
            values[name] = setting.resolve(choice)
            choices[name] = choice
        except ValueError as exc:
            problems.append(Problem(str(path), 1, name, f"override: {exc}"))
    return choices, values


def _check_unique_names(policies: list[Policy], problems: list[Problem], folder: Path) -> None:
    seen: set[str] = set()
    for policy in policies:
        if policy.name in seen:
            problems.append(Problem(str(folder), 1, "name", f"duplicate policy {policy.name!r}"))
        seen.add(policy.name)


def policy_json_schema() -> dict[str, Any]:
    """JSON Schema of a policy file, for editors (yaml-language-server)."""
    schema = PolicyFile.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "followup-worker policy file"
    return schema
