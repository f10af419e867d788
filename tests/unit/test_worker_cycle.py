"""One cycle end to end against the in-memory FakeConnector and a SQLite ledger."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import structlog
from structlog.testing import capture_logs

from connectors.base import Change, KnownCase
from connectors.fake import FakeConnector, Fault
from policies.model import (
    Account,
    Action,
    ActionType,
    Activity,
    ActivityKind,
    Case,
    PlanItem,
    Source,
    Status,
    Unjudged,
    marker_tag,
)
from tests.unit.worker_support import (
    MONDAY,
    add_tenant,
    every_other_day,
    fake_zendesk,
    heard_cycle,
    listen,
    make_case,
    make_item,
    make_runtime,
    with_bad_records,
)
from worker.delivery.ledger import Ledger, Outcome
from worker.runtime.badrecords import SHOWN
from worker.runtime.cycle import run_cycle
from worker.runtime.switches import set_dry_run_switch


class Crash(BaseException):
    """The process dies: nothing in the worker may catch this."""


def stubborn(
    cases: Iterable[Case], accounts: Mapping[str, Account], now: datetime
) -> Iterator[PlanItem | Unjudged]:
    """A planner that ignores the helpdesk: only the ledger stands between it and duplicates."""
    for case in cases:
        yield make_item(case, 1)


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    opened = Ledger.open(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    yield opened
    opened.close()


async def test_a_live_cycle_writes_each_due_follow_up_once(ledger: Ledger) -> None:
    fake = fake_zendesk("1", "2")
    summary = await run_cycle(make_runtime(ledger, fake), at=MONDAY)

    assert [item.case.id for item in fake.writes] == ["1", "2"]
    assert summary.ok
    assert summary.counts == {"applied": 2}
    assert [entry.outcome for entry in ledger.history("zendesk:1")] == [Outcome.APPLIED]


async def test_every_settled_item_is_reported_as_it_happens(ledger: Ledger) -> None:
    heard: list[str] = []
    runtime = make_runtime(ledger, fake_zendesk("1", "2"))
    runtime.on_item = lambda report: heard.append(f"{report.case_ref} {report.label}")
    await run_cycle(runtime, at=MONDAY)

    assert sorted(heard) == ["zendesk:1 applied", "zendesk:2 applied"]


async def test_dry_run_writes_nothing_and_keeps_the_full_plan(ledger: Ledger) -> None:
    fake = fake_zendesk("1", "2")
    runtime = make_runtime(ledger, fake, dry_run=True)
    heard = listen(runtime)
    summary = await run_cycle(runtime, at=MONDAY)

    assert fake.writes == []
    assert summary.mode.dry_run
    assert summary.planned == 2
    assert [(r.case_ref, r.step, r.reason) for r in heard.items] == [
        ("zendesk:1", "1/3", "pending; step 1 of 3"),
        ("zendesk:2", "1/3", "pending; step 1 of 3"),
    ]
    [entry] = ledger.history("zendesk:1")
    assert (entry.dry_run, entry.outcome) == (True, Outcome.SKIPPED)


async def test_going_live_after_a_dry_run_writes_the_reviewed_plan(ledger: Ledger) -> None:
    fake = fake_zendesk("1")
    await run_cycle(make_runtime(ledger, fake, dry_run=True), at=MONDAY)
    await run_cycle(make_runtime(ledger, fake), at=MONDAY)

    assert len(fake.writes) == 1


async def test_a_second_run_right_after_the_first_does_nothing(ledger: Ledger) -> None:
    fake = fake_zendesk("1", "2")
    await run_cycle(make_runtime(ledger, fake), at=MONDAY)
    second = await run_cycle(make_runtime(ledger, fake), at=MONDAY + timedelta(minutes=1))

    assert len(fake.writes) == 2
    assert second.planned == 0
    assert second.ok


async def test_the_ledger_stops_a_duplicate_the_planner_would_make(ledger: Ledger) -> None:
    fake = fake_zendesk("1")
    await run_cycle(make_runtime(ledger, fake, planner=stubborn), at=MONDAY)
    second = await run_cycle(make_runtime(ledger, fake, planner=stubborn), at=MONDAY)

    assert len(fake.writes) == 1
    assert second.counts == {"done_before": 1}


async def test_one_failing_case_never_stops_the_others(ledger: Ledger) -> None:
    fake = fake_zendesk("1", "2", "3", "4")
    fake.inject("2", Fault.FAIL)
    fake.inject("3", Fault.RAISE, error=RuntimeError("connector bug"))

    summary = await run_cycle(make_runtime(ledger, fake, concurrency=2), at=MONDAY)

    assert sorted(item.case.id for item in fake.writes) == ["1", "4"]
    assert summary.failed == 2
    assert not summary.ok
    [entry] = ledger.history("zendesk:3")
    assert entry.outcome is Outcome.FAILED
    assert "connector bug" in entry.detail


async def test_a_failed_follow_up_is_retried_next_cycle(ledger: Ledger) -> None:
    fake = fake_zendesk("1")
    fake.inject("1", Fault.FAIL)
    await run_cycle(make_runtime(ledger, fake), at=MONDAY)
    retry = await run_cycle(make_runtime(ledger, fake), at=MONDAY + timedelta(minutes=15))

    assert retry.counts == {"applied": 1}
    assert len(fake.writes) == 1


def closing(
    cases: Iterable[Case], accounts: Mapping[str, Account], now: datetime
) -> Iterator[PlanItem | Unjudged]:
    """A last follow-up that tells the customer, notes it and solves the case: once solved, a
    case is no longer offered, whether or not its note made it."""
    for case in cases:
        if case.status is Status.PENDING and not case.followups:
            item = make_item(case, 3)
            reply = Action(ActionType.REPLY, {"template": "closing", "body": "Closing now."})
            yield dataclasses.replace(item, actions=(reply, *item.actions))


async def test_a_follow_up_left_half_done_is_finished_next_cycle_without_its_reply(
    ledger: Ledger,
) -> None:
    fake = fake_zendesk("1")
    fake.inject("1", Fault.HALF)
    first, first_items = await heard_cycle(make_runtime(ledger, fake, planner=closing), MONDAY)
    assert fake.case("1").status is Status.SOLVED  # so the plan offers it no more
    later = [MONDAY + timedelta(minutes=15 * n) for n in (1, 2)]
    (second, second_items), (_, third_items) = [
        await heard_cycle(make_runtime(ledger, fake, planner=closing), at) for at in later
    ]

    assert [(r.label, first.ok) for r in first_items] == [("incomplete", False)]
    assert [(r.label, second.ok) for r in second_items] == [("applied", True)]
    assert third_items == []
    half, rest = fake.writes
    assert [a.type for a in rest.actions] == [ActionType.NOTE, ActionType.SET_STATUS]
    assert [m.key for m in fake.case("1").followups] == [half.key] == [rest.key]


async def test_a_half_done_follow_up_the_customer_answered_since_is_left_to_the_plan(
    ledger: Ledger,
) -> None:
    fake = fake_zendesk("1")
    fake.inject("1", Fault.HALF)
    await run_cycle(make_runtime(ledger, fake, planner=closing), at=MONDAY)
    answer = Activity(ActivityKind.CUSTOMER_REPLY, MONDAY + timedelta(minutes=5))
    fake.agent_edit("1", history=(answer,))
    later = [MONDAY + timedelta(minutes=15 * n) for n in (1, 2)]
    (second, second_items), (_, third_items) = [
        await heard_cycle(make_runtime(ledger, fake, planner=closing), at) for at in later
    ]

    assert [(r.label, r.detail) for r in second_items] == [
        ("skipped", "left unfinished: the customer wrote since it was started")
    ]
    assert second.ok
    assert third_items == []
    assert len(fake.writes) == 1


async def test_a_conflict_is_replanned_on_the_fresh_case_and_written_once(
    ledger: Ledger,
) -> None:
    edited = False

    async def agent_edits_first(item: PlanItem) -> None:
        nonlocal edited
        if not edited:
            edited = True
            fake.agent_edit(item.case.id, subject="customer called")

    fake = fake_zendesk("1")
    fake.before_write = agent_edits_first
    runtime = make_runtime(ledger, fake)
    heard = listen(runtime)
    summary = await run_cycle(runtime, at=MONDAY)

    assert [r.label for r in heard.items] == ["conflict", "applied"]
    assert summary.counts == {"conflict": 1, "applied": 1}
    assert summary.ok
    assert [item.case.subject for item in fake.writes] == ["customer called"]


def two_policies(
    cases: Iterable[Case], accounts: Mapping[str, Account], now: datetime
) -> Iterator[PlanItem | Unjudged]:
    """Two follow-ups owed on each case (say a phase update and an overdue note), each
    once: done is what the case's marks say."""
    for case in cases:
        done = {mark.policy for mark in case.followups}
        for policy in ("phase-update", "phase-overdue"):
            if policy not in done:
                yield dataclasses.replace(
                    make_item(case), policy=policy, key=f"{policy}-{case.ref}"
                )


