"""An in-memory vendor behind the :class:`~connectors.base.Connector` Protocol, for tests.

It keeps cases like a helpdesk would: a write appends the worker's follow-up mark (the marker
the real connectors put in the note footer and tags), applies status/assignee/tag changes and
bumps ``updated_stamp``. A write carrying a stale ``updated_stamp`` is a conflict, exactly like
Zendesk's ``safe_update``; :meth:`FakeConnector.agent_edit` makes one happen. An item whose
mark is on the case it was planned on is not written again, as with the real connectors.

An item's reply goes first, into ``sent`` (what customers received), and ``replied`` is told.
Like Zendesk (the marker tag), Intercom (the reply by its body) and an Asana bug's email (its
marker, found by Intercom's conversation search), the fake finds a reply an earlier attempt sent
and does not send it again.

Faults are told per case and consumed in order::

    fake.inject("42", Fault.FAIL)              # the next write to case 42 fails
    fake.inject("42", Fault.LOSE_RESPONSE)     # lands, reply lost: re-read finds the marker
    fake.inject("42", Fault.RAISE, error=exc)  # raises before writing
    fake.inject("42", Fault.CRASH, error=exc)  # lands, then raises (a process dying mid-call)
    fake.inject("42", Fault.HALF)              # changes land, the marked note not: INCOMPLETE
    fake.inject("42", Fault.DIE_REPLYING, error=exc)  # the reply is out, then raises, unheard
    fake.inject("42", Fault.DIE_AFTER_REPLY, error=exc)  # reply out and told, changes land,
                                                         # then raises before the marked note

``fake.serve_unreadable("43", "missing field 'status'")`` plays a record the real connectors
cannot translate: the stream hands it to ``report`` and goes on, as theirs do.

``writes`` lists every write that reached the "vendor"; tests assert on it instead of mocks.

It syncs (:class:`~connectors.base.Syncs`): every change to a case (a write, ``agent_edit``,
``put``, ``remove``) is numbered, and :meth:`FakeConnector.changes` hands out what came after
the cursor it gave. ``reads`` counts the cases it handed out (streams and ``fetch_case``),
``syncs`` the cursors it was asked from (None: a full read); ``expire_cursors()`` has the next
read from a cursor raise :class:`~connectors.errors.CursorExpired`, as a vendor past its
token's lifetime does.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import UTC, datetime
from enum import StrEnum

from connectors.base import Change, Checkpoint, Gone, KnownCase, Replied, WriteOutcome, WriteResult
from connectors.errors import BadRecord, CursorExpired
from connectors.records import Report, log_bad_record
from policies.model import (
    Account,
    ActionType,
    Case,
    FollowUpMark,
    PlanItem,
    Source,
    Status,
    marker_tag,
)

__all__ = ["FakeConnector", "Fault"]


class Fault(StrEnum):
    FAIL = "fail"
    LOSE_RESPONSE = "lose_response"
    RAISE = "raise"
    CRASH = "crash"
    HALF = "half"
    DIE_REPLYING = "die_replying"
    DIE_AFTER_REPLY = "die_after_reply"


@dataclasses.dataclass(frozen=True, slots=True)
class _Injected:
    fault: Fault
    error: BaseException | None


class FakeConnector:
    """One vendor of one tenant, in memory. ``clock`` dates the marks writes leave."""

    def __init__(
        self,
        source: Source,
        cases: Iterable[Case] = (),
        accounts: Iterable[Account] = (),
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        before_write: Callable[[PlanItem], Awaitable[None]] | None = None,
        report: Report = log_bad_record,
    ) -> None:
        self.source = source
        self.report = report
        self._unreadable: list[BadRecord] = []
        self._cases = {case.id: case for case in cases}
        self._accounts = list(accounts)
        # Change numbers: the last one, each case's latest, the cases removed, the accounts'.
        self._change = 0
        self._changed: dict[str, int] = dict.fromkeys(self._cases, 0)
        self._removed: dict[str, int] = {}
        self._accounts_changed = 0
        self._cursors_expire = False
        self.syncs: list[str | None] = []
        self._clock = clock
        self.before_write = before_write
        self._faults: defaultdict[str, deque[_Injected]] = defaultdict(deque)
        self.fetch_error: Exception | None = None  # cases() raises it
        self.fetch_case_errors: list[Exception] = []  # the next fetch_case calls raise these
        self.writes: list[PlanItem] = []
        self.sent: list[tuple[str, str]] = []  # (case id, reply): what customers received
        self._replied: set[str] = set()  # keys whose reply is out
        self.reads = 0
        self.closed = False

    # -- test controls ----------------------------------------------------------------------

    def inject(self, case_id: str, fault: Fault, *, error: BaseException | None = None) -> None:
        if fault in _DYING and error is None:
            raise ValueError(f"{fault} needs the error to raise")
        self._faults[case_id].append(_Injected(fault, error))

    def serve_unreadable(self, record_id: str, reason: str) -> None:
        """From now on the case stream also meets a record it cannot read (first in line)."""
        self._unreadable.append(BadRecord(self.source.value, record_id, reason))

    def agent_edit(self, case_id: str, **changes: object) -> Case:
        """An agent changes the case in the helpdesk: later writes with the old stamp conflict."""
        case = self._cases[case_id]
        updated = dataclasses.replace(case, **changes, updated_stamp=_next_stamp(case))  # type: ignore[arg-type]
        self.put(updated)
        return updated

    def put(self, case: Case, *, reported: bool = True) -> None:
        """A case as the helpdesk now has it (new, or changed by anyone). ``reported=False``:
        the change stream does not tell it yet (a sync cursor a little behind the helpdesk),
        only reads of the case do."""
        self._cases[case.id] = case
        if reported:
            self._change += 1
            self._changed[case.id] = self._change
            self._removed.pop(case.id, None)

    def remove(self, case_id: str) -> None:
        """The case leaves the candidates (solved long ago, deleted, merged)."""
        self._change += 1
        del self._cases[case_id]
        self._changed.pop(case_id, None)
        self._removed[case_id] = self._change

    def set_accounts(self, accounts: Iterable[Account]) -> None:
        self._change += 1
        self._accounts = list(accounts)
        self._accounts_changed = self._change

    def expire_cursors(self) -> None:
        """The next read from a cursor raises CursorExpired (once)."""
        self._cursors_expire = True

    def case(self, case_id: str) -> Case:
        return self._cases[case_id]

    # -- the Connector Protocol -------------------------------------------------------------

    async def cases(self) -> AsyncIterator[Case]:
        if self.fetch_error is not None:
            raise self.fetch_error
        for bad in self._unreadable:
            self.report(bad)
        for case in list(self._cases.values()):
            self.reads += 1
            yield case

    async def changes(self, cursor: str | None, known: KnownCase) -> AsyncIterator[Change]:
        self.syncs.append(cursor)
        if self.fetch_error is not None:
            raise self.fetch_error
        if cursor is not None and self._cursors_expire:
            self._cursors_expire = False
            raise CursorExpired(self.source.value, "GET", "/changes", 412)
        for bad in self._unreadable:
            self.report(bad)
        since = -1 if cursor is None else int(cursor)
        for case_id, change in list(self._changed.items()):
            if change > since:
                self.reads += 1
                yield self._cases[case_id]
        for case_id, change in list(self._removed.items()):
            if change > since:
                yield Gone(case_id)
        if self._accounts_changed > since:
            for account in self._accounts:
                yield account
        yield Checkpoint(str(self._change))

    async def accounts(self) -> AsyncIterator[Account]:
        for account in self._accounts:
            yield account

    async def fetch_case(self, case_id: str) -> Case:
        self.reads += 1
        if self.fetch_case_errors:
            raise self.fetch_case_errors.pop(0)
        return self._cases[case_id]

    async def apply(self, item: PlanItem, *, replied: Replied | None = None) -> WriteResult:
        if self.before_write is not None:
            await self.before_write(item)
        if any(mark.key == item.key for mark in item.case.followups):
            return WriteResult(WriteOutcome.ALREADY_APPLIED, calls=0)
        injected = self._faults[item.case.id].popleft() if self._faults[item.case.id] else None
        if injected is not None and injected.fault is Fault.RAISE:
            raise injected.error  # type: ignore[misc]
        if injected is not None and injected.fault is Fault.FAIL:
            return WriteResult(WriteOutcome.FAILED, detail="injected failure")
        current = self._cases[item.case.id]
        if item.case.updated_stamp != current.updated_stamp:
            return WriteResult(WriteOutcome.CONFLICT, detail="updated_stamp is stale")
        if self._reply(item):
            if injected is not None and injected.fault is Fault.DIE_REPLYING:
                raise injected.error  # type: ignore[misc]
            if replied is not None:
                replied()
        if injected is not None and injected.fault is Fault.DIE_AFTER_REPLY:
            self._write(item, current, marked=False)
            raise injected.error  # type: ignore[misc]
        if injected is not None and injected.fault is Fault.HALF:
            # Like a Zendesk reply out and its note lost, or an Asana date set and its story not.
            self._write(item, current, marked=False)
            return WriteResult(WriteOutcome.INCOMPLETE, detail="injected: the note did not land")
        self._write(item, current)
        if injected is not None and injected.fault is Fault.CRASH:
            raise injected.error  # type: ignore[misc]
        if injected is not None and injected.fault is Fault.LOSE_RESPONSE:
            return WriteResult(WriteOutcome.ALREADY_APPLIED, calls=2, detail="marker found")
        return WriteResult(WriteOutcome.APPLIED, request_ids=(f"req-{len(self.writes)}",))

    async def aclose(self) -> None:
        self.closed = True

    # -- the helpdesk's side of a write -------------------------------------------------------

    def _reply(self, item: PlanItem) -> bool:
        """Send the item's reply unless it is found sent already; False: it has none."""
        replies = [str(a.params["body"]) for a in item.actions if a.type is ActionType.REPLY]
        if not replies:
            return False
        if item.key not in self._replied:
            self.sent.append((item.case.id, "\n\n".join(replies)))
            self._replied.add(item.key)
        return True

    def _write(self, item: PlanItem, case: Case, *, marked: bool = True) -> None:
        self.writes.append(item)
        status, assignee, tags = case.status, case.assignee, set(case.tags)
        for action in item.actions:
            if action.type is ActionType.SET_STATUS:
                status = Status(action.params["status"])
            elif action.type is ActionType.SET_ASSIGNEE:
                assignee = str(action.params["assignee"])
            elif action.type is ActionType.ADD_TAGS:
                tags.update(action.params["tags"])
            elif action.type is ActionType.REMOVE_TAGS:
                tags.difference_update(action.params["tags"])
        mark = FollowUpMark(policy=item.policy, step=item.step, at=self._clock(), key=item.key)
        self.put(
            dataclasses.replace(
                case,
                status=status,
                assignee=assignee,
                tags=frozenset(tags | {marker_tag(item.key)}),
                followups=(*case.followups, mark) if marked else case.followups,
                updated_stamp=_next_stamp(case),
            )
        )


_DYING = (Fault.RAISE, Fault.CRASH, Fault.DIE_REPLYING, Fault.DIE_AFTER_REPLY)


def _next_stamp(case: Case) -> str:
    return str(int(case.updated_stamp or "0") + 1)
