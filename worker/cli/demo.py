"""``followup demo``: the README's first command. The sandbox starts in-process with generated
data, the worker runs live against it for ten simulated business days (:mod:`worker.demo`),
and what happened is shown day by day, then summed up, with one email and one internal note
exactly as customers and agents see them. ``--json`` prints the figures for machines instead.

Exit 0 when every cycle did all that was due and the read-back found each follow-up on its
case exactly once; 1 otherwise.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console, Group
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from policies.model import ActionType
from sandbox.server import run_in_thread
from worker.delivery.executor import ItemReport
from worker.delivery.ledger import Ledger
from worker.demo import (
    CustomerActivity,
    DayLog,
    DemoOptions,
    DemoReport,
    DoneItem,
    Watchers,
    sandbox_config,
    simulate,
)
from worker.logs import configure_logging

__all__ = ["register"]

_DEFAULTS = DemoOptions()
_EXAMPLES_PER_DAY = 3
_NOTE_KINDS_PER_DAY = 6


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo(
    days: Annotated[
        int,
        typer.Option(min=1, max=60, envvar="FOLLOWUP_DEMO_DAYS", help="Business days to simulate."),
    ] = _DEFAULTS.days,
    tickets: Annotated[
        int,
        typer.Option(
            min=20, max=5000, envvar="FOLLOWUP_DEMO_TICKETS", help="Zendesk tickets generated."
        ),
    ] = _DEFAULTS.tickets,
    seed: Annotated[
        int, typer.Option(envvar="FOLLOWUP_DEMO_SEED", help="Same seed, same story.")
    ] = _DEFAULTS.seed,
    as_json: Annotated[
        bool,
        typer.Option("--json", envvar="FOLLOWUP_DEMO_JSON", help="Print the figures as JSON."),
    ] = False,
) -> None:
    """Run the worker live against the bundled sandbox over simulated business days."""
    options = DemoOptions(days=days, tickets=tickets, seed=seed)
    # The timeline reports every failure with its detail; the log would only repeat it.
    configure_logging(secrets=(), log_format="console", level="error")
    console = Console(highlight=False, stderr=as_json)
    with tempfile.TemporaryDirectory(prefix="followup-demo-") as folder:
        ledger = Ledger.open(f"sqlite:///{Path(folder) / 'ledger.sqlite3'}")
        try:
            with run_in_thread(sandbox_config(options)) as running:
                if as_json:
                    report = asyncio.run(simulate(running, ledger, options))
                else:
                    _intro(console, options)
                    with _live(console, options) as watch:
                        report = asyncio.run(simulate(running, ledger, options, watch))
        finally:
            ledger.close()
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
    else:
        _show_summary(console, report)
    raise typer.Exit(0 if report.ok else 1)


def _intro(console: Console, options: DemoOptions) -> None:
    console.print(
        f"[bold]followup demo[/] - a sandbox helpdesk with {options.tickets} Zendesk tickets "
        f"(plus Intercom conversations and Asana bugs, seed {options.seed}); the worker runs "
        f"LIVE against it at 10:00 New York time on {options.days} business days from "
        f"{options.first_day:%a %d %b %Y}. Before each cycle a few customers the worker is "
        "chasing reply or miss a call.\n"
    )


@contextmanager
def _live(console: Console, options: DemoOptions) -> Iterator[Watchers]:
    """A progress bar over the days; each day's timeline is printed above it as it ends."""
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("[dim]{task.fields[latest]}"),
        console=console,
        transient=True,
    )
    task = progress.add_task("starting the sandbox", total=options.days, latest="")
    done_today = 0

    def on_day(day: date, activity: list[CustomerActivity]) -> None:
        nonlocal done_today
        done_today = 0
        progress.update(task, description=f"{day:%a %d %b}", latest="cycle starting")

    def on_item(report: ItemReport) -> None:
        nonlocal done_today
        done_today += 1
        latest = f"{done_today:>3} follow-ups, latest {report.case_ref} {report.policy}"
        progress.update(task, latest=latest)

    def on_day_done(log: DayLog) -> None:
        progress.console.print(_day_block(log))
        progress.advance(task)

    with progress:
        yield Watchers(day_started=on_day, item=on_item, day_done=on_day_done)


def _counted(counter: Counter[str], most: int | None = None) -> str:
    shown = ", ".join(f"{name} x{n}" for name, n in counter.most_common(most)) or "-"
    hidden = len(counter) - most if most is not None and len(counter) > most else 0
    return f"{shown} and {hidden} more" if hidden else shown