async def test_a_case_owing_two_items_gets_both_without_conflicting_with_itself(
    ledger: Ledger,
) -> None:
    fake = fake_zendesk("1")
    runtime = make_runtime(ledger, fake, planner=two_policies)
    heard = listen(runtime)
    summary = await run_cycle(runtime, at=MONDAY)

    assert [(r.policy, r.label) for r in heard.items] == [
        ("phase-update", "applied"),
        ("phase-overdue", "applied"),
    ]
    assert summary.ok
    assert [item.policy for item in fake.writes] == ["phase-update", "phase-overdue"]


async def test_a_case_unreadable_after_its_first_write_leaves_its_rest_to_the_next_cycle(
    ledger: Ledger,
) -> None:
    fake = fake_zendesk("1", "2")

    async def unreadable_once_written(item: PlanItem) -> None:
        if item.case.id == "1" and not fake.writes:
            fake.fetch_case_errors.append(RuntimeError("503 after retries"))

    fake.before_write = unreadable_once_written
    first, first_items = await heard_cycle(make_runtime(ledger, fake, planner=two_policies), MONDAY)
    later = MONDAY + timedelta(minutes=15)
    _, second_items = await heard_cycle(make_runtime(ledger, fake, planner=two_policies), later)

    # The cycle completes, the other case is served, the item not tried is owed and done next.
    assert sorted((r.case_ref, r.policy, r.label) for r in first_items) == [
        ("zendesk:1", "phase-overdue", "failed"),
        ("zendesk:1", "phase-update", "applied"),
        ("zendesk:2", "phase-overdue", "applied"),
        ("zendesk:2", "phase-update", "applied"),
    ]
    assert not first.ok
    assert [(r.case_ref, r.policy, r.label) for r in second_items] == [
        ("zendesk:1", "phase-overdue", "applied")
    ]
    assert (
        sorted(item.policy for item in fake.writes) == ["phase-overdue"] * 2 + ["phase-update"] * 2
    )


