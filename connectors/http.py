"""The one HTTP layer every vendor connector uses.

One :class:`VendorClient` per vendor and tenant: one keep-alive ``httpx.AsyncClient`` with
explicit timeouts, a ``transport=`` seam for tests, a pacing budget fed by every response's
rate-limit headers (``connectors.pacing``), and separate caps on reads and writes in flight.

Reads are retried on transient errors (tenacity). Writes are retried only when they provably
were not applied: a 429, or a connection that never got established. Any failure after a write
was sent (timeout, reset, 5xx) raises :class:`~connectors.errors.OutcomeUnknown`, because a blind
retry could add a second note; the vendor connector checks its marker before writing again.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal, Self

import httpx
import structlog
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from connectors.errors import (
    ConnectionLost,
    OutcomeUnknown,
    RateLimited,
    ResourceBudgetSpent,
    TransientVendorError,
    VendorError,
    VendorTimeout,
    error_for_status,
)
from connectors.pacing import (
    Budget,
    EndpointBudget,
    RateHeaders,
    observe,
    observe_endpoint,
    read_endpoint_headers,
    read_rate_headers,
    schedule,
    schedule_endpoint,
)
from connectors.settings import Timeouts, VendorLimits

__all__ = ["CallKind", "EndpointClass", "OwnsClient", "VendorClient"]

CallKind = Literal["read", "write"]
Sleep = Callable[[float], Awaitable[None]]

log = structlog.get_logger(__name__)

# Errors raised before a single byte of the request left: retrying cannot duplicate anything.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True, slots=True)
class EndpointClass:
    """Requests a vendor limits apart from its account budget (Zendesk: the incremental
    exports, Update Ticket): paced by their own :class:`~connectors.pacing.EndpointBudget`,
    and a 429 among them blocks them alone (vendor-behaviours.md Z2)."""

    name: str
    method: str
    path: re.Pattern[str]  # searched in the request's URL path
    per_minute: int
    # (requests, seconds) each resource (URL path) of the class may take apart: one Zendesk
    # ticket's updates. None: the class has no such limit.
    per_resource: tuple[int, float] | None = None


class _Backoff:
    """Exponential backoff with jitter, except after a 429: the budget already holds every
    request for exactly Retry-After, and waiting here too would double it."""

    def __init__(self, limits: VendorLimits) -> None:
        self._exponential = wait_exponential_jitter(
            multiplier=limits.backoff_initial, max=limits.backoff_max, jitter=limits.backoff_initial
        )

    def __call__(self, state: RetryCallState) -> float:
        if state.outcome is not None and isinstance(state.outcome.exception(), RateLimited):
            return 0.0
        return float(self._exponential(state))


class VendorClient:
    """Paced, capped, retrying JSON over HTTP to one vendor. Use as an async context manager."""

    def __init__(
        self,
        vendor: str,
        base_url: str,
        *,
        limits: VendorLimits,
        timeouts: Timeouts,
        auth: httpx.Auth | None = None,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Sleep = asyncio.sleep,
        classes: Sequence[EndpointClass] = (),
    ) -> None:
        self.vendor = vendor
        self._classes = tuple(classes)
        self._class_budgets = {
            c.name: EndpointBudget(
                c.per_minute, headroom=limits.headroom, window=limits.rate_window
            )
            for c in self._classes
        }
        self._per_resource = {c.name: c.per_resource for c in self._classes if c.per_resource}
        # path -> its budget, in the order of their latest requests (oldest first), so the
        # ones whose window has passed are dropped from the front.
        self._resource_budgets: dict[str, EndpointBudget] = {}
        self._limits = limits
        self._clock = clock
        self._wall_clock = wall_clock
        self._sleep = sleep
        self._budget = Budget(
            limit=limits.requests_per_minute, headroom=limits.headroom, window=limits.rate_window
        )
        self._backoff = _Backoff(limits)
        self._in_flight = {
            "read": asyncio.Semaphore(limits.max_concurrent_reads),
            "write": asyncio.Semaphore(limits.max_concurrent_writes),
        }
        self.calls: Counter[str] = Counter()  # "read", "write", "rate_limited": for metrics
        # The vendor's clock (the ``Date`` of its latest answer): what a position kept between
        # runs is taken by, so this machine's clock cannot skip or repeat changes.
        self.served_at: datetime | None = None
        in_flight = limits.max_concurrent_reads + limits.max_concurrent_writes
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            auth=auth,
            headers={"Accept": "application/json", **(headers or {})},
            timeout=timeouts.to_httpx(),
            # One kept-alive connection per request allowed in flight, no more.
            limits=httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight),
            transport=transport,
        )

    async def __aenter__(self) -> VendorClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def read(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        timeout: httpx.Timeout | None = None,
        answers: Collection[int] = (),
    ) -> Any:
        """A request that changes nothing (GET, or a POST search): retried on transient errors.
        ``timeout``: this request's own, where the client's is too short for it. ``answers``:
        error statuses whose body the caller reads as the answer (Asana's 412 carries the
        fresh sync token), returned as a success's is."""
        return await self._retrying(
            self._limits.read_attempts, "read", method, url, params, json, timeout, answers
        )

    async def write(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        """A request that changes something. Raises OutcomeUnknown if it may have been applied."""
        return await self._retrying(
            self._limits.write_attempts, "write", method, url, params, json, None, ()
        )

    async def _retrying(
        self,
        attempts: int,
        kind: CallKind,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        json: Any,
        timeout: httpx.Timeout | None,
        answers: Collection[int],
    ) -> Any:
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(TransientVendorError),
            stop=stop_after_attempt(attempts),
            wait=self._backoff,
            sleep=self._sleep,
            before_sleep=self._log_retry,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._send(kind, method, url, params, json, timeout, answers)
        raise AssertionError("unreachable: tenacity reraises the last error")  # pragma: no cover

    def _log_retry(self, state: RetryCallState) -> None:
        # The error's message is safe by construction: vendor, method, path and status only.
        error = state.outcome.exception() if state.outcome is not None else None
        log.info("vendor_retry", vendor=self.vendor, attempt=state.attempt_number, error=str(error))

    def _class_of(self, method: str, path: str) -> str | None:
        for endpoint in self._classes:
            if endpoint.method == method and endpoint.path.search(path):
                return endpoint.name
        return None

    async def _paced_start(self, endpoint: str | None) -> None:
        """Wait for this request's slot: its class's (if it has one), then the account's. A
        429 answered meanwhile (to a request already in flight) blocks past every slot given
        before it: those take a new slot after the block, or each request queued behind the
        first 429 would earn its own."""
        while True:
            start = self._clock()
            if endpoint is not None:
                start, self._class_budgets[endpoint] = schedule_endpoint(
                    self._class_budgets[endpoint], start
                )
            start, self._budget = schedule(self._budget, start)
            delay = start - self._clock()
            if delay > 0:
                await self._sleep(delay)
            blocked = self._budget.blocked_until
            if endpoint is not None:
                blocked = max(blocked, self._class_budgets[endpoint].blocked_until)
            if blocked <= start:
                return

    def _spend_resource(self, endpoint: str | None, method: str, path: str) -> None:
        """Count this request in its resource's own window, or refuse it before it is sent
        when that window is full: waiting (up to Zendesk's 10 minutes for a ticket's updates)
        would hold the whole cycle, and sending would meet a 429. The same headroom as every
        budget is kept: agents and other apps update the ticket too."""
        window = self._per_resource.get(endpoint) if endpoint is not None else None
        if window is None:
            return
        requests, seconds = window
        now = self._clock()
        budgets = self._resource_budgets
        while budgets:  # the front's latest request is the oldest of all
            oldest = next(iter(budgets))
            if budgets[oldest].starts[-1] + seconds > now:
                break
            del budgets[oldest]
        budget = budgets.pop(path, None) or EndpointBudget(
            requests, headroom=self._limits.headroom, window=seconds
        )
        start, spent = schedule_endpoint(budget, now)
        if start > now:
            budgets[path] = budget
            raise ResourceBudgetSpent(
                self.vendor,
                method,
                path,
                detail=(
                    f"{budget.allowed} requests to it in {seconds:g}s, its own limit"
                    f" ({requests}, less headroom); sendable again in {start - now:.0f}s"
                ),
            )
        budgets[path] = spent  # now the newest: the order stays oldest first

    async def _send(
        self,
        kind: CallKind,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        json: Any,
        timeout: httpx.Timeout | None,
        answers: Collection[int],
    ) -> Any:
        # ``or None``: httpx (0.28) replaces a URL's own query with ``params`` even when they
        # are empty, and a next-page link carries its cursor in its query.
        request = self._http.build_request(
            method,
            url,
            params=params or None,
            json=json,
            timeout=timeout or httpx.USE_CLIENT_DEFAULT,
        )
        path = request.url.path
        endpoint = self._class_of(method, path)
        async with self._in_flight[kind]:
            await self._paced_start(endpoint)
            self._spend_resource(endpoint, method, path)
            self.calls[kind] += 1
            try:
                response = await self._http.send(request)
            except httpx.HTTPError as exc:
                raise self._transport_error(kind, method, path, exc) from exc
            retry_after = self._observe(endpoint, response)
            self.served_at = _served_at(response) or self.served_at
        if not response.is_success and response.status_code not in answers:
            raise self._status_error(kind, method, path, response, retry_after)
        try:
            return response.json() if response.content else None
        except ValueError as exc:  # a body cut short: the request was served, the answer lost
            if kind == "write":
                raise OutcomeUnknown(self.vendor, method, path, detail="malformed JSON") from exc
            raise ConnectionLost(self.vendor, method, path, detail="malformed JSON") from exc

    def _observe(self, endpoint: str | None, response: httpx.Response) -> float | None:
        """Fold the answer's rate-limit headers into the budgets; the Retry-After in force.
        A 429 of a class blocks that class, unless the account's budget is what ran out."""
        now = self._clock()
        seen = read_rate_headers(response.headers, self._wall_clock())
        said = read_endpoint_headers(response.headers)
        if response.status_code == 429 and seen.retry_after is None:
            # No Retry-After: wait for the reset the headers give, else the configured default.
            fallback = seen.reset_after or said.reset_after or self._limits.default_retry_after
            seen = replace(seen, retry_after=fallback)
        if endpoint is None:
            self._budget = observe(self._budget, _merged(seen, said), now)
            return seen.retry_after
        if seen.retry_after is not None and seen.remaining != 0:
            said = replace(said, retry_after=seen.retry_after)
            seen = replace(seen, retry_after=None)
        self._class_budgets[endpoint] = observe_endpoint(self._class_budgets[endpoint], said, now)
        self._budget = observe(self._budget, seen, now)
        return said.retry_after if said.retry_after is not None else seen.retry_after

    def _transport_error(
        self, kind: CallKind, method: str, path: str, exc: httpx.HTTPError
    ) -> VendorError:
        if kind == "write" and not isinstance(exc, _NOT_SENT):
            return OutcomeUnknown(self.vendor, method, path, detail=type(exc).__name__)
        if isinstance(exc, httpx.TimeoutException):
            return VendorTimeout(self.vendor, method, path, detail=type(exc).__name__)
        return ConnectionLost(self.vendor, method, path, detail=type(exc).__name__)

    def _status_error(
        self,
        kind: CallKind,
        method: str,
        path: str,
        response: httpx.Response,
        retry_after: float | None,
    ) -> VendorError:
        status = response.status_code
        if status == 429:
            self.calls["rate_limited"] += 1
            log.warning("rate_limited", vendor=self.vendor, path=path, retry_after=retry_after)
            return RateLimited(self.vendor, method, path, retry_after or 0.0)
        if kind == "write" and status >= 500:
            return OutcomeUnknown(self.vendor, method, path, status)
        return error_for_status(self.vendor, method, path, status)


def _merged(account: RateHeaders, endpoint: RateHeaders) -> RateHeaders:
    """An unclassed request's headers: the account's, or the endpoint's where it says more."""
    if account.limit is not None:
        return account
    return replace(
        account,
        limit=endpoint.limit,
        remaining=endpoint.remaining,
        reset_after=account.reset_after
        if account.reset_after is not None
        else endpoint.reset_after,
    )


class OwnsClient:
    """For connectors: closing the connector closes its client; usable with ``async with``."""

    _client: VendorClient

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def _served_at(response: httpx.Response) -> datetime | None:
    """The answer's ``Date`` (RFC 9110 6.6.1), None when it has none or an unreadable one."""
    try:
        return parsedate_to_datetime(response.headers["Date"])
    except (KeyError, TypeError, ValueError):
        return None
