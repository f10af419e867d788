"""The ledger on SQLite and on the local PostgreSQL server, through the same code path."""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from connectors.fake import Fault
from tests.unit.worker_support import MONDAY, fake_zendesk, make_case, make_item, make_runtime
from worker.delivery import ledger as ledger_module
from worker.delivery.ledger import (
    SCHEMA_VERSION,
    SWITCH_CHANGES_KEPT,
    TURNS_KEPT,
    Ledger,
    LedgerError,
    Outcome,
    TenantTurn,
    engine_url,
)
from worker.runtime.cycle import run_cycle

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


@pytest.fixture
def other_ledger_url(ledger_url: str, tmp_path: Path) -> Iterator[str]:
    """A second, empty ledger on the same kind of database."""
    if ledger_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'other.sqlite3'}"
    else:
        yield from _postgres_schema()


def _schema_of(url: str) -> dict[str, Any]:
    """What the database says the ledger's tables are (and on SQLite, their very DDL)."""
    engine = sa.create_engine(engine_url(url))
    try:
        inspector = sa.inspect(engine)
        shape: dict[str, Any] = {}
        for table in sorted(inspector.get_table_names()):
            columns = inspector.get_columns(table)
            shape[table] = {
                "columns": [
                    (c["name"], str(c["type"]), c["nullable"], c["default"]) for c in columns
                ],
                "primary_key": inspector.get_pk_constraint(table)["constrained_columns"],
                "unique": sorted(
                    (u["name"], tuple(u["column_names"]))
                    for u in inspector.get_unique_constraints(table)
                ),
                "indexes": sorted(
                    (i["name"], tuple(i["column_names"]), i["unique"])
                    for i in inspector.get_indexes(table)
                ),
                "foreign_keys": sorted(
                    (
                        tuple(f["constrained_columns"]),
                        f["referred_table"],
                        tuple(f["referred_columns"]),
                    )
                    for f in inspector.get_foreign_keys(table)
                ),
            }
        with engine.connect() as conn:
            shape["versions"] = conn.scalars(sa.text("SELECT version FROM followup_schema")).all()
            if engine.dialect.name == "sqlite":
                ddl = "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
                shape["sqlite_master"] = [tuple(row) for row in conn.execute(sa.text(ddl))]
        return shape
    finally:
        engine.dispose()


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


def test_tenants_sharing_a_key_each_have_their_own_record(ledger: Ledger) -> None:
    # Both helpdesks have a ticket 77 opened the same day: the same idempotency key.
    acme_item, globex_item = make_item(make_case("77")), make_item(make_case("77"))
    assert acme_item.key == globex_item.key
    key = acme_item.key
    applied = ledger.begin(
        acme_item, tenant="acme", cycle_id="c1", dry_run=False, at=MONDAY, started_at=MONDAY
    )
    ledger.finish(applied, Outcome.APPLIED, finished_at=MONDAY)
    assert ledger.latest_outcome(key, tenant="globex") is None

    ledger.begin(
        globex_item, tenant="globex", cycle_id="c1", dry_run=False, at=MONDAY, started_at=MONDAY
    )
    assert ledger.latest_outcome(key, tenant="globex") == (False, None)
    assert (
        ledger.settle_pending(key, Outcome.FAILED, tenant="acme", finished_at=MONDAY, detail="x")
        == 0
    )
    assert [p.tenant for p in ledger.pending()] == ["globex"]
    assert ledger.latest_outcome(key, tenant="acme") == (True, Outcome.APPLIED)

    assert [a.tenant for a in ledger.history("zendesk:77")] == ["acme", "globex"]
    assert [a.outcome for a in ledger.history("77", tenant="globex")] == [None]


