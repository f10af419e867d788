"""The ledger: what the worker meant to do, what happened, and why (SQLAlchemy Core).

One code path for SQLite (the default: a file, zero setup) and PostgreSQL (``postgresql://``
URLs, driven by psycopg 3) so several processes can share it. The schema is versioned in
``followup_schema`` and migrated on open.

Exactly once rests on the order of writes: :meth:`Ledger.begin` records the *intent* (an
``intents`` row, unique per tenant, idempotency key and mode, plus an open ``attempts`` row) before
the vendor is called, and :meth:`Ledger.finish` records the *outcome* after. An attempt never
finished means the process died in between; :meth:`Ledger.pending` lists those so the worker
can re-read the case and look for the write's marker before doing anything else.
Every record is the tenant's: tenants are separate helpdesks, and two of them can have the
same ticket id, hence the same idempotency key, on the same day.

When replicas share the ledger, the intent of a live write is recorded only if the tenant's
lease is still this replica's: :meth:`Ledger.begin` runs the caller's :data:`Fence` in the
transaction that inserts the intent, and that check locks the lease row until the commit
(:meth:`worker.runtime.leases.PostgresLeases.still_holds`), so no takeover can slip in between the
check and the intent. A replica paused past its lease fails to record the intent, hence
never calls the vendor.

An attempt that got part-way (``incomplete``) is listed by :meth:`Ledger.incomplete`, so the
worker can finish it even when the plan no longer offers it. So is one a dead process left
unfinished and that the re-read showed not wholly on the case (``interrupted``). Because an
email leaves no trace to look for, the executor records the moment an item's reply is out
(:meth:`Ledger.reply_sent`, the attempt then reads ``incomplete`` while still unfinished): a
process dying after that never sends it again.

For the ops console, each tenant's turn of a cycle leaves its figures (:meth:`Ledger.record_turn`:
cases read, outcomes, vendor calls and 429s, errors, unreadable records) and every flip of a
switch leaves an audit line with who, when and why (:meth:`Ledger.switch_log`). Both are kept
bounded: the newest :data:`TURNS_KEPT` turns per tenant, :data:`SWITCH_CHANGES_KEPT` changes
per switch; older ones are pruned in the transaction that adds a new one.

Times are stored in UTC. Two clocks meet here: ``at`` is the instant the cycle planned for
(simulated in the demo), ``started_at``/``finished_at`` are wall-clock timings.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from connectors.base import WriteOutcome
from policies.model import Action, ActionType, Case, PlanItem
from worker.sync.schema import sync_tables

__all__ = [
    "SCHEMA_VERSION",
    "SWITCH_CHANGES_KEPT",
    "SYNC_TABLES",
    "TURNS_KEPT",
    "Attempt",
    "CycleRecord",
    "Fence",
    "LeaseLost",
    "Ledger",
    "LedgerError",
    "LiveRecord",
    "Outcome",
    "PendingIntent",
    "SwitchChange",
    "TenantTurn",
    "check_fence",
    "engine_url",
    "sole_writer",
]


class LedgerError(Exception):
    """The ledger cannot be opened, migrated or written."""


class LeaseLost(Exception):
    """The fence said no: the tenant's lease is not this replica's any more. Nothing was
    recorded; the tenant's new holder will do the follow-up."""


Fence = Callable[[Connection], bool]
"""May this replica still write for the tenant? Asked inside the ledger's own transaction."""


def check_fence(conn: Connection, fence: Fence | None, tenant: str) -> None:
    """Raise :class:`LeaseLost` unless ``fence`` (if any) lets this replica write for
    ``tenant`` in the transaction of ``conn``."""
    if fence is not None and not fence(conn):
        raise LeaseLost(f"{tenant}: the lease is not this replica's any more")


LiveRecord = tuple[bool, "Outcome | None"]
"""What the ledger knows of a key's live attempts: (applied by any of them, the last outcome,
None while that attempt is pending)."""


class Outcome(StrEnum):
    """What became of one attempt at a plan item."""

    APPLIED = "applied"
    ALREADY_APPLIED = "already_applied"
    CONFLICT = "conflict"
    FAILED = "failed"
    INCOMPLETE = "incomplete"  # part of it landed, the reply among it: the rest is finished
    INTERRUPTED = "interrupted"  # a dead process's, marker absent: finished, reply included
    SKIPPED = "skipped"  # planned only (dry-run), or left alone (lease lost, customer wrote)

    @classmethod
    def of(cls, write: WriteOutcome) -> Outcome:
        return cls(write.value)

    @property
    def done(self) -> bool:
        """The change is on the case; doing it again would be a duplicate."""
        return self in (Outcome.APPLIED, Outcome.ALREADY_APPLIED)


