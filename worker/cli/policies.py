"""CLI commands around the policies: ``plan``, ``explain``, ``policies check|schema`` and
``bench plan``. Every flag has a ``FOLLOWUP_*`` environment twin."""

from __future__ import annotations

import itertools
import json
import os
import resource
import sys
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal, NoReturn

import typer
from rich.table import Table
from rich.text import Text

from policies.calendar import BusinessCalendar
from policies.language import BUNDLED_PACK, policy_json_schema
from policies.model import Action, ActionType, PlanItem, Unjudged
from policies.planner import explain, item_to_dict, plan, preview
from policies.rules import Rulebook, load_rulebook
from policies.snapshot import load_snapshot
from policies.synthetic import synthetic_accounts, synthetic_cases
from policies.yamlsource import SourceError
from worker.settings import setting_pairs
from worker.terminal import plain_console

__all__ = ["bench_app", "explain_command", "plan_command", "policies_app", "register"]

policies_app = typer.Typer(help="Validate policy folders and export their JSON Schema.")
bench_app = typer.Typer(help="Benchmarks (print numbers; never assertions).")

PoliciesOption = Annotated[
    Path,
    typer.Option(
        "--policies", envvar="FOLLOWUP_POLICIES", help="Policy folder (default: bundled pack)."
    ),
]
SETTINGS_ENV = "FOLLOWUP_POLICY_SETTINGS"
SettingOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help=f"Pack setting override NAME=CHOICE (repeatable). Env: {SETTINGS_ENV}, "
        "pairs separated by ';' (values may contain spaces: 'ein_bot_owner=Jo Q').",
    ),
]
InputOption = Annotated[
    Path,
    typer.Option("--input", envvar="FOLLOWUP_INPUT", help="Cases/accounts file (YAML or JSON)."),
]
AtOption = Annotated[
    datetime | None,
    typer.Option(
        "--at",
        envvar="FOLLOWUP_AT",
        formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M%z", "%Y-%m-%dT%H:%M:%S"],
        help="The instant to plan for (ISO-8601; no offset means UTC). Default: now.",
    ),
]
Format = Literal["table", "json"]
FormatOption = Annotated[
    str, typer.Option("--format", envvar="FOLLOWUP_FORMAT", help="table (people) or json.")
]


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``followup`` app."""
    app.command("plan")(plan_command)
    app.command("explain")(explain_command)
    app.add_typer(policies_app, name="policies")
    app.add_typer(bench_app, name="bench")


def _instant(at: datetime | None) -> datetime:
    if at is None:
        return datetime.now(UTC)
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _overrides(settings: list[str] | None) -> dict[str, str]:
    """Environment pairs first, then --set flags, which win (as for ``run`` and ``serve``).
    Not typer's ``envvar=``: it splits on whitespace, and bot owners' names contain spaces."""
    try:
        return setting_pairs([*os.environ.get(SETTINGS_ENV, "").split(";"), *(settings or [])])
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--set") from None


def _rulebook(folder: Path, settings: list[str] | None) -> Rulebook:
    if not folder.is_dir():
        _fail(f"{folder}: not a folder")
    try:
        return load_rulebook(folder, _overrides(settings))
    except SourceError as exc:
        _fail(str(exc))


def _fail(message: str) -> NoReturn:
    plain_console(stderr=True).print(message)
    raise typer.Exit(1)


def _format(value: str) -> Format:
    if value not in ("table", "json"):
        raise typer.BadParameter("use table or json", param_hint="--format")
    return "table" if value == "table" else "json"


def plan_command(
    input_file: InputOption,
    at: AtOption = None,
    output: FormatOption = "table",
    horizon: Annotated[
        int,
        typer.Option(
            "--horizon",
            envvar="FOLLOWUP_HORIZON",
            min=0,
            help="Preview every step over the next N business days, assuming nobody replies.",
        ),
    ] = 0,
    policies: PoliciesOption = BUNDLED_PACK,
    settings: SettingOption = None,
) -> None:
    """Print what each case is owed at --at (or, with --horizon, over the next N days)."""
    fmt = _format(output)
    rules = _rulebook(policies, settings)
    try:
        loaded = load_snapshot(input_file)
    except SourceError as exc:
        _fail(str(exc))
    now = _instant(at)
    if horizon:
        steps = [
            (s.at, s.result)
            for s in preview(loaded.cases, loaded.accounts, now, rules, loaded.calendar, horizon)
        ]
    else:
        steps = [(now, r) for r in plan(loaded.cases, loaded.accounts, now, rules, loaded.calendar)]
    if fmt == "json":
        rows = [{"at": when.isoformat(), **item_to_dict(result)} for when, result in steps]
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
    else:
        _print_table(steps, loaded.calendar, with_date=bool(horizon))


def _print_table(
    steps: Iterable[tuple[datetime, PlanItem | Unjudged]],
    calendar: BusinessCalendar,
    with_date: bool,
) -> None:
    table = Table(show_lines=True)
    if with_date:
        table.add_column("Date")
    for column in ("Case", "Policy", "Step", "Actions", "Reason"):
        table.add_column(column, overflow="fold")
    count = 0
    for when, result in steps:
        count += 1
        date_cell = [f"{when.astimezone(calendar.zone):%a %d %b}"] if with_date else []
        if isinstance(result, Unjudged):
            unjudged = Text("unjudged", style="red")
            table.add_row(*date_cell, result.case_ref, unjudged, "", "", result.reason)
        else:
            actions = "\n".join(_summary(a) for a in result.actions)
            table.add_row(
                *date_cell,
                result.case.ref,
                result.policy,
                result.step_label,
                actions,
                result.reason,
            )
    console = plain_console()
    if count:
        console.print(table)
    else:
        console.print("Nothing is due.")


def _summary(action: Action) -> str:
    """One short line per action for the table."""
    p = action.params
    match action.type:
        case ActionType.NOTE:
            return f'note "{p["body"]}"'
        case ActionType.REPLY:
            return f"email ({p['template']})"
        case ActionType.REACH_OUT:
            return " + ".join(p["channels"])
        case ActionType.ADD_TAGS:
            return "tags + " + ", ".join(p["tags"])
        case ActionType.REMOVE_TAGS:
            return "tags - " + ", ".join(p["tags"])
        case ActionType.SET_FIELD | ActionType.SET_BUG_FIELD:
            return f"{p['field']} → {p['value']}"
        case ActionType.NOTIFY_ENGINEER:
            return "nudge the engineer"
        case ActionType.ESCALATE:
            return f"escalate → {p['group']}"
        case _:  # status, assignee, group: one value each
            (value,) = p.values()
            return f"{action.type.removeprefix('set_')} → {value}"


def explain_command(
    case_id: Annotated[str, typer.Argument(help="Case id (101) or ref (zendesk:101).")],
    input_file: InputOption,
    at: AtOption = None,
    policies: PoliciesOption = BUNDLED_PACK,
    settings: SettingOption = None,
) -> None:
    """Say, rule by rule, why a case is or is not due at --at."""
    rules = _rulebook(policies, settings)
    try:
        loaded = load_snapshot(input_file)
    except SourceError as exc:
        _fail(str(exc))
    matches = [c for c in loaded.cases if case_id in (c.id, c.ref)]
    if not matches:
        _fail(f"no case {case_id!r} in {input_file}")
    if len(matches) > 1:
        _fail(f"{case_id!r} is ambiguous: {', '.join(c.ref for c in matches)}; use the ref")
    case = matches[0]
    now = _instant(at)
    console = plain_console()
    when = f"{now.astimezone(loaded.calendar.zone):%a %d %b %Y %H:%M %Z}"
    console.print(Text.assemble((case.ref, "bold"), f" at {when}"))
    styles = {"due": "green", "not due": "yellow", "cannot judge": "red"}
    for explanation in explain(case, loaded.accounts, now, rules, loaded.calendar):
        style = styles.get(explanation.outcome, "dim")
        console.print(
            Text.assemble(
                (f"{explanation.outcome:>18}", style),
                "  ",
                (explanation.policy, "bold"),
                f": {explanation.detail}",
            )
        )
        if explanation.item is not None:
            for action in explanation.item.actions:
                console.print(f"{'':>20}- {_summary(action)}")


@policies_app.command("check")
def check_command(
    folder: Annotated[Path, typer.Argument(envvar="FOLLOWUP_POLICIES", help="Policy folder.")],
    settings: SettingOption = None,
) -> None:
    """Validate every policy file of FOLDER; print each problem as file:line: field: message."""
    rules = _rulebook(folder, settings)
    typer.echo(f"ok: {len(rules.policies)} policies in {folder}")
    for name, choice in rules.choices.items():
        typer.echo(f"  setting {name} = {choice}")


@policies_app.command("schema")
def schema_command() -> None:
    """Print the JSON Schema of a policy file (for editors' YAML completion)."""
    typer.echo(json.dumps(policy_json_schema(), indent=2))


@bench_app.command("plan")
def bench_plan_command(
    tickets: Annotated[
        int, typer.Option("--tickets", envvar="FOLLOWUP_BENCH_TICKETS", min=1)
    ] = 100_000,
    policies: PoliciesOption = BUNDLED_PACK,
) -> None:
    """Plan N generated cases on one core; print cases/s and peak memory.

    Times are CPU seconds of this process (the machine may be shared). Cases are generated
    in batches of 1,000 so the planner's own time can be measured apart from the
    generator's while memory stays bounded; the planner itself streams either way."""
    rules = _rulebook(policies, None)
    calendar = BusinessCalendar(timezone="America/New_York", country="US")
    now = datetime(2026, 3, 11, 15, 0, tzinfo=UTC)
    accounts = synthetic_accounts()
    cases = synthetic_cases(tickets, now)
    due = unjudged = 0
    planning = 0.0
    started = time.process_time()
    while batch := list(itertools.islice(cases, _BENCH_BATCH)):
        batch_started = time.process_time()
        for result in plan(batch, accounts, now, rules, calendar):
            if isinstance(result, Unjudged):
                unjudged += 1
            else:
                due += 1
        planning += time.process_time() - batch_started
    total = time.process_time() - started
    typer.echo(f"cases:              {tickets:,}")
    typer.echo(f"plan items:         {due:,} due, {unjudged:,} unjudged")
    typer.echo(f"generate + plan:    {total:.2f} s CPU  ({tickets / total:,.0f} cases/s)")
    typer.echo(f"planning alone:     {planning:.2f} s CPU  ({tickets / planning:,.0f} cases/s)")
    typer.echo(f"peak memory (RSS):  {_peak_rss_mib():.1f} MiB")


_BENCH_BATCH = 1_000


def _peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024
