"""Asana: the tasks of the Bugs project as cases of kind ``bug``.

Reads. ``GET /projects/{gid}/tasks`` with ``completed_since=now`` (open tasks only), 100 a
page, and exactly the ``opt_fields`` the planner needs; then the stories of each open task a
policy could plan something for (``may_plan``: not an unassigned bug, with the bundled pack),
for the engineers' comments (ENGINEER_UPDATE) and the worker's own signed comments
(follow-ups); the others are cases without them, counted in their account's totals. The
custom fields are read by gid, resolved once from the project by the names in the mapping.
The customer behind a bug is the Intercom contact in the "Intercom contact" field: it becomes
the case's ``account_id``, which is the id of the Intercom account. What changed since a
cycle (:meth:`AsanaConnector.changes`) comes from the project's Events API and its sync token.

Writes. The customer's email first (a REPLY: seeds 000/001's bug update): Asana cannot reach
customers, so it goes through the :data:`Mailer` the tenant wires in (Intercom's
``POST /messages`` to the bug's contact). Then the custom fields, in one ``PUT /tasks/{gid}``
(enum values by option gid, dates as ``{"date": "YYYY-MM-DD"}``): setting absolute values twice
is harmless, so a lost answer is simply sent again. Last the comment signed with the marker,
``POST /tasks/{gid}/stories``, so a recorded follow-up always has its field changes and its
email; it is looked for before it is sent again. Once the email is out or a field written, a
failure is INCOMPLETE: the date written ("User last updated") stops the plan from offering the
item again, so the worker finishes it next cycle regardless, without the email. The email
carries the item's marker, and the mailer looks for it before sending and when an answer is
lost (Intercom's conversation search on the message body), so it goes out exactly once; the
moment it is out (or found out), ``replied`` is told and the worker records it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import httpx

from connectors.base import (
    Change,
    Checkpoint,
    Gone,
    KnownCase,
    MayPlan,
    Replied,
    WriteOutcome,
    WriteResult,
    every_case,
)
from connectors.errors import (
    BadRecord,
    CursorExpired,
    MappingError,
    NotFound,
    PaginationStuck,
    VendorError,
)
from connectors.footer import Texts, parse_footer
from connectors.http import OwnsClient, VendorClient
from connectors.mapping import AsanaMapping
from connectors.once import WriteOnce
from connectors.records import (
    Report,
    case_or_bad,
    instant,
    log_bad_record,
    optional_text,
    reported,
    text,
    translating,
)
from connectors.resolution import NameCheck
from connectors.settings import Timeouts, VendorLimits
from policies.model import (
    Account,
    ActionType,
    Activity,
    ActivityKind,
    Case,
    CaseKind,
    FollowUpMark,
    PlanItem,
    Priority,
    Source,
    Status,
    marker_tag,
)

__all__ = [
    "AsanaConnector",
    "AsanaIds",
    "CustomField",
    "Mailer",
    "TaskChanges",
    "task_case",
    "task_changes",
]

Mailer = Callable[[str, str, str, str], Awaitable[bool]]
"""Emails a customer exactly once: (Intercom contact id, subject, body, marker); False when
the email carrying the marker was found sent already (by an earlier attempt)."""

PAGE = 100
MAX_PAGES = 10_000  # a million records at PAGE a page; a list longer than that does not end
_EVENTS = "/events"
# What the Events API answers without a sync token, or with one it no longer honours.
_SYNC_REFUSED = 412
TASK_FIELDS = ",".join(
    [
        "name",
        "completed",
        "created_at",
        "modified_at",
        "assignee.name",
        "custom_fields.enum_value.name",
        "custom_fields.date_value.date",
        "custom_fields.text_value",
    ]
)
STORY_FIELDS = "created_at,created_by.name,resource_subtype,text"
PROJECT_FIELDS = ",".join(
    [
        "name",
        "custom_field_settings.custom_field.name",
        "custom_field_settings.custom_field.resource_subtype",
        "custom_field_settings.custom_field.enum_options.name",
    ]
)
_PRIORITY = {
    "critical": Priority.CRITICAL,
    "urgent": Priority.URGENT,
    "high": Priority.HIGH,
    "medium": Priority.NORMAL,
    "normal": Priority.NORMAL,
    "low": Priority.LOW,
}


@dataclass(frozen=True, slots=True)
class CustomField:
    gid: str
    kind: str  # Asana's resource_subtype: enum, date, text, number...
    options: dict[str, str] = field(default_factory=dict)  # lowercased option name -> gid


@dataclass(frozen=True, slots=True)
class AsanaIds:
    project: str
    me: str
    fields: dict[str, CustomField]  # logical name -> field

    def field(self, logical: str) -> CustomField:
        try:
            return self.fields[logical]
        except KeyError:
            raise MappingError(f"asana custom field {logical!r} is not mapped") from None

    def value(self, logical: str, value: Any) -> Any:
        """A custom field value as ``PUT /tasks`` expects it."""
        custom = self.field(logical)
        if custom.kind == "enum":
            try:
                return custom.options[str(value).lower()]
            except KeyError:
                raise MappingError(f"asana field {logical!r} has no option {value!r}") from None
        if custom.kind == "date":
            # The custom-field guide's form; the description's schema says a bare string.
            # Unsettled (vendor-behaviours A2): this is the one place to change.
            return {"date": str(value)[:10]}  # a date or an ISO instant -> YYYY-MM-DD
        return value


@dataclass(frozen=True, slots=True)
class TaskChanges:
    """One plan item on a task: custom field values, the customer's email, the signed comment."""

    values: dict[str, Any]
    email: str | None
    comment: str
    # A bundled update (seed 001 Community) refreshes the fields of every bug it speaks for.
    covered: dict[str, dict[str, Any]] = field(default_factory=dict)  # task gid -> values


