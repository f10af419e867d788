"""The HTTP face of ``followup serve``: health, readiness, metrics and the dry-run switch.

``/readyz`` answers from what the worker already knows instead of calling the vendors: an
orchestrator polls it every few seconds, and each poll spent on a vendor would come out of
the same rate limit the follow-ups need. So it reports the ledger writable (checked on the
spot) and every vendor read without error by the last cycle (none yet: not known, not failed).

``/admin/dry-run`` needs ``Authorization: Bearer <FOLLOWUP_ADMIN_TOKEN>`` (a POST may give a
``reason`` for the switch's audit log); without a token
configured the admin endpoint is disabled. So is the ops console under ``/console``
(:mod:`worker.console`), which asks for the same token.

``POST /webhooks/<tenant>/zendesk`` and ``/webhooks/<tenant>/intercom`` take the vendors'
webhooks, given a :class:`WebhookSetup`: each is verified (:mod:`worker.webhooks`) before its
case is pushed to the case store, to be read on its own at the tenant's next sync, ahead of
the vendor's change feed (Zendesk's exports leave the last minute out); a refused one answers 401
(unsigned, bad signature), 403 (stale, replayed) or 400 (malformed), and every one is counted
in ``followup_webhooks``.

``/metrics`` sets the gauges that are read off the shared state at scrape time: the effective
dry-run mode, since when the switch is on, and which tenants this replica holds.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from policies.model import Source
from worker.console import ConsoleSetup, console_routes
from worker.delivery.decisions import run_mode
from worker.delivery.ledger import LedgerError
from worker.metrics import CONTENT_TYPE_LATEST
from worker.runtime.cycle import CycleSummary, Runtime
from worker.runtime.switches import DRY_RUN, dry_run_switch, set_dry_run_switch
from worker.settings import Settings
from worker.webhooks import Rejection, ReplayGuard, verify_intercom, verify_zendesk

__all__ = ["ServiceStatus", "WebhookSetup", "create_app", "webhook_setup"]

_VERIFIERS = {"zendesk": verify_zendesk, "intercom": verify_intercom}
_REFUSED_WITH: dict[Rejection, int] = {
    "unsigned": 401, "bad_signature": 401, "stale": 403, "replayed": 403, "malformed": 400,
}  # fmt: skip

log = structlog.get_logger("followup.web")


@dataclass(slots=True)
class ServiceStatus:
    """What the scheduler learned, for ``/readyz``."""

    last_cycle: CycleSummary | None = None


@dataclass(slots=True)
class WebhookSetup:
    """The vendors' webhook secrets (None: that vendor's endpoint is off) and the replay guard
    the deliveries share. A verified webhook's case is pushed to the case store
    (:meth:`worker.sync.store.CaseStore.push`): read on its own at the tenant's next sync."""

    secrets: dict[str, str | None]  # vendor -> secret
    guard: ReplayGuard = field(default_factory=ReplayGuard)
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)


def webhook_setup(settings: Settings) -> WebhookSetup | None:
    """The vendors' webhooks on ``followup serve``, for each vendor whose secret is set."""
    secrets = {
        "zendesk": settings.zendesk_webhook_secret,
        "intercom": settings.intercom_client_secret,
    }
    if all(secret is None for secret in secrets.values()):
        return None
    given = {vendor: s.get_secret_value() if s else None for vendor, s in secrets.items()}
    return WebhookSetup(secrets=given)


def _observe_shared_state(runtime: Runtime) -> None:
    switch = dry_run_switch(runtime.ledger)
    mode = run_mode(flag=None, switch=switch, configured=runtime.configured_dry_run)
    runtime.metrics.dry_run.set(int(mode.dry_run))
    since = runtime.ledger.switch_set_at(DRY_RUN) if switch else None
    runtime.metrics.dry_run_switch_on_since.set(0 if since is None else since.timestamp())
    for tenant in runtime.tenants:
        runtime.metrics.tenant_lease_held.labels(tenant=tenant.name).set(
            int(runtime.holds(tenant.name))
        )


