"""Prometheus metrics, in a registry of their own (so tests and the demo never share state).

Vendor traffic is counted at the connectors' ``transport=`` seam: :class:`MeteredTransport`
wraps the real transport and sees every request, so connectors need not know about metrics.
Every vendor figure carries the tenant as well as the vendor: an outsourcer serving many
helpdesks must see *which client's* Zendesk is slow or throttling, not only that one is.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import httpx
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "MeteredTransport", "Metrics", "VendorTraffic"]


@dataclass(frozen=True, slots=True)
class VendorTraffic:
    """Calls to one vendor, how many of them were answered 429 and how many were retries."""

    calls: int = 0
    throttled: int = 0
    retries: int = 0

    def __sub__(self, before: VendorTraffic) -> VendorTraffic:
        return VendorTraffic(
            self.calls - before.calls,
            self.throttled - before.throttled,
            self.retries - before.retries,
        )


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.cycles = Counter(
            "followup_cycles",
            "Cycles run, by result (ok, failed, interrupted).",
            ["result"],
            registry=self.registry,
        )
        self.cycle_duration = Histogram(
            "followup_cycle_duration_seconds",
            "Wall time of one fetch-plan-execute cycle.",
            buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800),
            registry=self.registry,
        )
        self.last_success = Gauge(
            "followup_last_success_timestamp_seconds",
            "Unix time the last cycle without failures finished.",
            registry=self.registry,
        )
        self.cases_fetched = Counter(
            "followup_cases_fetched",
            "Cases read from vendors, by tenant and vendor.",
            ["tenant", "vendor"],
            registry=self.registry,
        )
        self.sync_fallbacks = Counter(
            "followup_sync_fallbacks",
            "Sync cursors a vendor no longer honoured (read in full instead), by tenant and "
            "vendor.",
            ["tenant", "vendor"],
            registry=self.registry,
        )
        self.bad_records = Counter(
            "followup_bad_records",
            "Vendor records skipped because they cannot be read (a missing field, a wrong "
            "type, an unknown status), by tenant and vendor. The ids are in the logs.",
            ["tenant", "vendor"],
            registry=self.registry,
        )
        self.plan_items = Counter(
            "followup_plan_items",
            "Plan items (follow-ups due), by policy and step.",
            ["policy", "step"],
            registry=self.registry,
        )
        self.unjudged = Counter(
            "followup_unjudged_cases",
            "Cases no policy could judge (missing or unknown data).",
            registry=self.registry,
        )
        self.actions = Counter(
            "followup_actions",
            "Actions by type and outcome (applied, already_applied, conflict, failed, "
            "skipped for dry-run, done when the ledger already had them).",
            ["type", "outcome"],
            registry=self.registry,
        )
        self.followups = Counter(
            "followup_followups",
            "Follow-ups (plan items) settled, by tenant and outcome (as followup_actions).",
            ["tenant", "outcome"],
            registry=self.registry,
        )
        self.tenant_cycles = Counter(
            "followup_tenant_cycles",
            "Tenants worked by a cycle, by tenant and result (ok, failed).",
            ["tenant", "result"],
            registry=self.registry,
        )
        self.tenant_broken = Gauge(
            "followup_tenant_broken",
            "1 for a configured tenant left out because its configuration is wrong.",
            ["tenant"],
            registry=self.registry,
        )
        self.leases_held = Gauge(
            "followup_leases_held",
            "Tenants this replica holds the lease of (works) right now.",
            registry=self.registry,
        )
        self.tenant_lease_held = Gauge(
            "followup_tenant_lease_held",
            "1 for each configured tenant this replica holds the lease of, 0 for the others: "
            "a tenant no replica reports 1 for has no lease holder.",
            ["tenant"],
            registry=self.registry,
        )
        self.webhooks = Counter(
            "followup_webhooks",
            "Vendor webhooks received, by tenant, vendor and result: accepted, or why refused"
            " (unsigned, bad_signature, stale, replayed, malformed).",
            ["tenant", "vendor", "result"],
            registry=self.registry,
        )
        self.dry_run = Gauge(
            "followup_dry_run",
            "1 when the next cycle writes nothing (switch or FOLLOWUP_DRY_RUN), else 0.",
            registry=self.registry,
        )
        self.dry_run_switch_on_since = Gauge(
            "followup_dry_run_switch_on_since_timestamp_seconds",
            "Unix time the dry-run switch was turned on; 0 while it is off or unset.",
            registry=self.registry,
        )
        self.api_calls = Counter(
            "followup_api_calls",
            "HTTP calls to vendors, by tenant, vendor and status class.",
            ["tenant", "vendor", "status"],
            registry=self.registry,
        )
        self.api_duration = Histogram(
            "followup_api_call_duration_seconds",
            "Time from sending a vendor request to its response headers (or its failure), by "
            "tenant and vendor.",
            ["tenant", "vendor"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.api_throttled = Counter(
            "followup_api_throttled",
            "HTTP 429 responses, by tenant and vendor.",
            ["tenant", "vendor"],
            registry=self.registry,
        )
        self.api_retries = Counter(
            "followup_api_retries",
            "Retried vendor calls, by tenant and vendor.",
            ["tenant", "vendor"],
            registry=self.registry,
        )

    def record_api_call(
        self, tenant: str, vendor: str, status_code: int | None, seconds: float
    ) -> None:
        """``status_code`` None: no response (timeout, connection error)."""
        status = "error" if status_code is None else f"{status_code // 100}xx"
        self.api_calls.labels(tenant=tenant, vendor=vendor, status=status).inc()
        self.api_duration.labels(tenant=tenant, vendor=vendor).observe(seconds)
        if status_code == httpx.codes.TOO_MANY_REQUESTS:
            self.api_throttled.labels(tenant=tenant, vendor=vendor).inc()

    def record_api_retry(self, tenant: str, vendor: str) -> None:
        self.api_retries.labels(tenant=tenant, vendor=vendor).inc()

    def calls_so_far(self) -> int:
        """Vendor calls since start, all vendors: a cycle reports its own share."""
        return _total(self.api_calls)

    def retries_so_far(self) -> int:
        """Retried vendor calls since start, all vendors: a cycle reports its own share."""
        return _total(self.api_retries)

    def vendor_traffic(self, tenant: str) -> dict[str, VendorTraffic]:
        """The tenant's vendor calls since start, by vendor: a turn reports its own share."""
        totals: dict[str, dict[str, int]] = {}
        for counter, figure in (
            (self.api_calls, "calls"),
            (self.api_throttled, "throttled"),
            (self.api_retries, "retries"),
        ):
            for metric in counter.collect():
                for sample in metric.samples:
                    if sample.name.endswith("_total") and sample.labels["tenant"] == tenant:
                        vendor = totals.setdefault(sample.labels["vendor"], {})
                        vendor[figure] = vendor.get(figure, 0) + int(sample.value)
        return {vendor: VendorTraffic(**figures) for vendor, figures in totals.items()}

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes."""
        return generate_latest(self.registry)


def _total(counter: Counter) -> int:
    """A counter's value summed over all its labels."""
    return int(
        sum(
            sample.value
            for metric in counter.collect()
            for sample in metric.samples
            if sample.name.endswith("_total")
        )
    )


