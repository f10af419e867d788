"""Shared builders for the worker tests: cases, plan items, a small planner, a runtime."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.fake import FakeConnector
from policies.model import (
    Account,
    Action,
    ActionType,
    Case,
    CaseKind,
    PlanItem,
    Source,
    Status,
    Unjudged,
    idempotency_key,
)
from worker.delivery.executor import ItemReport
from worker.delivery.ledger import Ledger
from worker.metrics import Metrics
from worker.runtime.badrecords import BadRecordTally
from worker.runtime.cycle import CycleSummary, PlanFunction, Runtime, Tenant, run_cycle
from worker.settings import ENV_PREFIX

MONDAY = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
POLICY = "general-inquiry"


def make_case(case_id: str, *, status: Status = Status.PENDING, account: str = "acme") -> Case:
    return Case(
        source=Source.ZENDESK,
        id=case_id,
        kind=CaseKind.TICKET,
        status=status,
        created_at=MONDAY - timedelta(days=3),
        updated_at=MONDAY - timedelta(days=2),
        account_id=account,
        updated_stamp="1",
    )


def make_item(case: Case, step: int = 1, *, dry_run: bool | None = None) -> PlanItem:
    actions = [Action(ActionType.NOTE, {"body": f"follow-up {step}/3"})]
    if step == 3:
        actions.append(Action(ActionType.SET_STATUS, {"status": "solved"}))
    return PlanItem(
        case=case,
        policy=POLICY,
        rule="awaiting-customer",
        step=step,
        max_steps=3,
        actions=tuple(actions),
        reason=f"pending; step {step} of 3",
        key=idempotency_key(POLICY, case.ref, step, case.created_at.isoformat()),
        dry_run=dry_run,
    )


def every_other_day(
    cases: Iterable[Case], accounts: Mapping[str, Account], now: datetime
) -> Iterator[PlanItem | Unjudged]:
    """A planner in the spirit of seed 002: a follow-up every two days, three in all.

    Like the real planner it reads progress from the case's own follow-up marks, and reports
    cases whose account it does not know instead of guessing.
    """
    for case in cases:
        if case.account_id not in accounts:
            yield Unjudged(case.ref, "unknown account")
            continue
        if case.status is not Status.PENDING:
            continue
        last = case.followups[-1].at if case.followups else case.updated_at
        if now - last >= timedelta(days=2) and len(case.followups) < 3:
            yield make_item(case, len(case.followups) + 1)


def make_runtime(
    ledger: Ledger,
    connector: FakeConnector,
    *,
    dry_run: bool = False,
    planner: PlanFunction = every_other_day,
    concurrency: int = 4,
) -> Runtime:
    return Runtime(
        ledger=ledger,
        metrics=Metrics(),
        tenants=[Tenant("acme", {connector.source: connector}, planner)],
        configured_dry_run=dry_run,
        concurrency=concurrency,
    )


def add_tenant(runtime: Runtime, name: str, connector: FakeConnector) -> None:
    """Another helpdesk on the runtime's ledger, planned like the first tenant."""
    first = runtime.tenants[0]
    runtime.tenants = [*runtime.tenants, Tenant(name, {connector.source: connector}, first.plan)]


def with_bad_records(runtime: Runtime, fake: FakeConnector) -> BadRecordTally:
    """Have the (only) tenant's connector report into its tally, as
    ``worker.runtime.wiring`` does."""
    tally = BadRecordTally(runtime.tenants[0].name)
    fake.report = tally.report
    runtime.tenants = [dataclasses.replace(runtime.tenants[0], bad_records=tally)]
    return tally


@dataclass
class Heard:
    """What a runtime told of its cycles (the summary keeps only figures): every item report
    and every unjudged case, in the order they came."""

    items: list[ItemReport] = field(default_factory=list)
    unjudged: list[Unjudged] = field(default_factory=list)


def listen(runtime: Runtime) -> Heard:
    heard = Heard()
    runtime.on_item = heard.items.append
    runtime.on_unjudged = heard.unjudged.append
    return heard


async def heard_cycle(runtime: Runtime, at: datetime) -> tuple[CycleSummary, list[ItemReport]]:
    """Run one cycle; its summary and the reports of its items, in the order they settled."""
    heard = listen(runtime)
    summary = await run_cycle(runtime, at=at)
    return summary, heard.items


def fake_zendesk(*case_ids: str, clock_at: datetime = MONDAY) -> FakeConnector:
    return FakeConnector(
        Source.ZENDESK,
        [make_case(case_id) for case_id in case_ids],
        [Account("acme", "Acme")],
        clock=lambda: clock_at,
    )


def isolate_settings(monkeypatch: pytest.MonkeyPatch, workdir: Path) -> None:
    """No FOLLOWUP_* from the caller's shell, and no stray .env in the working directory."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    monkeypatch.chdir(workdir)
