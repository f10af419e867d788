"""A ``run --once`` replica for test_run_once_replicas: six tenants behind FakeConnectors, the
real :func:`worker.runtime.service.run_once`, leases and ledger on PostgreSQL.

    python tests/integration/once_replica_child.py URL REPLICA_ID GO_FILE

Every tenant's work waits until GO_FILE exists, so the test can hold each replica on the first
tenant it claimed until all of them have claimed one (no race on who starts first). Prints its
summary as JSON on stdout.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from connectors.base import Change, KnownCase
from connectors.fake import FakeConnector
from policies.model import Account, Source
from tests.unit.worker_support import MONDAY, every_other_day, make_case
from worker.delivery.ledger import Ledger, engine_url
from worker.metrics import Metrics
from worker.runtime.cycle import Runtime, Tenant
from worker.runtime.leases import LeaseKeeper, tenant_leases_for
from worker.runtime.service import run_once

TENANTS = tuple(f"t{n}" for n in range(6))
CASES_PER_TENANT = 2


class Gated(FakeConnector):
    def __init__(self, tenant: str, go: Path) -> None:
        # Ids unique across tenants: the ledger's idempotency keys are not scoped by tenant.
        cases = [make_case(f"{tenant}-{n}") for n in range(1, CASES_PER_TENANT + 1)]
        super().__init__(Source.ZENDESK, cases, [Account("acme", "Acme")], clock=lambda: MONDAY)
        self._go = go

    async def changes(self, cursor: str | None, known: KnownCase) -> AsyncIterator[Change]:
        # The turn's first read: a tenant's sync into the case store.
        while not self._go.exists():
            await asyncio.sleep(0.01)
        async for change in super().changes(cursor, known):
            yield change


async def main(url: str, replica_id: str, go: Path) -> None:
    ledger = Ledger.open(url)
    engine = sa.create_engine(engine_url(url))
    leases = tenant_leases_for(engine)
    leases.create_tables()
    keeper = LeaseKeeper(leases, replica_id, timedelta(seconds=30))
    runtime = Runtime(
        ledger=ledger,
        metrics=Metrics(),
        tenants=[
            Tenant(name, {Source.ZENDESK: Gated(name, go)}, every_other_day) for name in TENANTS
        ],
        configured_dry_run=False,
        leases=keeper,
    )
    try:
        summary = await run_once(runtime, at=MONDAY)
    finally:
        keeper.shutdown()
        engine.dispose()
        ledger.close()
    print(json.dumps({"replica": replica_id, **summary.as_dict()}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], Path(sys.argv[3])))
