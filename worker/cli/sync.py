"""``followup sync``: the case store and its cursors (issue 13), per tenant and vendor.

``--status`` shows, per tenant and vendor, how old the cursor is, when the vendor
was last read in full, how many cases the store holds, how many a cycle now would plan, and how
many cursors the vendor refused (read in full instead). ``--rebuild`` forgets a tenant's store
and cursors and reads its vendors in full at once, holding the tenant's lease meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.table import Table

from policies.model import Source
from worker.cli.runtime import fail, start
from worker.delivery.ledger import LeaseLost, Ledger, LedgerError
from worker.runtime.cycle import Runtime, sync_tenant
from worker.runtime.tenants import TenantRoster
from worker.runtime.wiring import WiringError, open_lease_keeper, open_runtime
from worker.settings import Settings
from worker.sync.store import CaseStore, VendorStatus
from worker.terminal import plain_console

__all__ = ["register"]

_out = plain_console(soft_wrap=True)
_progress = plain_console(stderr=True, soft_wrap=True)  # stdout stays the table or the JSON


def register(app: typer.Typer) -> None:
    app.command("sync")(sync)


def sync(
    rebuild: Annotated[
        bool,
        typer.Option(
            "--rebuild",
            envvar="FOLLOWUP_SYNC_REBUILD",
            help="Forget the store and cursors and read every vendor in full now.",
        ),
    ] = False,
    status: Annotated[
        bool,
        typer.Option(
            "--status",
            envvar="FOLLOWUP_SYNC_STATUS",
            help="Show cursors, store size and cases due per tenant and vendor.",
        ),
    ] = False,
    tenant: Annotated[
        str | None,
        typer.Option(envvar="FOLLOWUP_SYNC_TENANT", help="Only this tenant (default: all)."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", envvar="FOLLOWUP_JSON", help="Print as JSON.")
    ] = False,
) -> None:
    """The case store each cycle plans from: its state (--status), or rebuilt (--rebuild)."""
    if not (status or rebuild):
        fail("`sync` needs --status or --rebuild")
    settings, roster, ledger = start()
    errors: list[str] = []
    try:
        if rebuild:
            errors = asyncio.run(_rebuild(settings, roster, ledger, tenant))
            for line in errors:
                typer.echo(f"followup: {line}", err=True)
        _show(ledger, tenant, as_json)
        if errors:
            raise typer.Exit(1)
    except (WiringError, LedgerError) as exc:
        fail(str(exc))
    finally:
        ledger.close()


async def _rebuild(
    settings: Settings, roster: TenantRoster, ledger: Ledger, only: str | None
) -> list[str]:
    """Drop and read in full each tenant asked for; one line per vendor that failed."""
    errors: list[str] = []
    with open_lease_keeper(settings) as leases:
        async with open_runtime(settings, ledger, roster=roster, leases=leases) as runtime:
            tenants = [t for t in runtime.tenants if only is None or t.name == only]
            if not tenants:
                raise WiringError(f"no tenant {only!r} is configured")
            for tenant in tenants:
                errors += await _rebuild_tenant(runtime, tenant.name)
    return errors


async def _rebuild_tenant(runtime: Runtime, name: str) -> list[str]:
    tenant = next(t for t in runtime.tenants if t.name == name)
    if runtime.leases is not None:
        runtime.leases.refresh([name])
        if not runtime.holds(name):
            return [f"{name}: another replica works it now; its store was left as it is"]
    fence = runtime.fence(name)
    errors: list[str] = []
    try:
        runtime.store.drop(name, fence=fence)
        syncing = tenant.syncing()
        if syncing is None:
            _progress.print(f"{name}: its vendors are read in full every cycle; no store to read")
            return errors

        def failed(source: Source, exc: Exception) -> None:
            errors.append(f"{name}: {source.value}: {type(exc).__name__}: {exc}")

        figures = await sync_tenant(tenant, syncing, runtime, failed)
    except LeaseLost as exc:
        return [str(exc)]
    stored = runtime.store.size(name)
    _progress.print(f"{name}: {figures.cases} cases read in full, {stored} stored")
    return errors


def _show(ledger: Ledger, tenant: str | None, as_json: bool) -> None:
    now = datetime.now(UTC)
    rows = CaseStore(ledger.engine).status(now, None if tenant is None else [tenant])
    if as_json:
        json.dump([row.as_dict(now) for row in rows], sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    if not rows:
        _out.print("no case store yet: the first cycle of a tenant whose vendors sync makes it")
        return
    table = Table(title="case store")
    for column in ("tenant", "vendor", "cursor age", "last full read", "cases", "due now"):
        table.add_column(column)
    table.add_column("fallbacks")
    for row in rows:
        table.add_row(
            row.tenant,
            row.vendor,
            _age(row, now),
            "never" if row.full_read_at is None else f"{row.full_read_at:%Y-%m-%d %H:%M} UTC",
            str(row.cases),
            str(row.due),
            str(row.fallbacks),
        )
    _out.print(table)


def _age(row: VendorStatus, now: datetime) -> str:
    if row.cursor_at is None:
        return "none (next read in full)"
    return str(timedelta(seconds=round((now - row.cursor_at).total_seconds())))
