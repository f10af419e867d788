"""Zendesk Support API routes (the subset the worker uses), served under ``/zendesk``.

Paths may carry Zendesk's optional ``.json`` suffix. Lists answer offset pages by default and
cursor pages when ``page[size]``/``page[after]`` is given; ``include=users,organizations,
groups`` side-loads on ticket endpoints. The incremental exports (tickets by cursor, ticket
events and organizations by time) leave out the last minute, as Zendesk does, and hold no
state per reader: a kept cursor or ``end_time`` goes on from where it was, in any process.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from itertools import islice
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from sandbox.clock import SandboxClock, format_iso
from sandbox.errors import VendorError, json_response
from sandbox.gate import Gate
from sandbox.limits import Decision
from sandbox.tenant import AGENTS, GROUPS, TICKET_FIELDS
from sandbox.zendesk import ZendeskDesk, error, not_found, record_invalid
from sandbox.zendesk_search import ticket_matcher

__all__ = ["ROLE_KEY", "StripJsonSuffix", "authorized", "rate_headers", "routes", "status_error"]

MAX_PAGE = 100
MAX_OFFSET_RECORDS = 10_000
MAX_SEARCH_RESULTS = 1_000
EXPORT_SETTLE = timedelta(minutes=1)  # incremental export leaves out the last minute


ROLE_KEY = "zendesk_role"  # request.state: "admin" or "agent", whose credentials were sent


def authorized(admin: str, agent: str) -> Callable[[Request], bool]:
    """Basic ``email/token:api_token`` (or a bearer OAuth token equal to the API token), of
    the admin or of the agent; the role is noted on the request (vendor-behaviours.md Z1)."""
    credentials = []
    for role, expected in (("admin", admin), ("agent", agent)):
        credentials.append((role, "Basic " + base64.b64encode(expected.encode()).decode()))
        credentials.append((role, "Bearer " + expected.rpartition(":")[2]))

    def check(request: Request) -> bool:
        header = request.headers.get("authorization", "")
        for role, expected in credentials:
            if secrets.compare_digest(header, expected):
                setattr(request.state, ROLE_KEY, role)
                return True
        return False

    return check


def _admins_only(request: Request) -> None:
    """Both incremental exports are "Allowed For: Admins" (oas 5074, 5225): an agent's token
    gets 403, as Zendesk answers it (vendor-behaviours.md Z1)."""
    if getattr(request.state, ROLE_KEY, None) != "admin":
        raise error(
            403,
            "Forbidden",
            "You do not have access to this page. Please contact the account owner of this "
            "help desk for further help.",
        )


def status_error(status: int) -> VendorError:
    if status == 401:
        return VendorError(401, {"error": "Couldn't authenticate you"})
    if status == 404:
        return not_found()
    if status == 429:
        return error(
            429, "APIRateLimitExceeded", "Number of allowed API requests per minute exceeded"
        )
    if status == 405:
        return error(405, "MethodNotAllowed", "This endpoint does not accept that method")
    return error(status, "ServerError", "Something went wrong on our side, please retry later")


def rate_headers(decision: Decision) -> dict[str, str]:
    return {"X-Rate-Limit": str(decision.limit), "X-Rate-Limit-Remaining": str(decision.remaining)}


class StripJsonSuffix:
    """Zendesk accepts ``/api/v2/tickets/1.json`` and ``/api/v2/tickets/1`` alike."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].endswith(".json"):
            scope = dict(scope, path=scope["path"][: -len(".json")])
        await self.app(scope, receive, send)


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Any]
    has_more: bool
    after: str | None


