"""What every vendor request goes through before and after its handler.

Auth (the vendor's 401 body), the rate-limit window (the vendor's headers, 429 with
Retry-After), the vendor's OpenAPI description (400 with the validator's message, in the
vendor's error shape), fault injection, then the handler, then the request log. Handlers only
see requests that got through, and raise :class:`VendorError` for their own failures.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import format_datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.clock import SandboxClock, format_iso
from sandbox.contract import Contract
from sandbox.errors import ConnectionDropped, VendorError
from sandbox.faults import FaultPlan
from sandbox.limits import Decision, RateLimiter
from sandbox.traffic import Traffic

__all__ = ["TRANSPORT_KEY", "Gate", "Handler", "VendorProfile"]

Handler = Callable[[Request], Awaitable[Response]]
# Per-connection state key under which the server's protocol exposes the socket transport.
TRANSPORT_KEY = "sandbox.transport"


@dataclass(frozen=True, slots=True)
class VendorProfile:
    name: str
    authorized: Callable[[Request], bool]
    error: Callable[[int], VendorError]  # the vendor's body for a bare status
    rate_headers: Callable[[Decision], dict[str, str]]
    invalid: Callable[[int, str], VendorError]  # the vendor's body for a refused request


class Gate:
    def __init__(
        self,
        profile: VendorProfile,
        *,
        limiter: RateLimiter,
        faults: Callable[[], FaultPlan],
        traffic: Traffic,
        clock: SandboxClock,
        contract: Contract | None,
    ) -> None:
        self.profile = profile
        self._contract = contract
        self._limiter = limiter
        self._faults = faults
        self._traffic = traffic
        self._clock = clock

    def route(self, method: str, path: str, handler: Handler, *, write: bool = False) -> Route:
        endpoint = f"{method} {path}"  # as routed: "PUT /api/v2/tickets/{ticket_id:int}"

        async def serve(request: Request) -> Response:
            return await self._serve(request, endpoint, write, handler)

        return Route(path, serve, methods=[method], name=endpoint)

    async def _serve(
        self, request: Request, endpoint: str, write: bool, handler: Handler
    ) -> Response:
        started = time.perf_counter()
        fault: str | None = None
        applied = False
        response: Response | None = None
        decision: Decision | None = None
        try:
            if not self.profile.authorized(request):
                raise self.profile.error(401)
            decision = self._limiter.take(self.profile.name, endpoint, request.url.path)
            if not decision.allowed:
                error = self.profile.error(429)
                error.headers["Retry-After"] = str(decision.retry_after)
                raise error
            if self._contract is not None:
                await self._check_request(request)
            fault = self._faults().draw(self.profile.name, endpoint)
            response = await self._with_fault(request, fault, handler)
            applied = write and response is not None and response.status_code < 400
            if fault in ("drop_before", "drop_after"):
                response = None
                await _drop(request)
        except VendorError as exc:
            response = exc.response()
        finally:
            self._traffic.record(
                at=format_iso(self._clock.now()),
                vendor=self.profile.name,
                method=request.method,
                endpoint=endpoint,
                path=request.url.path,
                status=response.status_code if response is not None else None,
                write=write,
                applied=applied,
                fault=fault,
                ms=round((time.perf_counter() - started) * 1000, 3),
            )
        if response is None:
            return Response(status_code=599)  # never reaches the client: socket is gone
        if decision is not None and decision.limit is not None:
            response.headers.update(self.profile.rate_headers(decision))
        # Every origin server with a clock sends ``Date`` (RFC 9110 6.6.1): the vendor's own,
        # which a client keeping search positions between runs goes by (the sandbox's clock
        # may be set, frozen or scaled: never the machine's).
        response.headers["Date"] = format_datetime(self._clock.now(), usegmt=True)
        if self._contract is not None and self._contract.check_responses and fault is None:
            self._contract.check_response(
                self.profile.name,
                request.method,
                _spec_path(request),
                response.status_code,
                response.headers.get("content-type", ""),
                bytes(response.body),
            )
        return response

    async def _check_request(self, request: Request) -> None:
        assert self._contract is not None
        rejection = self._contract.check_request(
            self.profile.name,
            request.method,
            _spec_path(request),
            query=request.query_params.multi_items(),
            headers=request.headers.items(),
            content_type=request.headers.get("content-type", ""),
            body=await request.body(),
        )
        if rejection is not None:
            raise self.profile.invalid(rejection.status, rejection.message)

    async def _with_fault(
        self, request: Request, fault: str | None, handler: Handler
    ) -> Response | None:
        if fault in ("429", "500", "502", "503"):
            error = self.profile.error(int(fault))
            if fault == "429":
                error.headers["Retry-After"] = "1"
            raise error
        if fault == "drop_before":
            return None
        if fault == "slow":
            await request.body()  # the server has the request; only the answer is late
            await asyncio.sleep(self._faults().slow_seconds)
        response = await handler(request)
        if fault == "malformed_json":
            body = bytes(response.body)
            return Response(
                body[: max(1, len(body) // 2)],
                status_code=response.status_code,
                media_type="application/json",
            )
        return response


def _spec_path(request: Request) -> str:
    """The path as the vendor's description writes it: without the sandbox's mount (and
    tenant) prefix, which ends where the description's server URL does."""
    path: str = request.scope["path"]
    root: str = request.scope.get("root_path", "")
    return path.removeprefix(root)


async def _drop(request: Request) -> None:
    """Cut the client's connection without an answer (RST, like a dying load balancer)."""
    transport = request.scope.get("state", {}).get(TRANSPORT_KEY)
    if transport is None:
        raise ConnectionDropped(request.url.path)
    transport.abort()
    # Let the server notice the connection is gone, so it does not log a missing response.
    for _ in range(3):
        await asyncio.sleep(0)
