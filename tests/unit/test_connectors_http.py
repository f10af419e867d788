"""The shared HTTP layer: retries, the 429 wait, lost write answers, caps, safe messages."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest
import respx
import structlog

from connectors.errors import (
    BadRequest,
    ConnectionLost,
    Forbidden,
    NotFound,
    OutcomeUnknown,
    RateLimited,
    ServerError,
    Unauthorized,
    Unprocessable,
    VendorError,
    VendorTimeout,
)
from connectors.http import EndpointClass, VendorClient
from connectors.settings import Timeouts, VendorLimits
from tests.connectors_support import AGENT_EMAIL, SECRET_TOKEN, FakeClock, make_client

URL = "https://acme.zendesk.com/api/v2/tickets/1"


@pytest.fixture
def router() -> respx.MockRouter:
    return respx.MockRouter(assert_all_called=False)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def test_read_retries_transient_errors_then_succeeds(
    router: respx.MockRouter, clock: FakeClock
) -> None:
    route = router.get(URL).mock(
        side_effect=[
            httpx.Response(503),
            httpx.ReadTimeout("slow"),
            httpx.Response(200, json={"ticket": {"id": 1}}),
        ]
    )
    async with make_client(router, clock) as client:
        assert await client.read("GET", "/api/v2/tickets/1") == {"ticket": {"id": 1}}
    assert route.call_count == 3


async def test_a_next_page_link_keeps_its_own_query(
    router: respx.MockRouter, clock: FakeClock
) -> None:
    # Cursor pagination hands back the next page as a full link, cursor in its query; the
    # connectors send it with no parameters of their own. Losing the cursor reads page one
    # again and again, for ever.
    next_page = (
        "https://acme.zendesk.com/api/v2/organizations?page%5Bsize%5D=100&page%5Bafter%5D=c2"
    )
    route = router.get(next_page).mock(return_value=httpx.Response(200, json={}))
    async with make_client(router, clock) as client:
        await client.read("GET", next_page, params={})
    assert route.calls.last.request.url.params["page[after]"] == "c2"


async def test_read_gives_up_after_its_attempts(router: respx.MockRouter, clock: FakeClock) -> None:
    route = router.get(URL).mock(return_value=httpx.Response(500))
    limits = VendorLimits(read_attempts=2)
    async with make_client(router, clock, limits=limits) as client:
        with pytest.raises(ServerError):
            await client.read("GET", "/api/v2/tickets/1")
    assert route.call_count == 2


async def test_429_waits_exactly_retry_after(router: respx.MockRouter, clock: FakeClock) -> None:
    router.get(URL).mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "17"}),
            httpx.Response(200, json={}),
        ]
    )
    async with make_client(router, clock) as client:
        await client.read("GET", "/api/v2/tickets/1")
        assert clock.sleeps == [17.0]
        assert client.calls["rate_limited"] == 1


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, BadRequest),
        (401, Unauthorized),
        (403, Forbidden),
        (404, NotFound),
        (422, Unprocessable),
    ],
)
async def test_permanent_statuses_are_not_retried(
    router: respx.MockRouter, clock: FakeClock, status: int, error: type[VendorError]
) -> None:
    route = router.get(URL).mock(return_value=httpx.Response(status))
    async with make_client(router, clock) as client:
        with pytest.raises(error) as raised:
            await client.read("GET", "/api/v2/tickets/1")
    assert route.call_count == 1
    assert raised.value.status == status


@pytest.mark.parametrize(
    "failure",
    [httpx.Response(502), httpx.ReadTimeout("lost"), httpx.RemoteProtocolError("reset")],
    ids=["5xx", "read-timeout", "reset"],
)
async def test_write_whose_answer_is_lost_is_not_retried(
    router: respx.MockRouter, clock: FakeClock, failure: httpx.Response | Exception
) -> None:
    route = router.put(URL).mock(side_effect=[failure, httpx.Response(200, json={})])
    async with make_client(router, clock) as client:
        with pytest.raises(OutcomeUnknown):
            await client.write("PUT", "/api/v2/tickets/1", json={"ticket": {}})
    assert route.call_count == 1


@pytest.mark.parametrize(
    "failure",
    [httpx.Response(429, headers={"Retry-After": "1"}), httpx.ConnectError("refused")],
    ids=["429", "never-connected"],
)
async def test_write_that_provably_did_not_land_is_retried(
    router: respx.MockRouter, clock: FakeClock, failure: httpx.Response | Exception
) -> None:
    route = router.put(URL).mock(side_effect=[failure, httpx.Response(200, json={"ok": 1})])
    async with make_client(router, clock) as client:
        assert await client.write("PUT", "/api/v2/tickets/1", json={}) == {"ok": 1}
    assert route.call_count == 2


@pytest.mark.parametrize(
    ("failure", "error"),
    [(httpx.ConnectTimeout("t"), VendorTimeout), (httpx.ConnectError("r"), ConnectionLost)],
)
async def test_transport_errors_are_translated_with_their_cause(
    router: respx.MockRouter,
    clock: FakeClock,
    failure: Exception,
    error: type[VendorError],
) -> None:
    router.get(URL).mock(side_effect=failure)
    async with make_client(router, clock, limits=VendorLimits(read_attempts=1)) as client:
        with pytest.raises(error) as raised:
            await client.read("GET", "/api/v2/tickets/1")
    assert isinstance(raised.value.__cause__, httpx.HTTPError)


async def test_errors_never_show_tokens_emails_or_queries(
    router: respx.MockRouter, clock: FakeClock
) -> None:
    router.get(url__startswith="https://acme.zendesk.com/api/v2/search").mock(
        return_value=httpx.Response(401, json={"error": f"bad token {SECRET_TOKEN}"})
    )
    router.put(URL).mock(side_effect=httpx.ReadTimeout(f"timeout for {AGENT_EMAIL}"))
    async with make_client(router, clock) as client:
        with pytest.raises(Unauthorized) as denied:
            await client.read("GET", "/api/v2/search", params={"query": f"requester:{AGENT_EMAIL}"})
        with pytest.raises(OutcomeUnknown) as lost:
            await client.write("PUT", "/api/v2/tickets/1", json={"email": AGENT_EMAIL})
    for error in (denied.value, lost.value):
        assert SECRET_TOKEN not in str(error)
        assert AGENT_EMAIL not in str(error)
    assert str(denied.value) == "zendesk GET /api/v2/search -> 401"


async def test_429_without_retry_after_waits_the_configured_default(
    router: respx.MockRouter, clock: FakeClock
) -> None:
    router.get(URL).mock(side_effect=[httpx.Response(429), httpx.Response(200, json={})])
    limits = VendorLimits(default_retry_after=4.0)
    async with make_client(router, clock, limits=limits) as client:
        await client.read("GET", "/api/v2/tickets/1")
    assert clock.sleeps == [4.0]


async def test_rate_limited_surfaces_after_the_attempts(
    router: respx.MockRouter, clock: FakeClock
) -> None:
    router.get(URL).mock(return_value=httpx.Response(429, headers={"Retry-After": "2"}))
    async with make_client(router, clock, limits=VendorLimits(read_attempts=2)) as client:
        with pytest.raises(RateLimited) as raised:
            await client.read("GET", "/api/v2/tickets/1")
    assert raised.value.retry_after == 2.0


async def test_headers_pace_requests_just_under_the_limit(
    router: respx.MockRouter, clock: FakeClock
) -> None:
    def answer(remaining: int) -> httpx.Response:
        headers = {"X-Rate-Limit": "100", "X-Rate-Limit-Remaining": str(remaining)}
        return httpx.Response(200, json={}, headers=headers)

    router.get(URL).mock(side_effect=[answer(50), answer(5), answer(5), answer(5)])
    async with make_client(router, clock, limits=VendorLimits(headroom=0.1)) as client:
        for _ in range(4):
            await client.read("GET", "/api/v2/tickets/1")
    # 90 a minute (10 kept for other apps); at half that pace once below those 10.
    assert clock.sleeps == [pytest.approx(60 / 90), pytest.approx(120 / 90)]


async def test_writes_in_flight_are_capped(router: respx.MockRouter) -> None:
    in_flight = peak = 0

    async def slow(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return httpx.Response(200, json={})

    router.put(URL).mock(side_effect=slow)
    limits = VendorLimits(max_concurrent_writes=3)
    async with make_client(router, FakeClock(), limits=limits) as client:
        await asyncio.gather(*(client.write("PUT", "/api/v2/tickets/1") for _ in range(10)))
    assert peak == 3


async def test_a_body_cut_short_is_retried_on_read_and_unknown_on_write(
    router: respx.MockRouter, clock: FakeClock
) -> None:
    cut = httpx.Response(
        200, content=b'{"ticket": {"id"', headers={"content-type": "application/json"}
    )
    router.get(URL).mock(side_effect=[cut, httpx.Response(200, json={"ok": 1})])
    router.put(URL).mock(return_value=cut)
    async with make_client(router, clock) as client:
        assert await client.read("GET", "/api/v2/tickets/1") == {"ok": 1}
        with pytest.raises(OutcomeUnknown):
            await client.write("PUT", "/api/v2/tickets/1", json={})


async def test_retry_and_rate_limit_logs_carry_no_secrets(
    router: respx.MockRouter, clock: FakeClock
) -> None:
    router.get(url__startswith=URL).mock(
        side_effect=[
            httpx.Response(503, json={"token": SECRET_TOKEN}),
            httpx.Response(429, headers={"Retry-After": "1"}),
            httpx.Response(200, json={}),
        ]
    )
    with structlog.testing.capture_logs() as logs:
        async with make_client(router, clock) as client:
            await client.read("GET", "/api/v2/tickets/1", params={"email": AGENT_EMAIL})
    assert [entry["event"] for entry in logs] == ["vendor_retry", "rate_limited", "vendor_retry"]
    assert SECRET_TOKEN not in str(logs)
    assert AGENT_EMAIL not in str(logs)


async def test_a_429_holds_back_requests_already_waiting_for_their_slot(
    router: respx.MockRouter,
) -> None:
    """Writes queue for paced slots; the first one's 429 must stop the others too, or each
    write already queued earns a 429 of its own (the vendor's window is spent until 1030)."""

    class YieldingClock(FakeClock):
        async def sleep(self, seconds: float) -> None:
            await super().sleep(seconds)
            await asyncio.sleep(0)  # let answers to requests in flight arrive meanwhile

    clock = YieldingClock()

    async def vendor(request: httpx.Request) -> httpx.Response:
        spent = clock.now < 1030
        await asyncio.sleep(0)  # the answer takes a moment: others get to queue
        if spent:
            return httpx.Response(429, headers={"Retry-After": "30"})
        return httpx.Response(200, json={})

    router.put(URL).mock(side_effect=vendor)
    limits = VendorLimits(requests_per_minute=60, headroom=0.0)
    async with make_client(router, clock, limits=limits) as client:
        await asyncio.gather(*(client.write("PUT", "/api/v2/tickets/1") for _ in range(3)))
        assert client.calls["rate_limited"] == 1


EXPORT = "https://acme.zendesk.com/api/v2/incremental/ticket_events"


def classed_client(
    router: respx.MockRouter, clock: FakeClock, *, rate_window: float = 60.0
) -> VendorClient:
    exports = EndpointClass("incremental_exports", "GET", re.compile("/incremental/"), 10)
    limits = VendorLimits(
        requests_per_minute=700, headroom=0.0, read_attempts=1, rate_window=rate_window
    )
    return VendorClient(
        "zendesk",
        "https://acme.zendesk.com",
        limits=limits,
        timeouts=Timeouts(),
        transport=httpx.MockTransport(router.async_handler),
        clock=clock.monotonic,
        wall_clock=clock.time,
        sleep=clock.sleep,
        classes=[exports],
    )


async def test_z2_a_429_blocks_only_its_endpoint_class(
    router: respx.MockRouter, clock: FakeClock
) -> None:
    """vendor-behaviours.md Z2: the export's 429 (the account budget far from spent) holds
    the exports for Retry-After and nothing else."""
    account = {"X-Rate-Limit": "700", "X-Rate-Limit-Remaining": "650"}
    router.get(EXPORT).mock(side_effect=[
        httpx.Response(429, headers={**account, "Retry-After": "40"}),
        httpx.Response(200, json={}, headers=account),
    ])  # fmt: skip
    router.get(URL).respond(json={}, headers=account)
    async with classed_client(router, clock) as client:
        with pytest.raises(RateLimited):
            await client.read("GET", EXPORT)
        before = clock.now
        await client.read("GET", URL)  # another class: not held
        assert clock.now - before < 1
        await client.read("GET", EXPORT)  # the export waits out its Retry-After
        assert clock.now - before >= 40


async def test_z2_an_endpoint_class_is_paced_at_its_own_limit(
    router: respx.MockRouter, clock: FakeClock
) -> None:
    """10 exports a minute, whatever the account's 700 allow: the 11th waits the window."""
    router.get(EXPORT).respond(json={}, headers={"X-Rate-Limit": "700"})
    async with classed_client(router, clock) as client:
        start = clock.now
        for _ in range(11):
            await client.read("GET", EXPORT)
        assert clock.now - start == pytest.approx(60.0)


async def test_a_shorter_rate_window_scales_every_budget_alike(
    router: respx.MockRouter, clock: FakeClock
) -> None:
    """Against a sandbox at --time-scale 60 (windows of 1 s): 10 exports per second, and the
    account's 700 per second, with the same pacing."""
    router.get(EXPORT).respond(json={}, headers={"X-Rate-Limit": "700"})
    router.get(URL).respond(json={}, headers={"X-Rate-Limit": "700"})
    async with classed_client(router, clock, rate_window=1.0) as client:
        start = clock.now
        for _ in range(11):
            await client.read("GET", EXPORT)
        assert clock.now - start == pytest.approx(1.0)
        start = clock.now
        for _ in range(71):
            await client.read("GET", URL)
        assert clock.now - start == pytest.approx(70 / 700, abs=0.01)


async def test_z2_an_account_429_still_blocks_every_class(
    router: respx.MockRouter, clock: FakeClock
) -> None:
    spent = {"X-Rate-Limit": "700", "X-Rate-Limit-Remaining": "0", "Retry-After": "20"}
    router.get(EXPORT).mock(
        side_effect=[httpx.Response(429, headers=spent), httpx.Response(200, json={})]
    )
    router.get(URL).respond(json={})
    async with classed_client(router, clock) as client:
        with pytest.raises(RateLimited):
            await client.read("GET", EXPORT)
        before = clock.now
        await client.read("GET", URL)
        assert clock.now - before >= 20