def create_app(
    runtime: Runtime,
    status: ServiceStatus,
    *,
    admin_token: str | None,
    console: ConsoleSetup | None = None,
    webhooks: WebhookSetup | None = None,
) -> Starlette:
    """The endpoints, the console when ``console`` is given, the webhooks when ``webhooks``."""

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_request: Request) -> Response:
        problems: list[str] = []
        try:
            runtime.ledger.check_writable()
        except LedgerError as exc:
            problems.append(str(exc))
        last = status.last_cycle
        if last is not None:
            problems.extend(f"cycle {last.cycle_id}: {error}" for error in last.errors)
        body: dict[str, Any] = {
            "ready": not problems,
            "problems": problems,
            "last_cycle": None if last is None else last.cycle_id,
        }
        return JSONResponse(body, status_code=503 if problems else 200)

    async def metrics(_request: Request) -> Response:
        _observe_shared_state(runtime)
        return Response(runtime.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    def authorised(request: Request) -> bool:
        given = request.headers.get("authorization", "")
        expected = f"Bearer {admin_token}"
        return hmac.compare_digest(given.encode(), expected.encode())

    def switch_state() -> dict[str, Any]:
        switch = dry_run_switch(runtime.ledger)
        mode = run_mode(flag=None, switch=switch, configured=runtime.configured_dry_run)
        return {
            "dry_run": mode.dry_run,
            "why": mode.why,
            "switch": None if switch is None else "on" if switch else "off",
            "configured": runtime.configured_dry_run,
        }

    async def admin_dry_run(request: Request) -> Response:
        if admin_token is None:
            return JSONResponse({"error": "admin endpoint disabled: no admin token"}, 404)
        if not authorised(request):
            return JSONResponse({"error": "unauthorised"}, 401)
        if request.method == "POST":
            expected = 'expected {"dry_run": true|false, "reason": "..." (optional)}'
            try:
                payload = await request.json()
                wanted = payload["dry_run"]
                reason = payload.get("reason", "")
            except (ValueError, KeyError, TypeError, AttributeError):
                return JSONResponse({"error": expected}, 400)
            if not isinstance(wanted, bool) or not isinstance(reason, str):
                return JSONResponse({"error": expected}, 400)
            client = request.client.host if request.client else "unknown"
            set_dry_run_switch(
                runtime.ledger,
                wanted,
                by=f"admin api ({client})",
                at=datetime.now(UTC),
                reason=reason,
            )
        return JSONResponse(switch_state())

    async def webhook(request: Request) -> Response:
        tenant, vendor = request.path_params["tenant"], request.path_params["vendor"]
        secret = None if webhooks is None else webhooks.secrets.get(vendor)
        known = any(served.name == tenant for served in runtime.tenants)
        if vendor not in _VERIFIERS or webhooks is None or secret is None or not known:
            return JSONResponse({"error": "no such webhook endpoint"}, 404)
        body = await request.body()
        delivery = _VERIFIERS[vendor](
            secret, request.headers, body, webhooks.clock(), webhooks.guard
        )
        result = delivery.rejected or "accepted"
        runtime.metrics.webhooks.labels(tenant=tenant, vendor=vendor, result=result).inc()
        if delivery.rejected is not None:
            log.warning("webhook_refused", tenant=tenant, vendor=vendor, reason=result)
            return JSONResponse({"error": result}, _REFUSED_WITH[delivery.rejected])
        if delivery.case_id is not None:
            log.info("case pushed (webhook)", tenant=tenant, vendor=vendor, case=delivery.case_id)
            runtime.store.push(tenant, Source(vendor), delivery.case_id, at=webhooks.clock())
        return JSONResponse({"ok": True, "case": delivery.case_id})

    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
            Route("/admin/dry-run", admin_dry_run, methods=["GET", "POST"]),
            Route("/webhooks/{tenant}/{vendor:str}", webhook, methods=["POST"]),
            *([] if console is None else console_routes(runtime, console, admin_token=admin_token)),
        ]
    )
