"""What the console knows of the deployment besides the runtime, built once at start."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from worker.console.live import MappingChecks, TenantView
from worker.runtime.cycle import Runtime
from worker.runtime.tenants import BrokenTenant, TenantRoster
from worker.runtime.wiring import build_calendar, build_rulebook
from worker.settings import Settings

__all__ = ["ConsoleSetup", "console_setup"]


@dataclass(frozen=True, slots=True)
class ConsoleSetup:
    """Each served tenant's view (by name, in roster order), the tenants left out, the
    deployment's time zone and the cached check of the mapped names."""

    tenants: Mapping[str, TenantView]
    broken: Sequence[BrokenTenant]
    zone: ZoneInfo
    checks: MappingChecks


def console_setup(settings: Settings, roster: TenantRoster, runtime: Runtime) -> ConsoleSetup:
    """The console's view of the tenants ``runtime`` serves (those that wired up); the others
    are listed as left out, with their reason."""
    configured = {tenant.name: tenant.settings for tenant in roster.tenants}
    views = {}
    for tenant in runtime.tenants:
        tenant_settings = configured[tenant.name]
        views[tenant.name] = TenantView(
            tenant,
            tenant_settings,
            build_calendar(tenant_settings),
            build_rulebook(tenant_settings),
        )
    served = set(views)
    broken = [*roster.broken]
    broken += [
        BrokenTenant(name, "left out at start: its configuration is wrong (see the logs)")
        for name in configured
        if name not in served
    ]
    return ConsoleSetup(views, broken, settings.zone, MappingChecks())
