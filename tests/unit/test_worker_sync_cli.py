"""`followup sync --status / --rebuild` as an operator types them."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import pytest
import structlog
from typer.testing import CliRunner

from connectors.fake import FakeConnector
from tests.unit.worker_support import MONDAY, fake_zendesk, isolate_settings, make_runtime
from worker.cli import app
from worker.cli import sync as cli_sync
from worker.delivery.ledger import Ledger
from worker.runtime.cycle import Runtime, run_cycle
from worker.runtime.leases import LeaseKeeper
from worker.sync.store import CaseStore

runner = CliRunner()


@pytest.fixture
def ledger_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    isolate_settings(monkeypatch, tmp_path)
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    monkeypatch.setenv("FOLLOWUP_DATABASE_URL", url)
    monkeypatch.setenv("FOLLOWUP_LOG_FORMAT", "json")
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield url
    structlog.reset_defaults()
    root.handlers, root.level = handlers, level


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeConnector:
    """The vendor `followup sync` reads: tenant acme's FakeConnector, wired in place of the
    settings' connectors (the seam is `open_runtime`, what the CLI builds its runtime with)."""
    connector = fake_zendesk("1", "2", "3")

    @asynccontextmanager
    async def with_the_fake(
        settings: object, ledger: Ledger, *, leases: LeaseKeeper, **_: object
    ) -> AsyncIterator[Runtime]:
        runtime = make_runtime(ledger, connector, dry_run=True)
        runtime.leases = leases
        yield runtime

    monkeypatch.setattr(cli_sync, "open_runtime", with_the_fake)
    return connector


async def synced_once(url: str, fake: FakeConnector) -> None:
    ledger = Ledger.open(url)
    try:
        await run_cycle(make_runtime(ledger, fake, dry_run=True), at=MONDAY)
    finally:
        ledger.close()


def test_sync_needs_to_be_told_what_to_do(ledger_url: str) -> None:
    result = runner.invoke(app, ["sync"])
    assert result.exit_code == 2
    assert "needs --status or --rebuild" in result.stderr
    assert "no case store yet" in runner.invoke(app, ["sync", "--status"]).stdout


def test_status_shows_each_tenants_vendors_store(ledger_url: str, fake: FakeConnector) -> None:
    asyncio.run(synced_once(ledger_url, fake))
    table = runner.invoke(app, ["sync", "--status"])
    assert table.exit_code == 0
    assert "acme" in table.stdout
    assert "zendesk" in table.stdout

    shown = runner.invoke(app, ["sync", "--status", "--json"])
    [row] = json.loads(shown.stdout)
    assert (row["tenant"], row["vendor"], row["cases"], row["fallbacks"]) == (
        "acme",
        "zendesk",
        3,
        0,
    )
    # Planned by the cycle, each due again at its instant (the default next_due), long past.
    assert row["due"] == 3
    assert row["full_read_at"] is not None


def test_rebuild_drops_the_store_and_reads_in_full_now(
    ledger_url: str, fake: FakeConnector
) -> None:
    asyncio.run(synced_once(ledger_url, fake))
    fake.remove("3")
    fake.agent_edit("1", subject="changed")

    result = runner.invoke(app, ["sync", "--rebuild", "--tenant", "acme", "--json"])

    assert result.exit_code == 0, result.stderr
    assert fake.syncs == [None, None]  # the cursor was forgotten: a full read
    [row] = json.loads(result.stdout)
    assert row["cases"] == 2
    assert "acme: 2 cases read in full, 2 stored" in result.stderr
    ledger = Ledger.open(ledger_url)
    try:
        store = CaseStore(ledger.engine)
        assert store.cursor("acme", fake.source) is not None
        [status] = store.status(MONDAY + timedelta(days=1))
        assert status.due == 2  # a rebuilt case is planned by the next cycle
    finally:
        ledger.close()
    assert fake.writes == []


def test_rebuild_of_an_unknown_tenant_fails(ledger_url: str, fake: FakeConnector) -> None:
    result = runner.invoke(app, ["sync", "--rebuild", "--tenant", "globex"])
    assert result.exit_code == 2
    assert "no tenant 'globex'" in result.stderr