def task_changes(item: PlanItem, ids: AsanaIds) -> TaskChanges:
    """What one plan item changes. Raises MappingError on unknown names."""
    values: dict[str, Any] = {}
    texts = Texts()
    covered: dict[str, dict[str, Any]] = {}
    for action in item.actions:
        if texts.take(action):
            continue
        p = action.params
        match action.type:
            case ActionType.SET_BUG_FIELD | ActionType.SET_FIELD:
                logical = str(p["field"])
                gid, value = ids.field(logical).gid, ids.value(logical, p["value"])
                values[gid] = value
                for ref in p.get("cases", []):
                    source, _, task = str(ref).partition(":")
                    if source == Source.ASANA and task != item.case.id:
                        covered.setdefault(task, {})[gid] = value
            case ActionType.NOTIFY_ENGINEER:  # the story the assigned engineer is notified of
                texts.notes.append(str(p["body"]))
            case _:
                raise MappingError(f"asana cannot {action.type} (task {item.case.id})")
    return TaskChanges(values, texts.reply(), texts.signed_note(item), covered)


def task_case(task: Mapping[str, Any], stories: list[Mapping[str, Any]], ids: AsanaIds) -> Case:
    """An open task and its stories as a bug case. Raises
    :class:`~connectors.errors.BadRecord` when the task cannot be read."""
    with translating("asana", task, "gid"):
        return _task_case(task, stories, ids)


def _custom_value(custom: Mapping[str, Any]) -> str | None:
    """A custom field's value as text; a date's as ``{"date": ...}`` or a bare string, both
    forms the documents show (vendor-behaviours A2)."""
    enum = custom.get("enum_value") or {}
    date = custom.get("date_value")
    return (
        optional_text(enum, "name")
        or (date if isinstance(date, str) and date else None)
        or (optional_text(date, "date") if isinstance(date, Mapping) else None)
        or optional_text(custom, "text_value")
    )


def _task_case(task: Mapping[str, Any], stories: list[Mapping[str, Any]], ids: AsanaIds) -> Case:
    history, followups = _evidence(stories, ids.me)
    by_gid = {f.gid: logical for logical, f in ids.fields.items()}
    values: dict[str, str] = {}
    for custom in task.get("custom_fields") or []:
        logical = by_gid.get(text(custom, "gid"))
        if logical and (value := _custom_value(custom)):
            values[logical] = value
    priority = values.pop("priority", None)
    return Case(
        source=Source.ASANA,
        id=text(task, "gid"),
        kind=CaseKind.BUG,
        status=Status.SOLVED if task.get("completed") else Status.OPEN,
        created_at=instant(task, "created_at"),
        updated_at=instant(task, "modified_at"),
        subject=optional_text(task, "name") or "",
        priority=_PRIORITY.get(priority.lower()) if priority else None,
        account_id=values.get("intercom_contact"),
        assignee=optional_text(task.get("assignee") or {}, "name"),
        fields=values,
        history=tuple(sorted(history, key=lambda a: a.at)),
        followups=tuple(sorted(followups, key=lambda m: m.at)),
        updated_stamp=text(task, "modified_at"),
    )


