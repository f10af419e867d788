"""One vendor's changes since its stored cursor, into the case store.

An incremental read stores each batch with the cursor its :class:`~connectors.base.Checkpoint`
gives, in one transaction. A full read (no cursor yet, or the vendor no longer honours it:
:class:`~connectors.errors.CursorExpired`, logged and counted) stores as it goes but keeps its
cursor for the very end, with the removal of whatever it did not see: killed half-way, the next
turn reads in full again rather than resume a read that never saw the whole vendor.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime

import structlog

from connectors.base import Checkpoint, Gone, Syncs
from connectors.errors import BadRecord, CursorExpired, NotFound, VendorError
from policies.model import Account, CaseKind, Source
from worker.delivery.ledger import Fence
from worker.metrics import Metrics
from worker.sync.store import BATCH, CaseStore, Changes

__all__ = ["SyncFigures", "sync_vendor"]

log = structlog.get_logger("followup.sync")


@dataclass(slots=True)
class SyncFigures:
    """What one turn's sync of one vendor read."""

    cases: int = 0  # cases read
    changed: int = 0  # cases stored or dropped
    fallbacks: int = 0  # cursors the vendor no longer honoured


@dataclass(frozen=True, slots=True)
class _Target:
    store: CaseStore
    tenant: str
    vendor: Source
    plan_last: Collection[CaseKind]
    fence: Fence | None
    clock: Callable[[], datetime]

    def write(
        self,
        changes: Changes,
        *,
        read_id: str | None = None,
        cursor: str | None = None,
        full_read_done: bool = False,
        pushes_read: tuple[Collection[str], datetime] | None = None,
    ) -> None:
        """Store ``changes`` for this tenant and vendor (:meth:`CaseStore.write`)."""
        self.store.write(
            self.tenant,
            self.vendor,
            changes,
            now=self.clock(),
            plan_last=self.plan_last,
            fence=self.fence,
            read_id=read_id,
            cursor=cursor,
            full_read_done=full_read_done,
            pushes_read=pushes_read,
        )


async def sync_vendor(
    connector: Syncs,
    vendor: Source,
    store: CaseStore,
    metrics: Metrics,
    *,
    tenant: str,
    plan_last: Collection[CaseKind],
    fence: Fence | None,
    clock: Callable[[], datetime],
) -> SyncFigures:
    """Read ``connector``'s changes since the stored cursor into ``store``.

    Raises what the connector raises (after storing what it read: stored changes are never
    wrong, only the cursor must wait for them), and
    :class:`~worker.delivery.ledger.LeaseLost` once the tenant is not this replica's."""
    target = _Target(store, tenant, vendor, plan_last, fence, clock)
    figures = SyncFigures()
    cursor = store.cursor(tenant, vendor)
    try:
        await _read(connector, target, cursor, figures, metrics)
    except CursorExpired:
        log.warning("sync cursor expired; reading in full", vendor=vendor.value)
        metrics.sync_fallbacks.labels(tenant=tenant, vendor=vendor.value).inc()
        store.count_fallback(tenant, vendor, now=clock(), fence=fence)
        figures.fallbacks += 1
        await _read(connector, target, None, figures, metrics)
    await _read_pushed(connector, target, figures)
    return figures


async def _read_pushed(connector: Syncs, target: _Target, figures: SyncFigures) -> None:
    """The cases the vendor's webhooks named since the last sync, each read on its own: a
    customer's reply or missed call is planned in this turn even when the change feed does
    not show it yet. A case that cannot be read is left to the feed (a push only hurries)."""
    listed_at = target.clock()
    pushed = target.store.pushed(target.tenant, target.vendor)
    if not pushed:
        return
    changes = Changes()
    for case_id in pushed:
        try:
            changes.add_case(await connector.fetch_case(case_id))
        except NotFound:
            changes.add_gone(case_id)
        except (VendorError, BadRecord):
            log.exception("pushed case unreadable; left to the change feed", case_id=case_id)
            continue
        figures.changed += 1
    target.write(changes, pushes_read=(pushed, listed_at))


async def _read(
    connector: Syncs,
    target: _Target,
    cursor: str | None,
    figures: SyncFigures,
    metrics: Metrics,
) -> None:
    full_read = cursor is None
    read_id = uuid.uuid4().hex if full_read else None
    pending = Changes()
    covered: str | None = None  # a full read's last checkpoint, written at its end
    fetched = metrics.cases_fetched.labels(tenant=target.tenant, vendor=target.vendor.value)

    def store(cursor: str | None = None, *, done: bool = False) -> None:
        target.write(pending, read_id=read_id, cursor=cursor, full_read_done=done)

    known = target.store.known(target.tenant, target.vendor, pending)
    stream = connector.changes(cursor, known)
    while True:
        try:
            change = await anext(stream, None)
        except Exception:
            if pending:
                store()  # what was read is right; only its cursor must wait for the rest
            raise
        if change is None:
            break
        if isinstance(change, Checkpoint):
            if full_read:
                covered = change.cursor
                store()
            else:
                store(change.cursor)
            continue
        if isinstance(change, Gone):
            pending.add_gone(change.case_id)
            figures.changed += 1
        elif isinstance(change, Account):
            pending.accounts[change.id] = change
        else:
            pending.add_case(change)
            figures.cases += 1
            figures.changed += 1
            fetched.inc()
        if len(pending) >= BATCH:
            store()  # memory stays flat; the cursor waits for its checkpoint
    if full_read and covered is not None:
        store(covered, done=True)
    elif pending:
        store()
