"""`followup serve` in-process: it answers on its port and a SIGTERM stops it cleanly."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger

from policies.model import PlanItem
from tests.unit.worker_support import fake_zendesk, make_runtime
from worker.delivery.ledger import Ledger
from worker.runtime.service import ListenError, listen, serve

NEVER_DURING_THE_TEST = CronTrigger.from_crontab("0 3 1 1 *", timezone=UTC)


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    opened = Ledger.open(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    yield opened
    opened.close()


@pytest.fixture
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def _until_healthy(url: str) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        for _ in range(200):
            try:
                return await client.get(url)
            except httpx.ConnectError:
                await asyncio.sleep(0.05)
    raise AssertionError(f"{url} never answered")


async def test_serve_answers_and_stops_on_sigterm(ledger: Ledger, free_port: int) -> None:
    runtime = make_runtime(ledger, fake_zendesk("1"))
    serving = asyncio.create_task(
        serve(
            runtime,
            trigger=NEVER_DURING_THE_TEST,
            host="127.0.0.1",
            port=free_port,
            admin_token=None,
        )
    )
    response = await _until_healthy(f"http://127.0.0.1:{free_port}/healthz")
    assert response.json() == {"status": "ok"}

    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.wait_for(serving, timeout=30)

    assert serving.exception() is None
    with pytest.raises(httpx.ConnectError):
        await httpx.AsyncClient().get(f"http://127.0.0.1:{free_port}/healthz")


def test_a_taken_port_is_one_clear_error(free_port: int) -> None:
    with listen("127.0.0.1", free_port), pytest.raises(ListenError) as raised:
        listen("127.0.0.1", free_port)
    assert str(raised.value).startswith(f"cannot listen on 127.0.0.1:{free_port}: Address already")


async def test_sigterm_during_a_scheduled_cycle_finishes_the_case_in_hand(
    ledger: Ledger, free_port: int
) -> None:
    async def sigterm_mid_write(item: PlanItem) -> None:
        if item.case.id == "1":
            os.kill(os.getpid(), signal.SIGTERM)
            # An await on a timer, as a real write would: the loop takes the signal in first.
            await asyncio.sleep(0.05)

    fake = fake_zendesk("1", "2", "3")
    fake.before_write = sigterm_mid_write
    runtime = make_runtime(ledger, fake, concurrency=1)
    now = DateTrigger(run_date=datetime.now(UTC) + timedelta(milliseconds=100))

    await asyncio.wait_for(
        serve(runtime, trigger=now, host="127.0.0.1", port=free_port, admin_token=None),
        timeout=30,
    )

    assert [item.case.ref for item in fake.writes] == ["zendesk:1"]
    [cycle] = ledger.recent_cycles()
    assert cycle.summary is not None
    assert (cycle.summary["applied"], cycle.summary["interrupted"]) == (1, True)