class AsanaConnector(OwnsClient):
    source = Source.ASANA

    def __init__(
        self,
        client: VendorClient,
        mapping: AsanaMapping,
        *,
        report: Report = log_bad_record,
        mailer: Mailer | None = None,
        may_plan: MayPlan = every_case,
    ) -> None:
        self._client = client
        self._report = report
        self._mapping = mapping
        self._mailer = mailer
        self._may_plan = may_plan
        self._ids: AsanaIds | None = None
        self._resolving = asyncio.Lock()

    @classmethod
    def connect(
        cls,
        base_url: str,
        token: str,
        mapping: AsanaMapping,
        *,
        limits: VendorLimits,
        timeouts: Timeouts,
        transport: httpx.AsyncBaseTransport | None = None,
        report: Report = log_bad_record,
        mailer: Mailer | None = None,
        may_plan: MayPlan = every_case,
    ) -> AsanaConnector:
        client = VendorClient(
            "asana",
            base_url,
            headers={"Authorization": f"Bearer {token}"},
            limits=limits,
            timeouts=timeouts,
            transport=transport,
        )
        return cls(client, mapping, report=report, mailer=mailer, may_plan=may_plan)

    async def _pages(self, url: str, params: Mapping[str, Any]) -> AsyncIterator[Any]:
        """Every record of a list, page by page. An offset that comes back (the official
        examples repeat theirs: vendor-behaviours A1) or a list longer than ``MAX_PAGES``
        raises :class:`~connectors.errors.PaginationStuck` rather than reading forever."""
        query = dict(params)
        seen: set[str] = set()
        while True:
            page = await self._client.read("GET", url, params=query)
            for record in page.get("data", []):
                yield record
            offset = (page.get("next_page") or {}).get("offset")
            if not offset:
                return
            if offset in seen or len(seen) + 1 >= MAX_PAGES:
                why = "came back" if offset in seen else f"is past {MAX_PAGES} pages"
                detail = f"next_page.offset {offset!r} {why}: the list does not end"
                raise PaginationStuck("asana", "GET", url, detail=detail)
            seen.add(str(offset))
            query = {**params, "offset": offset}

    async def resolve(self) -> AsanaIds:
        async with self._resolving:
            if self._ids is None:
                self._ids = await self._resolve()
        return self._ids

    async def _project_gid(self) -> str:
        wanted = self._mapping.project
        if wanted.isdigit():
            return wanted
        workspaces = [w async for w in self._pages("/workspaces", {"limit": PAGE})]
        chosen = [
            w for w in workspaces if self._mapping.workspace in (None, w["gid"], w.get("name"))
        ]
        if len(chosen) != 1:
            raise MappingError("asana workspace is ambiguous or unknown: set asana.workspace")
        params = {"workspace": chosen[0]["gid"], "limit": PAGE, "opt_fields": "name"}
        async for project in self._pages("/projects", params):
            if project.get("name") == wanted:
                return str(project["gid"])
        raise MappingError(f"asana project {wanted!r} is unknown")

    async def _resolve(self) -> AsanaIds:
        gid = await self._project_gid()
        project = (
            await self._client.read(
                "GET", f"/projects/{gid}", params={"opt_fields": PROJECT_FIELDS}
            )
        )["data"]
        me = (await self._client.read("GET", "/users/me", params={"opt_fields": "name"}))["data"]
        by_name = {
            s["custom_field"]["name"]: s["custom_field"]
            for s in project.get("custom_field_settings", [])
        }
        resolved = {}
        for logical, name in self._mapping.custom_fields.items():
            if (found := by_name.get(name)) is not None:
                resolved[logical] = CustomField(
                    gid=str(found["gid"]),
                    kind=found.get("resource_subtype") or "text",
                    options={
                        o["name"].lower(): str(o["gid"]) for o in found.get("enum_options") or []
                    },
                )
        return AsanaIds(project=gid, me=str(me["gid"]), fields=resolved)

    async def check(self) -> list[NameCheck]:
        try:
            ids = await self.resolve()
        except MappingError:
            return [NameCheck("asana", "project", self._mapping.project, None)]
        checks = [NameCheck("asana", "project", self._mapping.project, ids.project)]
        for logical, name in self._mapping.custom_fields.items():
            found = ids.fields.get(logical)
            checks.append(
                NameCheck.of("asana", "custom field", f"{logical}: {name}", found and found.gid)
            )
        return checks

    # -- reads ----------------------------------------------------------------------------

    async def _stories(self, task_gid: str) -> list[Mapping[str, Any]]:
        params = {"opt_fields": STORY_FIELDS, "limit": PAGE}
        return [s async for s in self._pages(f"/tasks/{task_gid}/stories", params)]

    async def cases(self) -> AsyncIterator[Case]:
        ids = await self.resolve()
        params = {"completed_since": "now", "limit": PAGE, "opt_fields": TASK_FIELDS}
        url = f"/projects/{ids.project}/tasks"
        batch: list[Mapping[str, Any]] = []
        async for task in self._pages(url, params):
            batch.append(task)
            if len(batch) == PAGE:
                for case in await self._with_stories(batch, ids):
                    yield case
                batch = []
        for case in await self._with_stories(batch, ids):
            yield case

    async def _case(self, task: Mapping[str, Any], ids: AsanaIds) -> Case:
        """The task's case; its stories are read only when a policy could plan something for
        it (``may_plan`` on the task as listed, e.g. not for an unassigned bug)."""
        listed = task_case(task, [], ids)
        if not self._may_plan(listed, None):  # its account is Intercom's
            return listed
        with translating("asana", task, "gid"):
            stories = await self._stories(text(task, "gid"))
        return task_case(task, stories, ids)

    async def _with_stories(self, tasks: list[Mapping[str, Any]], ids: AsanaIds) -> list[Case]:
        """The batch's cases; a task that cannot be read goes to ``report``."""
        read = await asyncio.gather(*(case_or_bad(self._case(t, ids)) for t in tasks))
        return reported(read, self._report)

    def accounts(self) -> AsyncIterator[Account]:
        """Bug reporters' accounts live in Intercom; Asana knows none."""
        return _no_accounts()

    async def _events(self, project: str, sync: str | None) -> Mapping[str, Any]:
        """One read of the project's events: 200 with events since ``sync``, or 412 with a
        fresh token, when there is none or it has expired (asana_oas.yaml 16547-16700)."""
        params = {"resource": project} if sync is None else {"resource": project, "sync": sync}
        answer: Mapping[str, Any] = await self._client.read(
            "GET", _EVENTS, params=params, answers=(_SYNC_REFUSED,)
        )
        return answer

    async def changes(self, cursor: str | None, known: KnownCase) -> AsyncIterator[Change]:
        """What changed since ``cursor`` (:class:`~connectors.base.Syncs`), from the Events API
        on the project: the tasks its events name are read again, each on its own (their
        stories only for the cases ``may_plan`` allows, as :meth:`cases`); a completed, deleted
        or removed task is :class:`Gone`. A checkpoint after each read of events (at most 100
        of them). Nothing changed: one call.

        ``cursor`` None: a sync token first (the events call without one answers 412 with a
        fresh token), then every open task as :meth:`cases` reads them; the token is the
        checkpoint, so the next cycle sees every change made since the read began. A token
        past its 24 hours answers 412 again: :class:`CursorExpired`. ``known`` is not needed:
        a task's stories are read whole."""
        ids = await self.resolve()
        if cursor is None:
            fresh = _sync_token(await self._events(ids.project, None))
            async for case in self.cases():
                yield case
            yield Checkpoint(json.dumps({"sync": fresh}))
            return
        sync = _kept_sync(cursor)
        while True:
            answer = await self._events(ids.project, sync)
            if "errors" in answer:
                raise CursorExpired("asana", "GET", _EVENTS, _SYNC_REFUSED, "sync token expired")
            touched, removed = _touched_tasks(answer.get("data") or [], ids.project)
            reread = [gid for gid in touched if gid not in removed]
            read = await asyncio.gather(*(case_or_bad(self._changed(g, ids)) for g in reread))
            for case in reported(read, self._report):
                yield case
            # Removed, completed or deleted; a task that could not be read was reported.
            for gid in [
                *removed,
                *(g for g, result in zip(reread, read, strict=True) if result is None),
            ]:
                yield Gone(gid)
            sync = _sync_token(answer)
            yield Checkpoint(json.dumps({"sync": sync}))
            if not answer.get("has_more"):
                return

    async def _changed(self, gid: str, ids: AsanaIds) -> Case | None:
        """A task an event named, read again: its case, or None when it is no longer a
        candidate (completed, or deleted: 404)."""
        try:
            task = await self._client.read(
                "GET", f"/tasks/{gid}", params={"opt_fields": TASK_FIELDS}
            )
        except NotFound:
            return None
        if task["data"].get("completed"):
            return None
        return await self._case(task["data"], ids)

    async def fetch_case(self, case_id: str) -> Case:
        ids = await self.resolve()
        task = await self._client.read(
            "GET", f"/tasks/{case_id}", params={"opt_fields": TASK_FIELDS}
        )
        return task_case(task["data"], await self._stories(case_id), ids)

    # -- writes ---------------------------------------------------------------------------

    async def apply(self, item: PlanItem, *, replied: Replied | None = None) -> WriteResult:
        if any(m.key == item.key for m in item.case.followups):
            return WriteResult(WriteOutcome.ALREADY_APPLIED, calls=0)
        try:
            ids = await self.resolve()
            changes = task_changes(item, ids)
        except (MappingError, VendorError) as exc:
            return WriteResult(WriteOutcome.FAILED, calls=0, detail=str(exc))
        contact = item.case.account_id
        if changes.email is not None and (self._mailer is None or contact is None):
            why = "no Intercom configured" if self._mailer is None else "no Intercom contact"
            detail = f"asana cannot email the customer of task {item.case.id}: {why}"
            return WriteResult(WriteOutcome.FAILED, calls=0, detail=detail)
        task = f"/tasks/{item.case.id}"
        once = WriteOnce()

        async def story_landed() -> bool:
            _, marks = _evidence(await self._stories(item.case.id), ids.me)
            return any(m.key == item.key for m in marks)

        emailed = 0
        started = False  # the email is out, or a field change may have landed
        try:
            if changes.email is not None and self._mailer is not None and contact is not None:
                subject = f"Update on your bug report: {item.case.subject}"
                await self._mailer(contact, subject, changes.email, marker_tag(item.key))
                emailed = 1
                started = True
                if replied is not None:
                    replied()
            # Absolute values: sending them twice changes nothing, so no check is needed.
            for gid, values in [(item.case.id, changes.values), *changes.covered.items()]:
                if values:
                    body = {"data": {"custom_fields": values}}
                    put = partial(self._client.write, "PUT", f"/tasks/{gid}", json=body)
                    started = True
                    await once.send(put, None)
            story = {"data": {"text": changes.comment}}
            posted = await once.send(
                lambda: self._client.write("POST", f"{task}/stories", json=story), story_landed
            )
        except (VendorError, BadRecord) as exc:  # BadRecord: a contact that cannot be emailed
            outcome = WriteOutcome.INCOMPLETE if started else WriteOutcome.FAILED
            return WriteResult(outcome, calls=once.calls + emailed, detail=str(exc))
        outcome = WriteOutcome.ALREADY_APPLIED if posted.landed_before else WriteOutcome.APPLIED
        return WriteResult(outcome, calls=once.calls + emailed)