def community_bundle(
    cases: Iterable[Case], accounts: Mapping[str, Account], now: datetime
) -> Iterator[PlanItem | Unjudged]:
    """Owes an update only to cases whose account has three open cases (seed 001)."""
    for case in cases:
        account = accounts.get(case.account_id or "")
        if account is not None and account.open_cases >= 3:
            yield make_item(case)


async def test_the_planner_sees_each_account_s_open_cases(ledger: Ledger) -> None:
    fake = fake_zendesk("1", "2", "3")
    summary = await run_cycle(make_runtime(ledger, fake, planner=community_bundle), at=MONDAY)

    assert summary.counts == {"applied": 3}


async def test_a_conflict_that_leaves_nothing_due_is_not_a_failure(ledger: Ledger) -> None:
    async def agent_solves(item: PlanItem) -> None:
        fake.agent_edit(item.case.id, status=Status.SOLVED)

    fake = fake_zendesk("1")
    fake.before_write = agent_solves
    summary = await run_cycle(make_runtime(ledger, fake), at=MONDAY)

    assert summary.counts == {"conflict": 1}
    assert summary.ok
    assert fake.writes == []


async def test_a_lost_response_found_on_re_read_is_already_applied(ledger: Ledger) -> None:
    fake = fake_zendesk("1")
    fake.inject("1", Fault.LOSE_RESPONSE)
    summary = await run_cycle(make_runtime(ledger, fake), at=MONDAY)

    assert summary.counts == {"already_applied": 1}
    assert len(fake.writes) == 1


