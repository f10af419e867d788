"""A process killed in the middle of a multi-write follow-up, restarted: the follow-up is
finished exactly once, its reply (an Intercom reply, an Asana bug's email) not sent twice,
its signed note not missing, even though what landed keeps the plan from offering it again.

The FakeConnector plays each vendor's order of writes: the reply first (``replied`` told),
then the changes, then the signed note; it finds a reply an earlier attempt sent, as Zendesk
(marker tag) and Intercom (the reply by its body) do, and cannot for an Asana email.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path

import pytest

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
)
from tests.unit.worker_support import MONDAY, heard_cycle, make_case, make_item, make_runtime
from worker.delivery.ledger import Ledger, Outcome
from worker.runtime.cycle import run_cycle


class Killed(BaseException):
    """SIGKILL: nothing in the worker may catch this."""


REPLY = "We are closing this request now."


def closing(
    cases: Iterable[Case], accounts: Mapping[str, Account], now: datetime
) -> Iterator[PlanItem | Unjudged]:
    """Tell the customer, solve the case, sign the note: once solved (an Intercom conversation
    closed, an Asana date field written), the case is not offered again."""
    for case in cases:
        if case.status is Status.PENDING and not case.followups:
            item = make_item(case, 3)
            reply = Action(ActionType.REPLY, {"template": "closing", "body": REPLY})
            yield dataclasses.replace(item, actions=(reply, *item.actions))


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    opened = Ledger.open(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    yield opened
    opened.close()


def vendor(source: Source) -> FakeConnector:
    case = dataclasses.replace(make_case("1"), source=source)
    return FakeConnector(source, [case], [Account("acme", "Acme")], clock=lambda: MONDAY)


async def killed_then_restarted(
    ledger: Ledger, fake: FakeConnector, fault: Fault
) -> list[list[str]]:
    """The first run dies at ``fault``; two runs follow. Each run's item labels."""
    fake.inject("1", fault, error=Killed())
    with pytest.raises(Killed):
        await run_cycle(make_runtime(ledger, fake, planner=closing), at=MONDAY)
    later = [MONDAY + timedelta(minutes=15 * n) for n in (1, 2)]
    runs = [await heard_cycle(make_runtime(ledger, fake, planner=closing), at) for at in later]
    return [[report.label for report in items] for _, items in runs]


@pytest.mark.parametrize("source", [Source.ZENDESK, Source.INTERCOM, Source.ASANA])
async def test_killed_after_the_reply_the_rest_is_finished_without_it(
    ledger: Ledger, source: Source
) -> None:
    fake = vendor(source)

    labels = await killed_then_restarted(ledger, fake, Fault.DIE_AFTER_REPLY)

    assert fake.case("1").status is Status.SOLVED  # landed before the kill: no longer planned
    assert labels == [["applied"], []]
    assert fake.sent == [("1", REPLY)]
    assert [mark.key for mark in fake.case("1").followups] == [fake.writes[0].key]
    rest = fake.writes[-1]
    assert [a.type for a in rest.actions] == [ActionType.NOTE, ActionType.SET_STATUS]
    outcomes = [entry.outcome for entry in ledger.history(f"{source.value}:1")]
    assert outcomes == [Outcome.INCOMPLETE, Outcome.APPLIED]


@pytest.mark.parametrize("source", [Source.ZENDESK, Source.INTERCOM, Source.ASANA])
async def test_killed_again_while_finishing_the_reply_still_goes_once(
    ledger: Ledger, source: Source
) -> None:
    # Seen in the chaos run: the attempt finishing the item (without its reply) was killed in
    # turn, settled as cut off with no reply of its own out, and the next one sent the Asana
    # email again. Once any attempt of a key had its reply out, none sends it again.
    fake = vendor(source)
    fake.inject("1", Fault.DIE_AFTER_REPLY, error=Killed())
    with pytest.raises(Killed):
        await run_cycle(make_runtime(ledger, fake, planner=closing), at=MONDAY)
    fake.inject("1", Fault.RAISE, error=Killed())  # the finishing attempt dies before writing
    with pytest.raises(Killed):
        await run_cycle(
            make_runtime(ledger, fake, planner=closing), at=MONDAY + timedelta(minutes=15)
        )

    _, items = await heard_cycle(
        make_runtime(ledger, fake, planner=closing), MONDAY + timedelta(minutes=30)
    )

    assert [report.label for report in items] == ["applied"]
    assert fake.sent == [("1", REPLY)]
    assert len(fake.case("1").followups) == 1
    outcomes = [entry.outcome for entry in ledger.history(f"{source.value}:1")]
    assert outcomes == [Outcome.INCOMPLETE, Outcome.INCOMPLETE, Outcome.APPLIED]


