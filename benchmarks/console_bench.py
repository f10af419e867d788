"""How long each console page takes to render, on a ledger the size of a busy deployment.

The ledger gets ``--tenants`` tenants sharing ``--cases`` cases, each case with a planned
follow-up (intent + attempt) and every fifth with a live one too; each tenant has its full
tail of recorded turns (``TURNS_KEPT``) with unreadable records and errors in them; the
dry-run switch has its full audit log; and 200 cycles are on record. The pages that read the
vendors (today and ahead, a case's explanation) read in-memory fake vendors holding
``--vendor-cases`` synthetic cases per tenant: their time is the planner's over those, plus
the page.

Each page is requested ``--repeat`` times in-process (Starlette's app through httpx's ASGI
transport: no network); the median and the slowest are printed, in milliseconds of wall
time (the machine may be shared: run it twice).

    python benchmarks/console_bench.py
    python benchmarks/console_bench.py --database-url postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path

import httpx
import sqlalchemy as sa

from connectors.fake import FakeConnector
from policies.model import Action, ActionType, Case, PlanItem, Source, idempotency_key
from policies.synthetic import synthetic_accounts, synthetic_cases
from worker.console import ConsoleSetup, TenantView
from worker.console.live import MappingChecks
from worker.delivery.ledger import SWITCH_CHANGES_KEPT, TURNS_KEPT, Ledger, Outcome, TenantTurn
from worker.metrics import Metrics
from worker.runtime.cycle import Runtime, Tenant
from worker.runtime.switches import DRY_RUN
from worker.runtime.web import ServiceStatus, create_app
from worker.runtime.wiring import build_calendar, build_planner, build_rulebook
from worker.settings import Settings

AT = datetime(2026, 3, 11, 15, 0, tzinfo=UTC)  # a Wednesday
TOKEN = "bench-admin-token"


def _item(case: Case, tenant: str) -> PlanItem:
    return PlanItem(
        case=case,
        policy="awaiting-customer",
        rule="Day 3: first follow-up",
        step=1,
        max_steps=3,
        actions=(Action(ActionType.NOTE, {"body": "follow-up 1/3"}),),
        reason="pending; 3 business days without reply; step 1 of 3",
        key=idempotency_key("awaiting-customer", f"{tenant}/{case.ref}", 1, "bench"),
    )


def fill(ledger: Ledger, tenants: list[str], cases: int) -> str:
    """The ledger as described above; returns a case ref with history, for the case page."""
    per_tenant = cases // len(tenants)
    for tenant in tenants:
        made = list(islice(synthetic_cases(per_tenant, AT), per_tenant))
        items = [_item(case, tenant) for case in made]
        ledger.record_planned(
            [(item, "dry-run") for item in items],
            tenant=tenant,
            cycle_id="bench-dry",
            at=AT,
            recorded_at=AT,
        )
        for item in items[::5]:
            attempt = ledger.begin(
                item, tenant=tenant, cycle_id="bench-live", dry_run=False, at=AT, started_at=AT
            )
            ledger.finish(attempt, Outcome.APPLIED, finished_at=AT, calls=1, request_ids=["r"])
        for n in range(TURNS_KEPT):
            started = AT - timedelta(minutes=15 * n)
            ledger.record_turn(
                TenantTurn(
                    tenant=tenant,
                    cycle_id=f"bench-{n}",
                    at=started,
                    dry_run=n % 2 == 0,
                    started_at=started,
                    finished_at=started + timedelta(seconds=40),
                    ok=n % 7 != 0,
                    figures=_figures(tenant),
                )
            )
    for n in range(SWITCH_CHANGES_KEPT):
        ledger.set_switch(
            DRY_RUN,
            "on" if n % 2 else "off",
            by=f"operator {n}",
            at=AT - timedelta(hours=n),
            reason="bench",
        )
    for n in range(200):
        ledger.start_cycle(f"cycle-{n}", at=AT, dry_run=False, started_at=AT)
        ledger.finish_cycle(
            f"cycle-{n}",
            ok=True,
            summary={"unreadable": [_figures(t)["unreadable"] for t in tenants[:3]]},
            finished_at=AT,
        )
    return made[0].ref


def _figures(tenant: str) -> dict[str, object]:
    return {
        "cases": 5000,
        "planned": 800,
        "counts": {"applied": 700, "failed": 20, "skipped": 80},
        "failed": 20,
        "unjudged": 3,
        "reconciled": 0,
        "errors": [f"{tenant}: zendesk: ReadTimeout()"] * 3,
        "error_count": 3,
        "unreadable": {
            "tenant": tenant,
            "counts": {"zendesk": 20},
            "records": [
                {"vendor": "zendesk", "id": str(n), "reason": "status: unknown value 'weird'"}
                for n in range(20)
            ],
        },
        "vendors": {"zendesk": {"calls": 900, "throttled": 4, "retries": 6}},
    }


def setup(tenants: list[str], vendor_cases: int) -> tuple[list[Tenant], ConsoleSetup]:
    settings = Settings(
        zendesk_url="https://bench.zendesk.example",
        zendesk_token="bench-token",
        zendesk_email="bench@example.com",
        _env_file=None,  # type: ignore[call-arg]
    )
    calendar = build_calendar(settings)
    accounts = list(synthetic_accounts().values())
    served = []
    views = {}
    for name in tenants:
        fake = FakeConnector(
            Source.ZENDESK, synthetic_cases(vendor_cases, AT), accounts, clock=lambda: AT
        )
        tenant = Tenant(name, {Source.ZENDESK: fake}, build_planner(settings, calendar))
        served.append(tenant)
        views[name] = TenantView(tenant, settings, calendar, build_rulebook(settings))
    return served, ConsoleSetup(views, [], settings.zone, MappingChecks())


async def measure(app: object, pages: dict[str, str], repeat: int) -> dict[str, list[float]]:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    headers = {"Authorization": f"Bearer {TOKEN}"}
    timings: dict[str, list[float]] = {}
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        for name, path in pages.items():
            for _ in range(repeat):
                started = time.perf_counter()
                response = await client.get(path, headers=headers)
                timings.setdefault(name, []).append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, (path, response.status_code)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--vendor-cases", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    names = [f"tenant-{n:02d}" for n in range(args.tenants)]
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite:///{Path(folder) / 'ledger.sqlite3'}"
        schema = None
        if url.startswith("postgresql"):
            schema = f"bench_{uuid.uuid4().hex[:8]}"
            engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
            with engine.begin() as conn:
                conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
            url = f"{url}?options=-csearch_path%3D{schema}"
        ledger = Ledger.open(url)
        try:
            started = time.perf_counter()
            case_ref = fill(ledger, names, args.cases)
            print(
                f"ledger filled in {time.perf_counter() - started:.0f} s: {args.tenants} "
                f"tenants, {args.cases:,} cases ({url.split(':')[0]})"
            )
            served, console = setup(names, args.vendor_cases)
            runtime = Runtime(ledger=ledger, metrics=Metrics(), tenants=served, clock=lambda: AT)
            app = create_app(runtime, ServiceStatus(), admin_token=TOKEN, console=console)
            pages = {
                "now": "/console/",
                "dry-run": "/console/dry-run",
                "policies": "/console/policies",
                f"case (+ vendor read of {args.vendor_cases})": (
                    f"/console/case?tenant={names[0]}&ref={case_ref}"
                ),
                f"ahead 5 days (+ vendor read of {args.vendor_cases})": (
                    f"/console/ahead?tenant={names[0]}&days=5"
                ),
            }
            timings = asyncio.run(measure(app, pages, args.repeat))
        finally:
            ledger.close()
            if schema is not None:
                with engine.begin() as conn:
                    conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
    for page, ms in timings.items():
        print(f"{page:<40} median {statistics.median(ms):7.1f} ms   slowest {max(ms):7.1f} ms")


if __name__ == "__main__":
    main()