@pytest.mark.parametrize("planner_name", ["reads_the_helpdesk", "stubborn"])
async def test_a_crash_after_the_vendor_write_leaves_no_duplicate(
    ledger: Ledger, planner_name: str
) -> None:
    planner = stubborn if planner_name == "stubborn" else every_other_day
    fake = fake_zendesk("1")
    fake.inject("1", Fault.CRASH, error=Crash())
    runtime = make_runtime(ledger, fake, planner=planner)
    with pytest.raises(Crash):
        await run_cycle(runtime, at=MONDAY)
    assert len(ledger.pending()) == 1

    restarted = make_runtime(ledger, fake, planner=planner)
    summary = await run_cycle(restarted, at=MONDAY + timedelta(minutes=5))

    assert summary.reconciled == 1
    assert ledger.pending() == []
    assert len(fake.writes) == 1
    assert ledger.latest_outcome(fake.writes[0].key, tenant="acme") == (
        True,
        Outcome.ALREADY_APPLIED,
    )


async def test_tenants_sharing_a_ticket_id_each_get_their_follow_up_once(ledger: Ledger) -> None:
    # Two helpdesks, each with its ticket 77 opened the same day: one idempotency key for both.
    acme, globex = fake_zendesk("77"), fake_zendesk("77")
    runtime = make_runtime(ledger, acme, planner=stubborn)
    add_tenant(runtime, "globex", globex)

    _, first = await heard_cycle(runtime, MONDAY)
    _, replay = await heard_cycle(runtime, MONDAY + timedelta(minutes=15))

    assert acme.writes[0].key == globex.writes[0].key
    assert [(r.tenant, r.label) for r in first] == [
        ("acme", "applied"),
        ("globex", "applied"),
    ]
    assert [(r.tenant, r.label) for r in replay] == [
        ("acme", "done_before"),
        ("globex", "done_before"),
    ]
    assert (len(acme.writes), len(globex.writes)) == (1, 1)
    assert [a.tenant for a in ledger.history("zendesk:77")] == ["acme", "globex"]


async def test_a_tenant_s_interrupted_write_is_not_settled_by_another_s_ticket(
    ledger: Ledger,
) -> None:
    # acme died between intent and outcome on its ticket 77; globex's ticket 77 has the same
    # key, carries no marker, and must neither be held up by acme's record nor settle it.
    acme, globex = fake_zendesk("77"), fake_zendesk("77")
    item = make_item(acme.case("77"))
    ledger.begin(
        item, tenant="acme", cycle_id="killed", dry_run=False, at=MONDAY, started_at=MONDAY
    )
    runtime = make_runtime(ledger, globex, planner=stubborn)
    runtime.tenants = [dataclasses.replace(runtime.tenants[0], name="globex")]

    summary = await run_cycle(runtime, at=MONDAY + timedelta(minutes=5))

    assert summary.counts == {"applied": 1}
    assert [write.key for write in globex.writes] == [item.key]
    assert [pending.key for pending in ledger.pending(tenant="acme")] == [item.key]
    assert ledger.latest_outcome(item.key, tenant="acme") == (False, None)


async def test_a_crash_between_the_reply_and_the_note_finishes_the_follow_up(
    ledger: Ledger,
) -> None:
    # Zendesk writes a reply-carrying item in two updates: the reply tagged fw-<key>, then the
    # note whose footer records the step. A process dying in between leaves only the tag.
    fake = fake_zendesk("1")
    item = make_item(fake.case("1"))
    ledger.begin(
        item, tenant="acme", cycle_id="killed", dry_run=False, at=MONDAY, started_at=MONDAY
    )
    fake.agent_edit("1", tags=frozenset({marker_tag(item.key)}))

    summary = await run_cycle(make_runtime(ledger, fake), at=MONDAY + timedelta(minutes=5))

    assert summary.reconciled == 1
    assert summary.counts == {"applied": 1}
    assert [write.key for write in fake.writes] == [item.key]
    assert [mark.key for mark in fake.case("1").followups] == [item.key]


