"""Validated policies compiled into plain frozen objects the planner can run millions of times.

pydantic stays at the edge (:mod:`policies.language`). Here a policy becomes a
:class:`CompiledPolicy`: its selector a tuple of checks (:mod:`policies.selectors`), its
cadence an object with one ``evaluate`` method (:mod:`policies.cadences`) whose steps carry
action renderers (:mod:`policies.actions`). The :class:`Rulebook` routes each case straight to
the few policies that can apply to it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2

from policies.cadences import Cadence, Evidence, compile_cadence, gather_evidence
from policies.language import BUNDLED_PACK, Pack, Policy, load_pack
from policies.model import Account, ActivityKind, Case, CaseKind, Status
from policies.selectors import Check, Tri, compile_selector, match_checks
from policies.yamlsource import Problem, SourceError

__all__ = [
    "CompiledPolicy",
    "Group",
    "Route",
    "Router",
    "Rulebook",
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


@dataclass(frozen=True, slots=True)
class Route:
    """One group's candidates for cases of one (kind, status), indexed by the value of the
    field the group's policies discriminate on (seed 004's ``request_type``, typically)."""

    field: str | None
    by_value: Mapping[str, tuple[Candidate, ...]]
    otherwise: tuple[Candidate, ...]

    def candidates(self, case: Case) -> tuple[Candidate, ...]:
        if self.field is None:
            return self.otherwise
        value = case.fields.get(self.field)
        return self.otherwise if value is None else self.by_value.get(value, self.otherwise)


_MEMO_LIMIT = 4096  # distinct field-value combinations remembered per (kind, status)


@dataclass(frozen=True)
class Router:
    """Every group's candidates for one (kind, status), memoised by the values of the fields
    the routes index, so a case costs one dict lookup however many groups the pack has."""

    routes: tuple[Route, ...]
    fields: tuple[str, ...]
    _memo: dict[object, tuple[tuple[Candidate, ...], ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def candidates(self, case: Case) -> tuple[tuple[Candidate, ...], ...]:
        """Per group with anything to try: its candidates, in order."""
        values = case.fields
        if len(self.fields) == 1:
            key: object = values.get(self.fields[0])
        else:
            key = tuple(values.get(name) for name in self.fields)
        found = self._memo.get(key)
        if found is None:
            found = tuple(c for route in self.routes if (c := route.candidates(case)))
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
    return Rulebook(policies, groups, routers, dict(pack.choices))


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
    routed = {"kind", "status"} if dimension is None else {"kind", "status", dimension}

    def candidates(value: str | None) -> tuple[Candidate, ...]:
        return tuple(
            (p, tuple(c for c in p.checks if c.routes_on not in routed))
            for p in applicable
            if dimension is None
            or not p.constrains(dimension)
            or (value is not None and p.accepts(dimension, value))
        )

    values = {
        v for p in applicable for c in p.checks if c.routes_on == dimension for v in c.accepts
    }
    return Route(
        field=dimension.removeprefix("field:") if dimension else None,
        by_value={v: candidates(v) for v in sorted(values)},
        otherwise=candidates(None),
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
