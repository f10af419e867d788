"""The interface the worker drives every vendor through, and what a write reports back.

Each vendor connector (zendesk, intercom, asana) implements :class:`Connector`. The worker only
ever talks to this Protocol, so tests plug in :class:`connectors.fake.FakeConnector` instead of
patching anything.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

from policies.model import Account, Case, PlanItem, Source

__all__ = [
    "BulkApply",
    "Change",
    "Checkpoint",
    "Connector",
    "Gone",
    "KnownCase",
    "MayPlan",
    "Replied",
    "Syncs",
    "WriteOutcome",
    "WriteResult",
    "every_case",
]


class WriteOutcome(StrEnum):
    APPLIED = "applied"  # the vendor confirmed the write
    ALREADY_APPLIED = "already_applied"  # outcome was unknown; the marker was found on re-read
    CONFLICT = "conflict"  # an agent changed the case meanwhile; re-read and re-plan
    FAILED = "failed"  # permanent error, or transient errors past the retry budget
    # Part of the item is on the case (or may be), including what the customer was to be told,
    # and a later write failed. What landed may stop the plan from offering the item again (an
    # Asana date field, a closed conversation), so the worker finishes it next cycle anyway,
    # without telling the customer twice.
    INCOMPLETE = "incomplete"


Replied = Callable[[], None]
"""Called by :meth:`Connector.apply` once the customer has the item's reply (sent, or found
sent by an earlier attempt), before the item's other writes: the worker records it at once,
so a process dying later never sends the reply again."""


MayPlan = Callable[[Case, Account | None], bool]
"""Whether the policies could plan anything for a case (with its account, when the connector
knows it), whatever its evidence (history and follow-ups) says and whatever the account's
open-case totals: :meth:`policies.rules.Rulebook.may_plan`. A connector that reads evidence
with one call per case (Intercom conversation parts, Asana stories) asks it on the case as its
list entry shows it, and yields a case it says no to without that read: with no evidence, but
with everything else (status, subject, account, priority), so the account's open-case totals
count it as before."""


def every_case(case: Case, account: Account | None) -> bool:
    """The default :data:`MayPlan`: every case may be planned, so every case's evidence is read."""
    return True


@dataclass(frozen=True, slots=True)
class WriteResult:
    outcome: WriteOutcome
    calls: int = 1
    request_ids: tuple[str, ...] = ()
    detail: str = ""


class Connector(Protocol):
    """One vendor of one tenant. All reads stream; all of a case's changes go in one write."""

    source: Source

    def cases(self) -> AsyncIterator[Case]:
        """Candidate cases (not solved/closed, or whatever the vendor needs), with evidence."""
        ...

    def accounts(self) -> AsyncIterator[Account]:
        """Accounts this vendor knows (plan tier, canceled / stop flags). May yield nothing."""
        ...

    async def fetch_case(self, case_id: str) -> Case:
        """A fresh read of one case, for conflict re-plans and marker checks."""
        ...

    async def apply(self, item: PlanItem, *, replied: Replied | None = None) -> WriteResult:
        """Apply all of ``item``'s actions in as few calls as the vendor allows, exactly once;
        ``replied`` is told when the customer has its reply."""
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class BulkApply(Protocol):
    """A connector that can apply many plan items in fewer calls than one ``apply`` each
    (Zendesk ``update_many``). Results come back in the order of ``items``."""

    async def apply_many(self, items: Sequence[PlanItem]) -> list[WriteResult]: ...


@dataclass(frozen=True, slots=True)
class Gone:
    """A case that left the candidates since the cursor (solved, closed, deleted, merged):
    the case store drops it. ``case_id`` is the vendor's id, as ``Case.id``."""

    case_id: str


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Everything yielded before it is covered by ``cursor``: once the caller has stored those
    changes, it may keep the cursor, and the next :meth:`Syncs.changes` starts from it. The
    cursor is the connector's own opaque text (several vendor positions, say, as JSON)."""

    cursor: str


Change = Case | Account | Gone | Checkpoint
"""One item of a change stream: a case or account as it is now, a case gone, a checkpoint."""

KnownCase = Callable[[str], Case | None]
"""The case store's copy of a case, by vendor id (None: not stored). A connector that reads
only what changed builds a changed case's evidence from the stored one plus what is new,
rather than reading its whole history again."""


@runtime_checkable
class Syncs(Connector, Protocol):
    """A connector that reads what changed since a cursor it handed out earlier (issue 13)."""

    def changes(self, cursor: str | None, known: KnownCase) -> AsyncIterator[Change]:
        """What changed since ``cursor``: cases (candidates, with evidence, as ``cases()``
        gives them), accounts, cases gone, and a :class:`Checkpoint` after each batch.

        ``cursor`` None: a full read (every candidate case and every account, then a
        checkpoint); the caller replaces its store with what it gets. Raises
        :class:`connectors.errors.CursorExpired` when the vendor no longer honours
        ``cursor``; the caller then reads in full."""
        ...
