"""Incremental sync (issue 13): a cycle reads what changed since its cursor into the case store
and plans only what changed or is due, against the FakeConnector and a SQLite ledger."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from connectors.base import Change, KnownCase
from connectors.fake import FakeConnector
from policies.model import (
    Account,
    Activity,
    ActivityKind,
    Case,
    CaseKind,
    PlanItem,
    Source,
    Status,
    Unjudged,
)
from tests.unit.worker_support import (
    MONDAY,
    every_other_day,
    fake_zendesk,
    make_case,
    make_runtime,
)
from worker.delivery.ledger import Ledger
from worker.runtime.cycle import NextDue, Runtime, run_cycle
from worker.sync.store import CaseStore, Changes


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    opened = Ledger.open(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    yield opened
    opened.close()


def turn_figures(ledger: Ledger) -> dict[str, Any]:
    """The figures of the latest turn of tenant acme, as the ledger keeps them."""
    return ledger.recent_turns(per_tenant=1)["acme"][0].figures


def replied(case: Case, at: datetime) -> Case:
    """The customer wrote back: the helpdesk reopens the case."""
    return dataclasses.replace(
        case,
        status=Status.OPEN,
        history=(*case.history, Activity(ActivityKind.CUSTOMER_REPLY, at)),
        updated_at=at,
        updated_stamp=str(int(case.updated_stamp or "0") + 1),
    )


@dataclasses.dataclass
class Recorder:
    """A planner that says which cases it was asked about (and their account's open cases),
    then plans as ``every_other_day``."""

    asked: list[tuple[str, int]] = dataclasses.field(default_factory=list)

    def __call__(
        self, cases: Iterable[Case], accounts: Mapping[str, Account], now: datetime
    ) -> Iterator[PlanItem | Unjudged]:
        for case in cases:
            account = accounts.get(case.account_id or "")
            self.asked.append((case.id, 0 if account is None else account.open_cases))
            yield from every_other_day([case], accounts, now)

    def take(self) -> list[tuple[str, int]]:
        asked, self.asked = sorted(self.asked), []
        return asked


def planned_from(
    ledger: Ledger,
    fake: FakeConnector,
    *,
    dry_run: bool = True,
    next_due: NextDue | None = None,
    plan_last: frozenset[CaseKind] = frozenset(),
) -> tuple[Runtime, Recorder]:
    recorder = Recorder()
    runtime = make_runtime(ledger, fake, dry_run=dry_run, planner=recorder)
    tenant = runtime.tenants[0]
    runtime.tenants = [
        dataclasses.replace(tenant, next_due=next_due or tenant.next_due, plan_last=plan_last)
    ]
    return runtime, recorder


def never(case: Case, accounts: Mapping[str, Account], now: datetime) -> datetime | None:
    """Nothing is ever owed without a change: only changed cases are planned."""
    return None


async def test_a_second_cycle_right_after_the_first_reads_only_the_changes(
    ledger: Ledger,
) -> None:
    fake = fake_zendesk("1", "2", "3", "4", "5")
    runtime, _ = planned_from(ledger, fake)
    first = await run_cycle(runtime, at=MONDAY)
    assert (fake.syncs, fake.reads, first.cases) == ([None], 5, 5)

    fake.agent_edit("3", subject="renamed")
    second = await run_cycle(runtime, at=MONDAY + timedelta(minutes=15))

    [_, cursor] = fake.syncs
    assert cursor is not None  # read from the first cycle's cursor, not in full
    assert (fake.reads, second.cases) == (5 + 1, 1)
    figures = turn_figures(ledger)
    assert (figures["changed"], figures["store_size"], figures["fallbacks"]) == (1, 5, 0)

    third = await run_cycle(runtime, at=MONDAY + timedelta(minutes=30))
    assert (fake.reads, third.cases, turn_figures(ledger)["changed"]) == (6, 0, 0)


async def test_a_customer_reply_read_in_between_stops_a_pending_follow_up(
    ledger: Ledger,
) -> None:
    fake = fake_zendesk("1", "2")
    runtime, _ = planned_from(ledger, fake, dry_run=False)
    await run_cycle(runtime, at=MONDAY)
    assert sorted(item.case.id for item in fake.writes) == ["1", "2"]

    two_days_later = MONDAY + timedelta(days=2)
    fake.put(replied(fake.case("1"), MONDAY + timedelta(days=1)))
    summary = await run_cycle(runtime, at=two_days_later)

    # Case 2 is owed its second follow-up; case 1 answered and gets none.
    assert [(item.case.id, item.step) for item in fake.writes[2:]] == [("2", 2)]
    assert summary.ok


async def test_a_reply_the_store_has_not_seen_yet_still_stops_the_write(ledger: Ledger) -> None:
    """The helpdesk stays the source of truth: a case planned from a stale store copy is read
    fresh and planned again on that before anything is written."""
    fake = fake_zendesk("1")
    runtime, recorder = planned_from(ledger, fake, dry_run=False)
    await run_cycle(runtime, at=MONDAY)
    sent_before = list(fake.sent)

    fake.put(replied(fake.case("1"), MONDAY + timedelta(days=1)), reported=False)
    summary = await run_cycle(runtime, at=MONDAY + timedelta(days=2))

    assert [case_id for case_id, _ in recorder.take()] == ["1", "1", "1"]  # 3rd: fresh copy
    assert [item.step for item in fake.writes] == [1]  # no second follow-up
    assert fake.sent == sent_before
    assert summary.ok


async def test_a_case_due_in_two_days_is_planned_only_when_due(ledger: Ledger) -> None:
    fake = fake_zendesk("1", "2")
    wednesday = MONDAY + timedelta(days=2)

    def due_on_wednesday(
        case: Case, accounts: Mapping[str, Account], now: datetime
    ) -> datetime | None:
        return max(now, wednesday) if case.id == "1" else None

    runtime, recorder = planned_from(ledger, fake, next_due=due_on_wednesday)

    await run_cycle(runtime, at=MONDAY)
    assert [case_id for case_id, _ in recorder.take()] == ["1", "2"]  # new: both planned
    await run_cycle(runtime, at=MONDAY + timedelta(days=1))
    assert recorder.take() == []  # nothing changed, nothing due
    await run_cycle(runtime, at=wednesday)
    assert [case_id for case_id, _ in recorder.take()] == ["1"]
    figures = turn_figures(ledger)
    assert (figures["cases_planned"], figures["changed"]) == (1, 0)


async def test_an_expired_cursor_is_read_in_full_logged_and_counted(ledger: Ledger) -> None:
    fake = fake_zendesk("1", "2")
    runtime, _ = planned_from(ledger, fake)
    await run_cycle(runtime, at=MONDAY)

    fake.expire_cursors()
    with capture_logs() as logs:
        summary = await run_cycle(runtime, at=MONDAY + timedelta(minutes=15))

    [_, expired, full] = fake.syncs
    assert expired is not None
    assert full is None
    assert summary.ok
    assert summary.cases == 2
    assert any(
        e["event"] == "sync cursor expired; reading in full" and e["vendor"] == "zendesk"
        for e in logs
    )
    assert turn_figures(ledger)["fallbacks"] == 1
    counted = runtime.metrics.registry.get_sample_value(
        "followup_sync_fallbacks_total", {"tenant": "acme", "vendor": "zendesk"}
    )
    assert counted == 1
    [status] = CaseStore(ledger.engine).status(MONDAY + timedelta(minutes=15))
    assert (status.fallbacks, status.cases) == (1, 2)


async def test_changes_whose_cursor_could_not_be_stored_are_read_again(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process dying between storing changes and their cursor: both are one transaction,
    so nothing of it is kept and the next cycle reads the changes again."""
    fake = fake_zendesk("1", "2")
    runtime, _ = planned_from(ledger, fake, dry_run=False, next_due=never)
    await run_cycle(runtime, at=MONDAY)
    cursor = CaseStore(ledger.engine).cursor("acme", fake.source)
    fake.put(replied(fake.case("2"), MONDAY + timedelta(days=1)))

    def killed(*_args: object, **_kwargs: object) -> None:
        raise ConnectionError("the process died before the commit")

    with monkeypatch.context() as patched:
        patched.setattr(CaseStore, "_move_cursor", staticmethod(killed))
        failed = await run_cycle(runtime, at=MONDAY + timedelta(days=2))
    assert not failed.ok
    assert CaseStore(ledger.engine).cursor("acme", fake.source) == cursor

    summary = await run_cycle(runtime, at=MONDAY + timedelta(days=2, minutes=15))

    assert fake.syncs[-1] == cursor  # the same changes, read again
    assert summary.cases == 2  # both as the first cycle wrote them, case 2 with its reply
    assert [(item.case.id, item.step) for item in fake.writes[2:]] == [("1", 2)]
    assert summary.ok


async def test_a_dry_run_from_the_store_writes_nothing_and_reads_no_case_again(
    ledger: Ledger,
) -> None:
    fake = fake_zendesk("1", "2")
    runtime, _ = planned_from(ledger, fake, dry_run=True)
    first = await run_cycle(runtime, at=MONDAY)
    second = await run_cycle(runtime, at=MONDAY + timedelta(minutes=15))

    assert (first.planned, second.planned) == (2, 2)  # default next_due: always due
    assert (fake.writes, fake.sent) == ([], [])
    assert fake.reads == 2  # the first full read; no fresh read for a dry item


async def test_a_case_gone_from_the_vendor_leaves_the_store(ledger: Ledger) -> None:
    fake = fake_zendesk("1", "2")
    runtime, recorder = planned_from(ledger, fake)
    await run_cycle(runtime, at=MONDAY)
    fake.remove("2")
    await run_cycle(runtime, at=MONDAY + timedelta(minutes=15))

    assert turn_figures(ledger)["store_size"] == 1
    assert [case_id for case_id, _ in recorder.take()] == ["1", "1", "2"]


async def test_a_change_among_an_accounts_cases_replans_the_kinds_reading_its_totals(
    ledger: Ledger,
) -> None:
    fake = FakeConnector(
        fake_zendesk().source,
        [make_case("1"), make_case("2"), make_case("3"), make_case("9", account="globex")],
        [Account("acme", "Acme"), Account("globex", "Globex")],
        clock=lambda: MONDAY,
    )
    runtime, recorder = planned_from(
        ledger, fake, next_due=never, plan_last=frozenset({CaseKind.TICKET})
    )
    await run_cycle(runtime, at=MONDAY)
    assert recorder.take() == [("1", 3), ("2", 3), ("3", 3), ("9", 1)]

    fake.agent_edit("1", status=Status.SOLVED)
    await run_cycle(runtime, at=MONDAY + timedelta(minutes=15))

    # Totals summed from the store, no vendor read but case 1's change; globex untouched.
    assert recorder.take() == [("1", 2), ("2", 2), ("3", 2)]
    assert fake.reads == 4 + 1


async def test_a_changed_account_replans_its_cases(ledger: Ledger) -> None:
    fake = fake_zendesk("1", "2")
    runtime, recorder = planned_from(ledger, fake, next_due=never)
    await run_cycle(runtime, at=MONDAY)
    recorder.take()

    fake.set_accounts([Account("acme", "Acme", stop_followups=True)])
    await run_cycle(runtime, at=MONDAY + timedelta(minutes=15))
    assert [case_id for case_id, _ in recorder.take()] == ["1", "2"]

    fake.set_accounts([Account("acme", "Acme", stop_followups=True)])  # told again, unchanged
    await run_cycle(runtime, at=MONDAY + timedelta(minutes=30))
    assert recorder.take() == []


async def test_a_connector_reading_changes_is_handed_the_stored_copy(ledger: Ledger) -> None:
    """What a connector that reads only what is new builds a changed case's evidence on."""
    looked_up: dict[str, Case | None] = {}

    class Incremental(FakeConnector):
        async def changes(self, cursor: str | None, known: KnownCase) -> AsyncIterator[Change]:
            if cursor is not None:
                looked_up.update({case_id: known(case_id) for case_id in ("1", "unknown")})
            async for change in super().changes(cursor, known):
                yield change

    fake = Incremental(
        Source.ZENDESK, [make_case("1")], [Account("acme", "Acme")], clock=lambda: MONDAY
    )
    runtime, _ = planned_from(ledger, fake)
    await run_cycle(runtime, at=MONDAY)
    await run_cycle(runtime, at=MONDAY + timedelta(minutes=15))

    assert looked_up == {"1": fake.case("1"), "unknown": None}


async def test_a_pushed_case_is_read_at_the_next_sync_before_the_feed_shows_it(
    ledger: Ledger,
) -> None:
    """A verified webhook pushes a case (``CaseStore.push``): the next turn reads it on its own,
    so a change the vendor's change feed does not show yet is planned all the same."""
    fake = fake_zendesk("1", "2")
    runtime, recorder = planned_from(ledger, fake, next_due=never)
    await run_cycle(runtime, at=MONDAY)
    recorder.take()
    fake.put(replied(fake.case("2"), MONDAY + timedelta(minutes=5)), reported=False)

    await run_cycle(runtime, at=MONDAY + timedelta(minutes=15))
    assert recorder.take() == []  # not pushed, not in the feed: not seen

    runtime.store.push("acme", Source.ZENDESK, "2", at=MONDAY + timedelta(minutes=20))
    reads = fake.reads
    await run_cycle(runtime, at=MONDAY + timedelta(minutes=30))

    assert fake.reads == reads + 1  # the pushed case, on its own
    assert [case_id for case_id, _ in recorder.take()] == ["2"]
    stored = runtime.store.known("acme", Source.ZENDESK, Changes())("2")
    assert stored is not None
    assert stored.last_inbound() is not None  # the reply is in the store now
    assert runtime.store.pushed("acme", Source.ZENDESK) == []  # the push is done
