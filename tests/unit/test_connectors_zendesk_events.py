"""The comment index past ``held`` tickets in flight: spilled entries answer exactly as held
ones, memory stays flat in the number of tickets, and the spill goes when the index does, or
with the process, however it dies.

Memory is measured with tracemalloc (Python's own allocations; SQLite's page cache is its own
and bounded), against what the extra tickets' entries weigh when all of them are held.
"""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import tracemalloc
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.http import VendorClient
from connectors.mapping import ZendeskMapping
from connectors.settings import Timeouts, VendorLimits
from connectors.zendesk import ZendeskConnector
from connectors.zendesk_events import CommentIndex

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SINCE = T0 - timedelta(seconds=2)  # the window: a ticket may be created before it
REQUESTER, AGENT = 501, 99
ROOT = Path(__file__).resolve().parents[2]


def unix(second: int) -> int:
    return int(T0.timestamp()) + second


def iso(second: int) -> str:
    return (T0 + timedelta(seconds=second)).strftime("%Y-%m-%dT%H:%M:%SZ")


def comment(author: int, **extra: Any) -> dict[str, Any]:
    return {"event_type": "Comment", "type": "Comment", "author_id": author, "public": True,
            "via": {"channel": "email"}, "created_at": iso(0), "body": "hello",
            "html_body": "<p>hello</p>", **extra}  # fmt: skip


# What an audit may carry: comments in and out, a missed call, the worker's signed note, a
# change that is no comment; and, rarely, what makes a ticket read alone: a comment the index
# cannot keep, a child that is no object.
CHILDREN = [
    comment(REQUESTER),
    comment(AGENT, public=False),
    comment(REQUESTER, event_type="VoiceComment", type="VoiceComment",
            data={"answered_by_id": None, "from": "+1555"},
            metadata={"custom": {"missed": True}}, via={"channel": "voice"}),
    comment(AGENT, body="note\n\n— followup-worker · general_inquiry · step 2/3 · fw-0123abcd"),
    {"event_type": "Change", "field_name": "status", "value": "open"},
]  # fmt: skip
UNREADABLE_CHILDREN = [comment(REQUESTER, public="yes"), "not an object"]
TICKET_IDS = [1, 2, 3, 4, 5, "5", "x"]  # 5 and "5" are two tickets, as in a dict


def rarely(
    strategy: st.SearchStrategy[Any], otherwise: st.SearchStrategy[Any], one_in: int
) -> st.SearchStrategy[Any]:
    """``strategy`` about one time in ``one_in``, else ``otherwise``: what spoils a ticket's
    answer, or every ticket's, must not spoil most streams."""
    return st.integers(min_value=1, max_value=one_in).flatmap(
        lambda roll: strategy if roll == 1 else otherwise
    )


ticket_ids = st.sampled_from(TICKET_IDS)
seconds = st.integers(min_value=0, max_value=4)  # few: repeats of a second are common
children = st.lists(
    rarely(st.sampled_from(UNREADABLE_CHILDREN), st.sampled_from(CHILDREN), one_in=30),
    max_size=3,
)
good_events = st.fixed_dictionaries(
    {
        "id": st.integers(min_value=0, max_value=3),  # few: repeated ids within a second
        "ticket_id": ticket_ids,
        "timestamp": seconds.map(unix),
        "child_events": children,
    }
)
unreadable = st.one_of(
    good_events.map(lambda e: {**e, "timestamp": "soon"}),
    good_events.map(lambda e: {**e, "child_events": None}),
)
placed_nowhere = st.one_of(  # then every ticket reads its own
    good_events.map(lambda e: {**e, "ticket_id": None}),
    good_events.map(lambda e: {**e, "ticket_id": True}),
    st.just("not an event"),
)
events = rarely(placed_nowhere, rarely(unreadable, good_events, one_in=30), one_in=300)
pages = rarely(
    st.just({"ticket_events": "garbled"}),
    st.builds(
        lambda events, end: {"ticket_events": events, "end_time": unix(end)},
        st.lists(events, min_size=1, max_size=6),
        seconds,
    ),
    one_in=300,
)


def fields_of_ticket(ticket_id: object, updated: int, created: int) -> dict[str, Any]:
    return {"id": ticket_id, "updated_at": iso(updated), "created_at": iso(created),
            "requester_id": REQUESTER}  # fmt: skip


tickets = st.builds(
    fields_of_ticket,
    # A number equal to an int finds its entry, in a dict and in the spill file alike.
    st.one_of(ticket_ids, st.sampled_from([1.0, True])),
    seconds,
    st.integers(min_value=-3, max_value=1),  # -3: created before the window
)
steps = st.one_of(
    pages.map(lambda page: ("add", page)),
    tickets.map(lambda ticket: ("take", ticket)),
    rarely(
        st.one_of(ticket_ids, st.just(None)).map(lambda ticket_id: ("forget", ticket_id)),
        tickets.map(lambda ticket: ("take", ticket)),
        one_in=4,
    ),
)