def test_a_v1_ledger_migrates_to_the_schema_of_a_new_one(
    ledger_url: str, other_ledger_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    item = make_item(make_case("77"))
    with monkeypatch.context() as first_release:  # a worker that knew only schema v1
        first_release.setattr(ledger_module, "_MIGRATIONS", ledger_module._MIGRATIONS[:1])
        old = Ledger.open(ledger_url)
        applied = old.begin(
            item, tenant="acme", cycle_id="c1", dry_run=False, at=MONDAY, started_at=MONDAY
        )
        old.finish(applied, Outcome.APPLIED, finished_at=MONDAY, calls=1, request_ids=["r1"])
        old.begin(
            make_item(make_case("78")),
            tenant="acme",
            cycle_id="c2",
            dry_run=False,
            at=MONDAY,
            started_at=MONDAY,
        )
        assert old.schema_version() == 1
        before = (old.history("77"), old.pending())
        old.close()

    migrated = Ledger.open(ledger_url)
    try:
        assert migrated.schema_version() == SCHEMA_VERSION == 4
        assert (migrated.history("77"), migrated.pending()) == before
        assert migrated.latest_outcome(item.key, tenant="acme") == (True, Outcome.APPLIED)
        migrated.begin(
            item, tenant="globex", cycle_id="c3", dry_run=False, at=MONDAY, started_at=MONDAY
        )
        assert [a.tenant for a in migrated.history("zendesk:77")] == ["acme", "globex"]
    finally:
        migrated.close()
    Ledger.open(other_ledger_url).close()

    schema = _schema_of(ledger_url)
    assert schema == _schema_of(other_ledger_url)
    assert schema["followup_intents"]["unique"] == [
        ("uq_followup_intents_tenant_key_mode", ("tenant", "idempotency_key", "dry_run"))
    ]
    assert ("ix_followup_intents_case_ref", ("case_ref",), False) in schema["followup_intents"][
        "indexes"
    ]
    assert schema["followup_attempts"]["foreign_keys"] == [
        (("intent_id",), "followup_intents", ("id",))
    ]


def test_processes_opening_a_new_sqlite_ledger_at_once_all_open_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    failures: list[LedgerError] = []

    def open_and_close() -> None:
        try:
            Ledger.open(url).close()
        except LedgerError as exc:
            failures.append(exc)

    openers = [threading.Thread(target=open_and_close) for _ in range(6)]
    for opener in openers:
        opener.start()
    for opener in openers:
        opener.join()

    assert failures == []
    ledger = Ledger.open(url)
    assert ledger.schema_version() == SCHEMA_VERSION
    ledger.close()


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


def test_switch_changes_are_audited_newest_first_and_bounded(ledger: Ledger) -> None:
    for minute in range(SWITCH_CHANGES_KEPT + 3):
        value = "on" if minute % 2 else "off"
        at = MONDAY + timedelta(minutes=minute)
        ledger.set_switch("dry_run", value, by=f"op{minute}", at=at, reason=f"why {minute}")
    ledger.set_switch("other", "x", by="ops", at=MONDAY)

    log = ledger.switch_log("dry_run", limit=SWITCH_CHANGES_KEPT + 10)
    last = SWITCH_CHANGES_KEPT + 2
    assert len(log) == SWITCH_CHANGES_KEPT
    assert (log[0].value, log[0].by, log[0].reason) == ("off", f"op{last}", f"why {last}")
    assert log[0].at == MONDAY + timedelta(minutes=last)
    assert ledger.switch_set_at("dry_run") == MONDAY + timedelta(minutes=last)
    assert [change.name for change in ledger.switch_log("other")] == ["other"]


def _turn(tenant: str, minute: int) -> TenantTurn:
    at = MONDAY + timedelta(minutes=minute)
    return TenantTurn(
        tenant=tenant,
        cycle_id=f"c{minute}",
        at=at,
        dry_run=False,
        started_at=at,
        finished_at=at + timedelta(seconds=2),
        ok=True,
        figures={"cases": minute},
    )


def test_tenant_turns_newest_first_per_tenant_and_bounded(ledger: Ledger) -> None:
    for minute in range(TURNS_KEPT + 5):
        ledger.record_turn(_turn("acme", minute))
    ledger.record_turn(_turn("globex", 1))

    recent = ledger.recent_turns(per_tenant=3)
    assert [turn.cycle_id for turn in recent["acme"]] == [
        f"c{TURNS_KEPT + 4}",
        f"c{TURNS_KEPT + 3}",
        f"c{TURNS_KEPT + 2}",
    ]
    assert recent["globex"][0].figures == {"cases": 1}
    assert recent["globex"][0].duration_s == 2
    assert len(ledger.recent_turns(per_tenant=1000)["acme"]) == TURNS_KEPT


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
