"""Asana state and behaviour: one workspace, the "Bugs" project, its tasks and stories.

Tasks are generated lazily and kept in an internal shape (assignee and custom field values
by gid); :func:`task_json` renders Asana's representation and ``opt_fields`` projects it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

from sandbox.clock import SandboxClock
from sandbox.errors import VendorError
from sandbox.generator import Generator
from sandbox.generator_asana import (
    ASANA_STORY_BASE,
    ASANA_TASK_BASE,
    STORIES_PER_TASK,
    AsanaGenerator,
    asana_time,
    asana_users,
)
from sandbox.tenant import (
    ASANA_API_USER_GID,
    ASANA_FIELDS,
    ASANA_PROJECT_GID,
    ASANA_WORKSPACE_GID,
    AsanaField,
)

__all__ = ["AsanaDesk", "error", "project_fields"]

HELP = (
    "For more information on API status codes and how to handle them, "
    "read the docs on errors: https://developers.asana.com/docs/errors"
)
_FIELDS = {spec.gid: spec for spec in ASANA_FIELDS}
_USERS = {user["gid"]: user for user in asana_users()}
WORKSPACE = {"gid": ASANA_WORKSPACE_GID, "resource_type": "workspace", "name": "Sandbox"}
PROJECT = {"gid": ASANA_PROJECT_GID, "resource_type": "project", "name": "Bugs"}
SECTION = {"gid": f"{ASANA_PROJECT_GID}1", "resource_type": "section", "name": "Triage"}
TASK_ATTRIBUTES = frozenset({"name", "notes", "completed", "assignee", "due_on", "custom_fields"})


def error(status: int, message: str) -> VendorError:
    detail: dict[str, Any] = {"message": message, "help": HELP}
    if status >= 500:
        detail["phrase"] = "6 sad squid snuggle softly"
    return VendorError(status, {"errors": [detail]})


def user_compact(gid: str | None) -> dict[str, Any] | None:
    if gid is None:
        return None
    user = _USERS[gid]
    return {"gid": gid, "resource_type": "user", "name": user["name"]}


def custom_field_json(spec: AsanaField) -> dict[str, Any]:
    base: dict[str, Any] = {
        "gid": spec.gid,
        "resource_type": "custom_field",
        "name": spec.name,
        "type": spec.subtype,
        "resource_subtype": spec.subtype,
        "description": "",
        "enabled": True,
        "is_formula_field": False,
        "is_value_read_only": False,
        "has_notifications_enabled": False,
        "is_global_to_workspace": False,
        "representation_type": spec.subtype,
    }
    if spec.subtype == "enum":
        base["enum_options"] = [_enum_option(option) for option in spec.options]
    return base


def _enum_option(option: tuple[str, str, str]) -> dict[str, Any]:
    gid, name, color = option
    return {"gid": gid, "resource_type": "enum_option", "name": name, "enabled": True,
            "color": color}  # fmt: skip


def _field_value_json(spec: AsanaField, raw: Any) -> dict[str, Any]:
    value = custom_field_json(spec)
    if spec.subtype == "enum":
        option = next((o for o in spec.options if o[0] == raw), None)
        value["enum_value"] = _enum_option(option) if option else None
        value["display_value"] = option[1] if option else None
    elif spec.subtype == "date":
        value["date_value"] = {"date": raw} if raw else None
        value["display_value"] = raw
    else:
        value["text_value"] = raw
        value["display_value"] = raw
    return value


def project_fields() -> list[dict[str, Any]]:
    """``GET /projects/{gid}/custom_field_settings``."""
    return [
        {
            "gid": f"{spec.gid}9",
            "resource_type": "custom_field_setting",
            "is_important": True,
            "project": PROJECT,
            "parent": PROJECT,
            "custom_field": custom_field_json(spec),
        }
        for spec in ASANA_FIELDS
    ]


def task_json(task: dict[str, Any]) -> dict[str, Any]:
    return {
        "gid": task["gid"],
        "resource_type": "task",
        "resource_subtype": task["resource_subtype"],
        "name": task["name"],
        "notes": task["notes"],
        "completed": task["completed"],
        "completed_at": task["completed_at"],
        "assignee": user_compact(task["assignee"]),
        "created_at": task["created_at"],
        "modified_at": task["modified_at"],
        "due_on": task["due_on"],
        "workspace": WORKSPACE,
        "projects": [PROJECT],
        "memberships": [{"project": PROJECT, "section": SECTION}],
        "permalink_url": f"https://app.asana.com/0/{ASANA_PROJECT_GID}/{task['gid']}",
        "custom_fields": [
            _field_value_json(spec, task["custom_field_values"].get(spec.gid))
            for spec in ASANA_FIELDS
        ],
    }


def story_json(story: dict[str, Any]) -> dict[str, Any]:
    return {**story, "created_by": user_compact(story["created_by"])}


class AsanaDesk:
    def __init__(self, generator: Generator, clock: SandboxClock) -> None:
        self._generator = generator
        self._data = AsanaGenerator(generator)
        self._clock = clock
        self.changed: dict[int, tuple[dict[str, Any], list[dict[str, Any]]]] = {}
        # Every change made to a task since the sandbox started, in order: what the Events
        # API (``GET /events``) answers from. The generated tasks are as of the start.
        self.events: list[dict[str, Any]] = []

    def users(self) -> list[dict[str, Any]]:
        return asana_users()

    def user(self, gid: str) -> dict[str, Any]:
        gid = ASANA_API_USER_GID if gid == "me" else gid
        if gid not in _USERS:
            raise error(404, f"user: Unknown object: {gid}")
        return {**_USERS[gid], "workspaces": [WORKSPACE]}

    def check_project(self, gid: str) -> None:
        if gid != ASANA_PROJECT_GID:
            raise error(404, f"project: Unknown object: {gid}")

    def project(self, gid: str) -> dict[str, Any]:
        self.check_project(gid)
        return {
            **PROJECT,
            "archived": False,
            "color": "light-red",
            "notes": "Bugs reported by customers",
            "workspace": WORKSPACE,
            "owner": user_compact(ASANA_API_USER_GID),
            "custom_field_settings": project_fields(),
            "created_at": "2024-01-02T09:00:00.000Z",
            "modified_at": "2024-01-02T09:00:00.000Z",
        }

    def _record(self, gid: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        number = int(gid) if gid.isdigit() else -1
        found = self.changed.get(number)
        if found is not None:
            return found
        if not self._data.has_task(number):
            raise error(404, f"task: Unknown object: {gid}")
        return self._data.task(number)

    def task(self, gid: str) -> dict[str, Any]:
        return self._record(gid)[0]

    def tasks(self, start: int = 0) -> Iterator[tuple[int, dict[str, Any]]]:
        """(position, task) of the project's tasks from position ``start`` on."""
        for position in range(start, self._generator.task_count):
            yield position, self.task(str(ASANA_TASK_BASE + position + 1))

    def stories(self, gid: str) -> list[dict[str, Any]]:
        return self._record(gid)[1]

    def _writable(self, gid: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        record = self._record(gid)
        return self.changed.setdefault(int(gid), copy.deepcopy(record))

    def _now(self) -> str:
        return asana_time(self._clock.now())

    def _story(
        self, gid: str, stories: list[dict[str, Any]], kind: str, text: str
    ) -> dict[str, Any]:
        number = (int(gid) - ASANA_TASK_BASE) * STORIES_PER_TASK + len(stories) + 1
        story = {
            "gid": str(ASANA_STORY_BASE + number),
            "resource_type": "story",
            "created_at": self._now(),
            "created_by": ASANA_API_USER_GID,
            "resource_subtype": "comment_added" if kind == "comment" else kind,
            "type": "comment" if kind == "comment" else "system",
            "text": text,
            "is_pinned": False,
            "is_edited": False,
        }
        stories.append(story)
        return story

    def add_comment(
        self, gid: str, data: Any, *, author: str = ASANA_API_USER_GID
    ) -> dict[str, Any]:
        """``POST /tasks/{gid}/stories`` (the API user's), or an engineer's comment made in
        Asana's app (the admin API names the ``author``)."""
        if not isinstance(data, dict):
            raise error(400, "data: Missing input")
        text = data.get("text")
        if text is None and isinstance(data.get("html_text"), str):
            text = data["html_text"]
        if not isinstance(text, str) or not text.strip():
            raise error(400, "text: Missing input")
        if author not in _USERS:
            raise error(400, f"author: Not a recognized ID: {author}")
        task, stories = self._writable(gid)
        task["modified_at"] = self._now()
        story = self._story(gid, stories, "comment", text)
        story["created_by"] = author
        # A story added bubbles up to the project's events as the story, its parent the task
        # (asana_oas.yaml 621, 'listening to events on a project would include when stories
        # are added to tasks in the project').
        self._event(author, story, "added", parent=task)
        return story

    def _event(
        self,
        user: str,
        resource: dict[str, Any],
        action: str,
        *,
        parent: dict[str, Any] | None = None,
        change: dict[str, Any] | None = None,
    ) -> None:
        """Record a change for the Events API, shaped as asana_oas.yaml's EventResponse."""
        event: dict[str, Any] = {
            "user": user_compact(user),
            "resource": {"gid": resource["gid"], "resource_type": resource["resource_type"],
                         "name": resource.get("name") or resource.get("text", "")},
            "type": resource["resource_type"],
            "action": action,
            "parent": None if parent is None else {"gid": parent["gid"],
                                                   "resource_type": parent["resource_type"],
                                                   "name": parent.get("name", "")},
            "created_at": self._now(),
        }  # fmt: skip
        if change is not None:
            event["change"] = change
        self.events.append(event)

    def update(self, gid: str, data: Any) -> dict[str, Any]:
        """``PUT /tasks/{gid}``: validate everything first, then apply, with system stories."""
        if not isinstance(data, dict):
            raise error(400, "data: Missing input")
        unknown = sorted(set(data) - TASK_ATTRIBUTES)
        if unknown:
            raise error(400, f"{unknown[0]}: Unknown field")
        self.task(gid)
        fields = _parse_custom_fields(data.get("custom_fields", {}))
        assignee = data.get("assignee", ...)
        if assignee == "me":
            assignee = ASANA_API_USER_GID
        if assignee is not ... and assignee is not None and assignee not in _USERS:
            raise error(400, f"assignee: Not a recognized ID: {assignee}")
        if "completed" in data and not isinstance(data["completed"], bool):
            raise error(400, "completed: Value is not a boolean")
        task, stories = self._writable(gid)
        changed: list[tuple[str, Any]] = []  # (field, new value) for the Events API
        # Like Asana's activity feed, a story per change: setting a value a field already has
        # (a retried update) changes nothing and tells nobody.
        for field_gid, value in fields.items():
            if task["custom_field_values"].get(field_gid) == value:
                continue
            task["custom_field_values"][field_gid] = value
            shown = _display(_FIELDS[field_gid], value)
            self._story(gid, stories, f"{_FIELDS[field_gid].subtype}_custom_field_changed",
                        f"changed {_FIELDS[field_gid].name} to \"{shown}\"")  # fmt: skip
            changed.append(("custom_fields", {"gid": field_gid, "resource_type": "custom_field"}))
        if assignee is not ... and assignee != task["assignee"]:
            task["assignee"] = assignee
            self._story(gid, stories, "assigned", "assigned this task")
            changed.append(("assignee", user_compact(assignee)))
        for name in ("name", "notes", "due_on"):
            if name in data and data[name] != task[name]:
                task[name] = data[name]
                changed.append((name, data[name]))
        if "completed" in data and data["completed"] != task["completed"]:
            task["completed"] = data["completed"]
            task["completed_at"] = self._now() if data["completed"] else None
            changed.append(("completed", data["completed"]))
        task["modified_at"] = self._now()
        # One event per field changed (EventResponse: action "changed", change.field).
        for name, value in changed:
            change = {"field": name, "action": "changed", "new_value": value}
            self._event(ASANA_API_USER_GID, task, "changed", change=change)
        return task

    def events_after(self, position: int, limit: int) -> tuple[list[dict[str, Any]], bool]:
        """The recorded events from ``position`` on, at most ``limit``, on the project (every
        task is in it) or on one task; and whether more follow."""
        chosen = self.events[position : position + limit]
        return chosen, position + limit < len(self.events)

    def dump(self) -> dict[str, Any]:
        return {str(k): {"task": t, "stories": s} for k, (t, s) in self.changed.items()}

    def load(self, data: dict[str, Any], events: list[dict[str, Any]]) -> None:
        self.changed = {int(k): (v["task"], v["stories"]) for k, v in data.items()}
        self.events = list(events)


def _parse_custom_fields(given: Any) -> dict[str, Any]:
    """Asana's write forms: enum by option gid, date as ``{"date": "YYYY-MM-DD"}`` or
    ``"YYYY-MM-DD"`` (:func:`_parse_date`), text."""
    if not isinstance(given, dict):
        raise error(400, "custom_fields: Value must be an object mapping field gids to values")
    parsed: dict[str, Any] = {}
    for field_gid, value in given.items():
        spec = _FIELDS.get(str(field_gid))
        if spec is None:
            raise error(
                400, f"custom_fields: Custom field with ID {field_gid} is not on given object"
            )
        if value is None:
            parsed[spec.gid] = None
        elif spec.subtype == "enum":
            if value not in {option[0] for option in spec.options}:
                raise error(400, f"custom_fields: {value} is not an enum option of {spec.name}")
            parsed[spec.gid] = value
        elif spec.subtype == "date":
            parsed[spec.gid] = _parse_date(spec, value)
        else:
            if not isinstance(value, str):
                raise error(400, f"custom_fields: {spec.name} expects text")
            parsed[spec.gid] = value
    return parsed


def _parse_date(spec: AsanaField, value: Any) -> str:
    """A date field's value in either form the documents show (vendor-behaviours A2): the
    description's string ``"YYYY-MM-DD"``, or the custom-field guide's
    ``{"date": "YYYY-MM-DD"}`` (``date_time`` beside it allowed)."""
    if isinstance(value, dict) and not set(value) - {"date", "date_time"} and "date" in value:
        value = value["date"]
    if not isinstance(value, str):
        raise error(400, f'custom_fields: {spec.name} expects "YYYY-MM-DD" or {{"date": ...}}')
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError as exc:
        raise error(400, f"custom_fields: {value!r} is not a date") from exc


def _display(spec: AsanaField, value: Any) -> str:
    if value is None:
        return ""
    if spec.subtype == "enum":
        return next(option[1] for option in spec.options if option[0] == value)
    return str(value)


def completed_since_filter(raw: str | None, now: datetime) -> Any:
    """Asana's ``completed_since``: incomplete tasks plus those completed after the instant."""
    if raw is None:
        return lambda task: True
    since = now if raw == "now" else datetime.fromisoformat(raw.replace("Z", "+00:00"))
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)

    def keep(task: dict[str, Any]) -> bool:
        if not task["completed"]:
            return True
        completed = datetime.fromisoformat(task["completed_at"].replace("Z", "+00:00"))
        return completed > since

    return keep
