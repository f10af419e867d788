"""The console's routes: five server-rendered pages under ``/console`` of ``followup serve``.

Read-only but for the dry-run switch. Behind ``FOLLOWUP_ADMIN_TOKEN``: the login page takes the
token and sets a cookie derived from it (an HMAC, never the token itself), or a client sends
``Authorization: Bearer <token>`` as for ``/admin/dry-run``. Without a token configured the
console is off, like the admin endpoint.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

import jinja2
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from policies.language import BUNDLED_PACK
from worker.console.chart import bar_chart
from worker.console.live import TenantView, explain_live, forecast, helpdesk_link
from worker.console.setup import ConsoleSetup
from worker.delivery.decisions import run_mode
from worker.runtime.badrecords import unreadable_mentions
from worker.runtime.cycle import Runtime
from worker.runtime.switches import DRY_RUN, dry_run_switch, set_dry_run_switch

__all__ = ["COOKIE", "MAX_HORIZON", "console_routes", "session_cookie"]

COOKIE = "followup_console"
MAX_HORIZON = 20
"""Business days the ahead page looks at most (``?days=``); 5 unless asked."""
_DEFAULT_HORIZON = 5
_TURNS_SHOWN = 5
_AUDIT_SHOWN = 50

_templates = jinja2.Environment(
    loader=jinja2.PackageLoader("worker.console", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _local(value: datetime | None, zone: ZoneInfo) -> str:
    return "-" if value is None else f"{value.astimezone(zone):%a %Y-%m-%d %H:%M %Z}"


_templates.filters["local"] = _local


def session_cookie(admin_token: str) -> str:
    """The login cookie's value: proves the token was given without being the token."""
    return hmac.new(admin_token.encode(), b"followup console session", hashlib.sha256).hexdigest()


Handler = Callable[[Request], Awaitable[Response]]
_FORM_BYTES = 16_384


