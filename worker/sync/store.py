"""The case store: what the planner needs of every candidate case of a tenant, and the cursor
each vendor's changes were read up to, in the ledger database.

Changes and the cursor that covers them go in one transaction (:meth:`CaseStore.write`), so a
process killed in between reads those changes again rather than loses them. Every write first
asks the caller's :data:`~worker.delivery.ledger.Fence` in the same transaction, as intents
do: a replica that lost the tenant's lease cannot move its cursor nor its store afterwards.

Reads for planning come in batches by key (:meth:`CaseStore.due`), each in its own short
transaction, so a cycle over a tenant with a million stored cases holds one batch at a time.
The store is a copy: the helpdesk stays the source of truth, and a case planned from here is
read fresh before any live write (``worker.delivery.executor``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from connectors.base import KnownCase
from policies.codec import account_from_json, account_to_json, case_from_json, case_to_json
from policies.model import Account, Case, CaseKind, Source
from worker.delivery.ledger import SYNC_TABLES, Fence, check_fence

__all__ = ["BATCH", "CaseStore", "Changes", "Planned", "VendorStatus"]

BATCH = 500
"""Cases per planning batch and per write of changes: what a turn holds at once."""

_cursors, _cases, _accounts = SYNC_TABLES.cursors, SYNC_TABLES.cases, SYNC_TABLES.accounts
_pushed = SYNC_TABLES.pushed


@dataclass(slots=True)
class Changes:
    """Changes read from one vendor and not yet stored (at most about :data:`BATCH`)."""

    cases: dict[str, Case] = field(default_factory=dict)  # by vendor id, the latest wins
    accounts: dict[str, Account] = field(default_factory=dict)
    gone: set[str] = field(default_factory=set)

    def __len__(self) -> int:
        return len(self.cases) + len(self.accounts) + len(self.gone)

    def add_case(self, case: Case) -> None:
        self.gone.discard(case.id)
        self.cases[case.id] = case

    def add_gone(self, case_id: str) -> None:
        self.cases.pop(case_id, None)
        self.gone.add(case_id)


@dataclass(frozen=True, slots=True)
class Planned:
    """A case the turn planned, and when planning it could next yield anything. ``case``: the
    case as the worker's writes left it, stored in place of the copy read (None: unchanged)."""

    vendor: Source
    case_id: str
    next_due: datetime | None
    case: Case | None = None


@dataclass(frozen=True, slots=True)
class VendorStatus:
    """What ``followup sync --status`` shows of one tenant's vendor."""

    tenant: str
    vendor: str
    cursor_at: datetime | None  # when the cursor was last moved; None: no cursor yet
    full_read_at: datetime | None
    cases: int
    due: int  # cases a turn at the instant asked would plan
    fallbacks: int

    def as_dict(self, now: datetime) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "vendor": self.vendor,
            "cursor_age_s": None
            if self.cursor_at is None
            else round((now - self.cursor_at).total_seconds()),
            "cursor_at": None if self.cursor_at is None else self.cursor_at.isoformat(),
            "full_read_at": None if self.full_read_at is None else self.full_read_at.isoformat(),
            "cases": self.cases,
            "due": self.due,
            "fallbacks": self.fallbacks,
        }


