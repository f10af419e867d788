"""The pacing budget as a table: what the headers say, and when the next request may start."""

from __future__ import annotations

import pytest

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

WALL = 1_700_000_000.0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param(
            {"X-Rate-Limit": "700", "X-Rate-Limit-Remaining": "650"},
            RateHeaders(limit=700, remaining=650),
            id="zendesk",
        ),
        pytest.param(
            {"ratelimit-limit": "100", "ratelimit-remaining": "3", "ratelimit-reset": "12"},
            RateHeaders(),
            id="zendesk-endpoint-headers-are-no-account-budget",
        ),
        pytest.param(
            {
                "X-RateLimit-Limit": "1000",
                "X-RateLimit-Remaining": "10",
                "X-RateLimit-Reset": str(int(WALL) + 8),
            },
            RateHeaders(limit=1000, remaining=10, reset_after=8.0),
            id="intercom-reset-is-unix-time",
        ),
        pytest.param({"Retry-After": "30"}, RateHeaders(retry_after=30.0), id="asana-429"),
        pytest.param(
            {"Retry-After": "Tue, 14 Nov 2023 22:13:40 GMT"},  # WALL + 20 s
            RateHeaders(retry_after=20.0),
            id="retry-after-http-date",
        ),
        pytest.param({"X-Rate-Limit": "n/a"}, RateHeaders(), id="garbage-is-ignored"),
        pytest.param({}, RateHeaders(), id="nothing"),
    ],
)
def test_read_rate_headers(headers: dict[str, str], expected: RateHeaders) -> None:
    assert read_rate_headers(headers, WALL) == expected


NOW = 100.0


@pytest.mark.parametrize(
    ("budget", "start", "next_start"),
    [
        pytest.param(Budget(), NOW, NOW, id="unknown-limit-no-pacing"),
        pytest.param(
            Budget(limit=600, headroom=0.0), NOW, NOW + 0.1, id="configured-limit-even-spacing"
        ),
        pytest.param(
            Budget(limit=100, remaining=60, reset_at=NOW + 30, headroom=0.0),
            NOW,
            NOW + 0.5,
            id="remaining-spread-until-reset",
        ),
        pytest.param(
            Budget(limit=100, remaining=30, headroom=0.1),
            NOW,
            NOW + 60 / 90,
            id="rolling-window-goes-at-limit-minus-headroom",
        ),
        pytest.param(
            Budget(limit=100, remaining=10, reset_at=NOW + 7, headroom=0.1),
            NOW,
            NOW + 7,
            id="spent-fixed-window-waits-for-reset",
        ),
        pytest.param(
            Budget(limit=100, remaining=5, headroom=0.1),
            NOW,
            NOW + 120 / 90,
            id="rolling-window-below-headroom-halves-the-pace",
        ),
        pytest.param(Budget(blocked_until=NOW + 30), NOW + 30, NOW + 30, id="retry-after-blocks"),
        pytest.param(Budget(next_start=NOW + 2), NOW + 2, NOW + 2, id="queued-behind-others"),
    ],
)
def test_schedule(budget: Budget, start: float, next_start: float) -> None:
    got_start, after = schedule(budget, NOW)
    assert got_start == pytest.approx(start)
    assert after.next_start == pytest.approx(next_start)


def test_schedule_counts_the_request_against_the_budget() -> None:
    _, after = schedule(Budget(limit=100, remaining=50), NOW)
    assert after.remaining == 49


def test_observe_takes_the_vendors_word_and_keeps_the_longest_block() -> None:
    budget = Budget(limit=700, remaining=12, blocked_until=NOW + 50)
    after = observe(budget, RateHeaders(remaining=600, retry_after=10, reset_after=5), NOW)
    assert (after.limit, after.remaining, after.reset_at) == (700, 600, NOW + 5)
    assert after.blocked_until == NOW + 50


def test_a_long_run_in_a_fixed_window_never_exceeds_the_limit() -> None:
    """Simulate a fixed 60 s window of 100 requests: pacing must stay under it throughout."""
    budget, now, sent_in_window, window_end = Budget(headroom=0.1), 0.0, 0, 60.0
    for _ in range(500):
        start, budget = schedule(budget, now)
        now = start
        if now >= window_end:
            window_end += 60.0
            sent_in_window = 0
        sent_in_window += 1
        assert sent_in_window <= 100
        seen = RateHeaders(limit=100, remaining=100 - sent_in_window, reset_after=window_end - now)
        budget = observe(budget, seen, now)


def test_a_long_run_in_a_rolling_window_stays_just_under_the_limit() -> None:
    """Simulated time: a vendor counting the last 60 s (Zendesk) and a 1,000-request run."""
    budget, now, starts = Budget(limit=100, headroom=0.1), 0.0, []
    for _ in range(1000):
        start, budget = schedule(budget, now)
        now = start
        starts.append(now)
        in_window = sum(1 for s in starts if s > now - 60)
        assert in_window <= 100
        budget = observe(budget, RateHeaders(limit=100, remaining=100 - in_window), now)
    per_minute = len(starts) / (starts[-1] - starts[0]) * 60
    assert 85 <= per_minute <= 100  # uses the budget, minus the headroom


# vendor-behaviours.md Z2: an endpoint's own budget, read when Zendesk says it.
ENDPOINT_HEADERS = [
    ({"ratelimit-limit": "100", "ratelimit-remaining": "3", "ratelimit-reset": "12"},
     RateHeaders(limit=100, remaining=3, reset_after=12.0)),
    ({"Zendesk-RateLimit-incremental-exports": "total=10; remaining=0; resets=42"},
     RateHeaders(limit=10, remaining=0, reset_after=42.0)),
    ({"X-Rate-Limit": "700"}, RateHeaders()),
]  # fmt: skip


@pytest.mark.parametrize(("headers", "expected"), ENDPOINT_HEADERS)
def test_z2_endpoint_headers_are_read_when_present(
    headers: dict[str, str], expected: RateHeaders
) -> None:
    assert read_endpoint_headers(headers) == expected


def test_z2_an_endpoint_budget_lets_a_burst_go_then_waits_for_the_window() -> None:
    budget = EndpointBudget(limit=10, headroom=0.05)  # 9 starts in any minute
    starts = []
    for _ in range(20):
        start, budget = schedule_endpoint(budget, 0.0)
        starts.append(start)
    assert starts == [0.0] * 9 + [60.0] * 9 + [120.0] * 2


def test_z2_a_429_or_a_spent_endpoint_budget_blocks_the_class_until_its_window() -> None:
    budget = observe_endpoint(EndpointBudget(limit=10), RateHeaders(retry_after=30.0), now=5.0)
    assert schedule_endpoint(budget, 6.0)[0] == 35.0
    spent = observe_endpoint(
        EndpointBudget(limit=10), RateHeaders(limit=30, remaining=0, reset_after=12.0), now=0.0
    )
    assert (spent.limit, spent.blocked_until) == (30, 12.0)
