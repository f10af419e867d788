"""Asana REST API routes (the subset the worker uses), served under ``/asana/api/1.0``.

Answers are ``{"data": ...}``; ``opt_fields`` picks fields (dotted paths for nested ones);
lists page with ``limit`` (1..100) and the opaque ``offset`` of ``next_page``. ``GET /events``
streams the project's changes since a sync token (recorded by :class:`sandbox.asana.AsanaDesk`
on every task change and story).
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from itertools import islice
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from sandbox.asana import (
    PROJECT,
    WORKSPACE,
    AsanaDesk,
    completed_since_filter,
    error,
    project_fields,
    story_json,
    task_json,
)
from sandbox.clock import SandboxClock
from sandbox.errors import VendorError, json_response
from sandbox.gate import Gate
from sandbox.limits import Decision
from sandbox.tenant import ASANA_PROJECT_GID

__all__ = ["authorized", "project", "rate_headers", "router", "routes", "status_error"]

Keyed = Callable[[int], Iterable[tuple[int, Any]]]
MAX_LIMIT = 100
MAX_UNPAGED = 1_000
EVENTS_PER_SYNC = 100
SYNC_TOKEN_LIFETIME = timedelta(hours=24)
_STATUS_MESSAGES = {
    401: "Not Authorized",
    404: "Unknown object",
    405: "Method not allowed",
    429: "You have made too many requests recently. Please, be chill.",
    500: "Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


def authorized(token: str) -> Callable[[Request], bool]:
    expected = f"Bearer {token}"

    def check(request: Request) -> bool:
        return secrets.compare_digest(request.headers.get("authorization", ""), expected)

    return check


def status_error(status: int) -> VendorError:
    return error(status, _STATUS_MESSAGES.get(status, "Server Error"))


def rate_headers(decision: Decision) -> dict[str, str]:
    return {}  # Asana documents no rate-limit headers on successful answers, only Retry-After


def project(value: Any, fields: dict[str, Any]) -> Any:
    """Keep only the ``opt_fields`` tree of ``value`` (objects keep their gid)."""
    if isinstance(value, list):
        return [project(item, fields) for item in value]
    if not isinstance(value, dict) or not fields:
        return value
    kept = {key: value[key] for key in ("gid", "resource_type") if key in value}
    for key, subtree in fields.items():
        if key in value:
            kept[key] = project(value[key], subtree)
    return kept


def _opt_fields(request: Request) -> dict[str, Any] | None:
    raw = request.query_params.get("opt_fields")
    if not raw:
        return None
    tree: dict[str, Any] = {}
    for path in raw.split(","):
        node = tree
        for part in path.strip().split("."):
            if part:
                node = node.setdefault(part, {})
    return tree


def _render(request: Request, value: Any, compact: Callable[[Any], Any]) -> Any:
    fields = _opt_fields(request)
    return project(value, fields) if fields is not None else compact(value)


def _compact_task(task: dict[str, Any]) -> dict[str, Any]:
    keys = ("gid", "resource_type", "name", "resource_subtype")
    return {key: task[key] for key in keys}


def _compact_user(user: dict[str, Any]) -> dict[str, Any]:
    return {key: user[key] for key in ("gid", "resource_type", "name")}


def _encode(position: int) -> str:
    return base64.urlsafe_b64encode(f"o:{position}".encode()).decode().rstrip("=")


def _decode(offset: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(offset + "=" * (-len(offset) % 4)).decode()
        prefix, _, number = raw.partition(":")
        if prefix != "o":
            raise ValueError(raw)
        return int(number)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise error(400, "offset: Your pagination token is invalid.") from exc


def _paged(request: Request, keyed_from: Iterable[Any] | Keyed) -> dict[str, Any]:
    """Asana pages: ``next_page`` only when ``limit`` was given. ``keyed_from(n)`` yields
    (position, item) from position n on; the offset token carries the next position, so
    filtered lists page without rebuilding what came before. A plain list pages by index."""
    keyed = keyed_from if callable(keyed_from) else _indexed(list(keyed_from))
    raw_limit = request.query_params.get("limit")
    if raw_limit is None:
        everything = [item for _, item in islice(keyed(0), MAX_UNPAGED + 1)]
        if len(everything) > MAX_UNPAGED:
            raise error(400, "The result is too large. You should use pagination (may require "
                             "specifying a workspace)!")  # fmt: skip
        return {"data": everything}
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIMIT:
        raise error(400, f"limit: Must be between 1 and {MAX_LIMIT}")
    limit = int(raw_limit)
    offset_raw = request.query_params.get("offset")
    window = list(islice(keyed(_decode(offset_raw) if offset_raw else 0), limit + 1))
    next_page = None
    if len(window) > limit:
        token = _encode(window[limit][0])
        path = request.url.include_query_params(offset=token)
        root = request.scope.get("root_path", "")
        relative = path.path.removeprefix(root) + (f"?{path.query}" if path.query else "")
        next_page = {"offset": token, "path": relative, "uri": str(path)}
    return {"data": [item for _, item in window[:limit]], "next_page": next_page}


def _indexed(items: list[Any]) -> Keyed:
    return lambda start: enumerate(items[start:], start=start)


async def _data(request: Request) -> Any:
    try:
        body = json.loads(await request.body())
    except ValueError as exc:
        raise error(400, "Could not parse request data, invalid JSON") from exc
    if not isinstance(body, dict) or "data" not in body:
        raise error(400, "data: Missing input")
    return body["data"]


def routes(gate: Gate, desk: AsanaDesk, clock: SandboxClock) -> list[BaseRoute]:
    def ok(data: Any, status: int = 200) -> Response:
        return json_response({"data": data}, status)

    async def list_users(request: Request) -> Response:
        users = [_render(request, user, _compact_user) for user in desk.users()]
        return json_response(_paged(request, users))

    async def show_user(request: Request) -> Response:
        return ok(_render(request, desk.user(request.path_params["user_gid"]), lambda u: u))

    async def list_workspaces(request: Request) -> Response:
        return json_response(_paged(request, [WORKSPACE]))

    async def list_projects(request: Request) -> Response:
        workspace = request.query_params.get("workspace")
        found = [] if workspace not in (None, WORKSPACE["gid"]) else [PROJECT]
        projects = [_render(request, desk.project(p["gid"]), lambda _: PROJECT) for p in found]
        return json_response(_paged(request, projects))

    async def show_project(request: Request) -> Response:
        return ok(_render(request, desk.project(request.path_params["project_gid"]), lambda p: p))

    async def project_tasks(request: Request) -> Response:
        desk.check_project(request.path_params["project_gid"])
        keep = completed_since_filter(request.query_params.get("completed_since"), clock.now())

        def tasks_from(start: int) -> Iterable[tuple[int, Any]]:
            for position, task in desk.tasks(start):
                if keep(task):
                    yield position, _render(request, task_json(task), _compact_task)

        return json_response(_paged(request, tasks_from))

    async def field_settings(request: Request) -> Response:
        desk.check_project(request.path_params["project_gid"])
        return json_response(_paged(request, [_render(request, s, lambda s: s)
                                              for s in project_fields()]))  # fmt: skip

    async def show_task(request: Request) -> Response:
        task = task_json(desk.task(request.path_params["task_gid"]))
        return ok(_render(request, task, lambda t: t))

    async def update_task(request: Request) -> Response:
        task = desk.update(request.path_params["task_gid"], await _data(request))
        return ok(_render(request, task_json(task), lambda t: t))

    async def list_stories(request: Request) -> Response:
        stories = (_render(request, story_json(s), lambda s: s)
                   for s in desk.stories(request.path_params["task_gid"]))  # fmt: skip
        return json_response(_paged(request, stories))

    async def add_story(request: Request) -> Response:
        story = desk.add_comment(request.path_params["task_gid"], await _data(request))
        return ok(_render(request, story_json(story), lambda s: s), status=201)

    async def events(request: Request) -> Response:
        """``GET /events`` (asana_oas.yaml 16547-16700): the project's changes since a sync
        token. Without one, or with one that is unreadable, from the future or older than 24
        hours (oas 644, "Sync tokens always expire after 24 hours"), 412
        with a fresh token (oas 16557-16566, 16671-16698); else 200 with at most 100 events
        (oas 16583, "Asana limits a single sync token to 100 events"), ``has_more`` when more
        wait, and the token to go on from."""
        resource = request.query_params.get("resource")
        if resource is None:
            raise error(400, "resource: Missing input")
        if resource != ASANA_PROJECT_GID:
            desk.task(resource)  # 404 for anything unknown
            raise error(400, "resource: the sandbox streams the events of its project only")
        now = clock.now()
        position = _sync_position(request.query_params.get("sync"), now, len(desk.events))
        if position is None:
            message = (
                "Sync token invalid or too old. If you are attempting to keep resources in "
                "sync, you must fetch the full dataset for this query now and use the new sync "
                "token for the next sync."
            )
            fresh = _sync_token(len(desk.events), now)
            return json_response({"errors": [{"message": message}], "sync": fresh}, 412)
        chosen, more = desk.events_after(position, EVENTS_PER_SYNC)
        return json_response({
            "data": [_render(request, event, lambda e: e) for event in chosen],
            "sync": _sync_token(position + len(chosen), now),
            "has_more": more,
        })  # fmt: skip

    r = gate.route
    return [
        r("GET", "/events", events),
        r("GET", "/users", list_users),
        r("GET", "/users/{user_gid}", show_user),
        r("GET", "/workspaces", list_workspaces),
        r("GET", "/projects", list_projects),
        r("GET", "/projects/{project_gid}", show_project),
        r("GET", "/projects/{project_gid}/tasks", project_tasks),
        r("GET", "/projects/{project_gid}/custom_field_settings", field_settings),
        r("GET", "/tasks/{task_gid}", show_task),
        r("PUT", "/tasks/{task_gid}", update_task, write=True),
        r("GET", "/tasks/{task_gid}/stories", list_stories),
        r("POST", "/tasks/{task_gid}/stories", add_story, write=True),
    ]


def _sync_token(position: int, issued: datetime) -> str:
    """Where a reader of the events is, and when it was told: opaque to the client."""
    raw = f"{position}.{int(issued.timestamp())}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _sync_position(token: str | None, now: datetime, recorded: int) -> int | None:
    """The position a sync token stands for; None when there is none to honour (412)."""
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        position, issued = (int(part) for part in raw.split("."))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    age = now.timestamp() - issued
    if not 0 <= position <= recorded or not 0 <= age <= SYNC_TOKEN_LIFETIME.total_seconds():
        return None
    return position


def router(routes_: list[BaseRoute]) -> ASGIApp:
    async def unknown(scope: Scope, receive: Receive, send: Send) -> None:
        response = VendorError(404, {"errors": [{"message": "Not found"}]}).response()
        await response(scope, receive, send)

    return Router(routes_, default=unknown)