async def test_a_crash_before_the_vendor_write_is_still_due_after_restart(
    ledger: Ledger,
) -> None:
    fake = fake_zendesk("1")
    fake.inject("1", Fault.RAISE, error=Crash())
    with pytest.raises(Crash):
        await run_cycle(make_runtime(ledger, fake), at=MONDAY)

    summary = await run_cycle(make_runtime(ledger, fake), at=MONDAY + timedelta(minutes=5))

    assert summary.counts == {"applied": 1}
    assert len(fake.writes) == 1
    outcomes = [entry.outcome for entry in ledger.history("zendesk:1")]
    assert outcomes == [Outcome.INTERRUPTED, Outcome.APPLIED]  # finished in the same turn


async def test_stop_finishes_the_case_in_hand_and_starts_no_new_one(ledger: Ledger) -> None:
    stop = asyncio.Event()

    async def stop_requested_mid_write(item: PlanItem) -> None:
        stop.set()

    fake = fake_zendesk("1", "2", "3")
    fake.before_write = stop_requested_mid_write
    summary = await run_cycle(make_runtime(ledger, fake, concurrency=1), at=MONDAY, stop=stop)

    assert [item.case.id for item in fake.writes] == ["1"]
    assert summary.interrupted
    assert ledger.history("zendesk:2") == ledger.history("zendesk:3") == []


async def test_stop_ends_a_vendor_read_that_yields_no_case(ledger: Ledger) -> None:
    """A read that never hands over a case (a list that loops, pages without a candidate)
    ends when stop is set, not when a case turns up (vendor-behaviours.md Z7, A1)."""
    stop = asyncio.Event()
    reading = asyncio.Event()

    class EndlessRead(FakeConnector):
        async def changes(self, cursor: str | None, known: KnownCase) -> AsyncIterator[Change]:
            reading.set()
            await asyncio.Event().wait()  # the next page never brings a case
            yield make_case("never")

    fake = EndlessRead(Source.ZENDESK, [], [Account("acme", "Acme")], clock=lambda: MONDAY)
    cycle = asyncio.ensure_future(run_cycle(make_runtime(ledger, fake), at=MONDAY, stop=stop))
    await reading.wait()
    stop.set()
    summary = await cycle
    assert summary.interrupted
    assert fake.writes == []


async def test_unreadable_cases_are_a_failed_cycle_not_a_crash(ledger: Ledger) -> None:
    fake = fake_zendesk("1")
    fake.fetch_error = ConnectionError("vendor down")
    summary = await run_cycle(make_runtime(ledger, fake), at=MONDAY)

    assert not summary.ok
    assert summary.errors == ("acme: zendesk: ConnectionError: vendor down",)
    [cycle] = ledger.recent_cycles()
    assert cycle.ok is False


async def test_each_tenant_turn_is_recorded_with_its_own_figures(ledger: Ledger) -> None:
    runtime = make_runtime(ledger, fake_zendesk("1", "2"))
    down = fake_zendesk("3")
    down.fetch_error = ConnectionError("vendor down")
    add_tenant(runtime, "globex", down)
    runtime.metrics.record_api_call("acme", "zendesk", 200, 0.1)  # an earlier cycle's

    async def a_throttled_call(*_args: object) -> None:
        runtime.metrics.record_api_call("acme", "zendesk", 429, 0.1)

    fake = runtime.tenants[0].connectors[Source.ZENDESK]
    assert isinstance(fake, FakeConnector)
    fake.before_write = a_throttled_call
    await run_cycle(runtime, at=MONDAY + timedelta(days=3))

    turns = ledger.recent_turns()
    [acme], [globex] = turns["acme"], turns["globex"]
    assert (acme.ok, acme.figures["cases"], acme.figures["counts"]) == (True, 2, {"applied": 2})
    assert acme.figures["vendors"] == {"zendesk": {"calls": 2, "throttled": 2, "retries": 0}}
    assert globex.ok is False
    assert globex.figures["errors"] == ["globex: zendesk: ConnectionError: vendor down"]
    assert acme.cycle_id == globex.cycle_id