def _day_block(log: DayLog) -> Group:
    title = Text.assemble(
        (f"{log.day:%a %d %b}", "bold cyan"),
        f"  {log.cases_read} cases read, {len(log.applied)} follow-ups done, "
        f"{len(log.emails)} emails sent",
    )
    rows = Table.grid(padding=(0, 2))
    rows.add_column(style="dim", no_wrap=True)
    rows.add_column()
    if log.activity:
        said = {"customer_reply": "replied", "missed_call": "missed a call"}
        rows.add_row("customers", ", ".join(f"{a.case_ref} {said[a.kind]}" for a in log.activity))
    rows.add_row("notes", _counted(log.notes(), most=_NOTE_KINDS_PER_DAY))
    rows.add_row("statuses", _counted(log.statuses()))
    rows.add_row("emails", _counted(log.replies()))
    events = {
        "closed as unresponsive": len(log.closed()),
        "handed to bot owner": len(log.handed_to_owner()),
        "escalated": len(log.escalated()),
        "bug updates": len(log.bug_updates()),
        "engineer nudges": len(log.engineer_nudges()),
        "restarted by customer": len(log.restarted()),
    }
    happened = ", ".join(f"{name} {n}" for name, n in events.items() if n)
    if happened:
        rows.add_row("events", happened)
    for done in _examples(log):
        rows.add_row("e.g.", _describe(done))
    for (policy, detail), failed in _grouped_failures(log).items():
        example = failed[0].report
        rows.add_row(
            "[red]FAILED[/]",
            f"{len(failed)} x {policy}: {detail or example.label} (e.g. {example.case_ref})",
        )
    for error in log.errors:
        rows.add_row("[red]ERROR[/]", error)
    if log.unjudged:
        rows.add_row("not judged", f"{len(log.unjudged)} (case, policy) pairs, see the summary")
    return Group(title, rows, Text())


def _grouped_failures(log: DayLog) -> dict[tuple[str, str], list[DoneItem]]:
    """Failures by policy and cause; the case named in a vendor's message is left out so
    that one cause reads as one line."""
    groups: dict[tuple[str, str], list[DoneItem]] = {}
    for done in log.failed:
        cause = done.report.detail.split(" (")[0]
        groups.setdefault((done.report.policy, cause), []).append(done)
    return groups


def _examples(log: DayLog) -> list[DoneItem]:
    """A few follow-ups worth reading: the rarer kinds of the day first."""
    picks: list[DoneItem] = []
    for kind in (
        log.closed(),
        log.handed_to_owner(),
        log.restarted(),
        log.escalated(),
        log.bug_updates(),
        log.applied,
    ):
        picks += [d for d in kind[:1] if d not in picks]
    return picks[:_EXAMPLES_PER_DAY]


def _describe(done: DoneItem) -> str:
    item = done.item
    parts = []
    for action in item.actions:
        params = action.params
        match action.type:
            case ActionType.NOTE:
                parts.append(f"note {str(params['body']).splitlines()[0]!r}")
            case ActionType.REPLY:
                parts.append(f"email {params['template']}")
            case ActionType.REACH_OUT:
                parts.append("call/text task" if params["channels"] else "reach out")
            case ActionType.SET_STATUS:
                parts.append(str(params["status"]).upper())
            case ActionType.SET_ASSIGNEE:
                parts.append(f"assignee {params['assignee']}")
            case ActionType.ESCALATE:
                parts.append(f"escalated to {params['group']}")
            case ActionType.SET_FIELD | ActionType.SET_BUG_FIELD:
                parts.append(f"{params['field']}={params['value']}")
            case ActionType.ADD_TAGS:
                parts.append(f"tags {', '.join(map(str, params['tags']))}")
            case ActionType.NOTIFY_ENGINEER:
                parts.append("engineer nudged")
            case _:
                parts.append(action.type.value)
    return f"{item.case.ref} {item.policy} {item.step_label}: {', '.join(parts)}"


def _show_summary(console: Console, report: DemoReport) -> None:
    figures = report.as_dict()
    totals = figures["totals"]
    table = Table(title="What the worker did", show_header=True, title_justify="left")
    table.add_column("policy")
    table.add_column("follow-ups", justify="right")
    for policy, n in sorted(totals["by_policy"].items(), key=lambda kv: -kv[1]):
        table.add_row(policy, str(n))
    console.print(table)
    api = figures["api"]
    readback = report.readback
    lines = [
        f"follow-ups done   {totals['applied']} ({totals['failed']} failed, "
        f"{totals['unjudged']} case judgements skipped)",
        f"statuses set      {_counted(Counter(totals['statuses']))}",
        f"emails sent       {totals['emails']}",
        f"closed / handed   {totals['closed_unresponsive']} closed as unresponsive, "
        f"{totals['handed_to_owner']} handed to bot owner, {totals['escalated']} escalated",
        f"bugs              {totals['bug_updates']} updates, "
        f"{totals['engineer_nudges']} engineer nudges",
        f"customers         {totals['customer_activity']} replies/missed calls, "
        f"{totals['restarted']} sequences restarted",
        f"API calls         {api['reads']} reads, {api['writes']} writes, "
        f"{api['rate_limited']} rate-limited (429), {api['errors']} errors",
        f"read back         {readback.signed}/{totals['applied']} follow-ups found on their "
        f"{readback.cases} cases, {len(readback.missing)} missing, "
        f"{len(readback.duplicates)} duplicates",
        f"wall time         {report.wall_time_s:.1f} s",
    ]
    unjudged = Counter(u.reason for day in report.days for u in day.unjudged)
    lines += [f"  not judged {n:>4} x {reason}" for reason, n in unjudged.most_common(3)]
    style = "green" if report.ok else "red"
    verdict = "OK" if report.ok else "NOT OK"
    console.print(Panel("\n".join(lines), title=f"summary: {verdict}", border_style=style))
    if report.example_email:
        email = report.example_email
        console.print(
            Panel(
                f"To: {email['to']}\nSubject: {email['subject']}\n\n{email['body']}",
                title=f"an email the customer got ({email['ref']})",
                title_align="left",
            )
        )
    if report.example_note:
        console.print(
            Panel(report.example_note, title="an internal note an agent sees", title_align="left")
        )
