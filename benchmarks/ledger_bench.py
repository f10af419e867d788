"""How fast replicas record follow-ups in a shared ledger, each working only the tenants it leases.

Each replica is a separate process: it heartbeats, waits until all replicas are up, takes its
fair share of the tenants, then for every item of its tenants does what the executor does
around a vendor write - record the intent in a transaction that first checks the lease still
holds (the fence), record the outcome. The vendor call itself is left out: this measures the
ledger and lease overhead only.

    python benchmarks/ledger_bench.py                       # SQLite, one process
    python benchmarks/ledger_bench.py --database-url postgresql://postgres@127.0.0.1:5432/test \\
        --replicas 1 2 4

On PostgreSQL each run gets a schema of its own, dropped afterwards. SQLite is one process by
design (its leases are the single-process stand-in), so it runs with one replica only.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from policies.model import (
    Action,
    ActionType,
    Case,
    CaseKind,
    PlanItem,
    Source,
    Status,
    idempotency_key,
)
from worker.delivery.ledger import Ledger, Outcome, engine_url
from worker.runtime.leases import LeaseKeeper, tenant_leases_for

TTL = timedelta(seconds=30)
AT = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class ReplicaRun:
    tenants: int
    items: int
    seconds: float
    refresh_ms: float
    intent_ms: list[float]  # the fenced intent alone
    ledger_ms: list[float]


def plan_item(tenant: str, n: int, run_id: str) -> PlanItem:
    case = Case(
        source=Source.ZENDESK,
        id=f"{tenant}-{n}",
        kind=CaseKind.TICKET,
        status=Status.PENDING,
        created_at=AT - timedelta(days=3),
        updated_at=AT - timedelta(days=2),
        account_id=tenant,
        updated_stamp="1",
    )
    return PlanItem(
        case=case,
        policy="general-inquiry",
        rule="awaiting-customer",
        step=1,
        max_steps=3,
        actions=(Action(ActionType.NOTE, {"body": "follow-up 1/3"}),),
        reason="pending; step 1 of 3",
        key=idempotency_key("general-inquiry", case.ref, 1, run_id),
    )


def replica(
    url: str, name: str, replicas: int, tenants: int, items: int, run_id: str
) -> ReplicaRun:
    ledger = Ledger.open(url)
    keeper = LeaseKeeper(tenant_leases_for(sa.create_engine(engine_url(url))), name, TTL)
    tenant_ids = [f"tenant-{n:03d}" for n in range(tenants)]
    # Claim only once every replica is counted, or the first one up would take everything.
    keeper.leases.heartbeat(name, TTL)
    while keeper.leases.live_replicas() < replicas:
        time.sleep(0.01)
    started = time.perf_counter()
    keeper.refresh(tenant_ids)
    refresh_ms = (time.perf_counter() - started) * 1000

    intent_ms: list[float] = []
    ledger_ms: list[float] = []
    started = time.perf_counter()
    for lease in keeper.held():

        def fence(conn: sa.Connection, tenant: str = lease.tenant_id) -> bool:
            return keeper.still_holds(tenant, within=conn)

        for n in range(items):
            t0 = time.perf_counter()
            attempt = ledger.begin(
                plan_item(lease.tenant_id, n, run_id),
                tenant=lease.tenant_id,
                cycle_id=run_id,
                dry_run=False,
                at=AT,
                started_at=datetime.now(UTC),
                fence=fence,
            )
            t1 = time.perf_counter()
            ledger.finish(attempt, Outcome.APPLIED, finished_at=datetime.now(UTC), calls=1)
            t2 = time.perf_counter()
            intent_ms.append((t1 - t0) * 1000)
            ledger_ms.append((t2 - t0) * 1000)
    seconds = time.perf_counter() - started
    held = len(keeper.held())
    keeper.shutdown()
    ledger.close()
    return ReplicaRun(held, held * items, seconds, refresh_ms, intent_ms, ledger_ms)


def run(url: str, replicas: int, tenants: int, items: int) -> list[ReplicaRun]:
    run_id = uuid.uuid4().hex[:8]
    Ledger.open(url).close()  # migrate once, before the replicas race to
    tenant_leases_for(sa.create_engine(engine_url(url))).create_tables()
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(replicas, mp_context=spawn) as pool:
        futures = [
            pool.submit(replica, url, f"bench-{n}", replicas, tenants, items, run_id)
            for n in range(replicas)
        ]
        return [future.result() for future in futures]


def p(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


def report(backend: str, replicas: int, runs: list[ReplicaRun]) -> None:
    items = sum(r.items for r in runs)
    wall = max(r.seconds for r in runs)
    intent = [ms for r in runs for ms in r.intent_ms]
    ledger = [ms for r in runs for ms in r.ledger_ms]
    print(
        f"{backend:<10} replicas={replicas}  tenants/replica={sorted(r.tenants for r in runs)}  "
        f"items={items}  {items / wall:7.0f} items/s  "
        f"ledger p50={p(ledger, 50):.2f} ms p95={p(ledger, 95):.2f} ms  "
        f"(fenced intent p50={p(intent, 50):.2f} ms)  "
        f"first refresh max={max(r.refresh_ms for r in runs):.1f} ms"
    )


def postgres_schema_url(url: str) -> tuple[str, sa.Engine, str]:
    admin = sa.create_engine(engine_url(url))
    schema = f"ledger_bench_{uuid.uuid4().hex[:8]}"
    with admin.begin() as conn:
        conn.execute(sa.schema.CreateSchema(schema))
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options=-csearch_path%3D{schema}", admin, schema


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="postgresql://... (default: a temporary SQLite)")
    parser.add_argument("--replicas", type=int, nargs="+", default=[1])
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--items-per-tenant", type=int, default=100)
    args = parser.parse_args()

    for replicas in args.replicas:
        if args.database_url is None:
            if replicas != 1:
                parser.error("SQLite serves one process; use --database-url postgresql://...")
            with tempfile.TemporaryDirectory() as folder:
                url = f"sqlite:///{Path(folder) / 'ledger.sqlite3'}"
                report("sqlite", 1, run(url, 1, args.tenants, args.items_per_tenant))
            continue
        url, admin, schema = postgres_schema_url(args.database_url)
        try:
            report("postgres", replicas, run(url, replicas, args.tenants, args.items_per_tenant))
        finally:
            with admin.begin() as conn:
                conn.execute(sa.schema.DropSchema(schema, cascade=True))
            admin.dispose()


if __name__ == "__main__":
    main()
