"""Running cycles for real: once (cron, Kubernetes CronJob, CI) or on a schedule (serve).

Both own SIGTERM and SIGINT: the first signal finishes the cases in hand, starts no new one
and returns normally, so the process exits 0 and nothing is left half-written.
"""

from __future__ import annotations

import asyncio
import signal
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime

import structlog
import uvicorn
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger

from worker.cycle import CycleSummary, Runtime, run_cycle
from worker.leases import LeaseKeeper
from worker.web import ServiceStatus, create_app

__all__ = [
    "ListenError",
    "leases_kept",
    "listen",
    "refresh_leases",
    "run_once",
    "serve",
    "shutdown_on_signals",
]

log = structlog.get_logger("followup.service")


@contextmanager
def shutdown_on_signals(stop: asyncio.Event) -> Iterator[None]:
    """Set ``stop`` on SIGTERM or SIGINT while inside the block."""
    loop = asyncio.get_running_loop()

    def request_stop(received: signal.Signals) -> None:
        log.warning("shutdown requested: finishing the cases in hand", signal=received.name)
        stop.set()

    handled = (signal.SIGTERM, signal.SIGINT)
    for received in handled:
        loop.add_signal_handler(received, request_stop, received)
    try:
        yield
    finally:
        for received in handled:
            loop.remove_signal_handler(received)


async def refresh_leases(keeper: LeaseKeeper, runtime: Runtime) -> None:
    """One lease round (heartbeat, renew, rebalance, claim), off the event loop."""
    tenant_ids = [tenant.name for tenant in runtime.tenants]
    held = await asyncio.to_thread(keeper.refresh, tenant_ids)
    runtime.metrics.leases_held.set(len(held))
    log.debug("leases refreshed", held=[lease.tenant_id for lease in held])


async def _keep_leases(keeper: LeaseKeeper, runtime: Runtime, done: asyncio.Event) -> None:
    """Refresh on the keeper's rhythm, however long cycles take, until ``done``. A failed
    round is logged and retried: the leases stay valid until their TTL runs out, and the fence
    before each write stops this replica if they do.

    Not cancelled mid-round: a round runs in a thread that cancelling would not stop, and one
    finishing after ``keeper.shutdown()`` would claim tenants for a process about to exit."""
    while True:
        try:
            await asyncio.wait_for(done.wait(), keeper.next_refresh_in().total_seconds())
            return
        except TimeoutError:
            pass
        try:
            await refresh_leases(keeper, runtime)
        except Exception:
            log.exception("lease refresh failed; retrying")


@asynccontextmanager
async def leases_kept(runtime: Runtime) -> AsyncIterator[None]:
    """Hold this replica's share of the tenants inside the block: one refresh first (so the
    first cycle knows its tenants), then in the background."""
    keeper = runtime.leases
    if keeper is None:
        yield
        return
    await refresh_leases(keeper, runtime)
    done = asyncio.Event()
    keeping = asyncio.create_task(_keep_leases(keeper, runtime, done))
    try:
        yield
    finally:
        done.set()
        await keeping


async def run_once(runtime: Runtime, *, at: datetime, dry_run: bool | None = None) -> CycleSummary:
    """One cycle, stoppable by a signal (``followup run --once``)."""
    stop = asyncio.Event()
    with shutdown_on_signals(stop):
        async with leases_kept(runtime):
            return await run_cycle(runtime, at=at, dry_run=dry_run, stop=stop)


class ListenError(Exception):
    """The HTTP port cannot be opened (in use, not permitted...)."""


def listen(host: str, port: int) -> socket.socket:
    """Bind before anything starts, so a taken port is one clear error, not a traceback."""
    try:
        return socket.create_server((host, port))
    except OSError as exc:
        raise ListenError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc


class _Server(uvicorn.Server):
    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The service owns the signals: the cycle in hand must finish before the server stops.
        yield


async def serve(
    runtime: Runtime,
    *,
    trigger: BaseTrigger,
    host: str,
    port: int,
    admin_token: str | None,
) -> None:
    """Cycles when ``trigger`` fires (never two at once) plus the HTTP endpoints, until a
    signal. ``followup serve`` passes a cron trigger in the tenant's time zone."""
    stop = asyncio.Event()
    status = ServiceStatus()
    # max_instances=1 keeps the scheduler from overlapping cycles; the lock lets shutdown wait
    # for the cycle in hand.
    one_at_a_time = asyncio.Lock()

    async def scheduled_cycle() -> None:
        if stop.is_set():
            return
        async with one_at_a_time:
            try:
                status.last_cycle = await run_cycle(runtime, at=runtime.clock(), stop=stop)
            except Exception:
                log.exception("cycle crashed; the next one runs on schedule")

    scheduler = AsyncIOScheduler(timezone=UTC)
    job = scheduler.add_job(
        scheduled_cycle,
        trigger,
        id="cycle",
        max_instances=1,
        coalesce=True,
        misfire_grace_time=600,
    )
    app = create_app(runtime, status, admin_token=admin_token)
    server = _Server(uvicorn.Config(app, log_config=None, access_log=False, lifespan="off"))
    listening = listen(host, port)
    async with leases_kept(runtime):
        with shutdown_on_signals(stop):
            scheduler.start()
            log.info("serving", trigger=str(trigger), next_cycle=str(job.next_run_time), port=port)
            serving = asyncio.create_task(server.serve(sockets=[listening]))
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
            scheduler.pause()
            async with one_at_a_time:  # the cycle in hand, if any, winds down first
                scheduler.shutdown(wait=False)
            server.should_exit = True
            stopping.cancel()
            await serving
    log.info("stopped")
