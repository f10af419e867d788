"""The Zendesk ticket stream at scale, over real HTTP against a sandbox in its own process:
every ticket of 10,000 (CI) or 100,000 (``--run-slow``) seen exactly once, one export request
per page and no more, and memory bounded by the page size, not by the number of tickets.

The layer under test is the connector's page stream over the cursor-based incremental export
(``ZendeskConnector._pages``, what ``cases()`` reads tickets through), without the per-candidate
evidence reads on top. The sandbox runs as a subprocess so that ``tracemalloc`` measures the
connector alone.

Measured (tracemalloc peak, side-loaded users included): 10,000 tickets at 100 a page 5.2 MB
streamed, 60 MB with every page kept (bound 8 MB); 100,000 at 1,000 a page about 26 MB
streamed, 612 MB kept (bound 44 MB), in about 62 s, most of it the sandbox generating the
tickets: hence ``--run-slow``.
"""

from __future__ import annotations

import math
import tracemalloc
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.mapping import load_mapping
from connectors.settings import Timeouts, VendorLimits
from connectors.zendesk import ZendeskConnector

sandbox_server = pytest.importorskip("sandbox.server", reason="needs the sandbox package")

MAPPING = load_mapping(Path(__file__).parents[2] / "deploy" / "mapping.sandbox.yaml")
EXPORT = "/api/v2/incremental/tickets/cursor"
MB = 1_000_000


def bound(page_size: int) -> int:
    """Peak bytes a streaming read may take: the client's fixed cost and two pages' worth
    (a page parsed while the previous one is let go), with side-loaded users, generously.
    It does not grow with the number of tickets; a stream holding every page exceeds it from
    a few thousand tickets on."""
    return 4 * MB + page_size * 40_000


@pytest.fixture(scope="module")
def sandbox_with() -> Iterator[Callable[[int], Any]]:
    """A sandbox process with so many tickets, started on first use, one per count."""
    with ExitStack() as stack:
        started: dict[int, Any] = {}

        def get(tickets: int) -> Any:
            if tickets not in started:
                args = ("--tickets", str(tickets), "--seed", "3", "--no-rate-limits")
                started[tickets] = stack.enter_context(sandbox_server.run_subprocess(*args))
            return started[tickets]

        yield get


def connect(sandbox: Any, page_size: int) -> ZendeskConnector:
    assert MAPPING.zendesk is not None
    return ZendeskConnector.connect(
        sandbox.urls["zendesk"],
        "worker@example.com",
        "zd-sandbox-token",
        MAPPING.zendesk.model_copy(update={"endpoint_limits": {}}),  # --no-rate-limits
        limits=VendorLimits(requests_per_minute=None),
        # A 1,000-ticket page under tracemalloc on a loaded machine once took past the default
        # 30 s and was read again; this test counts requests, not how timeouts are handled.
        timeouts=Timeouts(read=300.0),
        page_size=page_size,
    )


def export_requests(sandbox: Any) -> int:
    rows = httpx.get(sandbox.urls["admin"] + "/stats").json()["endpoints"]
    return sum(r["count"] for r in rows if r["endpoint"] == f"GET {EXPORT}")


async def kept(pages: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """What a list-everything reader does: every page read before the first is used."""
    for page in [page async for page in pages]:
        yield page


async def measure(
    sandbox: Any, tickets: int, page_size: int, *, keep_every_page: bool = False
) -> tuple[bytearray, int]:
    """Stream every ticket; how often each id was seen (index = id) and the peak bytes."""
    seen = bytearray(tickets + 1)  # one byte a ticket: the test's own memory stays small
    httpx.post(sandbox.urls["admin"] + "/reset-stats").raise_for_status()
    params = {"start_time": 0, "include": "users", "per_page": page_size}
    async with connect(sandbox, page_size) as zendesk:
        tracemalloc.start()
        try:
            pages = zendesk._pages(EXPORT, params)
            async for page in kept(pages) if keep_every_page else pages:
                for ticket in page["tickets"]:
                    seen[ticket["id"]] += 1
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    return seen, peak


@pytest.mark.parametrize(
    ("tickets", "page_size"),
    [
        (10_000, 100),
        pytest.param(100_000, 1000, marks=pytest.mark.slow),
    ],
)
async def test_every_ticket_once_one_request_a_page_and_memory_bounded_by_the_page(
    sandbox_with: Callable[[int], Any], tickets: int, page_size: int
) -> None:
    sandbox = sandbox_with(tickets)
    seen, peak = await measure(sandbox, tickets, page_size)
    assert seen[0] == 0
    assert seen.count(1) == tickets  # each of ids 1..N exactly once
    assert export_requests(sandbox) == math.ceil(tickets / page_size)
    assert peak < bound(page_size), f"peak {peak / MB:.1f} MB"


async def test_the_bound_catches_a_reader_that_keeps_every_page(
    sandbox_with: Callable[[int], Any],
) -> None:
    """The bound above can fail: the same stream, every page held, goes past it."""
    seen, peak = await measure(sandbox_with(10_000), 10_000, 100, keep_every_page=True)
    assert seen.count(1) == 10_000
    assert peak > bound(100), f"peak {peak / MB:.1f} MB"
