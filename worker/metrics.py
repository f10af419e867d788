"""Prometheus metrics, in a registry of their own (so tests and the demo never share state).

Connectors report their HTTP traffic through two hooks that need no import of this module:
``metrics.http_event_hooks(vendor)`` plugs into ``httpx.AsyncClient(event_hooks=...)`` and
counts calls and 429s; ``metrics.retry_hook(vendor)`` plugs into tenacity's
``before_sleep=`` and counts retries.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]


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
            "Cases read from vendors, by vendor.",
            ["vendor"],
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
        self.api_calls = Counter(
            "followup_api_calls",
            "HTTP calls to vendors, by vendor and status class.",
            ["vendor", "status"],
            registry=self.registry,
        )
        self.api_throttled = Counter(
            "followup_api_throttled",
            "HTTP 429 responses, by vendor.",
            ["vendor"],
            registry=self.registry,
        )
        self.api_retries = Counter(
            "followup_api_retries",
            "Retried vendor calls, by vendor.",
            ["vendor"],
            registry=self.registry,
        )

    def record_api_call(self, vendor: str, status_code: int) -> None:
        self.api_calls.labels(vendor=vendor, status=f"{status_code // 100}xx").inc()
        if status_code == httpx.codes.TOO_MANY_REQUESTS:
            self.api_throttled.labels(vendor=vendor).inc()

    def record_api_retry(self, vendor: str) -> None:
        self.api_retries.labels(vendor=vendor).inc()

    def http_event_hooks(
        self, vendor: str
    ) -> dict[str, list[Callable[[httpx.Response], Awaitable[None]]]]:
        """``httpx.AsyncClient(event_hooks=metrics.http_event_hooks("zendesk"))``."""

        async def count_response(response: httpx.Response) -> None:
            self.record_api_call(vendor, response.status_code)

        return {"response": [count_response]}

    def retry_hook(self, vendor: str) -> Callable[[Any], None]:
        """``tenacity.retry(before_sleep=metrics.retry_hook("zendesk"))``."""

        def count_retry(_retry_state: Any) -> None:
            self.record_api_retry(vendor)

        return count_retry

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes."""
        return generate_latest(self.registry)