class MeteredTransport(httpx.AsyncBaseTransport):
    """Counts and times every request of one tenant by vendor, around the real transport.

    ``vendors`` maps each vendor's base URL to its name; the sandbox serves all three from one
    host, so the vendor is told by the longest matching base URL, not by the host. A request
    repeating one that failed (429, 5xx, no answer) within ``retry_window`` seconds is counted
    as a retry: that is what the connectors' backoff sends. ``clock`` (monotonic seconds) times
    the calls and the retry window.
    """

    def __init__(
        self,
        metrics: Metrics,
        vendors: Mapping[str, str],
        inner: httpx.AsyncBaseTransport | None = None,
        *,
        tenant: str,
        retry_window: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._metrics = metrics
        self._tenant = tenant
        self._vendors = sorted(vendors.items(), key=lambda pair: len(pair[0]), reverse=True)
        self._inner = inner or httpx.AsyncHTTPTransport()
        self._retry_window = retry_window
        self._clock = clock
        # (method, url) -> when it failed, oldest first (each request takes its own entry out
        # before it is sent, so one put back goes to the end).
        self._failed: dict[tuple[str, str], float] = {}

    @property
    def awaiting_retry(self) -> int:
        """Failed calls a repeat would still count as a retry (older ones are forgotten)."""
        return len(self._failed)

    def _vendor(self, request: httpx.Request) -> str:
        url = str(request.url)
        return next((name for base, name in self._vendors if url.startswith(base)), "other")

    def _failed_now(self, attempt: tuple[str, str]) -> None:
        """Remember a failed call for the retry window; forget those past it, so calls that
        are never repeated (a 404'd link, a vendor down for a day) do not pile up in a
        long-running ``serve``."""
        now = self._clock()
        while self._failed and now - next(iter(self._failed.values())) > self._retry_window:
            del self._failed[next(iter(self._failed))]
        self._failed[attempt] = now

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        vendor = self._vendor(request)
        attempt = (request.method, str(request.url))
        failed_at = self._failed.pop(attempt, None)
        if failed_at is not None and self._clock() - failed_at <= self._retry_window:
            self._metrics.record_api_retry(self._tenant, vendor)
        sent = self._clock()
        try:
            response = await self._inner.handle_async_request(request)
        except httpx.TransportError:
            self._metrics.record_api_call(self._tenant, vendor, None, self._clock() - sent)
            self._failed_now(attempt)
            raise
        self._metrics.record_api_call(
            self._tenant, vendor, response.status_code, self._clock() - sent
        )
        if response.status_code == httpx.codes.TOO_MANY_REQUESTS or response.status_code >= 500:
            self._failed_now(attempt)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()
