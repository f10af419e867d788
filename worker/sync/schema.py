"""The tables of the case store and its cursors, on the ledger's metadata.

They live in the ledger database (SQLite or PostgreSQL) and its schema version covers them:
:mod:`worker.delivery.ledger` creates them in its migrations, :mod:`worker.sync.store` reads
and writes them. Every row is a tenant's, so the store moves with the tenant's lease.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

__all__ = ["SyncTables", "sync_tables"]


@dataclass(frozen=True, slots=True)
class SyncTables:
    cursors: sa.Table
    cases: sa.Table
    accounts: sa.Table
    pushed: sa.Table

    @property
    def all(self) -> list[sa.Table]:
        return [self.cursors, self.cases, self.accounts, self.pushed]


def sync_tables(metadata: sa.MetaData) -> SyncTables:
    cursors = sa.Table(
        "sync_cursors",
        metadata,
        sa.Column("tenant", sa.String(100), primary_key=True),
        sa.Column("vendor", sa.String(20), primary_key=True),
        sa.Column("cursor", sa.Text),  # the connector's own text; NULL: read in full next
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("full_read_at", sa.DateTime(timezone=True)),
        sa.Column("fallbacks", sa.Integer, nullable=False, default=0),  # expired cursors
    )
    cases = sa.Table(
        "case_store",
        metadata,
        sa.Column("tenant", sa.String(100), primary_key=True),
        sa.Column("vendor", sa.String(20), primary_key=True),
        sa.Column("case_id", sa.String(200), primary_key=True),
        sa.Column("account_id", sa.String(200)),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("body", sa.JSON, nullable=False),  # policies.codec.case_to_json
        # The earliest instant planning the case could yield anything (policies.due); NULL:
        # never without a change.
        sa.Column("next_due", sa.DateTime(timezone=True)),
        # Changed (itself, its account, or a case its account's totals count) since it was
        # last planned: it is planned in the next turn, whatever ``next_due`` says.
        sa.Column("changed", sa.Boolean, nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        # The full read that last stored it: what a full read did not see has left the vendor.
        sa.Column("read_id", sa.String(32)),
        sa.Index("ix_case_store_due", "tenant", "next_due"),
        sa.Index("ix_case_store_changed", "tenant", "changed"),
        sa.Index("ix_case_store_account", "tenant", "account_id"),
    )
    accounts = sa.Table(
        "account_store",
        metadata,
        sa.Column("tenant", sa.String(100), primary_key=True),
        sa.Column("vendor", sa.String(20), primary_key=True),
        sa.Column("account_id", sa.String(200), primary_key=True),
        sa.Column("body", sa.JSON, nullable=False),  # policies.codec.account_to_json
        sa.Column("read_id", sa.String(32)),
    )
    # Cases a verified vendor webhook named (worker.webhooks): read on their own at the tenant's
    # next sync, ahead of the vendor's change feed (Zendesk's exports leave the last minute out).
    pushed = sa.Table(
        "sync_pushed",
        metadata,
        sa.Column("tenant", sa.String(100), primary_key=True),
        sa.Column("vendor", sa.String(20), primary_key=True),
        sa.Column("case_id", sa.String(200), primary_key=True),
        sa.Column("pushed_at", sa.DateTime(timezone=True), nullable=False),
    )
    return SyncTables(cursors, cases, accounts, pushed)