def _evidence(
    stories: list[Mapping[str, Any]], me: str
) -> tuple[list[Activity], list[FollowUpMark]]:
    """Engineers' comments, and the worker's own signed ones, from a task's stories."""
    history: list[Activity] = []
    followups: list[FollowUpMark] = []
    for story in stories:
        if story.get("resource_subtype") != "comment_added":
            continue  # system stories: field changes, assignments...
        at = instant(story, "created_at")
        author = str((story.get("created_by") or {}).get("gid"))
        if author != me:
            history.append(Activity(ActivityKind.ENGINEER_UPDATE, at))
        elif (mark := parse_footer(story.get("text") or "", at)) is not None:
            followups.append(mark)
    return history, followups


def _sync_token(answer: Mapping[str, Any]) -> str:
    """The sync token an events answer (200 or 412) hands out."""
    token = answer.get("sync")
    if not isinstance(token, str) or not token:
        raise BadRecord("asana", _EVENTS, "the events answer carries no sync token")
    return token


def _kept_sync(cursor: str) -> str:
    """The sync token of a cursor :meth:`AsanaConnector.changes` handed out."""
    try:
        token = json.loads(cursor)["sync"]
    except (ValueError, TypeError, KeyError) as exc:
        raise CursorExpired("asana", "GET", _EVENTS, detail="unreadable cursor") from exc
    if not isinstance(token, str):
        raise CursorExpired("asana", "GET", _EVENTS, detail="unreadable cursor")
    return token


def _touched_tasks(events: list[Any], project: str) -> tuple[list[str], set[str]]:
    """The tasks a page of events names, in order, once each (a task's own change, or a story
    added to it, its parent); and those removed from the project or deleted, which are gone
    without a read (EventResponse: ``action`` added/changed/removed/deleted/undeleted)."""
    touched: dict[str, None] = {}
    removed: set[str] = set()
    for event in events:
        resource = event.get("resource") or {}
        parent = event.get("parent") or {}
        if resource.get("resource_type") == "task":
            gid = str(resource.get("gid"))
            touched[gid] = None
            if event.get("action") == "deleted" or (
                event.get("action") == "removed" and str(parent.get("gid")) == project
            ):
                removed.add(gid)
            elif event.get("action") in ("added", "undeleted"):
                removed.discard(gid)
        elif parent.get("resource_type") == "task":
            touched[str(parent.get("gid"))] = None
    return list(touched), removed


async def _no_accounts() -> AsyncIterator[Account]:
    return
    yield  # pragma: no cover