def answers(index: CommentIndex, stream: list[tuple[str, Any]]) -> list[Any]:
    """What the index says at each step, then for every ticket at the end, and its counts."""
    said: list[Any] = []
    for step, arg in stream:
        if step == "add":
            index.add(arg)
            said.append([index.covers(unix(second)) for second in range(-1, 5)])
        elif step == "take":
            said.append(index.take(arg))
        else:
            index.forget(arg)
    for ticket_id in TICKET_IDS:
        ticket = {"id": ticket_id, "updated_at": iso(0), "created_at": iso(0)}
        said.append(index.take(ticket))
    return [*said, index.events, index.read_alone]


@settings(
    max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.lists(steps, min_size=4, max_size=40), st.integers(min_value=1, max_value=3))
def test_an_index_that_spills_answers_as_one_that_holds_everything(
    stream: list[tuple[str, Any]], held: int
) -> None:
    with closing(CommentIndex(SINCE, cap=2, held=1000)) as whole:
        expected = answers(whole, stream)
    with closing(CommentIndex(SINCE, cap=2, held=held)) as spilling:
        assert answers(spilling, stream) == expected


def audit(ticket_id: int) -> dict[str, Any]:
    """Ticket ``ticket_id``'s one update, a customer's email, at second ``ticket_id``."""
    return {"id": ticket_id, "ticket_id": ticket_id, "timestamp": unix(ticket_id),
            "child_events": [comment(REQUESTER, created_at=iso(ticket_id))]}  # fmt: skip


def ticket(ticket_id: int) -> dict[str, Any]:
    return {"id": ticket_id, "updated_at": iso(ticket_id), "created_at": iso(0),
            "requester_id": REQUESTER}  # fmt: skip


def feed(index: CommentIndex, count: int, first: int = 0, page: int = 100) -> None:
    """Events for ``count`` tickets from ``first`` on, a page at a time, each page let go as
    it is added."""
    for start in range(first, first + count, page):
        end = min(start + page, first + count)
        index.add({"ticket_events": [audit(n) for n in range(start, end)], "end_time": unix(end)})


def test_entries_spill_past_held_and_come_back() -> None:
    index = CommentIndex(SINCE, cap=10, held=3)
    feed(index, 3)
    assert index.spilled == 0
    feed(index, 2, first=3)  # tickets 3 and 4: 0 and 1, touched least recently, spill
    assert index.spilled == 2
    assert index.take(ticket(0)) == [comment_as_read(0)]  # back from the spill
    assert index.spilled == 1
    index.close()
    assert index.spilled == 0
    index.close()  # twice is harmless


KILLED_WHILE_SPILLING = """
import os, signal, sys
sys.path.insert(0, os.getcwd())
from connectors.zendesk_events import CommentIndex
from tests.unit.test_connectors_zendesk_events import SINCE, feed

index = CommentIndex(SINCE, cap=10, held=10)
feed(index, 20_000)  # past SQLite's 2 MB cache: the spill is in its file
folder = sys.argv[1]
links = []
for fd in os.listdir("/proc/self/fd"):
    try:
        links.append(os.readlink(f"/proc/self/fd/{fd}"))
    except FileNotFoundError:
        pass  # the descriptor listdir itself had open
print(index.spilled, [link for link in links if link.startswith(folder)], flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs Linux's /proc")
def test_a_replica_killed_while_spilling_leaves_no_file(tmp_path: Path) -> None:
    child = subprocess.run(
        [sys.executable, "-c", KILLED_WHILE_SPILLING, str(tmp_path)],
        cwd=ROOT,
        env={**os.environ, "SQLITE_TMPDIR": str(tmp_path), "TMPDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    spilled, open_files = child.stdout.split(" ", 1)
    assert int(spilled) == 20_000 - 10
    assert " (deleted)" in open_files  # its file was open in the folder, already unlinked
    assert list(tmp_path.iterdir()) == []


def comment_as_read(second: int) -> dict[str, Any]:
    return {"author_id": REQUESTER, "created_at": iso(second), "public": True,
            "type": "Comment", "via": {"channel": "email"}, "body": ""}  # fmt: skip


FEW, MANY = 1_000, 10_000
HELD = 100


def peak_of_feeding(count: int, held: int) -> int:
    """Bytes allocated at the peak of reading ``count`` tickets' events with none taken yet
    (all of them in flight), above the start; then every ticket is taken, as the stream
    would, and the index closed."""
    index = CommentIndex(SINCE, cap=500, held=held)
    gc.collect()
    tracemalloc.reset_peak()
    start, _ = tracemalloc.get_traced_memory()
    feed(index, count)
    _, peak = tracemalloc.get_traced_memory()
    assert index.spilled == max(count - held, 0)
    assert all(index.take(ticket(n)) == [comment_as_read(n)] for n in range(count))
    assert index.read_alone == 0
    index.close()
    return peak - start


def weight_of(count: int) -> int:
    """What ``count`` tickets' entries weigh when all of them are held in memory."""
    index = CommentIndex(SINCE, cap=500, held=count)
    gc.collect()
    before, _ = tracemalloc.get_traced_memory()
    feed(index, count)
    gc.collect()
    after, _ = tracemalloc.get_traced_memory()
    index.close()
    return after - before


