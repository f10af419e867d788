"""Settings in, a :class:`~worker.cycle.Runtime` out: policies, calendar, mapping, connectors.

This is the only module that knows the concrete connector classes and the planner; the cycle
and the executor only know the Protocol and a plan function. ``transports`` (per vendor) is
the seam the demo and the tests use to point the real connectors at an in-process sandbox.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager
from datetime import datetime

import httpx

from connectors.asana import AsanaConnector
from connectors.base import Connector
from connectors.errors import MappingError
from connectors.intercom import IntercomConnector
from connectors.mapping import IntercomMapping, TenantMapping, ZendeskMapping, load_mapping
from connectors.settings import Timeouts, VendorLimits
from connectors.zendesk import ZendeskConnector
from policies.calendar import BusinessCalendar
from policies.language import BUNDLED_PACK, load_pack
from policies.model import Account, Case, PlanItem, Source, Unjudged
from policies.planner import plan
from policies.rules import compile_pack
from policies.yamlsource import SourceError
from worker.cycle import PlanFunction, Runtime, Tenant
from worker.ledger import Ledger
from worker.metrics import MeteredTransport, Metrics
from worker.settings import Settings, VendorSettings

__all__ = ["DEFAULT_TENANT", "WiringError", "build_connectors", "build_planner", "open_runtime"]

DEFAULT_TENANT = "default"


class WiringError(Exception):
    """The policies, the tenant mapping or the vendor settings do not fit together."""


def build_planner(settings: Settings) -> PlanFunction:
    """The policy pack (``FOLLOWUP_POLICIES`` or the bundled one) compiled, calendar bound."""
    folder = settings.policies or BUNDLED_PACK
    try:
        rulebook = compile_pack(load_pack(folder))
    except SourceError as exc:
        raise WiringError(f"invalid policies in {folder}:\n{exc}") from exc
    calendar = BusinessCalendar(
        timezone=settings.timezone,
        country=settings.holidays_country,
        subdivision=settings.holidays_subdivision,
    )

    def plan_for_tenant(
        cases: Iterable[Case], accounts: Mapping[str, Account], now: datetime
    ) -> Iterator[PlanItem | Unjudged]:
        return plan(cases, accounts, now, rulebook, calendar)

    return plan_for_tenant


def _mapping(settings: Settings) -> TenantMapping:
    if settings.mapping is None:
        return TenantMapping()
    try:
        return load_mapping(settings.mapping)
    except (MappingError, OSError) as exc:
        raise WiringError(str(exc)) from exc


def build_connectors(
    settings: Settings,
    metrics: Metrics,
    transports: Mapping[Source, httpx.AsyncBaseTransport] | None = None,
) -> dict[Source, Connector]:
    """One connector per configured vendor (URL and token set), counted by ``metrics``."""
    mapping = _mapping(settings)
    timeouts = Timeouts(
        connect=settings.http_connect_timeout,
        read=settings.http_timeout,
        write=settings.http_timeout,
    )
    connectors: dict[Source, Connector] = {}
    for vendor in settings.vendors:
        inner = (transports or {}).get(vendor.source)
        transport = MeteredTransport(metrics, vendor.source.value, inner)
        limits = VendorLimits(requests_per_minute=vendor.rate_limit_per_minute)
        connectors[vendor.source] = _connect(vendor, mapping, limits, timeouts, transport)
    return connectors


def _connect(
    vendor: VendorSettings,
    mapping: TenantMapping,
    limits: VendorLimits,
    timeouts: Timeouts,
    transport: httpx.AsyncBaseTransport,
) -> Connector:
    token = vendor.token.get_secret_value()
    if vendor.source is Source.ZENDESK:
        assert vendor.email is not None  # Settings refuses a Zendesk token without an email
        return ZendeskConnector.connect(
            vendor.base_url,
            vendor.email,
            token,
            mapping.zendesk or ZendeskMapping(),
            limits=limits,
            timeouts=timeouts,
            transport=transport,
            plans=mapping.plans,
        )
    if vendor.source is Source.INTERCOM:
        return IntercomConnector.connect(
            vendor.base_url,
            token,
            mapping.intercom or IntercomMapping(),
            limits=limits,
            timeouts=timeouts,
            transport=transport,
            plans=mapping.plans,
        )
    if mapping.asana is None:
        raise WiringError(
            "Asana is configured but the tenant mapping (FOLLOWUP_MAPPING) names no asana project"
        )
    return AsanaConnector.connect(
        vendor.base_url,
        token,
        mapping.asana,
        limits=limits,
        timeouts=timeouts,
        transport=transport,
    )


@asynccontextmanager
async def open_runtime(
    settings: Settings,
    ledger: Ledger,
    *,
    metrics: Metrics | None = None,
    transports: Mapping[Source, httpx.AsyncBaseTransport] | None = None,
) -> AsyncIterator[Runtime]:
    """A runtime for the configured tenant; its connectors are closed on exit."""
    planner = build_planner(settings)
    metrics = metrics or Metrics()
    connectors = build_connectors(settings, metrics, transports)
    if not connectors:
        raise WiringError(
            "no vendor configured: set FOLLOWUP_ZENDESK_URL and FOLLOWUP_ZENDESK_TOKEN "
            "(or the Intercom / Asana pair)"
        )
    try:
        yield Runtime(
            ledger=ledger,
            metrics=metrics,
            tenants=[Tenant(DEFAULT_TENANT, connectors, planner)],
            configured_dry_run=settings.dry_run,
            concurrency=settings.concurrency,
        )
    finally:
        for connector in connectors.values():
            await connector.aclose()