async def test_cases_no_policy_can_judge_are_reported(ledger: Ledger) -> None:
    fake = FakeConnector(fake_zendesk().source, [make_case("1", account="ghost")], [])
    runtime = make_runtime(ledger, fake)
    heard = listen(runtime)
    summary = await run_cycle(runtime, at=MONDAY)

    assert summary.unjudged == 1
    assert [u.case_ref for u in heard.unjudged] == ["zendesk:1"]
    assert fake.writes == []


async def test_a_dry_run_policy_is_not_written_in_a_live_run(ledger: Ledger) -> None:
    def trial_policy(
        cases: Iterable[Case], accounts: Mapping[str, Account], now: datetime
    ) -> Iterator[PlanItem | Unjudged]:
        for case in cases:
            yield make_item(case, 1, dry_run=True)

    fake = fake_zendesk("1")
    summary = await run_cycle(make_runtime(ledger, fake, planner=trial_policy), at=MONDAY)

    assert fake.writes == []
    assert summary.counts == {"skipped": 1}


async def test_the_runtime_switch_brakes_even_a_live_command(ledger: Ledger) -> None:
    set_dry_run_switch(ledger, True, by="ops", at=MONDAY)
    fake = fake_zendesk("1")
    summary = await run_cycle(make_runtime(ledger, fake), at=MONDAY, dry_run=False)

    assert summary.mode.dry_run
    assert fake.writes == []


async def test_a_tenant_is_left_alone_outside_its_business_days(ledger: Ledger) -> None:
    fake = fake_zendesk("1")
    runtime = make_runtime(ledger, fake)
    runtime.tenants = [
        dataclasses.replace(tenant, works_on=lambda at: at.weekday() < 5)
        for tenant in runtime.tenants
    ]
    saturday = MONDAY + timedelta(days=5)
    summary = await run_cycle(runtime, at=saturday)

    assert (summary.cases, summary.planned, fake.reads) == (0, 0, 0)
    assert summary.ok


async def test_metrics_count_cycles_items_and_actions(ledger: Ledger) -> None:
    fake = fake_zendesk("1", "2")
    fake.inject("2", Fault.FAIL)
    runtime = make_runtime(ledger, fake)
    await run_cycle(runtime, at=MONDAY)

    text = runtime.metrics.exposition().decode()
    assert 'followup_cycles_total{result="failed"} 1.0' in text
    assert 'followup_plan_items_total{policy="general-inquiry",step="1/3"} 2.0' in text
    assert 'followup_actions_total{outcome="applied",type="note"} 1.0' in text
    assert 'followup_actions_total{outcome="failed",type="note"} 1.0' in text
    assert 'followup_cases_fetched_total{tenant="acme",vendor="zendesk"} 2.0' in text


async def test_the_summary_counts_the_vendor_calls_and_retries_of_its_cycle(
    ledger: Ledger,
) -> None:
    fake = fake_zendesk("1", "2")
    runtime = make_runtime(ledger, fake)
    runtime.metrics.record_api_call("acme", "zendesk", 200, 0.01)  # an earlier cycle's
    runtime.metrics.record_api_retry("acme", "zendesk")

    async def retried_once(item: PlanItem) -> None:  # what MeteredTransport records
        runtime.metrics.record_api_call("acme", "zendesk", 503, 0.01)
        runtime.metrics.record_api_call("acme", "zendesk", 200, 0.01)
        runtime.metrics.record_api_retry("acme", "zendesk")

    fake.before_write = retried_once
    summary = await run_cycle(runtime, at=MONDAY)

    assert (summary.calls, summary.retries) == (4, 2)
    assert (summary.as_dict()["calls"], summary.as_dict()["retries"]) == (4, 2)