def growth(held: Callable[[int], int]) -> tuple[int, int]:
    """How much more the peak is with MANY tickets in flight than with FEW, and what the
    extra tickets' entries weigh."""
    tracing_already = tracemalloc.is_tracing()
    tracemalloc.start()
    try:
        peak_of_feeding(FEW, held(FEW))  # first use: imports, caches, statements
        few = peak_of_feeding(FEW, held(FEW))
        many = peak_of_feeding(MANY, held(MANY))
        return many - few, weight_of(MANY - FEW)
    finally:
        if not tracing_already:
            tracemalloc.stop()


def test_ten_times_the_tickets_in_flight_take_no_more_memory() -> None:
    grown, extra_entries = growth(lambda _: HELD)

    # Holding every entry would add about ``extra_entries``; a quarter of it leaves room for
    # the allocator's noise.
    assert grown < extra_entries / 4, (grown, extra_entries)


def test_the_measure_sees_an_index_that_holds_every_ticket() -> None:
    grown, extra_entries = growth(lambda count: count)

    assert grown > extra_entries / 2, (grown, extra_entries)


# -- the connector closes its index however the stream ends -----------------------------------

TICKETS = 30  # all of their events are read before the first page of tickets streams


def fake_zendesk(request: httpx.Request) -> httpx.Response:
    path = request.url.path
    if path == "/api/v2/incremental/tickets/cursor":
        page = int(request.url.params.get("cursor") or 0)
        first = page * 10
        return httpx.Response(200, json={
            "tickets": [{**ticket(n), "status": "open", "subject": "s", "description": "d"}
                        for n in range(first, first + 10)],
            "users": [{"id": REQUESTER, "name": "Ann"}],
            "after_cursor": str(page + 1), "end_of_stream": first + 10 >= TICKETS,
        })  # fmt: skip
    if path == "/api/v2/incremental/ticket_events":
        return httpx.Response(200, json={
            "ticket_events": [audit(n) for n in range(TICKETS)], "end_time": unix(TICKETS),
            "end_of_stream": True,
        })  # fmt: skip
    if path.endswith("/comments"):
        raise AssertionError("a spilled ticket's comments come from the index, not a call")
    key = path.rsplit("/", 1)[-1]  # ticket_fields, groups, users: none needed here
    return httpx.Response(200, json={key: [], "next_page": None})


def connector() -> ZendeskConnector:
    client = VendorClient(
        "zendesk", "https://acme.zendesk.com", limits=VendorLimits(), timeouts=Timeouts(),
        transport=httpx.MockTransport(fake_zendesk),
    )  # fmt: skip
    return ZendeskConnector(client, ZendeskMapping(), clock=lambda: T0)


@pytest.fixture
def small_index(monkeypatch: pytest.MonkeyPatch) -> list[CommentIndex]:
    """The connector's index holds 2 tickets (so it spills here); the indexes it made."""
    made: list[CommentIndex] = []

    def index(since: datetime, cap: int) -> CommentIndex:
        made.append(CommentIndex(since, cap, held=2))
        return made[-1]

    monkeypatch.setattr("connectors.zendesk.CommentIndex", index)
    return made


async def test_a_stream_read_through_closes_its_index(
    small_index: list[CommentIndex],
) -> None:
    async with connector() as zendesk:
        cases = [case.id async for case in zendesk.cases()]
    assert cases == [str(n) for n in range(TICKETS)]
    assert small_index[0].read_alone == 0
    assert small_index[0].spilled == 0


async def test_an_abandoned_stream_closes_its_index(
    small_index: list[CommentIndex],
) -> None:
    async with connector() as zendesk:
        stream = zendesk.cases()
        assert (await anext(stream)).id == "0"
        assert small_index[0].spilled > 0
        await stream.aclose()  # type: ignore[attr-defined]
    assert small_index[0].spilled == 0  # closed: its entries dropped, never taken
