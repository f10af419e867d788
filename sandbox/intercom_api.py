"""Intercom REST API routes (2.x, the subset the worker uses), served under ``/intercom``.

Lists and searches use Intercom's cursor pages: ``pages.next.starting_after``; search bodies
carry ``pagination: {per_page, starting_after}`` (at most 150 per page).
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import time
from collections.abc import Callable, Iterable
from itertools import islice
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from sandbox.errors import VendorError, json_response
from sandbox.gate import Gate
from sandbox.intercom import IntercomDesk, error, search_matcher, ticket_query, ticket_states
from sandbox.limits import Decision

__all__ = ["authorized", "rate_headers", "router", "routes", "status_error"]

MAX_PER_PAGE = 150
DEFAULT_PER_PAGE = 50
_STATUS_CODES = {
    401: ("unauthorized", "Access Token Invalid"),
    404: ("not_found", "Resource Not Found"),
    405: ("method_not_allowed", "Method Not Allowed"),
    429: ("rate_limit_exceeded", "Exceeded rate limit of requests per minute"),
    500: ("server_error", "Server Error"),
    502: ("server_error", "Bad Gateway"),
    503: ("service_unavailable", "Service Unavailable"),
}


def authorized(token: str) -> Callable[[Request], bool]:
    expected = f"Bearer {token}"

    def check(request: Request) -> bool:
        return secrets.compare_digest(request.headers.get("authorization", ""), expected)

    return check


def status_error(status: int) -> VendorError:
    code, message = _STATUS_CODES.get(status, ("server_error", "Server Error"))
    return error(status, code, message)


def rate_headers(decision: Decision) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": str(decision.limit),
        "X-RateLimit-Remaining": str(decision.remaining),
        "X-RateLimit-Reset": str(int(time.time() + decision.reset_after)),
    }


def _encode(position: int) -> str:
    return base64.urlsafe_b64encode(f"p{position}".encode()).decode().rstrip("=")


def _decode(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not raw.startswith("p"):
            raise ValueError(raw)
        return int(raw[1:])
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise error(400, "parameter_invalid", "starting_after is not a valid cursor") from exc


def _per_page(raw: Any) -> int:
    if raw is None:
        return DEFAULT_PER_PAGE
    try:
        value = int(raw)
    except (TypeError, ValueError) as exc:
        raise error(400, "parameter_invalid", "per_page must be an integer") from exc
    if not 1 <= value <= MAX_PER_PAGE:
        raise error(400, "parameter_invalid", f"per_page must be between 1 and {MAX_PER_PAGE}")
    return value


def _page(
    items_from: Callable[[int], Iterable[dict[str, Any]]],
    per_page: int,
    starting_after: str | None,
    total: int,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One cursor page and Intercom's ``pages`` object; ``items_from(n)`` yields the items
    from the n-th on, so the ones before the cursor are never built."""
    skip = _decode(starting_after) if starting_after else 0
    chosen = list(islice(items_from(skip), per_page))
    pages: dict[str, Any] = {
        "type": "pages",
        "page": skip // per_page + 1,
        "per_page": per_page,
        "total_pages": max(1, -(-total // per_page)),
    }
    if skip + per_page < total:
        pages["next"] = {"per_page": per_page, "starting_after": _encode(skip + per_page)}
    return chosen, pages


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        data = json.loads(await request.body())
    except ValueError as exc:
        raise error(400, "parameter_invalid", "The request body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise error(400, "parameter_invalid", "The request body must be a JSON object")
    return data


def _search(
    request_body: dict[str, Any], items: Callable[[], Iterable[dict[str, Any]]]
) -> tuple[list[dict[str, Any]], dict[str, Any], int]:
    if "query" not in request_body:
        raise error(400, "parameter_not_found", "query is required")
    matches = search_matcher(request_body["query"])
    pagination = request_body.get("pagination") or {}
    if not isinstance(pagination, dict):
        raise error(400, "parameter_invalid", "pagination must be an object")
    hits = [item for item in items() if matches(item)]
    chosen, pages = _page(
        lambda skip: hits[skip:],
        _per_page(pagination.get("per_page")),
        pagination.get("starting_after"),
        len(hits),
    )
    return chosen, pages, len(hits)


def routes(gate: Gate, desk: IntercomDesk) -> list[BaseRoute]:
    async def list_admins(request: Request) -> Response:
        return json_response(
            {"type": "admin.list", "admins": [desk.admin(i) for i in desk.admin_ids()]}
        )

    async def show_admin(request: Request) -> Response:
        return json_response(desk.admin(request.path_params["admin_id"]))

    async def me(request: Request) -> Response:
        # ``admin_with_app``: its avatar is an object (intercom-2.16.yaml 23091), where a plain
        # admin's is the image's URL.
        admin = desk.admin(desk.admin_ids()[0])
        avatar = {"type": "avatar", "image_url": admin["avatar"]}
        app = {"type": "app", "id_code": "sandbox1"}
        return json_response({**admin, "avatar": avatar, "app": app})

    async def list_contacts(request: Request) -> Response:
        params = request.query_params
        total = desk.contact_count
        data, pages = _page(
            desk.contacts, _per_page(params.get("per_page")), params.get("starting_after"), total
        )
        return json_response({"type": "list", "data": data, "total_count": total, "pages": pages})

    async def show_contact(request: Request) -> Response:
        return json_response(desk.contact(request.path_params["contact_id"]))

    async def search_contacts(request: Request) -> Response:
        data, pages, total = _search(await _json_body(request), desk.contacts)
        return json_response({"type": "list", "data": data, "total_count": total, "pages": pages})

    async def contact_companies(request: Request) -> Response:
        contact = desk.contact(request.path_params["contact_id"])
        companies = [desk.company(ref["id"]) for ref in contact["companies"]["data"]]
        return json_response(
            {"type": "list", "data": companies, "total_count": len(companies),
             "pages": {"type": "pages", "page": 1, "per_page": 50, "total_pages": 1}}
        )  # fmt: skip

    async def show_company(request: Request) -> Response:
        return json_response(desk.company(request.path_params["company_id"]))

    async def list_companies(request: Request) -> Response:
        params = request.query_params
        wanted_id, wanted_name = params.get("company_id"), params.get("name")
        if wanted_id or wanted_name:
            for company in desk.companies():
                if company["company_id"] == wanted_id or company["name"] == wanted_name:
                    return json_response(company)
            raise error(404, "company_not_found", "Company Not Found")
        per_page = _per_page(params.get("per_page", "15"))
        page = max(1, int(params.get("page", "1")) if params.get("page", "1").isdigit() else 1)
        all_companies = list(desk.companies())
        chosen = all_companies[(page - 1) * per_page : page * per_page]
        total_pages = max(1, -(-len(all_companies) // per_page))
        return json_response(
            {"type": "list", "data": chosen, "total_count": len(all_companies),
             "pages": {"type": "pages", "page": page, "per_page": per_page,
                       "total_pages": total_pages}}
        )  # fmt: skip

    async def list_conversations(request: Request) -> Response:
        params = request.query_params
        total = desk.conversation_count
        conversations, pages = _page(
            desk.all_conversations, _per_page(params.get("per_page", "20")),
            params.get("starting_after"), total,
        )  # fmt: skip
        return json_response(
            {"type": "conversation.list", "conversations": conversations, "total_count": total,
             "pages": pages}
        )  # fmt: skip

    async def show_conversation(request: Request) -> Response:
        return json_response(desk.conversation(request.path_params["conversation_id"]))

    async def search_conversations(request: Request) -> Response:
        data, pages, total = _search(await _json_body(request), desk.all_conversations)
        return json_response(
            {"type": "conversation.list", "conversations": data, "total_count": total,
             "pages": pages}
        )  # fmt: skip

    async def reply(request: Request) -> Response:
        body = await _json_body(request)
        return json_response(desk.reply(request.path_params["conversation_id"], body))

    async def manage(request: Request) -> Response:
        body = await _json_body(request)
        return json_response(desk.manage(request.path_params["conversation_id"], body))

    async def send_message(request: Request) -> Response:
        return json_response(desk.send_message(await _json_body(request)))

    async def show_ticket(request: Request) -> Response:
        return json_response(desk.ticket(request.path_params["ticket_id"]))

    async def search_tickets(request: Request) -> Response:
        body = await _json_body(request)
        if "query" in body:
            body["query"] = ticket_query(body["query"])
        data, pages, total = _search(body, desk.all_tickets)
        return json_response(
            {"type": "ticket.list", "tickets": data, "total_count": total, "pages": pages}
        )

    async def reply_ticket(request: Request) -> Response:
        body = await _json_body(request)
        return json_response(desk.reply_ticket(request.path_params["ticket_id"], body))

    async def update_ticket(request: Request) -> Response:
        body = await _json_body(request)
        return json_response(desk.update_ticket(request.path_params["ticket_id"], body))

    async def list_ticket_states(request: Request) -> Response:
        return json_response({"type": "list", "data": ticket_states()})

    r = gate.route
    return [
        r("GET", "/admins", list_admins),
        r("GET", "/me", me),
        r("GET", "/admins/{admin_id}", show_admin),
        r("GET", "/contacts", list_contacts),
        r("POST", "/contacts/search", search_contacts),
        r("GET", "/contacts/{contact_id}", show_contact),
        r("GET", "/contacts/{contact_id}/companies", contact_companies),
        r("GET", "/companies", list_companies),
        r("GET", "/companies/{company_id}", show_company),
        r("GET", "/conversations", list_conversations),
        r("POST", "/conversations/search", search_conversations),
        r("GET", "/conversations/{conversation_id}", show_conversation),
        r("POST", "/conversations/{conversation_id}/reply", reply, write=True),
        r("POST", "/conversations/{conversation_id}/parts", manage, write=True),
        r("POST", "/messages", send_message, write=True),
        r("GET", "/ticket_states", list_ticket_states),
        r("POST", "/tickets/search", search_tickets),
        r("GET", "/tickets/{ticket_id}", show_ticket),
        r("POST", "/tickets/{ticket_id}/reply", reply_ticket, write=True),
        r("PUT", "/tickets/{ticket_id}", update_ticket, write=True),
    ]


def router(routes_: list[BaseRoute]) -> ASGIApp:
    async def unknown(scope: Scope, receive: Receive, send: Send) -> None:
        await status_error(404).response()(scope, receive, send)

    return Router(routes_, default=unknown)
