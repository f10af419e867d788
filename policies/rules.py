"""Validated policies compiled into plain frozen objects the planner can run millions of times.

pydantic stays at the edge (:mod:`policies.language`). Here a policy becomes a
:class:`CompiledPolicy`: its selector a tuple of checks (:mod:`policies.selectors`), its
cadence an object with one ``evaluate`` method (:mod:`policies.cadences`) whose steps carry
action renderers (:mod:`policies.actions`). The :class:`Rulebook` routes each case straight to
the few policies that can apply to it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2

from policies.cadences import Cadence, Evidence, compile_cadence, gather_evidence
from policies.language import BUNDLED_PACK, Pack, Policy, load_pack
from policies.model import Account, ActivityKind, Case, CaseKind, PlanTier, Status
from policies.selectors import Check, Tri, compile_selector, match_checks, may_match
from policies.yamlsource import Problem, SourceError

__all__ = [
    "CompiledPolicy",
    "Group",
    "Route",
    "Router",
    "Rulebook",
    "claim",
    "compile_pack",
    "load_rulebook",
]


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    name: str
    group: str
    description: str
    source: str
    dry_run: bool | None
    checks: tuple[Check, ...]
    restart_on: frozenset[ActivityKind]
    cadence: Cadence

    def match(self, case: Case, account: Account | None) -> tuple[Tri, Check | None]:
        return match_checks(self.checks, case, account)

    def accepts(self, dimension: str, value: str) -> bool:
        return all(value in c.accepts for c in self.checks if c.routes_on == dimension)

    def constrains(self, dimension: str) -> bool:
        return any(c.routes_on == dimension for c in self.checks)

    def evidence(self, case: Case, now: datetime) -> Evidence:
        return gather_evidence(case, self.name, self.restart_on, now)


@dataclass(frozen=True, slots=True)
class Group:
    name: str
    policies: tuple[CompiledPolicy, ...]


Candidate = tuple[CompiledPolicy, tuple[Check, ...]]  # a policy and the checks left to run


def claim(
    group: Iterable[Candidate], case: Case, account: Account | None
) -> tuple[CompiledPolicy, Check | None] | None:
    """The group's policy that claims ``case``: its first candidate whose checks do not fail,
    with None when they all pass or the check that cannot tell (the case is reported, not
    judged); None when no candidate applies."""
    for policy, checks in group:
        matched, check = match_checks(checks, case, account)
        if matched is not False:
            return policy, check
    return None


@dataclass(frozen=True, slots=True)
class Route:
    """One group's candidates for cases of one (kind, status), indexed by the value of the
    field the group's policies discriminate on (seed 004's ``request_type``, typically) and
    by the account's plan tier (seeds 000/001's bug rules). A value no policy lists, and an
    unknown plan, fall back to ``None``; an unknown plan keeps the plan checks, so a policy
    that needs it can say it cannot judge."""

    field: str | None
    by_plan: bool
    table: Mapping[tuple[str | None, PlanTier | None], tuple[Candidate, ...]]

    def candidates(self, value: str | None, plan: PlanTier | None) -> tuple[Candidate, ...]:
        plan = plan if self.by_plan else None
        found = self.table.get((value, plan)) if self.field is not None else None
        return found if found is not None else self.table[(None, plan)]


_MEMO_LIMIT = 4096  # distinct (field values, plan) combinations remembered per (kind, status)


@dataclass(frozen=True)
class Router:
    """Every group's candidates for one (kind, status), memoised by the values of the fields
    the routes index and the account's plan, so a case costs one dict lookup however many
    groups and policies the pack has."""

    routes: tuple[Route, ...]
    fields: tuple[str, ...]
    _memo: dict[object, tuple[tuple[Candidate, ...], ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def candidates(self, case: Case, account: Account | None) -> tuple[tuple[Candidate, ...], ...]:
        """Per group with anything to try: its candidates, in order."""
        values = case.fields
        plan = account.plan if account is not None else None
        if len(self.fields) == 1:
            key: object = (values.get(self.fields[0]), plan)
        else:
            key = (*(values.get(name) for name in self.fields), plan)
        found = self._memo.get(key)
        if found is None:
            found = tuple(
                c
                for route in self.routes
                if (c := route.candidates(values.get(route.field or ""), plan))
            )
            if len(self._memo) < _MEMO_LIMIT:
                self._memo[key] = found
        return found


@dataclass(frozen=True, slots=True)
class Rulebook:
    """A compiled pack: groups in pack order (for explanations) and, for the planner, a
    router per (kind, status) so a case only meets the policies that can apply to it."""

    policies: tuple[CompiledPolicy, ...]
    groups: tuple[Group, ...]
    routes: Mapping[tuple[CaseKind, Status], Router]
    choices: Mapping[str, Any]  # the pack setting choices in effect (for logs and `check`)
    # Kinds some policy judges by the account's open cases (open_cases, account_priority,
    # bundle_account): a caller streaming cases must plan these once every case is counted.
    reads_account_totals: frozenset[CaseKind] = frozenset(CaseKind)

    def may_plan(self, case: Case, account: Account | None = None) -> bool:
        """Whether any policy could plan anything for ``case``, whatever its history and
        follow-ups say and whatever its account's open-case totals turn out to be: selectors
        read neither the history nor the follow-ups, so a case no selector can take on what
        the case itself and its ``account``'s own attributes show (kind, status, fields, tags,
        industry, priority, assignee; plan, canceled, stop flag) is planned nothing. Without
        ``account``, every account check counts as passable. Connectors ask it to skip reading
        the evidence (an Intercom conversation's parts, an Asana task's stories) of cases that
        cannot be due."""
        return any(may_match(p.checks, case, account) for p in self.policies)


def load_rulebook(
    folder: Path = BUNDLED_PACK, overrides: Mapping[str, str] | None = None
) -> Rulebook:
    """Load, validate and compile a policy folder. Every problem, including a reply template
    that does not parse, is a :class:`SourceError` naming file and line."""
    pack = load_pack(folder, overrides)
    try:
        return compile_pack(pack)
    except jinja2.TemplateSyntaxError as exc:
        problem = Problem(exc.filename or exc.name or "template", exc.lineno, "", exc.message or "")
        raise SourceError([problem]) from exc


def compile_pack(pack: Pack) -> Rulebook:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(list(pack.template_dirs)),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # plain-text emails; the helpdesk escapes on display
        keep_trailing_newline=False,
    )
    policies = tuple(_compile_policy(p, env) for p in pack.policies)
    group_names = list(dict.fromkeys(p.group for p in policies))
    groups = tuple(
        Group(name, tuple(p for p in policies if p.group == name)) for name in group_names
    )
    routers = {}
    for kind in CaseKind:
        for status in Status:
            routes = tuple(r for g in groups if (r := _route(g, kind, status)) is not None)
            fields = tuple(dict.fromkeys(r.field for r in routes if r.field is not None))
            routers[(kind, status)] = Router(routes, fields)
    return Rulebook(
        policies, groups, routers, dict(pack.choices), _kinds_reading_totals(pack.policies)
    )


def _kinds_reading_totals(policies: Iterable[Policy]) -> frozenset[CaseKind]:
    kinds: set[CaseKind] = set()
    for policy in policies:
        selector = policy.selector
        bundles = getattr(policy.cadence, "bundle_account", False)
        if selector.open_cases is not None or selector.account_priority is not None or bundles:
            kinds.update(selector.kind or CaseKind)
    return frozenset(kinds)


def _route(group: Group, kind: CaseKind, status: Status) -> Route | None:
    applicable = [
        p for p in group.policies if p.accepts("kind", kind) and p.accepts("status", status)
    ]
    if not applicable:
        return None
    usage = Counter(
        c.routes_on
        for p in applicable
        for c in p.checks
        if c.routes_on is not None and c.routes_on.startswith("field:")
    )
    dimension = usage.most_common(1)[0][0] if usage else None
    by_plan = any(p.constrains("plan") for p in applicable)

    def fits(policy: CompiledPolicy, on: str | None, value: str | None) -> bool:
        return (
            on is None
            or not policy.constrains(on)
            or (value is not None and policy.accepts(on, value))
        )

    def candidates(value: str | None, plan: PlanTier | None) -> tuple[Candidate, ...]:
        # The plan check stays when the plan is unknown: it is what reports "cannot tell".
        routed = {"kind", "status"} | {d for d in (dimension, plan and "plan") if d}
        return tuple(
            (p, tuple(c for c in p.checks if c.routes_on not in routed))
            for p in applicable
            if fits(p, dimension, value) and (plan is None or fits(p, "plan", plan))
        )

    values = sorted(
        {v for p in applicable for c in p.checks if c.routes_on == dimension for v in c.accepts}
    )
    plans: list[PlanTier | None] = [None, *PlanTier] if by_plan else [None]
    return Route(
        field=dimension.removeprefix("field:") if dimension else None,
        by_plan=by_plan,
        table={(v, plan): candidates(v, plan) for v in [None, *values] for plan in plans},
    )


def _compile_policy(policy: Policy, env: jinja2.Environment) -> CompiledPolicy:
    return CompiledPolicy(
        name=policy.name,
        group=policy.group_name,
        description=policy.description,
        source=policy.source,
        dry_run=policy.dry_run,
        checks=compile_selector(policy.selector),
        restart_on=frozenset(policy.restart_on),
        cadence=compile_cadence(policy, env),
    )