def _encode_cursor(position: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": position}).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        position = json.loads(base64.urlsafe_b64decode(padded))["o"]
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise error(400, "InvalidPaginationParameter", "page[after] is not a valid cursor") from exc
    if not isinstance(position, int):
        raise error(400, "InvalidPaginationParameter", "page[after] is not a valid cursor")
    return position


def _int_param(request: Request, name: str, default: int, *, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise error(400, "InvalidPaginationParameter", f"{name} must be an integer") from exc
    return min(max(value, low), high)


def _uses_cursor(request: Request) -> bool:
    return any(key.startswith("page[") for key in request.query_params)


def _cursor_page(
    request: Request, keyed_after: Callable[[int | None], Iterable[tuple[int, Any]]]
) -> Page:
    """One cursor page. ``keyed_after(position)`` yields (position, item) pairs in order,
    starting after ``position`` (None: from the start), so skipped items cost nothing."""
    size = _int_param(request, "page[size]", MAX_PAGE, low=1, high=MAX_PAGE)
    after_raw = request.query_params.get("page[after]")
    after = _decode_cursor(after_raw) if after_raw else None
    window = list(islice(keyed_after(after), size + 1))
    chosen = window[:size]
    cursor = _encode_cursor(chosen[-1][0]) if chosen else None
    return Page([item for _, item in chosen], len(window) > size, cursor)


def _after(pairs: Iterable[tuple[int, Any]]) -> Callable[[int | None], Iterable[tuple[int, Any]]]:
    """``keyed_after`` for small in-memory sequences."""
    listed = list(pairs)
    return lambda after: [(p, item) for p, item in listed if after is None or p > after]


def _cursor_body(request: Request, key: str, page: Page) -> dict[str, Any]:
    next_url = (
        str(request.url.include_query_params(**{"page[after]": page.after}))
        if page.has_more and page.after
        else None
    )
    return {
        key: page.items,
        "meta": {"has_more": page.has_more, "after_cursor": page.after, "before_cursor": None},
        "links": {"next": next_url, "prev": None},
    }


def _offset_body(
    request: Request, key: str, items: Callable[[int, int], list[Any]], count: int
) -> dict[str, Any]:
    per_page = _int_param(request, "per_page", MAX_PAGE, low=1, high=MAX_PAGE)
    page = _int_param(request, "page", 1, low=1, high=10**9)
    if (page - 1) * per_page >= MAX_OFFSET_RECORDS:
        raise error(
            400,
            "InvalidPaginationParameter",
            "Offset pagination is limited to the first 10,000 records; use cursor pagination",
        )
    start = (page - 1) * per_page
    chosen = items(start, per_page)
    has_next = start + per_page < count
    return {
        key: chosen,
        "next_page": str(request.url.include_query_params(page=page + 1)) if has_next else None,
        "previous_page": str(request.url.include_query_params(page=page - 1)) if page > 1 else None,
        "count": count,
    }


def _ids_param(request: Request) -> list[int]:
    raw = request.query_params.get("ids", "")
    try:
        ids = [int(part) for part in raw.split(",") if part.strip()]
    except ValueError as exc:
        raise error(400, "InvalidValue", "ids must be a comma-separated list of integers") from exc
    if len(ids) > MAX_PAGE:
        raise error(400, "InvalidValue", f"At most {MAX_PAGE} ids")
    return ids


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        data = json.loads(await request.body())
    except ValueError as exc:
        raise error(400, "InvalidValue", "The request body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise error(400, "InvalidValue", "The request body must be a JSON object")
    return data


class _SideLoads:
    """Collects the users/organizations/groups/metric sets a ticket payload refers to."""

    def __init__(self, desk: ZendeskDesk, request: Request) -> None:
        self._desk = desk
        wanted = request.query_params.get("include", "")
        self._wanted = {part.strip() for part in wanted.split(",") if part.strip()}
        unknown = self._wanted - {"users", "organizations", "groups", "metric_sets"}
        if unknown:
            raise error(400, "InvalidValue", f"Unsupported include: {', '.join(sorted(unknown))}")

    def add_to(self, body: dict[str, Any], tickets: list[dict[str, Any]]) -> dict[str, Any]:
        if "users" in self._wanted:
            ids = {t[k] for t in tickets for k in ("requester_id", "submitter_id", "assignee_id")}
            body["users"] = [self._desk.user(i) for i in sorted(i for i in ids if i is not None)]
        if "organizations" in self._wanted:
            ids = {t["organization_id"] for t in tickets if t["organization_id"] is not None}
            body["organizations"] = [self._desk.organization(i) for i in sorted(ids)]
        if "groups" in self._wanted:
            ids = {t["group_id"] for t in tickets if t["group_id"] is not None}
            body["groups"] = [self._desk.group(i) for i in sorted(ids)]
        if "metric_sets" in self._wanted:
            body["metric_sets"] = [self._desk.metrics(t["id"]) for t in tickets]
        return body


def _search_results(
    desk: ZendeskDesk, query: str, after: int | None = None
) -> Iterator[tuple[int, dict[str, Any]]]:
    matches = ticket_matcher(query)
    for ticket_id in desk.ticket_ids(after or 0):
        ticket = desk.record(ticket_id).ticket
        if matches(ticket):
            yield ticket_id, _search_hit(ticket)


def _search_hit(ticket: dict[str, Any]) -> dict[str, Any]:
    return {**ticket, "result_type": "ticket"}


def _search_query(request: Request) -> str:
    query = request.query_params.get("query")
    if query is None:
        raise error(400, "InvalidSearchQuery", "query is required")
    return query


# --- routes ----------------------------------------------------------------------------


def routes(gate: Gate, desk: ZendeskDesk, clock: SandboxClock) -> list[BaseRoute]:
    async def show_ticket(request: Request) -> Response:
        ticket = desk.record(request.path_params["ticket_id"]).ticket
        return json_response(_SideLoads(desk, request).add_to({"ticket": ticket}, [ticket]))

    async def list_tickets(request: Request) -> Response:
        side = _SideLoads(desk, request)
        if _uses_cursor(request):
            page = _cursor_page(
                request,
                lambda after: ((i, desk.record(i).ticket) for i in desk.ticket_ids(after or 0)),
            )
            body = _cursor_body(request, "tickets", page)
        else:
            body = _offset_body(
                request,
                "tickets",
                lambda start, size: [
                    desk.record(i).ticket
                    for i in range(start + 1, min(start + size, desk.ticket_count) + 1)
                ],
                desk.ticket_count,
            )
        return json_response(side.add_to(body, body["tickets"]))

    async def show_many_tickets(request: Request) -> Response:
        side = _SideLoads(desk, request)
        tickets = []
        for ticket_id in _ids_param(request):
            try:
                tickets.append(desk.record(ticket_id).ticket)
            except VendorError:
                continue  # Zendesk leaves unknown ids out
        return json_response(side.add_to({"tickets": tickets}, tickets))

    async def update_ticket(request: Request) -> Response:
        body = await _json_body(request)
        if "ticket" not in body:
            raise record_invalid("base", "The body must carry a 'ticket' object")
        ticket, audit = desk.update(request.path_params["ticket_id"], body["ticket"])
        return json_response({"ticket": ticket, "audit": audit})

    async def update_many(request: Request) -> Response:
        body = await _json_body(request)
        jobs: list[tuple[Any, Any]]
        if "tickets" in body and isinstance(body["tickets"], list):
            jobs = [(entry.get("id"), {k: v for k, v in entry.items() if k != "id"})
                    for entry in body["tickets"] if isinstance(entry, dict)]  # fmt: skip
        elif "ticket" in body:
            jobs = [(ticket_id, body["ticket"]) for ticket_id in _ids_param(request)]
        else:
            raise record_invalid("base", "Give ids= and a 'ticket', or a 'tickets' list")
        if not jobs or len(jobs) > MAX_PAGE:
            raise error(400, "InvalidValue", f"Between 1 and {MAX_PAGE} tickets per request")
        results = []
        for ticket_id, changes in jobs:
            try:
                if not isinstance(ticket_id, int):
                    raise record_invalid("id", "Each ticket needs an integer id")
                desk.update(ticket_id, changes, many=True)
                results.append({"id": ticket_id, "action": "update", "status": "Updated",
                                "success": True})  # fmt: skip
            except VendorError as exc:
                results.append({"id": ticket_id, "action": "update", "success": False,
                                "error": exc.body.get("error"),
                                "details": exc.body.get("description")})  # fmt: skip
        job_id = secrets.token_hex(16)
        root = f"{request.url.scheme}://{request.url.netloc}{request.scope.get('root_path', '')}"
        base = f"{root}/api/v2/job_statuses/{job_id}"
        done = {
            "id": job_id,
            "job_type": "bulk_update",
            "url": base + ".json",
            "total": len(jobs),
            "progress": len(jobs),
            "status": "completed",
            "message": f"Completed at {format_iso(clock.now())}",
            "results": results,
        }
        desk.jobs[job_id] = done
        # The job ran synchronously, but the first answer is the queued job, as in Zendesk.
        queued = {key: value for key, value in done.items() if key != "results"}
        queued.update(status="queued", progress=0, message=None)
        return json_response({"job_status": queued})

    async def show_job(request: Request) -> Response:
        job = desk.jobs.get(request.path_params["job_id"])
        if job is None:
            raise not_found()
        return json_response({"job_status": job})

    async def list_comments(request: Request) -> Response:
        record = desk.record(request.path_params["ticket_id"])
        comments = record.comments
        if _uses_cursor(request):
            ordered = list(enumerate(comments))
            if request.query_params.get("sort") == "-created_at":
                ordered = [(len(comments) - 1 - i, c) for i, c in reversed(ordered)]
            body = _cursor_body(request, "comments", _cursor_page(request, _after(ordered)))
        else:
            ordered_list = (
                comments[::-1] if request.query_params.get("sort_order") == "desc" else comments
            )
            body = _offset_body(
                request, "comments", lambda s, n: ordered_list[s : s + n], len(comments)
            )
        if "users" in request.query_params.get("include", ""):
            ids = sorted({comment["author_id"] for comment in body["comments"]})
            body["users"] = [desk.user(user_id) for user_id in ids]
        return json_response(body)

    async def list_audits(request: Request) -> Response:
        audits = desk.record(request.path_params["ticket_id"]).audits
        if _uses_cursor(request):
            body = _cursor_body(request, "audits", _cursor_page(request, _after(enumerate(audits))))
        else:
            body = _offset_body(request, "audits", lambda s, n: audits[s : s + n], len(audits))
        return json_response(body)

    def tags_route(mode: str) -> Callable[[Request], Any]:
        async def handle(request: Request) -> Response:
            ticket_id = request.path_params["ticket_id"]
            if mode == "show":
                return json_response({"tags": desk.record(ticket_id).ticket["tags"]})
            body = await _json_body(request)
            tags = body.get("tags")
            if not isinstance(tags, list):
                raise record_invalid("tags", "tags must be a list of strings")
            tags = desk.replace_tags(ticket_id, tags, mode)
            return json_response({"tags": tags})

        return handle

    async def search_export(request: Request) -> Response:
        if request.query_params.get("filter[type]") != "ticket":
            raise error(400, "InvalidSearchQuery", "filter[type]=ticket is required")
        side = _SideLoads(desk, request)
        query = _search_query(request)
        page = _cursor_page(request, lambda after: _search_results(desk, query, after))
        body = _cursor_body(request, "results", page)
        body["facets"] = None
        return json_response(side.add_to(body, body["results"]))

    async def search(request: Request) -> Response:
        query = _search_query(request)
        if "type:ticket" not in query.split():
            raise error(400, "InvalidSearchQuery", "The sandbox searches tickets: add type:ticket")
        terms = " ".join(term for term in query.split() if term != "type:ticket")
        per_page = _int_param(request, "per_page", MAX_PAGE, low=1, high=MAX_PAGE)
        page = _int_param(request, "page", 1, low=1, high=10**6)
        if page * per_page > MAX_SEARCH_RESULTS:
            raise error(422, "InvalidSearchQuery", "Search is limited to 1,000 results")
        hits = [hit for _, hit in islice(_search_results(desk, terms), page * per_page + 1)]
        chosen = hits[(page - 1) * per_page : page * per_page]
        more = len(hits) > page * per_page
        url = request.url
        return json_response(
            {
                "results": chosen,
                "facets": None,
                "count": len(hits),
                "next_page": str(url.include_query_params(page=page + 1)) if more else None,
                "previous_page": str(url.include_query_params(page=page - 1)) if page > 1 else None,
            }
        )

    async def incremental_tickets(request: Request) -> Response:
        _admins_only(request)
        side = _SideLoads(desk, request)
        cursor = request.query_params.get("cursor")
        if cursor:
            after = _decode_export_cursor(cursor)
        else:
            raw = request.query_params.get("start_time")
            if raw is None or not raw.isdigit():
                raise error(400, "InvalidValue", "start_time (unix seconds) or cursor is required")
            after = (int(raw) - 1, 2**62)
        size = _int_param(request, "per_page", 1000, low=1, high=1000)
        chosen, more = desk.changed_after(after, _export_horizon(clock), size)
        tickets = [desk.record(ticket_id).ticket for _, ticket_id in chosen]
        next_cursor = _encode_export_cursor(chosen[-1] if chosen else after)
        body = {
            "tickets": tickets,
            "after_cursor": next_cursor,
            "after_url": str(request.url.replace_query_params(cursor=next_cursor)),
            "before_cursor": None,
            "before_url": None,
            "end_of_stream": not more,
        }
        return json_response(side.add_to(body, tickets))

    async def incremental_ticket_events(request: Request) -> Response:
        _admins_only(request)
        raw = request.query_params.get("start_time")
        if raw is None or not raw.isdigit():
            raise error(400, "InvalidValue", "start_time (unix seconds) is required")
        include = {part.strip() for part in request.query_params.get("include", "").split(",")}
        if include - {"", "comment_events"}:
            raise error(400, "InvalidValue", "The only include here is comment_events")
        start = int(raw)
        size = _int_param(request, "per_page", 1000, low=1, high=1000)
        chosen, more = desk.events_since(start, _export_horizon(clock), size)
        events = [desk.ticket_event(e, comments="comment_events" in include) for e in chosen]
        return json_response(_time_based_body(request, "ticket_events", events, chosen, more))

    async def incremental_organizations(request: Request) -> Response:
        """Incremental Organization Export (oas 4931-4957): time-based like the event export,
        ``start_time`` required (oas 27128-27135), ``per_page`` (IncrementalPage, oas 27108),
        admins only (oas 4943)."""
        _admins_only(request)
        raw = request.query_params.get("start_time")
        if raw is None or not raw.isdigit():
            raise error(400, "InvalidValue", "start_time (unix seconds) is required")
        size = _int_param(request, "per_page", 1000, low=1, high=1000)
        chosen, more = desk.organizations_since(int(raw), _export_horizon(clock), size)
        organizations = [desk.organization(org_id) for _, org_id in chosen]
        return json_response(
            _time_based_body(request, "organizations", organizations, chosen, more)
        )

    def lister(
        key: str, ids: Callable[[], list[int] | range], get: Callable[[int], Any]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            all_ids = ids()
            if _uses_cursor(request):
                page = _cursor_page(
                    request,
                    lambda after: ((i, get(i)) for i in all_ids if after is None or i > after),
                )
                return json_response(_cursor_body(request, key, page))
            return json_response(_offset_body(
                request, key, lambda s, n: [get(i) for i in all_ids[s : s + n]], len(all_ids)
            ))  # fmt: skip

        return handle

    def shower(
        key: str, get: Callable[[int], Any], param: str
    ) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            return json_response({key: get(request.path_params[param])})

        return handle

    def many(key: str, get: Callable[[int], Any]) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            found = []
            for object_id in _ids_param(request):
                try:
                    found.append(get(object_id))
                except VendorError:
                    continue
            return json_response({key: found})

        return handle

    async def list_users(request: Request) -> Response:
        roles = request.query_params.getlist("role[]") or request.query_params.getlist("role")
        if "end-user" in roles:
            raise error(400, "InvalidValue", "The sandbox lists staff by role; page end users")
        if roles:
            staff = (desk.user(i) for i in desk.user_ids()[: len(AGENTS) + 1])
            chosen = [user for user in staff if user["role"] in roles]
            return json_response({"users": chosen, "next_page": None, "previous_page": None,
                                  "count": len(chosen)})  # fmt: skip
        return await lister("users", desk.user_ids, desk.user)(request)

    async def me(request: Request) -> Response:
        agent = getattr(request.state, ROLE_KEY, None) == "agent"
        return json_response({"user": desk.user(AGENTS[0].id if agent else 1000)})

    def group_ids() -> list[int]:
        return sorted(GROUPS)

    def field_ids() -> list[int]:
        return [spec.id for spec in TICKET_FIELDS]

    r = gate.route
    return [
        r("GET", "/api/v2/tickets", list_tickets),
        r("GET", "/api/v2/tickets/show_many", show_many_tickets),
        r("PUT", "/api/v2/tickets/update_many", update_many, write=True),
        r("GET", "/api/v2/tickets/{ticket_id:int}", show_ticket),
        r("PUT", "/api/v2/tickets/{ticket_id:int}", update_ticket, write=True),
        r("GET", "/api/v2/tickets/{ticket_id:int}/comments", list_comments),
        r("GET", "/api/v2/tickets/{ticket_id:int}/audits", list_audits),
        r("GET", "/api/v2/tickets/{ticket_id:int}/tags", tags_route("show")),
        r("POST", "/api/v2/tickets/{ticket_id:int}/tags", tags_route("set"), write=True),
        r("PUT", "/api/v2/tickets/{ticket_id:int}/tags", tags_route("add"), write=True),
        r("DELETE", "/api/v2/tickets/{ticket_id:int}/tags", tags_route("remove"), write=True),
        r("GET", "/api/v2/job_statuses/{job_id}", show_job),
        r("GET", "/api/v2/search/export", search_export),
        r("GET", "/api/v2/search", search),
        r("GET", "/api/v2/incremental/tickets/cursor", incremental_tickets),
        r("GET", "/api/v2/incremental/ticket_events", incremental_ticket_events),
        r("GET", "/api/v2/incremental/organizations", incremental_organizations),
        r("GET", "/api/v2/users", list_users),
        r("GET", "/api/v2/users/me", me),
        r("GET", "/api/v2/users/show_many", many("users", desk.user)),
        r("GET", "/api/v2/users/{user_id:int}", shower("user", desk.user, "user_id")),
        r("GET", "/api/v2/organizations", lister("organizations", desk.organization_ids,
                                                 desk.organization)),
        r("GET", "/api/v2/organizations/show_many", many("organizations", desk.organization)),
        r("GET", "/api/v2/organizations/{org_id:int}",
          shower("organization", desk.organization, "org_id")),
        r("GET", "/api/v2/groups", lister("groups", group_ids, desk.group)),
        r("GET", "/api/v2/groups/{group_id:int}", shower("group", desk.group, "group_id")),
        r("GET", "/api/v2/ticket_fields", lister("ticket_fields", field_ids, desk.ticket_field)),
        r("GET", "/api/v2/ticket_fields/{field_id:int}",
          shower("ticket_field", desk.ticket_field, "field_id")),
    ]  # fmt: skip


def _export_horizon(clock: SandboxClock) -> int:
    """The latest second an export shows: the last minute is left out (oas 5059, "excluding
    events occuring within one minute of the request"; vendor-behaviours.md Z8)."""
    return int((clock.now() - EXPORT_SETTLE).timestamp())


def _time_based_body(
    request: Request, key: str, items: list[Any], chosen: Sequence[tuple[int, ...]], more: bool
) -> dict[str, Any]:
    """A page of a time-based export. The next page starts at the last second shown, which it
    shows again (Zendesk's time-based export repeats items; readers drop what they saw). A
    page that is one second only holds all of it, so the next one starts after it or would
    never move."""
    start = int(request.query_params["start_time"])
    end_time = chosen[-1][0] if chosen else start
    if more and chosen[0][0] == end_time:
        end_time += 1
    return {
        key: items,
        "next_page": str(request.url.include_query_params(start_time=end_time)),
        "count": len(items),
        "end_of_stream": not more,
        "end_time": end_time,
    }


def _encode_export_cursor(position: tuple[int, int]) -> str:
    raw = f"{position[0]}.{position[1]}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_export_cursor(cursor: str) -> tuple[int, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, ticket_id = raw.split(".")
        return int(stamp), int(ticket_id)
    except (ValueError, binascii.Error) as exc:
        raise error(400, "InvalidValue", "cursor is not valid") from exc


def router(routes_: list[BaseRoute]) -> ASGIApp:
    async def unknown(scope: Scope, receive: Receive, send: Send) -> None:
        await not_found().response()(scope, receive, send)

    return StripJsonSuffix(Router(routes_, default=unknown))