async def _form(request: Request) -> dict[str, str]:
    """An url-encoded form's fields (the pages post nothing else; Starlette's own parser needs
    python-multipart, which the worker does without). The first value of each, at most
    :data:`_FORM_BYTES` read."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _FORM_BYTES:
            return {}
    try:
        fields = parse_qs(body.decode("utf-8", "replace"), max_num_fields=20)
    except ValueError:  # more fields than any page posts
        return {}
    return {name: values[0] for name, values in fields.items()}


def console_routes(
    runtime: Runtime, setup: ConsoleSetup, *, admin_token: str | None
) -> list[BaseRoute]:
    """The ``/console`` routes for ``followup serve``'s app
    (:func:`worker.runtime.web.create_app`)."""

    def render(request: Request, template: str, status: int = 200, **context: Any) -> Response:
        page = _templates.get_template(template).render(
            root=request.scope.get("root_path", "") + "/console", zone=setup.zone, **context
        )
        return HTMLResponse(page, status_code=status)

    def signed_in(request: Request) -> bool:
        assert admin_token is not None
        bearer = request.headers.get("authorization", "")
        cookie = request.cookies.get(COOKIE, "")
        return hmac.compare_digest(
            bearer.encode(), f"Bearer {admin_token}".encode()
        ) or hmac.compare_digest(cookie.encode(), session_cookie(admin_token).encode())

    def guarded(handler: Handler) -> Handler:
        async def guard(request: Request) -> Response:
            if admin_token is None:
                return render(request, "off.html.j2", status=404)
            if not signed_in(request):
                return RedirectResponse(request.url_for("login").path, status_code=303)
            return await handler(request)

        return guard

    async def login(request: Request) -> Response:
        if admin_token is None:
            return render(request, "off.html.j2", status=404)
        if request.method == "GET":
            return render(request, "login.html.j2", problem=None)
        given = (await _form(request)).get("token", "")
        if not hmac.compare_digest(given.encode(), admin_token.encode()):
            return render(request, "login.html.j2", status=401, problem="wrong token")
        response = RedirectResponse(request.url_for("now").path, status_code=303)
        response.set_cookie(
            COOKIE,
            session_cookie(admin_token),
            httponly=True,
            samesite="strict",
            path=request.url_for("now").path,
        )
        return response

    def mode() -> dict[str, Any]:
        switch = dry_run_switch(runtime.ledger)
        decided = run_mode(flag=None, switch=switch, configured=runtime.configured_dry_run)
        last = runtime.ledger.switch_log(DRY_RUN, limit=1)
        return {"dry_run": decided.dry_run, "why": decided.why, "last": last[0] if last else None}

    def lease_holders() -> Callable[[str], str]:
        """Who holds each tenant's lease, as the Now page says it (one query for all)."""
        keeper = runtime.leases
        if keeper is None:
            return lambda _tenant: "this process (no leases: it works every tenant)"
        mine = {lease.tenant_id: lease for lease in keeper.held()}
        others = keeper.leases.holders()

        def holder(tenant: str) -> str:
            lease = mine.get(tenant)
            if lease is not None:
                until = _local(lease.expires_at, setup.zone)
                return f"this replica ({keeper.replica_id}), until {until}"
            lease = others.get(tenant)
            if lease is not None:
                return f"replica {lease.holder}, until {_local(lease.expires_at, setup.zone)}"
            return "nobody: no replica works this tenant now"

        return holder

    async def now(request: Request) -> Response:
        turns = await asyncio.to_thread(runtime.ledger.recent_turns, per_tenant=_TURNS_SHOWN)
        holder = await asyncio.to_thread(lease_holders)
        at = runtime.clock()
        tenants = [
            {
                "name": name,
                "lease": holder(name),
                "turns": turns.get(name, []),
                "unresolved": await setup.checks.unresolved(view, at),
            }
            for name, view in setup.tenants.items()
        ]
        return render(
            request, "now.html.j2", page="now", tenants=tenants, broken=setup.broken, mode=mode()
        )

    def chosen_tenant(request: Request) -> TenantView | None:
        name = request.query_params.get("tenant") or next(iter(setup.tenants), None)
        return setup.tenants.get(name or "")

    async def ahead(request: Request) -> Response:
        view = chosen_tenant(request)
        try:
            days = int(request.query_params.get("days", _DEFAULT_HORIZON))
        except ValueError:
            days = _DEFAULT_HORIZON
        days = max(0, min(days, MAX_HORIZON))
        if view is None:
            return render(request, "missing.html.j2", status=404, what="no such tenant")
        at = runtime.clock()
        ahead = await forecast(view, at, days)
        chart = Markup(bar_chart([(f"{day:%a %d}", ahead.count(day)) for day in ahead.days]))
        return render(
            request,
            "ahead.html.j2",
            page="ahead",
            tenant=view.tenant.name,
            tenants=list(setup.tenants),
            at=at,
            days=days,
            max_days=MAX_HORIZON,
            forecast=ahead,
            chart=chart,
        )

    async def case(request: Request) -> Response:
        view = chosen_tenant(request)
        ref = request.query_params.get("ref", "").strip()
        if view is None or ":" not in ref:
            return render(
                request, "missing.html.j2", status=404, what="give a tenant and a ref (zendesk:77)"
            )
        name = view.tenant.name
        at = runtime.clock()
        # The ledger's queries scan its records: off the loop the cycles run on.
        attempts = await asyncio.to_thread(runtime.ledger.history, ref, tenant=name)
        unreadable = await asyncio.to_thread(unreadable_mentions, runtime.ledger, ref, tenant=name)
        explained = await explain_live(view, ref, at)
        return render(
            request,
            "case.html.j2",
            page="case",
            tenant=name,
            ref=ref,
            at=at,
            attempts=attempts,
            unreadable=unreadable,
            explained=explained,
            link=helpdesk_link(view.settings, ref),
            tenant_zone=view.calendar.zone,
        )

    async def dry_run(request: Request) -> Response:
        problem = None
        if request.method == "POST":
            form = await _form(request)
            wanted = form.get("dry_run", "")
            operator = form.get("operator", "").strip()
            reason = form.get("reason", "").strip()
            if wanted not in ("on", "off") or not operator or not reason:
                problem = "say who you are and why: both are kept in the audit list"
            else:
                client = request.client.host if request.client else "unknown"
                set_dry_run_switch(
                    runtime.ledger,
                    wanted == "on",
                    by=f"{operator} (console, {client})",
                    at=runtime.clock(),
                    reason=reason,
                )
                return RedirectResponse(request.url_for("dry_run").path, status_code=303)
        return render(
            request,
            "dry_run.html.j2",
            status=400 if problem else 200,
            page="dry_run",
            mode=mode(),
            audit=runtime.ledger.switch_log(DRY_RUN, limit=_AUDIT_SHOWN),
            problem=problem,
        )

    async def policies(request: Request) -> Response:
        tenants = [
            {
                "name": name,
                "settings": view.settings,
                "pack": view.settings.policies or BUNDLED_PACK,
                "rulebook": view.rulebook,
            }
            for name, view in setup.tenants.items()
        ]
        return render(request, "policies.html.j2", page="policies", tenants=tenants)

    return [
        Route("/console/login", login, methods=["GET", "POST"], name="login"),
        Route("/console/", guarded(now), name="now"),
        Route("/console/ahead", guarded(ahead), name="ahead"),
        Route("/console/case", guarded(case), name="case"),
        Route("/console/dry-run", guarded(dry_run), methods=["GET", "POST"], name="dry_run"),
        Route("/console/policies", guarded(policies), name="policies"),
    ]
