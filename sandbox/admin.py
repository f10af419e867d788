"""The admin API under ``/_admin``: clock, customer activity, many cases changed at once
(:mod:`sandbox.churn`), outbox, request log, stats, faults and limits. No vendor auth; an
optional admin token (``Authorization: Bearer``)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable
from itertools import islice
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, Router
from starlette.types import ASGIApp

from sandbox.churn import CHANGE_KINDS, change_cases
from sandbox.clock import format_iso, parse_iso
from sandbox.errors import VendorError, json_response
from sandbox.faults import FaultPlan
from sandbox.limits import VendorLimit
from sandbox.state import Sandbox
from sandbox.tenant import ENGINEER_GIDS

__all__ = ["ACTIVITY_KINDS", "router"]

ACTIVITY_KINDS = ("customer_reply", "missed_call", "abandoned_call", "missed_email")


class AdminError(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


AdminHandler = Callable[[Request], Awaitable[Any]]


async def _body(request: Request) -> dict[str, Any]:
    try:
        data = json.loads(await request.body() or b"{}")
    except ValueError as exc:
        raise AdminError("the body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise AdminError("the body must be a JSON object")
    return data


def _tenant_base(request: Request) -> str:
    """``http://host:port`` or ``http://host:port/t/<tenant>``: where this admin API sits."""
    root = str(request.scope.get("root_path", "")).removesuffix("/_admin")
    return f"{request.url.scheme}://{request.url.netloc}{root}"


