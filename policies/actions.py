"""Step actions compiled into renderers: from a step of a policy to the domain's Actions.

Texts are rendered with their ``{placeholders}`` (validated by the policy language), replies
from the pack's Jinja2 templates, and contact channels chosen from the case's contact data
exactly as seed 004 prescribes.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import jinja2

from policies.language import ActionSpec
from policies.model import Account, Action, ActionType, ActivityKind, Case, Channel

__all__ = [
    "ECHO_LIMIT",
    "MissingData",
    "Renderer",
    "StepContext",
    "compile_actions",
    "echo",
    "render_actions",
]

ECHO_LIMIT = 200
"""Characters of a customer's own text (a subject, a name) a message repeats at most."""


def echo(text: str, limit: int = ECHO_LIMIT) -> str:
    """Customer text as a message may repeat it: on one line, at most ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


class MissingData(Exception):
    """A step needs data the case does not have (e.g. no assignee for "{agent}")."""


@dataclass(frozen=True, slots=True)
class StepContext:
    """What an action renderer may use for one step of one case."""

    case: Case
    account: Account | None
    n: int
    max: int
    today: date
    previous_followup: datetime | None
    covers: tuple[str, ...] = ()
    phase: int | None = None
    phase_name: str = ""
    within: str = ""
    what_it_means: str = ""
    next_steps: str = ""

    def customer_name(self) -> str | None:
        """The contact's name: the requester's, or the account's when the account is the
        contact itself (an Intercom contact, the customer behind an Asana bug)."""
        requester, account = self.case.requester, self.account
        if requester is not None and requester.name:
            return requester.name
        if (
            account is not None
            and account.name
            and (requester is None or requester.id == account.id)
        ):
            return account.name
        return None

    def template_vars(self) -> dict[str, Any]:
        """What reply templates see. Customer text (name, subjects) comes capped by
        :func:`echo`; escaping it is the job of a vendor whose bodies are HTML."""
        name = self.customer_name()
        titles = self.account.open_case_titles if self.account is not None else {}
        return {
            "customer_name": echo(name, 80) if name else "there",
            "issue": echo(self.case.subject) if self.case.subject else self.case.ref,
            "agent_name": self.case.assignee or "The Support Team",
            "case_ref": self.case.ref,
            "n": self.n,
            "max": self.max,
            "covers": [{"ref": ref, "title": titles.get(ref, ref)} for ref in self.covers],
            "phase": self.phase,
            "phase_name": self.phase_name,
            "what_it_means": self.what_it_means,
            "next_steps": self.next_steps,
        }


Renderer = Callable[[StepContext], tuple[Action, ...]]


def _agent(ctx: StepContext) -> str:
    if not ctx.case.assignee:
        raise MissingData("the case has no assignee to name in '{agent}'")
    return ctx.case.assignee


_PLACEHOLDER_VALUES: Mapping[str, Callable[[StepContext], object]] = {
    "n": lambda ctx: ctx.n,
    "max": lambda ctx: ctx.max,
    "agent": _agent,
    "today": lambda ctx: ctx.today.isoformat(),
    "phase": lambda ctx: ctx.phase,
    "phase_name": lambda ctx: ctx.phase_name,
    "within": lambda ctx: ctx.within,
}
Text = Callable[[StepContext], str]


def _compile_text(template: str) -> Text:
    """A text with ``{placeholders}`` (validated by the policy language), as a function that
    computes only the values the text uses: a missing agent only matters where it is named."""
    names = sorted({name for _, name, _, _ in string.Formatter().parse(template) if name})
    if not names:
        return lambda ctx: template
    getters = tuple((name, _PLACEHOLDER_VALUES[name]) for name in names)
    return lambda ctx: template.format_map({name: get(ctx) for name, get in getters})


def _render(template: jinja2.Template, ctx: StepContext) -> str:
    # Template.render() merges the environment globals into a fresh context for every call;
    # reply templates use no globals, so a shared context renders the same text ~3x faster,
    # which matters when thousands of follow-ups are due in one run.
    context = template.new_context(ctx.template_vars(), shared=True)
    return template.environment.concat(template.root_render_func(context)).strip()


def _compile_action(spec: ActionSpec, env: jinja2.Environment) -> Renderer:
    if spec.note is not None:
        note = _compile_text(spec.note)
        return lambda ctx: (Action(ActionType.NOTE, {"body": note(ctx)}),)
    if spec.reply is not None:
        name = spec.reply
        template = env.get_template(f"{name}.j2")
        return lambda ctx: (
            Action(
                ActionType.REPLY,
                {"template": name, "body": _render(template, ctx)},
            ),
        )
    if spec.contact is not None:
        return _compile_contact(spec, env)
    if spec.status is not None:
        status = str(spec.status)
        return lambda ctx: (Action(ActionType.SET_STATUS, {"status": status}),)
    if spec.assignee is not None:
        assignee = _compile_text(spec.assignee)
        return lambda ctx: (Action(ActionType.SET_ASSIGNEE, {"assignee": assignee(ctx)}),)
    if spec.group is not None:
        group = _compile_text(spec.group)
        return lambda ctx: (Action(ActionType.SET_GROUP, {"group": group(ctx)}),)
    if spec.fields is not None:
        fields = tuple((k, _compile_text(v)) for k, v in spec.fields.items())
        return lambda ctx: tuple(
            Action(ActionType.SET_FIELD, {"field": k, "value": v(ctx)}) for k, v in fields
        )
    if spec.add_tags is not None:
        added = list(spec.add_tags)
        return lambda ctx: (Action(ActionType.ADD_TAGS, {"tags": list(added)}),)
    if spec.remove_tags is not None:
        removed = list(spec.remove_tags)
        return lambda ctx: (Action(ActionType.REMOVE_TAGS, {"tags": list(removed)}),)
    if spec.escalate is not None:
        escalate_to, reason = spec.escalate.group, _compile_text(spec.escalate.reason)
        return lambda ctx: (
            Action(ActionType.ESCALATE, {"group": escalate_to, "reason": reason(ctx)}),
        )
    if spec.bug_fields is not None:
        bug_fields = tuple((k, _compile_text(v)) for k, v in spec.bug_fields.items())
        return lambda ctx: tuple(
            Action(
                ActionType.SET_BUG_FIELD,
                {
                    "field": k,
                    "value": v(ctx),
                    # A bundled update refreshes every bug it speaks for (seed 001 Community).
                    **({"cases": [ctx.case.ref, *ctx.covers]} if ctx.covers else {}),
                },
            )
            for k, v in bug_fields
        )
    if spec.notify_engineer is not None:
        return _compile_nudge(spec)
    raise AssertionError("ActionSpec validation guarantees one action key")


def _compile_contact(spec: ActionSpec, env: jinja2.Environment) -> Renderer:
    contact = spec.contact
    assert contact is not None
    template = env.get_template(f"{contact.template}.j2")
    name = contact.template

    def channels(case: Case) -> tuple[Channel, ...]:
        if case.linked_order:
            return tuple(contact.with_linked_order)
        email = case.requester.email if case.requester else None
        phone = case.requester.phone if case.requester else None
        if email and phone:
            return tuple(contact.phone_and_email)
        if phone:
            return tuple(contact.phone_only)
        if email:
            return tuple(contact.email_only)
        return ()

    def render(ctx: StepContext) -> tuple[Action, ...]:
        chosen = channels(ctx.case)
        actions: list[Action] = []
        if Channel.EMAIL in chosen:
            body = _render(template, ctx)
            actions.append(Action(ActionType.REPLY, {"template": name, "body": body}))
        spoken = [str(c) for c in chosen if c is not Channel.EMAIL]
        if spoken:
            actions.append(Action(ActionType.REACH_OUT, {"channels": spoken}))
        return tuple(actions)

    return render


def _compile_nudge(spec: ActionSpec) -> Renderer:
    nudge = spec.notify_engineer
    assert nudge is not None
    body = _compile_text(nudge.body)

    def render(ctx: StepContext) -> tuple[Action, ...]:
        if nudge.only_if_silent:
            engineer = ctx.case.last_of(ActivityKind.ENGINEER_UPDATE)
            since = ctx.previous_followup
            if engineer is not None and (since is None or engineer.at >= since):
                return ()
        return (Action(ActionType.NOTIFY_ENGINEER, {"body": body(ctx)}),)

    return render


def compile_actions(specs: Sequence[ActionSpec], env: jinja2.Environment) -> tuple[Renderer, ...]:
    return tuple(_compile_action(s, env) for s in specs)


def render_actions(renderers: Sequence[Renderer], ctx: StepContext) -> tuple[Action, ...]:
    return tuple(action for render in renderers for action in render(ctx))