async def test_an_unreadable_ticket_is_counted_and_named_and_the_others_go_on(
    ledger: Ledger,
) -> None:
    fake = fake_zendesk("1", "2")
    fake.serve_unreadable("77", "missing field 'status'")
    runtime = make_runtime(ledger, fake)
    with_bad_records(runtime, fake)

    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        summary = await run_cycle(runtime, at=MONDAY)

    assert [item.case.id for item in fake.writes] == ["1", "2"]
    assert summary.ok  # a ticket broken in the helpdesk must not fail every cycle
    assert summary.bad_record_count == 1
    unreadable = [
        {
            "tenant": "acme",
            "counts": {"zendesk": 1},
            "records": [{"vendor": "zendesk", "id": "77", "reason": "missing field 'status'"}],
        }
    ]
    assert summary.as_dict()["unreadable"] == unreadable
    [recorded] = ledger.recent_cycles()
    assert recorded.summary is not None
    assert (recorded.summary["bad_records"], recorded.summary["unreadable"]) == (1, unreadable)
    [skipped] = [e for e in logs if e["event"] == "vendor_record_skipped"]
    assert (skipped["tenant"], skipped["vendor"], skipped["record"], skipped["reason"]) == (
        "acme",
        "zendesk",
        "77",
        "missing field 'status'",
    )
    text = runtime.metrics.exposition().decode()
    assert 'followup_bad_records_total{tenant="acme",vendor="zendesk"} 1.0' in text


async def test_each_cycle_counts_its_own_bad_records(ledger: Ledger) -> None:
    fake = fake_zendesk("1")
    fake.serve_unreadable("77", "missing field 'status'")
    runtime = make_runtime(ledger, fake)
    with_bad_records(runtime, fake)

    await run_cycle(runtime, at=MONDAY)
    second = await run_cycle(runtime, at=MONDAY + timedelta(minutes=15))

    assert second.bad_record_count == 1
    text = runtime.metrics.exposition().decode()
    assert 'followup_bad_records_total{tenant="acme",vendor="zendesk"} 2.0' in text


async def test_a_flood_of_bad_records_is_counted_whole_but_listed_short(ledger: Ledger) -> None:
    fake = fake_zendesk("1")
    for n in range(SHOWN + 5):
        fake.serve_unreadable(str(100 + n), "TypeError: tags: expected a list")
    runtime = make_runtime(ledger, fake)
    with_bad_records(runtime, fake)

    summary = await run_cycle(runtime, at=MONDAY)

    [bad] = summary.bad_records
    assert bad.counts == {"zendesk": SHOWN + 5}
    assert [record.record_id for record in bad.shown] == [str(100 + n) for n in range(SHOWN)]
    assert [item.case.id for item in fake.writes] == ["1"]


async def test_a_planner_failing_on_every_case_is_counted_not_kept(ledger: Ledger) -> None:
    """Each failure is logged; the summary counts them all but keeps only the first few
    messages, so a cycle over a large tenant does not fill its memory with them."""

    def choking(
        cases: Iterable[Case], accounts: Mapping[str, Account], now: datetime
    ) -> Iterator[PlanItem | Unjudged]:
        for case in cases:
            if case.id != "7":
                raise ValueError(f"cannot judge case {case.id}")
            yield make_item(case)

    fake = fake_zendesk(*(str(n) for n in range(1, 3 * SHOWN + 1)))
    with capture_logs() as logs:
        summary = await run_cycle(make_runtime(ledger, fake, planner=choking), at=MONDAY)

    assert not summary.ok
    assert summary.error_count == 3 * SHOWN - 1
    assert len(summary.errors) == SHOWN
    assert summary.errors[0].startswith("acme: zendesk:1: planner: ValueError: ")
    assert summary.as_dict()["errors"] == 3 * SHOWN - 1
    assert [item.case.id for item in fake.writes] == ["7"]  # the case it could judge went on
    failures = [e for e in logs if e["event"] == "planner failed on a case"]
    assert len(failures) == 3 * SHOWN - 1
