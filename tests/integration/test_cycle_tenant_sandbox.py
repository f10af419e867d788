"""One tenant's cycle through the real wiring and connectors, against the sandbox over HTTP:
an unreadable ticket is counted and named, the others go on, and every vendor figure and
connector log line says which tenant it is about."""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs
from typer.testing import CliRunner

from policies.model import Source
from tests.unit.worker_support import isolate_settings
from worker.cli import app
from worker.delivery.ledger import Ledger
from worker.runtime.cycle import run_cycle
from worker.runtime.tenants import TenantRoster, TenantSettings
from worker.runtime.wiring import open_runtime
from worker.settings import Settings

server = pytest.importorskip("sandbox.server", reason="the sandbox package is not in this tree")
faults = pytest.importorskip("sandbox.faults")

ROOT = Path(__file__).resolve().parents[2]
MAPPING = ROOT / "deploy" / "mapping.sandbox.yaml"
START = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)  # a Wednesday afternoon


@pytest.fixture
def sandbox() -> Iterator[Any]:
    """Some tests corrupt its records: its answers are not checked against the descriptions
    (the requests are)."""
    with server.run_in_thread(
        tickets=40, start=START, frozen_clock=True, limits={}, check_responses=False
    ) as running:
        yield running


def settings_for(running: Any) -> Settings:
    config = running.config
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        zendesk_url=running.urls["zendesk"],
        zendesk_email=config.zendesk_email,
        zendesk_token=config.zendesk_token,
        mapping=MAPPING,
        zendesk_rate_limit=100_000,
    )


def break_a_ticket(running: Any, ticket_id: str) -> None:
    """The helpdesk now sends this ticket with a status no Zendesk has."""
    desk = running.sandbox.zendesk
    record = copy.deepcopy(desk.record(int(ticket_id)))
    record.ticket["status"] = "archived"
    desk.changed[int(ticket_id)] = record


async def candidate_tickets(settings: Settings, ledger: Ledger) -> list[str]:
    async with open_runtime(settings, ledger) as runtime:
        zendesk = runtime.tenants[0].connectors[Source.ZENDESK]
        return [case.id async for case in zendesk.cases()]


async def test_a_tenant_s_bad_record_metrics_and_connector_logs_carry_its_name(
    sandbox: Any, tmp_path: Path
) -> None:
    settings = settings_for(sandbox)
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    tickets = await candidate_tickets(settings, ledger)
    broken = tickets[len(tickets) // 2]
    break_a_ticket(sandbox, broken)
    # The first read is throttled once: the connector logs it and tries again.
    sandbox.sandbox.faults = faults.FaultPlan([faults.FaultRule("zendesk", "429", 1.0, times=1)])
    roster = TenantRoster((TenantSettings("acme", settings),))

    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        async with open_runtime(settings, ledger, roster=roster) as runtime:
            summary = await run_cycle(runtime, at=START, dry_run=True)
    ledger.close()

    assert summary.cases == len(tickets) - 1  # the others are all read
    assert summary.planned
    [bad] = summary.bad_records
    assert (bad.tenant, bad.counts) == ("acme", {"zendesk": 1})
    assert [(r.record_id, r.reason) for r in bad.shown] == [
        (broken, "ValueError: 'archived' is not a valid Status")
    ]
    text = runtime.metrics.exposition().decode()
    acme = 'tenant="acme",vendor="zendesk"'
    assert f"followup_bad_records_total{{{acme}}} 1.0" in text
    assert f"followup_api_throttled_total{{{acme}}} 1.0" in text
    assert f"followup_api_retries_total{{{acme}}} 1.0" in text
    assert f'followup_api_calls_total{{status="2xx",{acme}}}' in text
    assert f"followup_api_call_duration_seconds_count{{{acme}}}" in text
    assert f"followup_cases_fetched_total{{{acme}}} {len(tickets) - 1}.0" in text
    from_connectors = [
        e for e in logs if e["event"] in ("rate_limited", "vendor_retry", "vendor_record_skipped")
    ]
    assert sorted(e["event"] for e in from_connectors) == [
        "rate_limited",
        "vendor_record_skipped",
        "vendor_retry",
    ]
    assert all(e["tenant"] == "acme" for e in from_connectors), from_connectors


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sandbox: Any) -> Iterator[None]:
    isolate_settings(monkeypatch, tmp_path)
    settings = settings_for(sandbox)
    monkeypatch.setenv("FOLLOWUP_ZENDESK_URL", str(settings.zendesk_url))
    monkeypatch.setenv("FOLLOWUP_ZENDESK_EMAIL", str(settings.zendesk_email))
    monkeypatch.setenv("FOLLOWUP_ZENDESK_TOKEN", sandbox.config.zendesk_token)
    monkeypatch.setenv("FOLLOWUP_ZENDESK_RATE_LIMIT", "100000")
    monkeypatch.setenv("FOLLOWUP_MAPPING", str(MAPPING))
    monkeypatch.setenv("FOLLOWUP_DATABASE_URL", f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    monkeypatch.setenv("FOLLOWUP_LOG_FORMAT", "json")
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.reset_defaults()
    root.handlers, root.level = handlers, level


def test_run_once_lists_the_tickets_it_could_not_read(
    sandbox: Any, cli_env: None, tmp_path: Path
) -> None:
    scratch = Ledger.open(f"sqlite:///{tmp_path / 'scratch.sqlite3'}")
    broken = asyncio.run(candidate_tickets(settings_for(sandbox), scratch))[0]
    scratch.close()
    break_a_ticket(sandbox, broken)
    runner = CliRunner()

    result = runner.invoke(
        app, ["run", "--once", "--at", START.isoformat()], env={"COLUMNS": "250"}
    )

    assert result.exit_code == 0, result.stdout + result.stderr
    [row] = [line for line in result.stdout.splitlines() if f"zendesk:{broken} " in line]
    assert "unreadable" in row
    assert "'archived' is not a valid Status" in row
    assert ", 1 unreadable records skipped" in result.stdout
    assert '"event": "vendor_record_skipped"' in result.stderr
    history = runner.invoke(app, ["history", f"zendesk:{broken}"], env={"COLUMNS": "250"})
    assert f"zendesk:{broken} of default was unreadable in cycle" in history.stdout
