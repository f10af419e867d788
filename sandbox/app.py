"""Composition root: the ASGI app serving one :class:`~sandbox.state.Sandbox` per tenant, its
three vendors and its admin API."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount

from sandbox import admin, asana_api, intercom, intercom_api, zendesk, zendesk_api
from sandbox import asana as asana_desk
from sandbox.config import SandboxConfig
from sandbox.errors import VendorError, json_response
from sandbox.gate import VendorProfile
from sandbox.state import Sandbox, tenant_config

__all__ = ["build_app"]


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
