"""`followup run / dry-run / history` as an operator types them."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from typer.testing import CliRunner

from tests.unit.worker_support import (
    MONDAY,
    add_tenant,
    fake_zendesk,
    isolate_settings,
    make_runtime,
    with_bad_records,
)
from worker.cli import app
from worker.delivery.ledger import Ledger
from worker.runtime.cycle import run_cycle
from worker.runtime.switches import DRY_RUN

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


def test_dry_run_is_on_until_ops_turn_it_off(ledger_url: str) -> None:
    assert runner.invoke(app, ["dry-run", "status"]).stdout == (
        "dry-run: ON (FOLLOWUP_DRY_RUN=true)\n"
    )
    refused = runner.invoke(app, ["dry-run", "off", "--by", "alice"])
    assert refused.exit_code == 2
    assert "needs --reason" in refused.stdout
    turned_off = runner.invoke(
        app, ["dry-run", "off", "--by", "alice", "--reason", "plan reviewed with the team"]
    )
    assert turned_off.stdout == "dry-run: OFF (the runtime dry-run switch is off)\n"
    assert '"by": "alice"' in turned_off.stderr
    assert runner.invoke(app, ["dry-run", "on"]).stdout.startswith("dry-run: ON")
    ledger = Ledger.open(ledger_url)
    audit = ledger.switch_log(DRY_RUN)
    ledger.close()
    assert [(entry.value, entry.by, entry.reason) for entry in audit][1] == (
        "off",
        "alice",
        "plan reviewed with the team",
    )


def test_history_shows_what_was_done_and_why(ledger_url: str) -> None:
    ledger = Ledger.open(ledger_url)
    asyncio.run(run_cycle(make_runtime(ledger, fake_zendesk("7")), at=MONDAY))
    ledger.close()

    result = runner.invoke(app, ["history", "7"], env={"COLUMNS": "200"})

    assert result.exit_code == 0
    assert "general-inquiry / awaiting-customer" in result.stdout
    assert "applied" in result.stdout
    assert "pending; step 1 of 3" in result.stdout


def test_history_of_a_ticket_id_two_tenants_share_says_whose_each_row_is(
    ledger_url: str,
) -> None:
    ledger = Ledger.open(ledger_url)
    runtime = make_runtime(ledger, fake_zendesk("7"))
    add_tenant(runtime, "globex", fake_zendesk("7"))
    asyncio.run(run_cycle(runtime, at=MONDAY))
    ledger.close()

    both = runner.invoke(app, ["history", "zendesk:7"], env={"COLUMNS": "200"})
    only_globex = runner.invoke(
        app, ["history", "zendesk:7", "--tenant", "globex"], env={"COLUMNS": "200"}
    )

    rows = [line for line in both.stdout.splitlines() if "applied" in line]
    assert [("acme" in row, "globex" in row) for row in rows] == [(True, False), (False, True)]
    assert "globex" not in only_globex.stdout  # one tenant: no tenant column
    assert len([line for line in only_globex.stdout.splitlines() if "applied" in line]) == 1


def test_history_names_a_ticket_the_worker_could_not_read(ledger_url: str) -> None:
    ledger = Ledger.open(ledger_url)
    fake = fake_zendesk("7")
    runtime = make_runtime(ledger, fake)
    with_bad_records(runtime, fake)
    fake.serve_unreadable("77", "missing field 'status'")
    summary = asyncio.run(run_cycle(runtime, at=MONDAY))
    ledger.close()

    result = runner.invoke(app, ["history", "zendesk:77"], env={"COLUMNS": "300"})

    assert result.exit_code == 0
    assert result.stdout.startswith(
        f"zendesk:77 of acme was unreadable in cycle {summary.cycle_id} (Mon 2026-03-02 "
    )
    assert "missing field 'status'" in result.stdout
    assert runner.invoke(app, ["history", "intercom:77"]).stdout == "no record of intercom:77\n"
    assert runner.invoke(app, ["history", "zendesk:77", "--tenant", "globex"]).stdout == (
        "no record of zendesk:77\n"
    )
    assert "unreadable" not in runner.invoke(app, ["history", "7"]).stdout


def test_history_of_an_unknown_case(ledger_url: str) -> None:
    assert runner.invoke(app, ["history", "zendesk:404"]).stdout == "no record of zendesk:404\n"


def test_run_needs_once(ledger_url: str) -> None:
    result = runner.invoke(app, ["run"])
    assert result.exit_code == 2
    assert "needs --once" in result.stderr


def test_run_without_any_vendor_stops_with_one_line(ledger_url: str) -> None:
    result = runner.invoke(app, ["run", "--once"])
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1].startswith("followup: no vendor configured")


def test_an_unknown_followup_variable_is_reported_with_the_closest_name(
    ledger_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FOLLOWUP_ZENDESK_TOKEM", "zd")
    monkeypatch.setenv("FOLLOWUP_OPERATR", "alice")
    result = runner.invoke(app, ["dry-run", "status"])
    assert result.exit_code == 0
    assert (
        "followup: unknown setting FOLLOWUP_OPERATR ignored (did you mean FOLLOWUP_OPERATOR?)"
        in result.stderr.splitlines()
    )
    assert (
        "followup: unknown setting FOLLOWUP_ZENDESK_TOKEM ignored"
        " (did you mean FOLLOWUP_ZENDESK_TOKEN?)" in result.stderr.splitlines()
    )


@pytest.mark.parametrize(
    ("command", "env"),
    [
        (["run", "--once", "--set", "ein_bot_owner"], {}),
        (["serve", "--set", "ein_bot_owner"], {}),
        (["run", "--once"], {"FOLLOWUP_POLICY_SETTINGS": "ein_bot_owner"}),
    ],
)
def test_pack_settings_mean_the_same_for_run_and_serve(
    ledger_url: str, monkeypatch: pytest.MonkeyPatch, command: list[str], env: dict[str, str]
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = runner.invoke(app, command)
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        "followup: invalid setting FOLLOWUP_POLICY_SETTINGS: 'ein_bot_owner' is not NAME=CHOICE"
    )


def test_a_refused_database_is_one_line_with_its_cause(
    ledger_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = _closed_port()
    monkeypatch.setenv("FOLLOWUP_DATABASE_URL", f"postgresql://u:s3cret@127.0.0.1:{port}/db")
    result = runner.invoke(app, ["dry-run", "status"])
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("followup: cannot open the ledger at postgresql+psycopg://u:***@127")
    assert line.endswith("Connection refused")
    assert "s3cret" not in result.output


def _closed_port() -> int:
    with socket.socket() as probe:  # bound, never listening: connecting is refused
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