def router(sandbox: Sandbox) -> ASGIApp:
    token = sandbox.config.admin_token

    def endpoint(handler: AdminHandler) -> Callable[[Request], Awaitable[Response]]:
        async def serve(request: Request) -> Response:
            if token is not None and not secrets.compare_digest(
                request.headers.get("authorization", ""), f"Bearer {token}"
            ):
                return json_response({"error": "admin token required"}, 401)
            try:
                return json_response(await handler(request))
            except AdminError as exc:
                return json_response({"error": str(exc)}, exc.status)
            except VendorError as exc:
                return exc.response()
            except (ValueError, TypeError, KeyError) as exc:
                return json_response({"error": f"invalid request: {exc}"}, 400)

        return serve

    async def health(request: Request) -> Any:
        return {"ok": True, "clock": format_iso(sandbox.clock.now())}

    async def tenant(request: Request) -> Any:
        generator = sandbox.generator
        return {
            "seed": sandbox.config.seed,
            "tickets": generator.ticket_count,
            "organizations": generator.org_count,
            "end_users": generator.end_user_count,
            "intercom_contacts": generator.contact_count,
            "intercom_conversations": generator.conversation_count,
            "asana_tasks": generator.task_count,
            "start": format_iso(generator.start),
            "urls": sandbox.config.base_urls(_tenant_base(request)),
        }

    async def tickets(request: Request) -> Any:
        """Ticket ids by generated scenario (and current status): tests find their cases."""
        scenario = request.query_params.get("scenario")
        status = request.query_params.get("status")
        limit = int(request.query_params.get("limit", "20"))
        desk = sandbox.zendesk
        chosen = (
            {"id": i, "scenario": desk.scenario(i), "status": desk.record(i).ticket["status"]}
            for i in desk.ticket_ids()
            if scenario is None or desk.scenario(i) == scenario
        )
        wanted = (t for t in chosen if status is None or t["status"] == status)
        return {"tickets": list(islice(wanted, limit))}

    async def clock(request: Request) -> Any:
        if request.method == "POST":
            body = await _body(request)
            if "set" in body:
                sandbox.clock.set(parse_iso(body["set"]))
            elif "advance_seconds" in body:
                sandbox.clock.advance(float(body["advance_seconds"]))
            elif "advance_days" in body:
                sandbox.clock.advance(float(body["advance_days"]) * 86_400)
            if "frozen" in body:
                sandbox.clock.freeze(bool(body["frozen"]))
        return {"now": format_iso(sandbox.clock.now()), "frozen": sandbox.clock.frozen}

    async def activity(request: Request) -> Any:
        body = await _body(request)
        kind = body.get("kind")
        if kind not in ACTIVITY_KINDS:
            raise AdminError(f"kind must be one of {', '.join(ACTIVITY_KINDS)}")
        text = str(body.get("body") or "Hello, any update?")
        vendor = body.get("vendor")
        if vendor == "zendesk":
            comment = sandbox.zendesk.add_activity(int(body["id"]), kind, text)
            return {"vendor": vendor, "id": str(body["id"]), "comment": comment}
        if vendor == "intercom":
            if kind != "customer_reply":
                raise AdminError("Intercom conversations take customer_reply only")
            conversation = sandbox.intercom.contact_reply(str(body["id"]), text)
            return {"vendor": vendor, "id": str(body["id"]), "conversation": conversation}
        raise AdminError("vendor must be zendesk or intercom")

    async def organization(request: Request) -> Any:
        """An admin edits a Zendesk organization's fields (what the organization export
        then shows): ``{"id": ..., "organization_fields": {...}}``."""
        body = await _body(request)
        fields = body.get("organization_fields")
        if not isinstance(fields, dict):
            raise AdminError("organization_fields must be an object")
        return {"organization": sandbox.zendesk.update_organization(int(body["id"]), fields)}

    async def asana_story(request: Request) -> Any:
        """An engineer comments on an Asana task in Asana's app: ``{"id": task gid,
        "author": user gid (the first engineer if left out), "text": ...}``."""
        body = await _body(request)
        author = str(body.get("author") or ENGINEER_GIDS[0])
        text = str(body.get("text") or "Looked into it again.")
        story = sandbox.asana.add_comment(str(body["id"]), {"text": text}, author=author)
        return {"story": story}

    async def change(request: Request) -> Any:
        """``{"fraction": 0.01, "vendors": ["zendesk", ...], "seed": 1}``: that share of each
        vendor's cases changed as customers and agents would (default: every vendor)."""
        body = await _body(request)
        vendors = body.get("vendors", list(CHANGE_KINDS))
        if not isinstance(vendors, list) or not set(vendors) <= set(CHANGE_KINDS):
            raise AdminError(f"vendors must be a list of {', '.join(CHANGE_KINDS)}")
        fraction, seed = float(body["fraction"]), int(body.get("seed", 0))
        changes = [change_cases(sandbox, vendor, fraction, seed + n)
                   for n, vendor in enumerate(vendors)]  # fmt: skip
        return {"changes": changes}

    async def outbox(request: Request) -> Any:
        if request.method == "DELETE":
            sandbox.outbox.clear()
            return {"messages": []}
        after = int(request.query_params.get("after", "0"))
        return {
            "messages": sandbox.outbox.messages(ref=request.query_params.get("ref"), after=after)
        }

    async def requests_log(request: Request) -> Any:
        params = request.query_params
        return {
            "requests": sandbox.traffic.entries(
                vendor=params.get("vendor"),
                after=int(params.get("after", "0")),
                limit=int(params.get("limit", "500")),
            )
        }

    def all_stats() -> dict[str, Any]:
        # Validation counts run from the start (a reset of the traffic leaves them).
        contract = sandbox.contract
        validation = {"enabled": False} if contract is None else {
            "enabled": True, "check_responses": contract.check_responses,
            **contract.tally.to_dict(),
        }  # fmt: skip
        return {**sandbox.traffic.stats(), "validation": validation}

    async def stats(request: Request) -> Any:
        return all_stats()

    async def reset_stats(request: Request) -> Any:
        sandbox.traffic.reset()
        return all_stats()

    async def faults(request: Request) -> Any:
        if request.method == "PUT":
            sandbox.faults = FaultPlan.from_dict(await _body(request))
        return sandbox.faults.to_dict()

    async def limits(request: Request) -> Any:
        if request.method == "PUT":
            body = await _body(request)
            parsed = {vendor: VendorLimit.from_dict(value) for vendor, value in body.items()}
            unknown = set(parsed) - {"zendesk", "intercom", "asana"}
            if unknown:
                raise AdminError(f"unknown vendor(s): {', '.join(sorted(unknown))}")
            for vendor, limit in parsed.items():
                sandbox.limiter.configure(vendor, limit)
        return sandbox.limiter.limits()

    async def save(request: Request) -> Any:
        if sandbox.config.state_file is None:
            raise AdminError("start the sandbox with --state-file to save its state")
        sandbox.save()
        return {"saved": str(sandbox.config.state_file)}

    def route(path: str, handler: AdminHandler, methods: list[str]) -> Route:
        return Route(path, endpoint(handler), methods=methods)

    return Router(
        [
            route("/health", health, ["GET"]),
            route("/tenant", tenant, ["GET"]),
            route("/tickets", tickets, ["GET"]),
            route("/clock", clock, ["GET", "POST"]),
            route("/activity", activity, ["POST"]),
            route("/organization", organization, ["POST"]),
            route("/asana/story", asana_story, ["POST"]),
            route("/change", change, ["POST"]),
            route("/outbox", outbox, ["GET", "DELETE"]),
            route("/requests", requests_log, ["GET"]),
            route("/stats", stats, ["GET"]),
            route("/reset-stats", reset_stats, ["POST"]),
            route("/faults", faults, ["GET", "PUT"]),
            route("/limits", limits, ["GET", "PUT"]),
            route("/save", save, ["POST"]),
        ]
    )