_metadata = sa.MetaData()

_schema = sa.Table(
    "followup_schema",
    _metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
)


def _intents_table(metadata: sa.MetaData, unique: sa.UniqueConstraint) -> sa.Table:
    """``followup_intents`` with the uniqueness of one schema version (see the migrations)."""
    return sa.Table(
        "followup_intents",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("idempotency_key", sa.String(64), nullable=False),
        sa.Column("dry_run", sa.Boolean, nullable=False),
        sa.Column("tenant", sa.String(100), nullable=False),
        sa.Column("case_ref", sa.String(200), nullable=False, index=True),
        sa.Column("policy", sa.String(200), nullable=False),
        sa.Column("rule", sa.String(200), nullable=False),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("max_steps", sa.Integer, nullable=False),
        sa.Column("actions", sa.JSON, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("covers", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        unique,
    )


# A dry-run plan and the live write of the same step share a key: one row for each mode.
# Keys are unique per tenant (v2): two helpdesks can both have ticket 77.
_intents = _intents_table(
    _metadata,
    sa.UniqueConstraint(
        "tenant", "idempotency_key", "dry_run", name="uq_followup_intents_tenant_key_mode"
    ),
)

_attempts = sa.Table(
    "followup_attempts",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("intent_id", sa.ForeignKey("followup_intents.id"), nullable=False, index=True),
    sa.Column("cycle_id", sa.String(64), nullable=False, index=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("outcome", sa.String(20)),  # NULL: the vendor call may or may not have happened
    sa.Column("calls", sa.Integer, nullable=False, default=0),
    sa.Column("request_ids", sa.JSON, nullable=False, default=list),
    sa.Column("detail", sa.Text, nullable=False, default=""),
)

_same_key = _attempts.alias("same_key")
_reply_was_out = sa.exists().where(
    (_same_key.c.intent_id == _attempts.c.intent_id)
    & (_same_key.c.outcome == Outcome.INCOMPLETE.value)
)
"""Had this attempt, or one before it of the same key, its reply out (see ``_live_record``)?"""

_cycles = sa.Table(
    "followup_cycles",
    _metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("dry_run", sa.Boolean, nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("ok", sa.Boolean),
    sa.Column("summary", sa.JSON),
)

_switches = sa.Table(
    "followup_switches",
    _metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("value", sa.String(200), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_by", sa.String(200), nullable=False),
)


_turns = sa.Table(
    "followup_tenant_turns",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("tenant", sa.String(100), nullable=False),
    sa.Column("cycle_id", sa.String(64), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("dry_run", sa.Boolean, nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ok", sa.Boolean, nullable=False),
    sa.Column("figures", sa.JSON, nullable=False),
    sa.Index("ix_followup_tenant_turns_tenant_started", "tenant", "started_at"),
)

_switch_log = sa.Table(
    "followup_switch_log",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(100), nullable=False, index=True),
    sa.Column("value", sa.String(200)),  # NULL: cleared
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("by", sa.String(200), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
)

SYNC_TABLES = sync_tables(_metadata)
"""The case store and its cursors (issue 13), read and written by :mod:`worker.sync.store`."""

TURNS_KEPT = 50
"""Tenant turns kept per tenant (the console shows the latest few)."""
SWITCH_CHANGES_KEPT = 500
"""Audit lines kept per switch."""


def _create_v1(conn: Connection) -> None:
    # The tables as first shipped: then an intent's key was unique per mode only. Later versions
    # append a migration with explicit DDL (ALTER TABLE ...) rather than changing what this one
    # creates, so a new ledger goes the way an old one went and both end up the same.
    first_intents = _intents_table(
        sa.MetaData(),
        sa.UniqueConstraint("idempotency_key", "dry_run", name="uq_followup_intents_key_mode"),
    )
    first_intents.create(conn, checkfirst=True)
    _metadata.create_all(conn, tables=[_attempts, _cycles, _switches])


def _unique_per_tenant_v2(conn: Connection) -> None:
    # v1 made a key unique per mode only, so the second tenant with the same ticket id saw the
    # first one's follow-up as its own ("done before").
    if conn.dialect.name == "sqlite":
        _rebuild_sqlite_table(conn, _intents)
        return
    conn.execute(
        sa.text(
            "ALTER TABLE followup_intents DROP CONSTRAINT uq_followup_intents_key_mode, "
            "ADD CONSTRAINT uq_followup_intents_tenant_key_mode "
            "UNIQUE (tenant, idempotency_key, dry_run)"
        )
    )


def _rebuild_sqlite_table(conn: Connection, table: sa.Table) -> None:
    """Give an SQLite table the constraints of ``table``, whose columns it already has.

    SQLite cannot drop or add a constraint, so this is its documented recipe
    (sqlite.org/lang_altertable.html#otheralter): a new table in the wanted shape, the rows
    copied, the old table dropped, the new one renamed, the indexes made again. Foreign keys
    must be off meanwhile (dropping the old table would orphan the rows referencing it);
    :meth:`Ledger._migrate` sees to that and checks them before the commit.
    """
    staging = table.to_metadata(sa.MetaData(), name=f"{table.name}_rebuilt")
    conn.execute(sa.schema.CreateTable(staging))
    conn.execute(staging.insert().from_select(list(table.columns.keys()), sa.select(table)))
    conn.execute(sa.schema.DropTable(table))
    conn.execute(sa.text(f'ALTER TABLE "{staging.name}" RENAME TO "{table.name}"'))
    for index in table.indexes:
        index.create(conn)


def _console_records_v3(conn: Connection) -> None:
    # New tables only: created as they are defined here (a later change to them appends a
    # migration with explicit DDL, as v2 does).
    _metadata.create_all(conn, tables=[_turns, _switch_log])


def _sync_store_v4(conn: Connection) -> None:
    # New tables only, as v3.
    _metadata.create_all(conn, tables=SYNC_TABLES.all)


_MIGRATIONS = (_create_v1, _unique_per_tenant_v2, _console_records_v3, _sync_store_v4)
SCHEMA_VERSION = len(_MIGRATIONS)
_MIGRATION_LOCK = 0x466F6C6C  # any constant: serialises replicas migrating one PostgreSQL ledger


@dataclass(frozen=True, slots=True)
class PendingIntent:
    """An attempt that started and never finished: no outcome, or only the checkpoint saying
    its reply was out (``reply_out``)."""

    attempt_id: int
    key: str
    tenant: str
    case_ref: str
    policy: str
    step: int
    cycle_id: str
    started_at: datetime
    reply_out: bool = False


@dataclass(frozen=True, slots=True)
class Attempt:
    """One line of a case's history: an attempt at a plan item and its outcome."""

    started_at: datetime
    at: datetime
    cycle_id: str
    tenant: str
    case_ref: str
    key: str
    dry_run: bool
    policy: str
    rule: str
    step: int
    max_steps: int
    actions: list[dict[str, Any]]
    reason: str
    outcome: Outcome | None
    detail: str
    request_ids: list[str]
    calls: int
    finished_at: datetime | None
    covers: list[str]

    @property
    def duration_ms(self) -> int | None:
        if self.finished_at is None:
            return None
        return round((self.finished_at - self.started_at).total_seconds() * 1000)

    def plan_item(self, case: Case) -> PlanItem:
        """The item this attempt was at, again, on ``case`` as it is now."""
        actions = tuple(
            Action(ActionType(action["type"]), {k: v for k, v in action.items() if k != "type"})
            for action in self.actions
        )
        return PlanItem(
            case=case,
            policy=self.policy,
            rule=self.rule,
            step=self.step,
            max_steps=self.max_steps,
            actions=actions,
            reason=self.reason,
            key=self.key,
            covers=tuple(self.covers),
        )


@dataclass(frozen=True, slots=True)
class CycleRecord:
    id: str
    at: datetime
    dry_run: bool
    started_at: datetime
    finished_at: datetime | None
    ok: bool | None
    summary: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class TenantTurn:
    """One tenant's turn of a cycle: its figures (``cases``, outcome counts, ``failed``,
    ``errors``, ``unreadable``, ``vendors`` with calls and 429s...), as the cycle recorded them."""

    tenant: str
    cycle_id: str
    at: datetime
    dry_run: bool
    started_at: datetime
    finished_at: datetime
    ok: bool
    figures: dict[str, Any]

    @property
    def duration_s(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()


@dataclass(frozen=True, slots=True)
class SwitchChange:
    """A switch set (``value``) or cleared (None): by whom, when and why."""

    name: str
    value: str | None
    at: datetime
    by: str
    reason: str


def _intent_values(item: PlanItem, *, tenant: str, dry_run: bool, now: datetime) -> dict[str, Any]:
    return {
        "idempotency_key": item.key,
        "dry_run": dry_run,
        "tenant": tenant,
        "case_ref": item.case.ref,
        "policy": item.policy,
        "rule": item.rule,
        "step": item.step,
        "max_steps": item.max_steps,
        "actions": [action.to_dict() for action in item.actions],
        "reason": item.reason,
        "covers": list(item.covers),
        "created_at": _utc(now),
    }


def _attempt_values(
    intent_id: int, cycle_id: str, *, at: datetime, started_at: datetime
) -> dict[str, Any]:
    return {
        "intent_id": intent_id,
        "cycle_id": cycle_id,
        "at": _utc(at),
        "started_at": _utc(started_at),
        "calls": 0,
        "request_ids": [],
        "detail": "",
    }


def _live_record(tried: list[Outcome | None]) -> LiveRecord:
    """A key's attempts, oldest first, as :func:`worker.delivery.decisions.decide` reads
    them. Once one
    had its reply out (``incomplete``), every later one goes without it, whatever became of
    them since: a resumed attempt that failed or was cut off in turn must not send it again."""
    last = tried[-1]
    if last is not None and not last.done and Outcome.INCOMPLETE in tried:
        last = Outcome.INCOMPLETE
    return any(o is not None and o.done for o in tried), last


def _live_intents(tenant: str, keys: Collection[str]) -> sa.ColumnElement[bool]:
    return (
        (_intents.c.tenant == tenant)
        & _intents.c.idempotency_key.in_(list(keys))
        & sa.not_(_intents.c.dry_run)
    )


def _attempt(row: Any) -> Attempt:
    """An ``intents`` row joined with one of its ``attempts``."""
    return Attempt(
        started_at=_aware(row.started_at),
        at=_aware(row.at),
        cycle_id=row.cycle_id,
        tenant=row.tenant,
        case_ref=row.case_ref,
        key=row.idempotency_key,
        dry_run=row.dry_run,
        policy=row.policy,
        rule=row.rule,
        step=row.step,
        max_steps=row.max_steps,
        actions=row.actions,
        reason=row.reason,
        outcome=None if row.outcome is None else Outcome(row.outcome),
        detail=row.detail,
        request_ids=row.request_ids,
        calls=row.calls,
        finished_at=None if row.finished_at is None else _aware(row.finished_at),
        covers=row.covers,
    )


def _keep_newest(
    conn: Connection, table: sa.Table, where: sa.ColumnElement[bool], kept: int
) -> None:
    """Delete the rows of ``table`` matching ``where`` but the ``kept`` newest (by id)."""
    oldest_kept = (
        sa.select(table.c.id).where(where).order_by(table.c.id.desc()).offset(kept - 1).limit(1)
    ).scalar_subquery()
    conn.execute(table.delete().where(where & (table.c.id < oldest_kept)))


def _cause(exc: SQLAlchemyError) -> str:
    """The driver's own first line (``connection refused``, ``password authentication
    failed``...): the database's answer, never the URL or its password."""
    driver = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(driver).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def engine_url(url: str) -> sa.URL:
    """``postgresql://`` and ``postgres://`` mean psycopg 3; anything else is taken as is."""
    parsed = sa.make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


@contextmanager
def sole_writer(url: str) -> Iterator[None]:
    """Hold a SQLite ledger for this process alone inside the block (``run --once``'s cycle,
    ``serve``'s life): an exclusive lock on ``<ledger>.lock`` next to it.

    Leases share tenants between replicas only on PostgreSQL; on SQLite every process would
    act on every tenant, so two overlapping runs (a slow cron tick) would each write the same
    follow-ups. The second process is refused at once with :class:`LedgerError`, naming the
    holder's pid; the operating system drops the lock of a process that dies. PostgreSQL and
    in-memory ledgers need no lock."""
    parsed = engine_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        yield
        return
    lock = Path(f"{parsed.database}.lock")
    with lock.open("a+", encoding="utf-8") as held:
        try:
            fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            held.seek(0)
            holder = held.read().strip() or "unknown"
            raise LedgerError(
                f"the SQLite ledger {parsed.database} is in use by another followup process "
                f"(pid {holder}); a SQLite ledger has one writer at a time, so this one did "
                "nothing (run replicas on PostgreSQL)"
            ) from None
        try:
            held.seek(0)
            held.truncate()
            held.write(str(os.getpid()))
            held.flush()
            yield
        finally:
            fcntl.flock(held, fcntl.LOCK_UN)


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("ledger times must be timezone-aware")
    return value.astimezone(UTC)


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything stored is UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _enable_sqlite_concurrency(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets `followup dry-run off` write while `followup serve` reads; busy_timeout makes
    # writers queue instead of failing with "database is locked". synchronous=NORMAL halves
    # the cost of each commit and still survives a killed process; only an OS crash can lose
    # the last commits, and then the markers on the cases still stop a duplicate write.
    # busy_timeout first: switching a new file to WAL takes a lock too, and processes opening
    # a new ledger at once would otherwise meet "database is locked" at once.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _apply_migrations(conn: Connection) -> None:
    _schema.create(conn, checkfirst=True)
    current = conn.scalar(sa.select(sa.func.max(_schema.c.version))) or 0
    target = len(_MIGRATIONS)
    if current > target:
        raise LedgerError(
            f"the ledger's schema is version {current}, newer than this worker's "
            f"{target}; upgrade the worker"
        )
    for version in range(current + 1, target + 1):
        _MIGRATIONS[version - 1](conn)
        conn.execute(_schema.insert().values(version=version, applied_at=datetime.now(UTC)))


class Ledger:
    """Open with :meth:`open`; every method is one short transaction."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @classmethod
    def open(cls, url: str, **engine_options: Any) -> Ledger:
        """Connect and migrate the schema to :data:`SCHEMA_VERSION`."""
        parsed = engine_url(url)
        engine = sa.create_engine(parsed, **engine_options)
        if engine.dialect.name == "sqlite":
            sa.event.listen(engine, "connect", _enable_sqlite_concurrency)
        ledger = cls(engine)
        try:
            ledger._migrate()
        except SQLAlchemyError as exc:
            engine.dispose()
            where = parsed.render_as_string(hide_password=True)
            raise LedgerError(f"cannot open the ledger at {where}: {_cause(exc)}") from exc
        except LedgerError:
            engine.dispose()
            raise
        return ledger

    def close(self) -> None:
        self._engine.dispose()

    @property
    def engine(self) -> Engine:
        """The ledger database, for what keeps its own tables there (the case store)."""
        return self._engine

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        with self._engine.begin() as conn:
            yield conn

    def _migrate(self) -> None:
        with self._engine.connect() as conn:
            if conn.dialect.name != "sqlite":
                with conn.begin():
                    if conn.dialect.name == "postgresql":
                        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_MIGRATION_LOCK)))
                    _apply_migrations(conn)
                return
            # SQLite ignores `PRAGMA foreign_keys` inside a transaction, and the Python driver
            # opens none before DDL: switch the checks off first, then BEGIN IMMEDIATE, which
            # also makes a second process opening the ledger wait for this migration.
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            conn.commit()
            try:
                with conn.begin():
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                    _apply_migrations(conn)
                    if conn.exec_driver_sql("PRAGMA foreign_key_check").first() is not None:
                        raise LedgerError("migrating the ledger would break its foreign keys")
            finally:
                conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                conn.commit()

    def schema_version(self) -> int:
        with self._engine.connect() as conn:
            return conn.scalar(sa.select(sa.func.max(_schema.c.version))) or 0

    # -- intents and outcomes -------------------------------------------------------------

    def begin(
        self,
        item: PlanItem,
        *,
        tenant: str,
        cycle_id: str,
        dry_run: bool,
        at: datetime,
        started_at: datetime,
        fence: Fence | None = None,
    ) -> int:
        """Record the intent to apply ``item``; returns the attempt id for :meth:`finish`.

        With a ``fence``, it is asked first in the same transaction; :class:`LeaseLost` if it
        refuses, and nothing is recorded."""
        with self._transaction() as conn:
            check_fence(conn, fence, tenant)
            intent_id = self._intent_id(conn, item, tenant=tenant, dry_run=dry_run, now=started_at)
            return int(
                conn.execute(
                    _attempts.insert()
                    .values(_attempt_values(intent_id, cycle_id, at=at, started_at=started_at))
                    .returning(_attempts.c.id)
                ).scalar_one()
            )

    def record_planned(
        self,
        planned: Sequence[tuple[PlanItem, str]],
        *,
        tenant: str,
        cycle_id: str,
        at: datetime,
        recorded_at: datetime,
    ) -> None:
        """Record dry-run items ``(item, why)`` as planned only (SKIPPED), all in one
        transaction: three statements for the lot instead of several round trips per item,
        which were most of a dry-run cycle's time."""
        for last_try in (False, True):
            try:
                with self._transaction() as conn:
                    self._insert_planned(conn, planned, tenant, cycle_id, at, recorded_at)
                return
            except IntegrityError:
                # Another process recorded one of these intents meanwhile: the second pass
                # finds it and only adds the attempts.
                if last_try:
                    raise

    def _insert_planned(
        self,
        conn: Connection,
        planned: Sequence[tuple[PlanItem, str]],
        tenant: str,
        cycle_id: str,
        at: datetime,
        recorded_at: datetime,
    ) -> None:
        if not planned:
            return
        keys = {item.key: item for item, _ in planned}
        ids = self._plan_only_intents(conn, list(keys), tenant=tenant)
        missing = [
            _intent_values(item, tenant=tenant, dry_run=True, now=recorded_at)
            for key, item in keys.items()
            if key not in ids
        ]
        if missing:
            inserted = conn.execute(
                _intents.insert().returning(_intents.c.idempotency_key, _intents.c.id), missing
            )
            ids.update({key: int(intent_id) for key, intent_id in inserted})
        conn.execute(
            _attempts.insert(),
            [
                {
                    **_attempt_values(ids[item.key], cycle_id, at=at, started_at=recorded_at),
                    "outcome": Outcome.SKIPPED.value,
                    "finished_at": _utc(recorded_at),
                    "detail": why,
                }
                for item, why in planned
            ],
        )

    @staticmethod
    def _plan_only_intents(conn: Connection, keys: list[str], *, tenant: str) -> dict[str, int]:
        query = sa.select(_intents.c.idempotency_key, _intents.c.id).where(
            (_intents.c.tenant == tenant)
            & _intents.c.dry_run
            & _intents.c.idempotency_key.in_(keys)
        )
        return {key: int(intent_id) for key, intent_id in conn.execute(query)}

    def finish(
        self,
        attempt_id: int,
        outcome: Outcome,
        *,
        finished_at: datetime,
        calls: int = 0,
        request_ids: Sequence[str] = (),
        detail: str = "",
    ) -> None:
        with self._transaction() as conn:
            conn.execute(
                _attempts.update()
                .where(_attempts.c.id == attempt_id)
                .values(
                    outcome=outcome.value,
                    finished_at=_utc(finished_at),
                    calls=calls,
                    request_ids=list(request_ids),
                    detail=detail,
                )
            )

    def reply_sent(self, attempt_id: int) -> None:
        """The checkpoint: the attempt's reply (or email) is out, the rest of it is under way.
        Should the process die before :meth:`finish`, the attempt is ``incomplete``: it is
        finished without the reply."""
        detail = "the reply is out; the rest is under way"
        with self._transaction() as conn:
            conn.execute(
                _attempts.update()
                .where((_attempts.c.id == attempt_id) & _attempts.c.finished_at.is_(None))
                .values(outcome=Outcome.INCOMPLETE.value, detail=detail)
            )

    def settle_pending(
        self, key: str, outcome: Outcome, *, tenant: str, finished_at: datetime, detail: str
    ) -> int:
        """Give the outcome found on re-read to every unfinished live attempt of the tenant's
        ``key``."""
        live_intent = sa.select(_intents.c.id).where(_live_intents(tenant, [key]))
        with self._transaction() as conn:
            result = conn.execute(
                _attempts.update()
                .where(_attempts.c.intent_id.in_(live_intent))
                .where(_attempts.c.finished_at.is_(None))
                .values(outcome=outcome.value, finished_at=_utc(finished_at), detail=detail)
            )
            return result.rowcount

    def _intent_id(
        self, conn: Connection, item: PlanItem, *, tenant: str, dry_run: bool, now: datetime
    ) -> int:
        where = (
            (_intents.c.tenant == tenant)
            & (_intents.c.idempotency_key == item.key)
            & (_intents.c.dry_run == dry_run)
        )
        existing = conn.scalar(sa.select(_intents.c.id).where(where))
        if existing is not None:
            return int(existing)
        values = _intent_values(item, tenant=tenant, dry_run=dry_run, now=now)
        try:
            with conn.begin_nested():
                inserted = conn.execute(_intents.insert().values(values).returning(_intents.c.id))
                return int(inserted.scalar_one())
        except IntegrityError:
            # Another process recorded the same intent between our select and insert.
            return int(conn.execute(sa.select(_intents.c.id).where(where)).scalar_one())

    def latest_outcome(self, key: str, *, tenant: str) -> LiveRecord | None:
        """The tenant's live record of ``key``: (done, last outcome or None if pending); None if
        never tried.

        ``done`` is true if any attempt applied the change, even if a later one (a re-planned
        retry) did not: the change is on the case.
        """
        return self.latest_outcomes([key], tenant=tenant).get(key)

    def latest_outcomes(self, keys: Collection[str], *, tenant: str) -> dict[str, LiveRecord]:
        """:meth:`latest_outcome` of many keys in one query; keys never tried are absent."""
        query = (
            sa.select(_intents.c.idempotency_key, _attempts.c.outcome)
            .join(_intents, _intents.c.id == _attempts.c.intent_id)
            .where(_live_intents(tenant, keys))
            .order_by(_attempts.c.id)
        )
        outcomes: dict[str, list[Outcome | None]] = {}
        with self._engine.connect() as conn:
            for key, outcome in conn.execute(query):
                outcomes.setdefault(key, []).append(None if outcome is None else Outcome(outcome))
        return {key: _live_record(tried) for key, tried in outcomes.items()}

    def pending(self, *, tenant: str | None = None) -> list[PendingIntent]:
        """Live attempts never finished: the process stopped between intent and outcome.
        ``tenant``: only that tenant's."""
        query = (
            sa.select(
                _attempts.c.id,
                _intents.c.idempotency_key,
                _intents.c.tenant,
                _intents.c.case_ref,
                _intents.c.policy,
                _intents.c.step,
                _attempts.c.cycle_id,
                _attempts.c.started_at,
                _attempts.c.outcome,
            )
            .add_columns(_reply_was_out.label("reply_was_out"))
            .join(_intents, _intents.c.id == _attempts.c.intent_id)
            .where(_attempts.c.finished_at.is_(None) & sa.not_(_intents.c.dry_run))
            .order_by(_attempts.c.id)
        )
        if tenant is not None:
            query = query.where(_intents.c.tenant == tenant)
        with self._engine.connect() as conn:
            return [
                PendingIntent(
                    attempt_id=row.id,
                    key=row.idempotency_key,
                    tenant=row.tenant,
                    case_ref=row.case_ref,
                    policy=row.policy,
                    step=row.step,
                    cycle_id=row.cycle_id,
                    started_at=_aware(row.started_at),
                    reply_out=bool(row.reply_was_out),
                )
                for row in conn.execute(query)
            ]

    def history(self, case_ref: str, *, tenant: str | None = None) -> list[Attempt]:
        """Every attempt on a case, oldest first, including bundled updates that covered it.

        A bare id (``1234``) matches any vendor; without ``tenant``, any tenant too (each
        :class:`Attempt` names its own).
        """
        # `covers` is a JSON list of refs; matching its text keeps one query for both databases.
        covers = sa.cast(_intents.c.covers, sa.Text)
        if ":" in case_ref:
            match = (_intents.c.case_ref == case_ref) | covers.like(f'%"{case_ref}"%')
        else:
            match = _intents.c.case_ref.like(f"%:{case_ref}") | covers.like(f'%:{case_ref}"%')
        query = (
            sa.select(_intents, _attempts)
            .join(_attempts, _intents.c.id == _attempts.c.intent_id)
            .where(match)
            .order_by(_attempts.c.started_at, _attempts.c.id)
        )
        if tenant is not None:
            query = query.where(_intents.c.tenant == tenant)
        with self._engine.connect() as conn:
            return [_attempt(row) for row in conn.execute(query)]

    def incomplete(self, tenant: str) -> list[Attempt]:
        """The tenant's live items whose latest attempt got only part-way or was cut off (and
        settled so), oldest first."""
        others = _attempts.alias("others")
        latest = (
            sa.select(sa.func.max(others.c.id))
            .where(others.c.intent_id == _intents.c.id)
            .correlate(_intents)
            .scalar_subquery()
        )
        query = (
            sa.select(_intents, _attempts)
            .join(_attempts, _intents.c.id == _attempts.c.intent_id)
            .where(
                (_intents.c.tenant == tenant)
                & sa.not_(_intents.c.dry_run)
                & (_attempts.c.id == latest)
                & _attempts.c.outcome.in_([Outcome.INCOMPLETE.value, Outcome.INTERRUPTED.value])
            )
            .order_by(_attempts.c.id)
        )
        with self._engine.connect() as conn:
            return [_attempt(row) for row in conn.execute(query)]

    # -- cycles -----------------------------------------------------------------------------

    def start_cycle(
        self, cycle_id: str, *, at: datetime, dry_run: bool, started_at: datetime
    ) -> None:
        with self._transaction() as conn:
            conn.execute(
                _cycles.insert().values(
                    id=cycle_id, at=_utc(at), dry_run=dry_run, started_at=_utc(started_at)
                )
            )

    def finish_cycle(
        self, cycle_id: str, *, ok: bool, summary: dict[str, Any], finished_at: datetime
    ) -> None:
        with self._transaction() as conn:
            conn.execute(
                _cycles.update()
                .where(_cycles.c.id == cycle_id)
                .values(ok=ok, summary=summary, finished_at=_utc(finished_at))
            )

    def recent_cycles(self, limit: int = 10, *, mentioning: str | None = None) -> list[CycleRecord]:
        """The latest cycles first. ``mentioning``: only those whose summary contains the text
        (a coarse filter; the caller reads the summary for what it is after)."""
        query = sa.select(_cycles).order_by(_cycles.c.started_at.desc()).limit(limit)
        if mentioning is not None:
            query = query.where(
                sa.cast(_cycles.c.summary, sa.Text).contains(mentioning, autoescape=True)
            )
        with self._engine.connect() as conn:
            return [
                CycleRecord(
                    id=row.id,
                    at=_aware(row.at),
                    dry_run=row.dry_run,
                    started_at=_aware(row.started_at),
                    finished_at=None if row.finished_at is None else _aware(row.finished_at),
                    ok=row.ok,
                    summary=row.summary,
                )
                for row in conn.execute(query)
            ]

    # -- runtime switches -------------------------------------------------------------------

    def switch(self, name: str) -> str | None:
        with self._engine.connect() as conn:
            return conn.scalar(sa.select(_switches.c.value).where(_switches.c.name == name))

    def set_switch(
        self, name: str, value: str | None, *, by: str, at: datetime, reason: str = ""
    ) -> None:
        """Set (or with ``None`` clear) a switch every process sharing the ledger reads, and
        add the change to its audit log (:meth:`switch_log`)."""
        with self._transaction() as conn:
            conn.execute(_switches.delete().where(_switches.c.name == name))
            if value is not None:
                conn.execute(
                    _switches.insert().values(
                        name=name, value=value, updated_at=_utc(at), updated_by=by
                    )
                )
            conn.execute(
                _switch_log.insert().values(
                    name=name, value=value, at=_utc(at), by=by, reason=reason
                )
            )
            _keep_newest(conn, _switch_log, _switch_log.c.name == name, SWITCH_CHANGES_KEPT)

    def switch_set_at(self, name: str) -> datetime | None:
        """When the switch got its current value; None when it is not set."""
        with self._engine.connect() as conn:
            found = conn.scalar(sa.select(_switches.c.updated_at).where(_switches.c.name == name))
        return None if found is None else _aware(found)

    def switch_log(self, name: str, limit: int = 50) -> list[SwitchChange]:
        """The switch's latest changes, newest first."""
        query = (
            sa.select(_switch_log)
            .where(_switch_log.c.name == name)
            .order_by(_switch_log.c.id.desc())
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [
                SwitchChange(row.name, row.value, _aware(row.at), row.by, row.reason)
                for row in conn.execute(query)
            ]

    # -- tenant turns -----------------------------------------------------------------------

    def record_turn(self, turn: TenantTurn) -> None:
        """Keep a tenant's turn of a cycle (and only its :data:`TURNS_KEPT` newest)."""
        with self._transaction() as conn:
            conn.execute(
                _turns.insert().values(
                    tenant=turn.tenant,
                    cycle_id=turn.cycle_id,
                    at=_utc(turn.at),
                    dry_run=turn.dry_run,
                    started_at=_utc(turn.started_at),
                    finished_at=_utc(turn.finished_at),
                    ok=turn.ok,
                    figures=turn.figures,
                )
            )
            _keep_newest(conn, _turns, _turns.c.tenant == turn.tenant, TURNS_KEPT)

    def recent_turns(self, per_tenant: int = 5) -> dict[str, list[TenantTurn]]:
        """Each tenant's latest turns, newest first, in one query."""
        rank = (
            sa.func.row_number()
            .over(partition_by=_turns.c.tenant, order_by=_turns.c.id.desc())
            .label("rank")
        )
        ranked = sa.select(_turns, rank).subquery()
        query = (
            sa.select(ranked)
            .where(ranked.c.rank <= per_tenant)
            .order_by(ranked.c.tenant, ranked.c.id.desc())
        )
        turns: dict[str, list[TenantTurn]] = {}
        with self._engine.connect() as conn:
            for row in conn.execute(query):
                turns.setdefault(row.tenant, []).append(
                    TenantTurn(
                        tenant=row.tenant,
                        cycle_id=row.cycle_id,
                        at=_aware(row.at),
                        dry_run=row.dry_run,
                        started_at=_aware(row.started_at),
                        finished_at=_aware(row.finished_at),
                        ok=row.ok,
                        figures=row.figures,
                    )
                )
        return turns

    def check_writable(self) -> None:
        """Raise :class:`LedgerError` unless a write would succeed (for ``/readyz``)."""
        try:
            with self._engine.connect() as conn, conn.begin() as transaction:
                conn.execute(
                    _switches.insert().values(
                        name="readiness-probe",
                        value="",
                        updated_at=datetime.now(UTC),
                        updated_by="readyz",
                    )
                )
                transaction.rollback()
        except SQLAlchemyError as exc:
            raise LedgerError(f"the ledger is not writable: {exc.__class__.__name__}") from exc
