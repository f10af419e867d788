"""Benchmark (a script, not a test): the worker's own overhead and a whole cycle.

1. Ledger: plan items recorded per second (look-up, intent, outcome), SQLite file and, when
   reachable, the local PostgreSQL (in a throw-away schema).
2. Cycles against a fresh sandbox without rate limits (so the numbers are the worker's and
   the connector's, not the pacing): a dry-run cycle, a live one, and a second live one right
   after, which must write nothing. Prints wall time, cases, plan items and vendor calls.

    python benchmarks/worker_bench.py --tickets 2000
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import sqlalchemy as sa

from policies.model import Action, ActionType, Case, CaseKind, PlanItem, Source, Status
from sandbox.server import run_in_thread
from worker.delivery.ledger import Ledger, Outcome
from worker.logs import configure_logging
from worker.runtime.cycle import run_cycle
from worker.runtime.wiring import open_runtime
from worker.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
START = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)
POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


def _item(n: int) -> PlanItem:
    case = Case(Source.ZENDESK, str(n), CaseKind.TICKET, Status.PENDING, START, START)
    return PlanItem(
        case, "bench", "rule", 1, 3, (Action(ActionType.NOTE, {"body": "x"}),), "bench", f"k{n}"
    )


def bench_ledger(url: str, items: int) -> None:
    ledger = Ledger.open(url)
    started = time.perf_counter()
    for n in range(items):
        item = _item(n)
        ledger.latest_outcome(item.key, tenant="t")
        attempt = ledger.begin(
            item, tenant="t", cycle_id="c", dry_run=False, at=START, started_at=START
        )
        ledger.finish(attempt, Outcome.APPLIED, finished_at=START)
    elapsed = time.perf_counter() - started
    ledger.close()
    print(f"ledger {url.split(':')[0]:>10}: {items / elapsed:6.0f} items/s")


def bench_postgres(items: int) -> None:
    admin = sa.create_engine(POSTGRES.replace("postgresql://", "postgresql+psycopg://"))
    schema = f"followup_bench_{uuid.uuid4().hex[:8]}"
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError:
        print("ledger postgresql: not reachable, skipped")
        return
    try:
        bench_ledger(f"{POSTGRES}?options=-csearch_path%3D{schema}", items)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


async def bench_cycles(tickets: int, workdir: Path) -> None:
    with run_in_thread(tickets=tickets, start=START, frozen_clock=True, limits={}) as sandbox:
        settings = Settings(
            zendesk_url=sandbox.urls["zendesk"],  # type: ignore[arg-type]
            zendesk_email=sandbox.config.zendesk_email,
            zendesk_token=sandbox.config.zendesk_token,  # type: ignore[arg-type]
            zendesk_rate_limit=1_000_000,
            mapping=ROOT / "deploy" / "mapping.sandbox.yaml",
            database_url=f"sqlite:///{workdir / 'ledger.sqlite3'}",
        )
        ledger = Ledger.open(settings.database_url)
        for label, dry_run in (("dry-run", True), ("live", False), ("live again", False)):
            httpx.post(f"{sandbox.urls['admin']}/reset-stats")
            async with open_runtime(settings, ledger) as runtime:
                summary = await run_cycle(runtime, at=START, dry_run=dry_run)
            stats = httpx.get(f"{sandbox.urls['admin']}/stats").json()["total"]
            print(
                f"cycle {label:>10}: {summary.duration_s:6.1f} s, {summary.cases} cases, "
                f"{summary.planned} items ({dict(summary.counts)}), "
                f"{stats['reads']} reads, {stats['writes']} writes"
            )
        ledger.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=2000)
    parser.add_argument("--ledger-items", type=int, default=1000)
    args = parser.parse_args()
    configure_logging(secrets=(), log_format="json", level="error")  # numbers only on stdout
    with tempfile.TemporaryDirectory() as workdir:
        bench_ledger(f"sqlite:///{Path(workdir) / 'bench.sqlite3'}", args.ledger_items)
        bench_postgres(args.ledger_items)
        asyncio.run(bench_cycles(args.tickets, Path(workdir)))


if __name__ == "__main__":
    main()
