"""The plan ``followup run --once`` prints, read back from its spool once the cycle is over."""

from __future__ import annotations

import dataclasses
import io
import json
from collections import Counter
from collections.abc import Iterator

import pytest
from rich.console import Console

from policies.model import Unjudged
from tests.unit.worker_support import MONDAY
from worker.cli import printed_plan
from worker.cli.printed_plan import PlanSpool, plan_spool, print_json, print_tables
from worker.delivery.decisions import RunMode
from worker.delivery.executor import ItemReport
from worker.delivery.ledger import Outcome
from worker.runtime.cycle import CycleSummary


def report(case_id: int) -> ItemReport:
    return ItemReport(
        tenant="acme",
        case_ref=f"zendesk:{case_id}",
        key=f"key-{case_id}",
        policy="general-inquiry",
        rule="awaiting-customer",
        step="1/3",
        actions=("note",),
        reason="pending; step 1 of 3",
        dry_run=True,
        outcome=Outcome.SKIPPED,
        detail="dry-run run",
    )


def summary(planned: int, unjudged: int) -> CycleSummary:
    return CycleSummary(
        cycle_id="c1",
        at=MONDAY,
        mode=RunMode(dry_run=True, why="--dry-run given"),
        cases=planned + unjudged,
        planned=planned,
        counts=Counter({"skipped": planned}),
        unjudged=unjudged,
    )


@pytest.fixture
def spool() -> Iterator[PlanSpool]:
    with plan_spool() as opened:
        yield opened


def test_the_json_document_has_the_figures_then_every_item(spool: PlanSpool) -> None:
    for case_id in (1, 2):
        spool.item(report(case_id))
    spool.unjudged(Unjudged("zendesk:3", "unknown account"))
    out = io.StringIO()

    print_json(summary(2, 1), spool, out)

    printed = json.loads(out.getvalue())
    assert (printed["planned"], printed["skipped"], printed["cases"]) == (2, 2, 3)
    assert printed["items"] == [
        {
            "tenant": "acme",
            "case": f"zendesk:{case_id}",
            "policy": "general-inquiry",
            "step": "1/3",
            "actions": ["note"],
            "outcome": "skipped",
            "reason": "pending; step 1 of 3",
            "detail": "dry-run run",
        }
        for case_id in (1, 2)
    ]
    assert printed["unjudged"] == [{"case": "zendesk:3", "reason": "unknown account"}]


def test_nothing_due_is_still_one_json_document(spool: PlanSpool) -> None:
    out = io.StringIO()

    print_json(summary(0, 0), spool, out)

    printed = json.loads(out.getvalue())
    assert (printed["items"], printed["unjudged"], printed["ok"]) == ([], [], True)


def test_a_long_plan_prints_as_several_tables_with_every_row(
    spool: PlanSpool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(printed_plan, "TABLE_ROWS", 2)
    for case_id in range(1, 6):
        spool.item(report(case_id))
    spool.unjudged(Unjudged("zendesk:9", "unknown account"))
    out = io.StringIO()

    print_tables(summary(5, 1), spool, Console(file=out, width=200))

    text = out.getvalue()
    assert text.count("DRY-RUN") == 1  # the title, on the first table only
    assert text.count("┏") == 3  # 6 rows, 2 a table
    assert all(f"zendesk:{case_id} " in text for case_id in (1, 2, 3, 4, 5, 9))
    assert "5 follow-ups due (skipped 5), 0 failed, 1 not judged" in text


def test_tables_print_case_data_verbatim(spool: PlanSpool, monkeypatch: pytest.MonkeyPatch) -> None:
    # What `followup run --once` prints goes through the CLI's plain console (issue 14).
    from worker.cli.runtime import _out

    hostile = dataclasses.replace(report(1), case_ref="zendesk:1:ticket:[red]x[/red]")
    spool.item(hostile)
    monkeypatch.setattr(_out, "_width", 200)  # wide enough not to fold the case column
    with _out.capture() as captured:
        print_tables(summary(1, 0), spool, _out)
    printed = captured.get()
    assert "zendesk:1:ticket:[red]x[/red]" in printed
    assert "\N{TICKET}" not in printed