@pytest.mark.parametrize("source", [Source.ZENDESK, Source.INTERCOM, Source.ASANA])
async def test_killed_before_the_reply_was_recorded_it_is_looked_for_not_resent(
    ledger: Ledger, source: Source
) -> None:
    fake = vendor(source)

    labels = await killed_then_restarted(ledger, fake, Fault.DIE_REPLYING)

    assert labels == [["applied"], []]
    assert fake.sent == [("1", REPLY)]
    assert fake.writes[-1].actions[0].type is ActionType.REPLY  # asked for, found, skipped
    assert len(fake.case("1").followups) == 1
    outcomes = [entry.outcome for entry in ledger.history(f"{source.value}:1")]
    assert outcomes == [Outcome.INTERRUPTED, Outcome.APPLIED]


@pytest.mark.parametrize("source", [Source.ZENDESK, Source.INTERCOM, Source.ASANA])
async def test_killed_before_any_write_it_is_applied_once_in_the_next_turn(
    ledger: Ledger, source: Source
) -> None:
    fake = vendor(source)

    labels = await killed_then_restarted(ledger, fake, Fault.RAISE)

    assert labels == [["applied"], []]
    assert fake.sent == [("1", REPLY)]
    assert len(fake.case("1").followups) == 1
    assert len(fake.writes) == 1


async def test_a_killed_item_the_customer_answered_since_is_left_to_the_plan(
    ledger: Ledger,
) -> None:
    fake = vendor(Source.INTERCOM)
    fake.inject("1", Fault.DIE_AFTER_REPLY, error=Killed())
    with pytest.raises(Killed):
        await run_cycle(make_runtime(ledger, fake, planner=closing), at=MONDAY)
    answer = Activity(ActivityKind.CUSTOMER_REPLY, MONDAY + timedelta(minutes=5))
    fake.agent_edit("1", history=(answer,))

    _, items = await heard_cycle(
        make_runtime(ledger, fake, planner=closing), MONDAY + timedelta(minutes=15)
    )

    assert [(r.label, r.detail) for r in items] == [
        ("skipped", "left unfinished: the customer wrote since it was started")
    ]
    assert fake.sent == [("1", REPLY)]
    assert fake.case("1").followups == ()


async def test_a_killed_item_whose_case_cannot_be_read_waits_then_is_finished_once(
    ledger: Ledger,
) -> None:
    fake = vendor(Source.ASANA)
    fake.inject("1", Fault.DIE_AFTER_REPLY, error=Killed())
    with pytest.raises(Killed):
        await run_cycle(make_runtime(ledger, fake, planner=closing), at=MONDAY)
    down = ConnectionError("asana is down")
    fake.fetch_case_errors += [down, down]  # to reconcile, then to finish it

    unread, unread_items = await heard_cycle(
        make_runtime(ledger, fake, planner=closing), MONDAY + timedelta(minutes=15)
    )
    (pending,) = ledger.pending()
    _, items = await heard_cycle(
        make_runtime(ledger, fake, planner=closing), MONDAY + timedelta(minutes=30)
    )

    assert (unread.reconciled, unread_items, unread.ok) == (0, [], False)
    assert pending.reply_out  # the checkpoint outlives the wait
    assert [r.label for r in items] == ["applied"]
    assert fake.sent == [("1", REPLY)]
    assert len(fake.case("1").followups) == 1
    assert ledger.pending() == []


async def test_the_checkpoint_marks_the_attempt_unfinished_with_its_reply_out(
    ledger: Ledger,
) -> None:
    item = make_item(make_case("1"))
    attempt = ledger.begin(
        item, tenant="acme", cycle_id="c", dry_run=False, at=MONDAY, started_at=MONDAY
    )
    assert [p.reply_out for p in ledger.pending()] == [False]

    ledger.reply_sent(attempt)

    assert [p.reply_out for p in ledger.pending()] == [True]
    assert ledger.latest_outcome(item.key, tenant="acme") == (False, Outcome.INCOMPLETE)
    ledger.finish(attempt, Outcome.APPLIED, finished_at=MONDAY)
    ledger.reply_sent(attempt)  # too late: a finished attempt keeps its outcome
    assert ledger.pending() == []
    assert ledger.latest_outcome(item.key, tenant="acme") == (True, Outcome.APPLIED)
