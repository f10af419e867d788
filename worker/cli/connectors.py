"""``followup connectors check``: does the tenant mapping match what the vendors have?"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from connectors.errors import ConnectorError
from connectors.mapping import TenantMapping, load_mapping
from connectors.resolution import NameCheck
from connectors.settings import VendorEnv
from connectors.tenant import VendorConnector, build_connectors
from worker.terminal import plain_console

__all__ = ["connectors_app"]

connectors_app = typer.Typer(help="Vendor connectors: Zendesk, Intercom, Asana.")


async def _check(connector: VendorConnector) -> list[NameCheck]:
    async with connector:
        try:
            return await connector.check()
        except ConnectorError as exc:
            return [NameCheck(str(connector.source), "vendor", f"unreachable: {exc}", None)]


async def _check_all(connectors: list[VendorConnector]) -> list[NameCheck]:
    results = await asyncio.gather(*(_check(c) for c in connectors))
    return [check for result in results for check in result]


def _unconfigured(mapping: TenantMapping, used: set[str]) -> list[NameCheck]:
    mapped = {"zendesk": mapping.zendesk, "intercom": mapping.intercom, "asana": mapping.asana}
    return [
        NameCheck(vendor, "vendor", f"FOLLOWUP_{vendor.upper()}_URL / _TOKEN not set", None)
        for vendor, section in mapped.items()
        if section is not None and vendor not in used
    ]


@connectors_app.command("check")
def check(
    mapping: Annotated[
        Path,
        typer.Option(
            "--mapping",
            envvar="FOLLOWUP_MAPPING",
            exists=True,
            dir_okay=False,
            help="Tenant mapping file (YAML).",
        ),
    ],
) -> None:
    """Call each configured vendor once, read only, and report which mapped names resolve."""
    console = plain_console()
    try:
        tenant = load_mapping(mapping)
    except ConnectorError as exc:
        console.print(Text(str(exc), style="red"))
        raise typer.Exit(2) from exc
    connectors = build_connectors(VendorEnv(), tenant)
    checks = asyncio.run(_check_all(connectors))
    checks += _unconfigured(tenant, {str(c.source) for c in connectors})
    table = Table(title=f"Tenant mapping {mapping}")
    for column in ("vendor", "kind", "name", "resolved"):
        table.add_column(column)
    for row in checks:
        resolved = Text(str(row.resolved), "green") if row.ok else Text("not found", "red")
        table.add_row(row.vendor, row.kind, row.name, resolved)
    console.print(table)
    for row in checks:
        if row.kind == "role" and not row.ok:  # one whole line, not a wrapped table cell
            console.print(Text(f"{row.vendor}: {row.name}", "red"), soft_wrap=True)
    missing = sum(not row.ok for row in checks)
    if missing:
        console.print(Text(f"{missing} name(s) could not be resolved", "red"))
        raise typer.Exit(1)
    console.print(Text("every mapped name resolved", "green"))
