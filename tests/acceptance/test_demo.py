"""`followup demo`: the README's first command tells the truth about what the worker did.

The simulation runs once (a few business days, a small tenant) against an in-process sandbox;
its report is then checked against the sandbox's raw state - comment, part and story texts,
the outbox - read without any of the worker's parsing.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sandbox.clock import parse_iso
from sandbox.server import run_in_thread
from worker.delivery.ledger import Ledger
from worker.demo import DemoOptions, DemoReport, sandbox_config, simulate

ROOT = Path(__file__).resolve().parents[2]
OPTIONS = DemoOptions(days=5, tickets=60)
FOOTER = re.compile(r"— followup-worker · .+? · step .+? · fw-([0-9a-zA-Z]+)")


@dataclass(frozen=True)
class Signed:
    """A worker footer found in the sandbox: on which object, written when."""

    where: str
    key: str
    at: datetime


@dataclass(frozen=True)
class Run:
    report: DemoReport
    state: dict[str, Any]  # the sandbox's raw state after the run

    def footers(self) -> list[Signed]:
        found = []
        for ticket_id, record in self.state["zendesk"]["tickets"].items():
            for comment in record["comments"]:
                found += _signed(f"zendesk:{ticket_id}", comment["body"], comment["created_at"])
        for conversation_id, conversation in self.state["intercom"]["conversations"].items():
            for part in conversation["conversation_parts"]["conversation_parts"]:
                at = datetime.fromtimestamp(part["created_at"], UTC).isoformat()
                found += _signed(f"intercom:{conversation_id}", part.get("body") or "", at)
        for task_gid, record in self.state["asana"].items():
            for story in record["stories"]:
                found += _signed(f"asana:{task_gid}", story.get("text") or "", story["created_at"])
        return found


def _signed(where: str, text: str, at: str) -> list[Signed]:
    return [Signed(where, key, parse_iso(at)) for key in FOOTER.findall(text)]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    ledger = Ledger.open(f"sqlite:///{tmp_path_factory.mktemp('demo') / 'ledger.sqlite3'}")
    try:
        with run_in_thread(sandbox_config(OPTIONS)) as running:
            assert running.sandbox is not None
            report = asyncio.run(simulate(running, ledger, OPTIONS))
            yield Run(report, running.sandbox.dump())
    finally:
        ledger.close()


def test_no_follow_up_is_on_its_case_twice(run: Run) -> None:
    times = Counter((signed.where, signed.key) for signed in run.footers())

    assert [entry for entry, n in times.items() if n > 1] == []
    assert run.report.readback.duplicates == ()


def test_every_follow_up_reported_done_is_signed_on_its_case_and_nothing_else(run: Run) -> None:
    start = sandbox_config(OPTIONS).start
    written = {(s.where, s.key) for s in run.footers() if s.at >= start}
    reported = {(d.item.case.ref, d.item.key) for day in run.report.days for d in day.applied}

    assert reported
    assert written == reported
    assert run.report.readback.signed == len(reported)


def test_the_emails_reported_are_the_sandbox_outbox(run: Run) -> None:
    outbox = run.state["outbox"]
    replies = sum(sum(day.replies().values()) for day in run.report.days)

    assert sum(len(day.emails) for day in run.report.days) == len(outbox)
    assert replies == len(outbox)


def test_the_window_shows_each_kind_of_follow_up(run: Run) -> None:
    days = run.report.days
    notes = sum((day.notes() for day in days), Counter())
    statuses = sum((day.statuses() for day in days), Counter())
    templates = sum((day.replies() for day in days), Counter())

    for step in ("1/3", "2/3", "3/3", "after 3/3"):
        assert notes[f"general-inquiry {step}"] > 0, step
    assert notes["refund-request 3/3"] > 0
    assert statuses["pending"] > 0
    assert statuses["solved"] > 0
    assert templates["followup_reminder"] > 0
    assert templates["closing_statement"] > 0
    events = {
        "closed": sum(len(day.closed()) for day in days),
        "handed to owner": sum(len(day.handed_to_owner()) for day in days),
        "escalated": sum(len(day.escalated()) for day in days),
        "restarted": sum(len(day.restarted()) for day in days),
        "bug updates": sum(len(day.bug_updates()) for day in days),
        "engineer nudges": sum(len(day.engineer_nudges()) for day in days),
    }
    assert [name for name, n in events.items() if n == 0] == []


def test_customers_act_and_sequences_start_again(run: Run) -> None:
    acted = [activity for day in run.report.days for activity in day.activity]
    kinds = Counter(activity.kind for activity in acted)
    restarted = {d.item.case.ref for day in run.report.days for d in day.restarted()}

    assert kinds["customer_reply"] > 0
    assert kinds["missed_call"] > 0
    assert restarted <= {activity.case_ref for activity in acted}
    assert restarted


def test_cases_closed_as_unresponsive_are_solved_in_the_helpdesk(run: Run) -> None:
    acted_later = {a.case_ref for day in run.report.days for a in day.activity}
    closed = [
        d.item.case
        for day in run.report.days
        for d in day.closed()
        if d.item.case.ref.startswith("zendesk:") and d.item.case.ref not in acted_later
    ]
    tickets = run.state["zendesk"]["tickets"]

    assert closed
    assert {tickets[case.id]["ticket"]["status"] for case in closed} == {"solved"}


def test_every_cycle_did_all_that_was_due(run: Run) -> None:
    failed = [(d.report.case_ref, d.report.detail) for day in run.report.days for d in day.failed]

    assert failed == []
    assert [error for day in run.report.days for error in day.errors] == []
    assert run.report.ok


@pytest.fixture(scope="module")
def command() -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """``followup demo --json``, as a process, its length from the environment twin."""
    result = subprocess.run(
        [sys.executable, "-m", "worker", "demo", "--tickets", "40", "--json"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "FOLLOWUP_DEMO_DAYS": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return result, json.loads(result.stdout)


def test_the_command_prints_its_figures_and_exits_0(
    command: tuple[subprocess.CompletedProcess[str], dict[str, Any]],
) -> None:
    result, figures = command

    assert result.returncode == 0, result.stderr[-2000:]
    assert figures["ok"]
    assert [day["day"] for day in figures["days"]] == ["2026-03-02"]
    assert figures["totals"]["applied"] > 0
    assert figures["readback"]["duplicates"] == []
    assert figures["api"]["writes"] > 0
