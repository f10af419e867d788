"""Settings in, a :class:`~worker.runtime.cycle.Runtime` out: policies, calendar, mapping,
connectors.

This is the only module of the runtime that knows the planner and how connectors are built
(``connectors.tenant``); the cycle and the executor only know the Protocol and a plan
function. ``transport`` is the seam the demo and the tests use to point the real connectors
at an in-process sandbox; whatever it is, :class:`~worker.metrics.MeteredTransport` counts
the calls going through it, per tenant. Each tenant's connectors report the records they
cannot read into that tenant's :class:`~worker.runtime.badrecords.BadRecordTally`, which its cycle
turn counts.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import sqlalchemy as sa
import structlog

from connectors.errors import MappingError
from connectors.mapping import TenantMapping, load_mapping
from connectors.records import Report, log_bad_record
from connectors.settings import ConnectorLimits, Timeouts, VendorEnv
from connectors.tenant import VendorConnector
from connectors.tenant import build_connectors as build_vendor_connectors
from policies.calendar import BusinessCalendar
from policies.due import next_due
from policies.language import BUNDLED_PACK, load_pack
from policies.model import Account, Case, PlanItem, Source, Unjudged
from policies.planner import plan
from policies.rules import Rulebook, compile_pack
from policies.yamlsource import SourceError
from worker.delivery.ledger import Ledger, engine_url, sole_writer
from worker.metrics import MeteredTransport, Metrics
from worker.runtime.badrecords import BadRecordTally
from worker.runtime.cycle import NextDue, PlanFunction, Runtime, Tenant
from worker.runtime.leases import LeaseKeeper, new_replica_id, tenant_leases_for
from worker.runtime.tenants import (
    DEFAULT_TENANT,
    BrokenTenant,
    TenantRoster,
    TenantSettings,
    load_tenants,
)
from worker.settings import Settings

__all__ = [
    "DEFAULT_TENANT",
    "WiringError",
    "build_calendar",
    "build_connectors",
    "build_next_due",
    "build_planner",
    "build_rulebook",
    "connector_limits",
    "open_lease_keeper",
    "open_runtime",
    "unresolved_names",
]

log = structlog.get_logger("followup.wiring")


class WiringError(Exception):
    """The policies, the tenant mapping or the vendor settings do not fit together."""


def build_calendar(settings: Settings) -> BusinessCalendar:
    return BusinessCalendar(
        timezone=settings.timezone,
        country=settings.holidays_country,
        subdivision=settings.holidays_subdivision,
        workdays=settings.workday_numbers,
    )


@functools.cache
def _compiled_pack(folder: Path, overrides: tuple[tuple[str, str], ...]) -> Rulebook:
    # Tenants usually share a pack (the bundled one, or a company-wide folder); parsing its
    # YAML is most of a tenant's start-up time, so each folder is compiled once per process.
    return compile_pack(load_pack(folder, dict(overrides)))


def build_rulebook(settings: Settings) -> Rulebook:
    """The pack with its settings chosen (``FOLLOWUP_POLICY_SETTINGS``, ``--set``): the very
    rulebook ``followup plan`` previews with the same choices."""
    folder = settings.policies or BUNDLED_PACK
    try:
        return _compiled_pack(folder.resolve(), tuple(sorted(settings.policy_overrides.items())))
    except SourceError as exc:
        raise WiringError(f"invalid policies in {folder}:\n{exc}") from exc


def build_planner(settings: Settings, calendar: BusinessCalendar) -> PlanFunction:
    """The policy pack (``FOLLOWUP_POLICIES`` or the bundled one) compiled, calendar bound."""
    rulebook = build_rulebook(settings)

    def plan_for_tenant(
        cases: Iterable[Case], accounts: Mapping[str, Account], now: datetime
    ) -> Iterator[PlanItem | Unjudged]:
        return plan(cases, accounts, now, rulebook, calendar)

    return plan_for_tenant


def build_next_due(settings: Settings, calendar: BusinessCalendar) -> NextDue:
    """When each case is next owed anything, by the very pack and calendar the planner uses."""
    rulebook = build_rulebook(settings)

    def due_for_tenant(
        case: Case, accounts: Mapping[str, Account], now: datetime
    ) -> datetime | None:
        return next_due(case, accounts, now, rulebook, calendar)

    return due_for_tenant


def _mapping(settings: Settings) -> TenantMapping:
    if settings.mapping is None:
        return TenantMapping()
    try:
        return load_mapping(settings.mapping)
    except (MappingError, OSError) as exc:
        raise WiringError(str(exc)) from exc


def connector_limits(settings: Settings) -> ConnectorLimits:
    """How hard each vendor may be pushed: the connectors' defaults, with the settings' say."""
    defaults = ConnectorLimits()
    every_vendor: dict[str, float] = {"rate_window": settings.rate_window}
    if settings.http_backoff is not None:
        every_vendor["backoff_initial"] = settings.http_backoff
    return ConnectorLimits(
        zendesk=defaults.zendesk.model_copy(
            update={"requests_per_minute": settings.zendesk_rate_limit, **every_vendor}
        ),
        intercom=defaults.intercom.model_copy(
            update={"requests_per_minute": settings.intercom_rate_limit, **every_vendor}
        ),
        asana=defaults.asana.model_copy(
            update={"requests_per_minute": settings.asana_rate_limit, **every_vendor}
        ),
        timeouts=Timeouts(
            connect=settings.http_connect_timeout,
            read=settings.http_timeout,
            write=settings.http_timeout,
            export_read=settings.http_export_timeout,
        ),
    )


def build_connectors(
    settings: Settings,
    metrics: Metrics,
    transport: httpx.AsyncBaseTransport | None = None,
    *,
    tenant: str = DEFAULT_TENANT,
    report: Report = log_bad_record,
) -> dict[Source, VendorConnector]:
    """The tenant's connectors: each vendor with a URL, a token and a mapping section.

    Their calls are counted under ``tenant``; ``report`` hears of each record they skip."""
    env = VendorEnv(
        zendesk_url=None if settings.zendesk_url is None else str(settings.zendesk_url),
        zendesk_email=settings.zendesk_email,
        zendesk_token=settings.zendesk_token,
        intercom_url=None if settings.intercom_url is None else str(settings.intercom_url),
        intercom_token=settings.intercom_token,
        asana_url=None if settings.asana_url is None else str(settings.asana_url),
        asana_token=settings.asana_token,
    )
    vendors = {url: source.value for url, source in settings.vendor_urls.items()}
    metered = MeteredTransport(metrics, vendors, transport, tenant=tenant)
    built = build_vendor_connectors(
        env,
        _mapping(settings),
        connector_limits(settings),
        metered,
        report,
        # Cases no policy could plan anything for get no per-case evidence read (the pack is
        # compiled on first use: `connectors check` needs none).
        may_plan=lambda case, account: build_rulebook(settings).may_plan(case, account),
    )
    return {connector.source: connector for connector in built}


def _tenant(
    configured: TenantSettings,
    metrics: Metrics,
    transport: httpx.AsyncBaseTransport | None,
) -> Tenant:
    settings = configured.settings
    calendar = build_calendar(settings)
    planner = build_planner(settings, calendar)
    bad_records = BadRecordTally(configured.name)
    connectors = build_connectors(
        settings, metrics, transport, tenant=configured.name, report=bad_records.report
    )
    if not connectors:
        raise WiringError(
            "no vendor configured: a vendor needs its URL and token (e.g. FOLLOWUP_ZENDESK_URL, "
            "FOLLOWUP_ZENDESK_TOKEN) and a section in the tenant mapping (FOLLOWUP_MAPPING)"
        )
    return Tenant(
        configured.name,
        connectors,
        planner,
        works_on=lambda at: calendar.is_business_day(calendar.local_date(at)),
        plan_last=build_rulebook(settings).reads_account_totals,
        next_due=build_next_due(settings, calendar),
        bad_records=bad_records,
        unresolved=functools.partial(
            _unresolved, configured.name, list(connectors.values()), _mapping(settings)
        ),
    )


async def _unresolved(
    tenant: str, connectors: list[VendorConnector], mapping: TenantMapping
) -> list[str]:
    accepted = set(mapping.accept_unresolved)
    checks = [check for connector in connectors for check in await connector.check()]
    return [
        f"{tenant}: {check.vendor} {check.kind} {check.name!r} is not in {check.vendor}"
        for check in checks
        if not check.ok and check.name not in accepted
    ]


async def unresolved_names(runtime: Runtime) -> list[str]:
    """Each name a tenant's mapping gives (a field, group, agent, attribute... the policies use
    under it) that its vendor does not have, unless the tenant mapping's
    ``accept_unresolved`` lists it: one line each, naming the tenant and the entry. A live run
    stops on any before writing anything (issue 14: one run applied 1,891 follow-ups and left
    1,083 cases "not judged" for a group that did not exist)."""
    return [line for tenant in runtime.tenants for line in await tenant.unresolved()]


def _report_broken(broken: BrokenTenant, metrics: Metrics) -> None:
    log.error(
        "tenant left out: its configuration is wrong", tenant=broken.name, reason=broken.reason
    )
    metrics.tenant_broken.labels(tenant=broken.name).set(1)


@contextmanager
def open_lease_keeper(settings: Settings) -> Iterator[LeaseKeeper]:
    """Real leases when the ledger is PostgreSQL (replicas may share it), local ones otherwise,
    the SQLite ledger then held by this process alone (:func:`~worker.delivery.ledger.sole_writer`:
    raises :class:`~worker.delivery.ledger.LedgerError` when another process holds it).

    Leaving the block hands every lease back (graceful shutdown); a killed process cannot, and
    its leases lapse after ``FOLLOWUP_LEASE_TTL``.
    """
    with sole_writer(settings.database_url):
        yield from _lease_keeper(settings)


def _lease_keeper(settings: Settings) -> Iterator[LeaseKeeper]:
    engine = sa.create_engine(engine_url(settings.database_url))
    try:
        leases = tenant_leases_for(engine)
        leases.create_tables()
        keeper = LeaseKeeper(
            leases, settings.replica_id or new_replica_id(), timedelta(seconds=settings.lease_ttl)
        )
        try:
            yield keeper
        finally:
            keeper.shutdown()
    finally:
        engine.dispose()


@asynccontextmanager
async def open_runtime(
    settings: Settings,
    ledger: Ledger,
    *,
    roster: TenantRoster | None = None,
    metrics: Metrics | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    leases: LeaseKeeper | None = None,
) -> AsyncIterator[Runtime]:
    """A runtime for every tenant of ``roster`` (default: the settings' own) that wires up.

    A tenant that does not is reported and left out, so it never stops the others; only when
    none is left is that a :class:`WiringError`. Connectors are closed on exit. ``leases``:
    this replica's share of the tenants (:func:`open_lease_keeper`); None works them all.
    """
    roster = roster or load_tenants(settings)
    metrics = metrics or Metrics()
    tenants: list[Tenant] = []
    broken = list(roster.broken)
    for configured in roster.tenants:
        try:
            tenants.append(_tenant(configured, metrics, transport))
        except WiringError as exc:
            broken.append(BrokenTenant(configured.name, str(exc)))
    for tenant_left_out in broken:
        _report_broken(tenant_left_out, metrics)
    try:
        if not tenants:
            raise WiringError(
                broken[0].reason
                if len(broken) == 1
                else "no tenant can be served: "
                + "; ".join(f"{b.name}: {b.reason}" for b in broken)
            )
        yield Runtime(
            ledger=ledger,
            metrics=metrics,
            tenants=tenants,
            configured_dry_run=settings.dry_run,
            concurrency=settings.concurrency,
            leases=leases,
        )
    finally:
        for tenant in tenants:
            for connector in tenant.connectors.values():
                await connector.aclose()
