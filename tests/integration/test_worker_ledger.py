"""The ledger on SQLite and on the local PostgreSQL server, through the same code path."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from connectors.fake import Fault
from tests.unit.worker_support import MONDAY, fake_zendesk, make_case, make_item, make_runtime
from worker.cycle import run_cycle
from worker.ledger import SCHEMA_VERSION, Ledger, LedgerError, Outcome

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _postgres_schema() -> Iterator[str]:
    """A throw-away schema on the local server; skips when the server is not reachable."""
    admin = sa.create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with admin.connect():
            pass
    except sa.exc.OperationalError:
        admin.dispose()
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432 (run .ci/ensure-postgres)")
    schema = f"followup_test_{uuid.uuid4().hex[:10]}"
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    else:
        yield from _postgres_schema()


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    opened = Ledger.open(ledger_url)
    yield opened
    opened.close()


def test_opening_twice_migrates_once(ledger_url: str) -> None:
    first = Ledger.open(ledger_url)
    first.close()
    second = Ledger.open(ledger_url)
    assert second.schema_version() == SCHEMA_VERSION
    second.close()


def test_an_intent_without_outcome_is_pending_until_settled(ledger: Ledger) -> None:
    item = make_item(make_case("7"))
    ledger.begin(item, tenant="acme", cycle_id="c1", dry_run=False, at=MONDAY, started_at=MONDAY)

    [pending] = ledger.pending()
    assert (pending.key, pending.case_ref, pending.tenant) == (item.key, "zendesk:7", "acme")
    assert ledger.latest_outcome(item.key, tenant="acme") == (False, None)

    ledger.settle_pending(
        item.key, Outcome.ALREADY_APPLIED, tenant="acme", finished_at=MONDAY, detail="found"
    )
    assert ledger.pending() == []
    assert ledger.latest_outcome(item.key, tenant="acme") == (True, Outcome.ALREADY_APPLIED)


def test_retries_share_one_intent_and_stay_done_once_applied(ledger: Ledger) -> None:
    item = make_item(make_case("7"))
    for outcome in (Outcome.FAILED, Outcome.APPLIED, Outcome.CONFLICT):
        attempt = ledger.begin(
            item, tenant="acme", cycle_id="c1", dry_run=False, at=MONDAY, started_at=MONDAY
        )
        ledger.finish(attempt, outcome, finished_at=MONDAY + timedelta(seconds=1))

    assert ledger.latest_outcome(item.key, tenant="acme") == (True, Outcome.CONFLICT)
    assert [a.outcome for a in ledger.history("zendesk:7")] == [
        Outcome.FAILED,
        Outcome.APPLIED,
        Outcome.CONFLICT,
    ]


def test_dry_run_plans_do_not_count_as_live_records(ledger: Ledger) -> None:
    item = make_item(make_case("7"))
    attempt = ledger.begin(
        item, tenant="acme", cycle_id="c1", dry_run=True, at=MONDAY, started_at=MONDAY
    )
    ledger.finish(attempt, Outcome.SKIPPED, finished_at=MONDAY, detail="dry-run run")

    assert ledger.latest_outcome(item.key, tenant="acme") is None
    assert ledger.pending() == []


def test_history_tells_what_was_done_and_why(ledger: Ledger) -> None:
    item = make_item(make_case("7"), step=3)
    attempt = ledger.begin(
        item, tenant="acme", cycle_id="c9", dry_run=False, at=MONDAY, started_at=MONDAY
    )
    ledger.finish(
        attempt,
        Outcome.APPLIED,
        finished_at=MONDAY + timedelta(milliseconds=250),
        calls=1,
        request_ids=["req-1"],
    )
    ledger.begin(
        make_item(make_case("8")),
        tenant="acme",
        cycle_id="c9",
        dry_run=False,
        at=MONDAY,
        started_at=MONDAY,
    )

    [entry] = ledger.history("7")
    assert entry.case_ref == "zendesk:7"
    assert entry.reason == "pending; step 3 of 3"
    assert [a["type"] for a in entry.actions] == ["note", "set_status"]
    assert (entry.step, entry.max_steps, entry.cycle_id) == (3, 3, "c9")
    assert entry.outcome is Outcome.APPLIED
    assert entry.request_ids == ["req-1"]
    assert entry.duration_ms == 250
    assert entry.started_at == MONDAY
    assert ledger.history("zendesk:7") == [entry]


def test_history_includes_bundled_updates_covering_the_case(ledger: Ledger) -> None:
    lead = dataclasses.replace(make_item(make_case("10")), covers=("zendesk:11", "zendesk:12"))
    ledger.begin(lead, tenant="acme", cycle_id="c1", dry_run=False, at=MONDAY, started_at=MONDAY)

    assert [a.case_ref for a in ledger.history("zendesk:12")] == ["zendesk:10"]
    assert [a.case_ref for a in ledger.history("11")] == ["zendesk:10"]
    assert ledger.history("zendesk:1") == []


def test_cycles_are_recorded_with_their_summary(ledger: Ledger) -> None:
    ledger.start_cycle("c1", at=MONDAY, dry_run=True, started_at=MONDAY)
    ledger.finish_cycle("c1", ok=True, summary={"planned": 3}, finished_at=MONDAY)

    [cycle] = ledger.recent_cycles()
    assert (cycle.id, cycle.ok, cycle.dry_run, cycle.summary) == ("c1", True, True, {"planned": 3})
    assert cycle.at == MONDAY


def test_switches_are_shared_between_processes(ledger_url: str) -> None:
    ops, worker = Ledger.open(ledger_url), Ledger.open(ledger_url)
    assert worker.switch("dry_run") is None
    ops.set_switch("dry_run", "off", by="ops", at=MONDAY)
    assert worker.switch("dry_run") == "off"
    ops.set_switch("dry_run", None, by="ops", at=MONDAY)
    assert worker.switch("dry_run") is None
    ops.close()
    worker.close()


def test_a_writable_ledger_passes_the_readiness_check(ledger: Ledger) -> None:
    ledger.check_writable()
    assert ledger.switch("readiness-probe") is None


def test_a_newer_schema_is_refused(ledger_url: str) -> None:
    Ledger.open(ledger_url).close()
    engine = sa.create_engine(ledger_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO followup_schema (version, applied_at) VALUES (:v, :t)"),
            {"v": SCHEMA_VERSION + 1, "t": MONDAY},
        )
    engine.dispose()
    with pytest.raises(LedgerError, match="newer than this worker"):
        Ledger.open(ledger_url)


def test_an_unreachable_database_is_one_clear_error() -> None:
    with pytest.raises(LedgerError, match="cannot open the ledger") as raised:
        Ledger.open(
            "postgresql://worker:hunter2@127.0.0.1:1/nowhere", connect_args={"connect_timeout": 2}
        )
    assert "hunter2" not in str(raised.value)


async def test_a_crash_mid_cycle_is_reconciled_without_duplicate(ledger: Ledger) -> None:
    """The whole cycle against this database: a write lands, the process dies before the
    outcome, the restart finds the marker and writes nothing again."""

    class Crash(BaseException):
        pass

    fake = fake_zendesk("1", "2")
    fake.inject("1", Fault.CRASH, error=Crash())
    with pytest.raises(Crash):
        await run_cycle(make_runtime(ledger, fake, concurrency=1), at=MONDAY)

    summary = await run_cycle(make_runtime(ledger, fake), at=MONDAY + timedelta(minutes=15))

    assert summary.reconciled == 1
    assert sorted(item.case.id for item in fake.writes) == ["1", "2"]
    assert [a.outcome for a in ledger.history("zendesk:1")] == [Outcome.ALREADY_APPLIED]
