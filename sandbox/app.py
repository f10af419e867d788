"""Composition root: the sandbox's state and the ASGI app serving the three vendors + admin."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import replace
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount

from sandbox import admin, asana_api, intercom, intercom_api, zendesk, zendesk_api
from sandbox import asana as asana_desk
from sandbox.asana import AsanaDesk
from sandbox.clock import SandboxClock, format_iso, parse_iso
from sandbox.config import SandboxConfig
from sandbox.contract import Contract, default_specs_dir
from sandbox.errors import VendorError, json_response
from sandbox.faults import FaultPlan
from sandbox.gate import Gate, VendorProfile
from sandbox.generator import Generator
from sandbox.intercom import IntercomDesk
from sandbox.limits import RateLimiter
from sandbox.outbox import Outbox
from sandbox.traffic import Traffic
from sandbox.zendesk import ZendeskDesk

__all__ = ["Sandbox", "build_app", "tenant_config"]


class Sandbox:
    """Everything the server keeps in memory for one tenant."""

    def __init__(self, config: SandboxConfig, *, clock: SandboxClock | None = None) -> None:
        self.config = config
        self.clock = clock or SandboxClock(config.start, frozen=config.frozen_clock)
        self.generator = Generator(config.seed, config.tickets, config.start)
        self.outbox = Outbox()
        self.traffic = Traffic(config.request_log_size)
        self.limiter = RateLimiter(config.limits)
        self.faults: FaultPlan = config.faults
        self.zendesk = ZendeskDesk(self.generator, self.clock, self.outbox)
        self.intercom = IntercomDesk(self.generator, self.clock, self.outbox)
        self.asana = AsanaDesk(self.generator, self.clock)
        self.contract = (
            Contract(
                config.specs_dir or default_specs_dir(), check_responses=config.check_responses
            )
            if config.validate_requests
            else None
        )
        if config.state_file is not None and config.state_file.exists():
            self.load(json.loads(config.state_file.read_text()))

    def gate(self, profile: VendorProfile) -> Gate:
        return Gate(
            profile,
            limiter=self.limiter,
            faults=lambda: self.faults,
            traffic=self.traffic,
            clock=self.clock,
            contract=self.contract,
        )

    def dump(self) -> dict[str, Any]:
        return {
            "seed": self.config.seed,
            "tickets": self.config.tickets,
            "clock": format_iso(self.clock.now()),
            "zendesk": self.zendesk.dump(),
            "intercom": self.intercom.dump(),
            "asana": self.asana.dump(),
            "outbox": self.outbox.dump(),
        }

    def load(self, data: dict[str, Any]) -> None:
        if (data.get("seed"), data.get("tickets")) != (self.config.seed, self.config.tickets):
            raise ValueError("the state file was saved for another --seed/--tickets")
        self.clock.set(parse_iso(data["clock"]))
        self.zendesk.load(data["zendesk"])
        self.intercom.load(data["intercom"])
        self.asana.load(data["asana"])
        self.outbox.load(data["outbox"])

    def save(self) -> None:
        if self.config.state_file is not None:
            self.config.state_file.write_text(json.dumps(self.dump()))


def tenant_config(config: SandboxConfig, index: int, name: str) -> SandboxConfig:
    """The settings of extra tenant number ``index``: its own seed and state file."""
    state_file = config.state_file
    if state_file is not None:
        state_file = state_file.with_name(f"{state_file.stem}.{name}{state_file.suffix}")
    return replace(config, seed=config.seed + index, state_file=state_file, tenants=())


def _save_on_shutdown(
    sandboxes: list[Sandbox],
) -> Callable[[Starlette], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        for sandbox in sandboxes:
            sandbox.save()

    return lifespan


# A request the vendor's description refuses, answered in the vendor's documented error shape.
def _zendesk_invalid(status: int, message: str) -> VendorError:
    return zendesk.error(status, "InvalidEndpoint" if status == 404 else "InvalidValue", message)


def _intercom_invalid(status: int, message: str) -> VendorError:
    return intercom.error(status, "not_found" if status == 404 else "parameter_invalid", message)


def _mounts(sandbox: Sandbox) -> list[BaseRoute]:
    """One tenant's three vendors and its admin API."""
    config = sandbox.config
    zendesk = sandbox.gate(
        VendorProfile(
            "zendesk",
            zendesk_api.authorized(
                f"{config.zendesk_email}/token:{config.zendesk_token}",
                f"{config.zendesk_agent_email}/token:{config.zendesk_agent_token}",
            ),
            zendesk_api.status_error,
            zendesk_api.rate_headers,
            _zendesk_invalid,
        )
    )
    intercom = sandbox.gate(
        VendorProfile(
            "intercom",
            intercom_api.authorized(config.intercom_token),
            intercom_api.status_error,
            intercom_api.rate_headers,
            _intercom_invalid,
        )
    )
    asana = sandbox.gate(
        VendorProfile(
            "asana",
            asana_api.authorized(config.asana_token),
            asana_api.status_error,
            asana_api.rate_headers,
            asana_desk.error,
        )
    )
    zendesk_routes = zendesk_api.routes(zendesk, sandbox.zendesk, sandbox.clock)
    intercom_routes = intercom_api.routes(intercom, sandbox.intercom)
    asana_routes = asana_api.routes(asana, sandbox.asana, sandbox.clock)
    return [
        Mount("/zendesk", app=zendesk_api.router(zendesk_routes)),
        Mount("/intercom", app=intercom_api.router(intercom_routes)),
        Mount("/asana/api/1.0", app=asana_api.router(asana_routes)),
        Mount("/_admin", app=admin.router(sandbox)),
    ]


_VENDOR_ERRORS = (
    ("/zendesk/", zendesk_api.status_error),
    ("/intercom/", intercom_api.status_error),
    ("/asana/", asana_api.status_error),
)


async def _vendor_http_error(request: Request, exc: Exception) -> Response:
    """Routing errors (405 on a known path) in the vendor's shape, not Starlette's text."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    for prefix, vendor_error in _VENDOR_ERRORS:
        if prefix in request.url.path:
            return vendor_error(status).response()
    return json_response({"error": str(getattr(exc, "detail", "error"))}, status)


def build_app(config: SandboxConfig, sandbox: Sandbox | None = None) -> Starlette:
    """The default tenant at the root; each of ``config.tenants`` under ``/t/<name>``, with
    its own data (seed + n), limits, faults and log, all on one clock."""
    sandbox = sandbox or Sandbox(config)
    tenants = {
        name: Sandbox(tenant_config(config, index, name), clock=sandbox.clock)
        for index, name in enumerate(config.tenants, start=1)
    }
    routes = _mounts(sandbox)
    routes += [Mount(f"/t/{name}", routes=_mounts(tenant)) for name, tenant in tenants.items()]
    app = Starlette(
        routes=routes,
        lifespan=_save_on_shutdown([sandbox, *tenants.values()]),
        exception_handlers={HTTPException: _vendor_http_error},
    )
    app.state.sandbox = sandbox
    app.state.tenants = tenants
    return app