class CaseStore:
    """The case store of every tenant in one ledger database."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # -- cursors ------------------------------------------------------------------------------

    def cursor(self, tenant: str, vendor: Source) -> str | None:
        """Where the vendor's next read starts; None: a full read."""
        with self._engine.connect() as conn:
            return conn.scalar(sa.select(_cursors.c.cursor).where(_key(_cursors, tenant, vendor)))

    def count_fallback(
        self, tenant: str, vendor: Source, *, now: datetime, fence: Fence | None
    ) -> None:
        """A cursor the vendor no longer honours: counted, and dropped (the full read that
        follows writes the new one)."""
        with self._engine.begin() as conn:
            check_fence(conn, fence, tenant)
            moved = conn.execute(
                _cursors.update()
                .where(_key(_cursors, tenant, vendor))
                .values(cursor=None, fallbacks=_cursors.c.fallbacks + 1, updated_at=_utc(now))
            )
            if moved.rowcount == 0:
                conn.execute(
                    _cursors.insert().values(
                        tenant=tenant, vendor=vendor.value, updated_at=_utc(now), fallbacks=1
                    )
                )

    # -- changes ------------------------------------------------------------------------------

    def write(
        self,
        tenant: str,
        vendor: Source,
        changes: Changes,
        *,
        now: datetime,
        plan_last: Collection[CaseKind],
        fence: Fence | None,
        read_id: str | None = None,
        cursor: str | None = None,
        full_read_done: bool = False,
        pushes_read: tuple[Collection[str], datetime] | None = None,
    ) -> None:
        """Store ``changes`` and, when given, the ``cursor`` that covers them, in one
        transaction.

        Each stored case is marked changed, so the next plan takes it. So are the cases of an
        account that changed, and, for the kinds in ``plan_last`` (whose policies read the
        account's open-case totals), those of an account one of whose cases changed or left.
        ``read_id``: the full read under way, stamped on what it stores. ``full_read_done``:
        that read is over, so what it did not see has left the vendor and is dropped.
        ``pushes_read``: these pushed cases (:meth:`pushed`) were read (or could not be), so
        their pushes up to that instant are done."""
        with self._engine.begin() as conn:
            check_fence(conn, fence, tenant)
            touched = self._write_cases(conn, tenant, vendor, changes, now, read_id)
            changed_accounts = self._write_accounts(conn, tenant, vendor, changes, read_id)
            if full_read_done:
                touched |= self._drop_unseen(conn, tenant, vendor, read_id)
            self._mark(conn, tenant, changed_accounts, None)
            self._mark(conn, tenant, touched, plan_last)
            if cursor is not None:
                self._move_cursor(conn, tenant, vendor, cursor, now, full_read_done)
            if pushes_read is not None:
                read, until = pushes_read
                conn.execute(
                    _pushed.delete().where(
                        _key(_pushed, tenant, vendor)
                        & _pushed.c.case_id.in_(list(read))
                        & (_pushed.c.pushed_at <= _utc(until))
                    )
                )
        changes.cases.clear()
        changes.accounts.clear()
        changes.gone.clear()

    @staticmethod
    def _write_cases(
        conn: Connection,
        tenant: str,
        vendor: Source,
        changes: Changes,
        now: datetime,
        read_id: str | None,
    ) -> set[str]:
        """Store and drop cases; the accounts whose open cases that touched (before and
        after)."""
        ids = [*changes.cases, *changes.gone]
        if not ids:
            return set()
        mine = _key(_cases, tenant, vendor)
        touched: set[str] = set()
        for chunk in _chunks(ids):
            where = mine & _cases.c.case_id.in_(chunk)
            before = conn.scalars(sa.select(_cases.c.account_id).where(where))
            touched.update(owner for owner in before if owner is not None)
            conn.execute(_cases.delete().where(where))
        rows = [
            {
                "tenant": tenant,
                "vendor": vendor.value,
                "case_id": case.id,
                "account_id": case.account_id,
                "kind": case.kind.value,
                "body": case_to_json(case),
                "next_due": None,
                "changed": True,
                "changed_at": _utc(now),
                "read_id": read_id,
            }
            for case in changes.cases.values()
        ]
        if rows:
            conn.execute(_cases.insert(), rows)
        touched.update(c.account_id for c in changes.cases.values() if c.account_id is not None)
        return touched

    @staticmethod
    def _write_accounts(
        conn: Connection, tenant: str, vendor: Source, changes: Changes, read_id: str | None
    ) -> set[str]:
        """Store accounts; the ids of those that differ from their stored copy."""
        if not changes.accounts:
            return set()
        mine = _key(_accounts, tenant, vendor)
        stored: dict[str, Any] = {}
        for chunk in _chunks(list(changes.accounts)):
            where = mine & _accounts.c.account_id.in_(chunk)
            rows = conn.execute(sa.select(_accounts.c.account_id, _accounts.c.body).where(where))
            stored.update((row.account_id, row.body) for row in rows)
            conn.execute(_accounts.delete().where(where))
        bodies = {account_id: account_to_json(a) for account_id, a in changes.accounts.items()}
        conn.execute(
            _accounts.insert(),
            [
                {
                    "tenant": tenant,
                    "vendor": vendor.value,
                    "account_id": account_id,
                    "body": body,
                    "read_id": read_id,
                }
                for account_id, body in bodies.items()
            ],
        )
        return {account_id for account_id, body in bodies.items() if stored.get(account_id) != body}

    @staticmethod
    def _drop_unseen(
        conn: Connection, tenant: str, vendor: Source, read_id: str | None
    ) -> set[str]:
        """Drop what the finished full read ``read_id`` did not see; the accounts of the cases
        dropped."""
        unseen_cases = _key(_cases, tenant, vendor) & (
            _cases.c.read_id.is_(None) | (_cases.c.read_id != read_id)
        )
        owners = set(conn.scalars(sa.select(_cases.c.account_id).distinct().where(unseen_cases)))
        conn.execute(_cases.delete().where(unseen_cases))
        conn.execute(
            _accounts.delete().where(
                _key(_accounts, tenant, vendor)
                & (_accounts.c.read_id.is_(None) | (_accounts.c.read_id != read_id))
            )
        )
        return {owner for owner in owners if owner is not None}

    @staticmethod
    def _mark(
        conn: Connection,
        tenant: str,
        account_ids: set[str],
        kinds: Collection[CaseKind] | None,
    ) -> None:
        """Mark the tenant's cases of ``account_ids`` (of ``kinds`` only, when given) changed."""
        if not account_ids or (kinds is not None and not kinds):
            return
        for chunk in _chunks(sorted(account_ids)):
            where = (_cases.c.tenant == tenant) & _cases.c.account_id.in_(chunk)
            if kinds is not None:
                where &= _cases.c.kind.in_([kind.value for kind in kinds])
            conn.execute(_cases.update().where(where).values(changed=True))

    @staticmethod
    def _move_cursor(
        conn: Connection,
        tenant: str,
        vendor: Source,
        cursor: str,
        now: datetime,
        full_read: bool,
    ) -> None:
        values: dict[str, Any] = {"cursor": cursor, "updated_at": _utc(now)}
        if full_read:
            values["full_read_at"] = _utc(now)
        moved = conn.execute(_cursors.update().where(_key(_cursors, tenant, vendor)).values(values))
        if moved.rowcount:
            return
        conn.execute(
            _cursors.insert().values(tenant=tenant, vendor=vendor.value, fallbacks=0, **values)
        )

    def known(self, tenant: str, vendor: Source, pending: Changes) -> KnownCase:
        """The store's copy of a case by vendor id, for the connector's :meth:`changes`: what
        was read but is not stored yet first."""

        def stored(case_id: str) -> Case | None:
            if case_id in pending.cases:
                return pending.cases[case_id]
            if case_id in pending.gone:
                return None
            with self._engine.connect() as conn:
                body = conn.scalar(
                    sa.select(_cases.c.body).where(
                        _key(_cases, tenant, vendor) & (_cases.c.case_id == case_id)
                    )
                )
            return None if body is None else case_from_json(body)

        return stored

    # -- pushed by the vendors' webhooks ------------------------------------------------------

    def push(self, tenant: str, vendor: Source, case_id: str, *, at: datetime) -> None:
        """A verified webhook named the case: it is read on its own at the tenant's next sync
        (:meth:`pushed`). A push already waiting keeps its instant."""
        row = {"tenant": tenant, "vendor": vendor.value, "case_id": case_id}
        try:
            with self._engine.begin() as conn:
                conn.execute(_pushed.insert().values(**row, pushed_at=_utc(at)))
        except sa.exc.IntegrityError:
            pass  # already waiting (another replica's delivery of the same change, say)

    def pushed(self, tenant: str, vendor: Source, *, limit: int = BATCH) -> list[str]:
        """The cases pushed for the vendor and not read since, oldest push first."""
        with self._engine.connect() as conn:
            return list(
                conn.scalars(
                    sa.select(_pushed.c.case_id)
                    .where(_key(_pushed, tenant, vendor))
                    .order_by(_pushed.c.pushed_at)
                    .limit(limit)
                )
            )

    # -- planning -----------------------------------------------------------------------------

    def accounts(self, tenant: str, vendors: Sequence[Source]) -> dict[str, Account]:
        """The tenant's stored accounts by id; an id two vendors know is the later vendor's
        (as :func:`worker.runtime.cycle.read_accounts` reads them)."""
        order = {vendor.value: rank for rank, vendor in enumerate(vendors)}
        with self._engine.connect() as conn:
            rows = conn.execute(
                sa.select(_accounts.c.vendor, _accounts.c.body).where(_accounts.c.tenant == tenant)
            ).all()
        rows = sorted(rows, key=lambda row: order.get(row.vendor, len(order)))
        return {row.body["id"]: account_from_json(row.body) for row in rows}

    def due(self, tenant: str, at: datetime, kinds: Collection[CaseKind]) -> Iterator[list[Case]]:
        """The tenant's cases of ``kinds`` to plan at ``at`` (changed since last planned, or
        due by then), a batch at a time, each batch read in its own transaction. What the
        caller marks planned (:meth:`planned`) between batches is not handed out again."""
        if not kinds:
            return
        after: tuple[str, str] = ("", "")
        while True:
            with self._engine.connect() as conn:
                rows = conn.execute(
                    sa.select(_cases.c.vendor, _cases.c.case_id, _cases.c.body)
                    .where(_to_plan(tenant, at, kinds))
                    .where(sa.tuple_(_cases.c.vendor, _cases.c.case_id) > sa.tuple_(*after))
                    .order_by(_cases.c.vendor, _cases.c.case_id)
                    .limit(BATCH)
                ).all()
            if not rows:
                return
            after = (rows[-1].vendor, rows[-1].case_id)
            yield [case_from_json(row.body) for row in rows]

    def owners_due(self, tenant: str, at: datetime, kinds: Collection[CaseKind]) -> set[str]:
        """The accounts of the cases :meth:`due` would hand out."""
        if not kinds:
            return set()
        with self._engine.connect() as conn:
            owners = conn.scalars(
                sa.select(_cases.c.account_id).distinct().where(_to_plan(tenant, at, kinds))
            )
            return {owner for owner in owners if owner is not None}

    def cases_of(self, tenant: str, account_ids: Iterable[str]) -> Iterator[Case]:
        """Every stored case of these accounts (what their open-case totals add up)."""
        for chunk in _chunks(sorted(account_ids)):
            with self._engine.connect() as conn:
                bodies = conn.scalars(
                    sa.select(_cases.c.body).where(
                        (_cases.c.tenant == tenant) & _cases.c.account_id.in_(chunk)
                    )
                ).all()
            yield from (case_from_json(body) for body in bodies)

    def planned(self, tenant: str, cases: Sequence[Planned], *, fence: Fence | None) -> None:
        """The cases were planned: not changed any more, next planned at their ``next_due``;
        those given with a ``case`` stored as that copy."""
        if not cases:
            return
        where = (
            (_cases.c.tenant == tenant)
            & (_cases.c.vendor == sa.bindparam("vendor_"))
            & (_cases.c.case_id == sa.bindparam("case_id_"))
        )

        def row(planned: Planned) -> dict[str, Any]:
            due = None if planned.next_due is None else _utc(planned.next_due)
            return {"vendor_": planned.vendor.value, "case_id_": planned.case_id, "due_": due}

        kept = [row(planned) for planned in cases if planned.case is None]
        replaced = [
            {**row(planned), "body_": case_to_json(planned.case)}
            for planned in cases
            if planned.case is not None
        ]
        with self._engine.begin() as conn:
            check_fence(conn, fence, tenant)
            due = {"changed": False, "next_due": sa.bindparam("due_")}
            if kept:
                conn.execute(_cases.update().where(where).values(**due), kept)
            if replaced:
                body = sa.bindparam("body_", type_=sa.JSON)
                conn.execute(_cases.update().where(where).values(**due, body=body), replaced)

    def size(self, tenant: str) -> int:
        with self._engine.connect() as conn:
            return (
                conn.scalar(
                    sa.select(sa.func.count()).select_from(_cases).where(_cases.c.tenant == tenant)
                )
                or 0
            )

    # -- operators ----------------------------------------------------------------------------

    def status(self, at: datetime, tenants: Collection[str] | None = None) -> list[VendorStatus]:
        """Per tenant and vendor with a cursor or stored cases: ``followup sync --status``."""
        every_kind = list(CaseKind)
        counts = sa.select(
            _cases.c.tenant,
            _cases.c.vendor,
            sa.func.count().label("cases"),
            sa.func.count().filter(_to_plan(None, at, every_kind)).label("due"),
        ).group_by(_cases.c.tenant, _cases.c.vendor)
        with self._engine.connect() as conn:
            stored = {(r.tenant, r.vendor): r for r in conn.execute(counts)}
            cursors = {(r.tenant, r.vendor): r for r in conn.execute(sa.select(_cursors))}
        rows = []
        for tenant, vendor in sorted(stored.keys() | cursors.keys()):
            if tenants is not None and tenant not in tenants:
                continue
            count, cursor = stored.get((tenant, vendor)), cursors.get((tenant, vendor))
            rows.append(
                VendorStatus(
                    tenant=tenant,
                    vendor=vendor,
                    cursor_at=None
                    if cursor is None or cursor.cursor is None
                    else _aware(cursor.updated_at),
                    full_read_at=None
                    if cursor is None or cursor.full_read_at is None
                    else _aware(cursor.full_read_at),
                    cases=0 if count is None else count.cases,
                    due=0 if count is None else count.due,
                    fallbacks=0 if cursor is None else cursor.fallbacks,
                )
            )
        return rows

    def drop(self, tenant: str, *, fence: Fence | None = None) -> None:
        """Forget the tenant's store and cursors: its next turn reads every vendor in full."""
        with self._engine.begin() as conn:
            check_fence(conn, fence, tenant)
            for table in SYNC_TABLES.all:
                conn.execute(table.delete().where(table.c.tenant == tenant))


def _to_plan(
    tenant: str | None, at: datetime, kinds: Collection[CaseKind]
) -> sa.ColumnElement[bool]:
    wanted = _cases.c.changed | (_cases.c.next_due <= _utc(at))
    if len(kinds) < len(CaseKind):
        wanted &= _cases.c.kind.in_([kind.value for kind in kinds])
    return wanted if tenant is None else (_cases.c.tenant == tenant) & wanted


def _key(table: sa.Table, tenant: str, vendor: Source) -> sa.ColumnElement[bool]:
    return (table.c.tenant == tenant) & (table.c.vendor == vendor.value)


def _chunks(values: Sequence[str], size: int = BATCH) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
