"""Running cycles for real: once (cron, Kubernetes CronJob, CI) or on a schedule (serve).

Both own SIGTERM and SIGINT: the first signal finishes the cases in hand, starts no new one
and returns normally, so the process exits 0 and nothing is left half-written.

With leases (replicas sharing PostgreSQL), ``serve`` holds a fair share of the tenants and
rebalances in the background; ``run --once`` claims one tenant at a time, so replicas started
together (a CronJob with parallelism, cron on several hosts) share the work instead of the
first one up taking everything (:mod:`worker.runtime.leases`).
"""

from __future__ import annotations

import asyncio
import signal
import socket
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime

import structlog
import uvicorn
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger

from worker.console import ConsoleSetup
from worker.runtime.cycle import CycleSummary, Runtime, Tenant, held_tenants, run_cycle
from worker.runtime.leases import LeaseKeeper
from worker.runtime.web import ServiceStatus, WebhookSetup, create_app

__all__ = [
    "ListenError",
    "claimed_one_at_a_time",
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


async def _renew_leases(keeper: LeaseKeeper, runtime: Runtime) -> None:
    """``run --once``'s background round: heartbeat and renew, claim nothing."""
    await asyncio.to_thread(keeper.keep)
    runtime.metrics.leases_held.set(len(keeper.held()))


LeaseRound = Callable[[LeaseKeeper, Runtime], Awaitable[None]]


async def _keep_leases(
    keeper: LeaseKeeper, runtime: Runtime, done: asyncio.Event, lease_round: LeaseRound
) -> None:
    """Run ``lease_round`` on the keeper's rhythm, however long cycles take, until ``done``. A
    failed round is logged and retried: the leases stay valid until their TTL runs out, and
    the fence before each write stops this replica if they do.

    Not cancelled mid-round: a round runs in a thread that cancelling would not stop, and one
    finishing after ``keeper.shutdown()`` would claim tenants for a process about to exit."""
    while True:
        try:
            await asyncio.wait_for(done.wait(), keeper.next_refresh_in().total_seconds())
            return
        except TimeoutError:
            pass
        try:
            await lease_round(keeper, runtime)
        except Exception:
            log.exception("lease refresh failed; retrying")


@asynccontextmanager
async def leases_kept(runtime: Runtime, *, one_at_a_time: bool = False) -> AsyncIterator[None]:
    """Hold this replica's share of the tenants inside the block: one refresh first (so the
    first cycle knows its tenants), then in the background.

    ``one_at_a_time`` (``run --once``): join the run instead and claim nothing; the cycle's
    turns claim (:func:`claimed_one_at_a_time`), the background only renews."""
    keeper = runtime.leases
    if keeper is None:
        yield
        return
    if one_at_a_time:
        run_id = await asyncio.to_thread(keeper.join_run)
        log.info("joined a run of run --once replicas", run_id=run_id)
        lease_round: LeaseRound = _renew_leases
    else:
        await refresh_leases(keeper, runtime)
        lease_round = refresh_leases
    done = asyncio.Event()
    keeping = asyncio.create_task(_keep_leases(keeper, runtime, done, lease_round))
    try:
        yield
    finally:
        done.set()
        await keeping


async def claimed_one_at_a_time(runtime: Runtime, stop: asyncio.Event) -> AsyncGenerator[Tenant]:
    """``run --once``'s turns: claim a tenant no replica of the run has served yet, hand it
    out, mark it served once its turn is over, claim the next; until none is left.

    A turn cut short by a signal is not marked served: its lease goes back on exit and the
    tenant waits for whoever is still running (or the next run). Without leases: every tenant.
    """
    keeper = runtime.leases
    if keeper is None:
        async for tenant in held_tenants(runtime, stop):
            yield tenant
        return
    tenants = {tenant.name: tenant for tenant in runtime.tenants}
    left = list(tenants)
    while left and not stop.is_set():
        lease = await asyncio.to_thread(keeper.claim_next, left)
        if lease is None:
            break
        left.remove(lease.tenant_id)
        runtime.metrics.leases_held.set(len(keeper.held()))
        yield tenants[lease.tenant_id]
        if stop.is_set():
            break
        if not await asyncio.to_thread(keeper.served, lease.tenant_id):
            log.warning("lease lost during the turn; tenant left to its new holder")
        runtime.metrics.leases_held.set(len(keeper.held()))
    if left and not stop.is_set():
        log.info("other replicas of the run have the remaining tenants", tenants=len(left))


async def run_once(runtime: Runtime, *, at: datetime, dry_run: bool | None = None) -> CycleSummary:
    """One cycle, stoppable by a signal (``followup run --once``), over the tenants this
    replica claims one at a time (:func:`claimed_one_at_a_time`)."""
    stop = asyncio.Event()
    with shutdown_on_signals(stop):
        async with leases_kept(runtime, one_at_a_time=True):
            return await run_cycle(
                runtime, at=at, dry_run=dry_run, stop=stop, turns=claimed_one_at_a_time
            )


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
    console: ConsoleSetup | None = None,
    webhooks: WebhookSetup | None = None,
) -> None:
    """Cycles when ``trigger`` fires (never two at once) plus the HTTP endpoints (and the ops
    console, given its ``console``; the vendors' webhooks, given ``webhooks``), until a
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
    app = create_app(runtime, status, admin_token=admin_token, console=console, webhooks=webhooks)
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
