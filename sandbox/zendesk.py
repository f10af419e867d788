"""Zendesk state and behaviour: tickets, their comments and audits, users, organizations.

Generated tickets are read straight from the generator (cached); the first write copies a
ticket into ``changed``, which then wins. Behaviour follows ../shared/specs/zendesk-notes.md:
``safe_update`` + ``updated_stamp`` answers 409, closed tickets refuse updates, a requester
comment reopens a pending/hold/solved ticket, a public agent comment is emailed. The
incremental exports read two time indexes built once over the generated tenant (tickets by
update, audits by time), plus the audits writes add: every ticket update is an audit, so the
ticket event export shows every change.
"""

from __future__ import annotations

import copy
import heapq
import re
from array import array
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Iterator
from datetime import date, datetime, timedelta
from functools import lru_cache
from itertools import islice, takewhile
from typing import Any, TypeVar

from sandbox.clock import SandboxClock, format_iso, parse_iso
from sandbox.errors import VendorError
from sandbox.generator import (
    COMMENTS_PER_TICKET,
    END_USER_BASE,
    ORG_BASE,
    Generator,
    TicketRecord,
    add_inbound_comment,
    comment_json,
)
from sandbox.outbox import Outbox
from sandbox.tenant import AGENTS, API_USER, GROUPS, TICKET_FIELDS, TicketField

__all__ = ["STATUSES", "ZendeskDesk", "error", "not_found", "record_invalid"]

STATUSES = ("new", "open", "pending", "hold", "solved", "closed")
MAX_COMMENTS = 5000
# Writable ticket attributes per the description's TicketObject; anything else is refused.
TICKET_ATTRIBUTES = frozenset(
    {
        "assignee_email", "assignee_id", "attribute_value_ids", "brand_id", "collaborator_ids",
        "collaborators", "comment", "custom_fields", "custom_status_id", "due_at",
        "email_cc_ids", "email_ccs", "external_id", "follower_ids", "followers", "group_id",
        "macro_id", "macro_ids", "metadata", "organization_id", "priority", "problem_id",
        "requester", "requester_id", "safe_update", "sharing_agreement_ids", "status",
        "subject", "submitter_id", "tags", "ticket_form_id", "type", "updated_stamp",
        "via_followup_source_id", "additional_tags", "remove_tags", "raw_subject",
    }
)  # fmt: skip
SIMPLE_ATTRIBUTES = ("subject", "type", "due_at", "external_id", "priority")
# What the sandbox models; a described-but-unmodelled attribute is refused, never ignored,
# so a test cannot pass on a change that silently did nothing.
MODELLED_ATTRIBUTES = frozenset(
    {
        *SIMPLE_ATTRIBUTES, "assignee_id", "assignee_email", "group_id", "status", "comment",
        "custom_fields", "tags", "additional_tags", "remove_tags", "safe_update", "updated_stamp",
    }
)  # fmt: skip
PRIORITIES = (None, "low", "normal", "high", "urgent")
TYPES = (None, "problem", "incident", "question", "task")
_FIELDS = {spec.id: spec for spec in TICKET_FIELDS}
_TAG_PATTERN = re.compile(r"<[^>]+>")
_GROUP_CREATED = "2020-01-01T00:00:00Z"


_MANY_ONLY = ("additional_tags", "remove_tags")


def error(status: int, code: str, description: str, **extra: Any) -> VendorError:
    return VendorError(status, {"error": code, "description": description, **extra})


def not_found() -> VendorError:
    return error(404, "RecordNotFound", "Not found")


def record_invalid(field: str, description: str) -> VendorError:
    return error(
        422,
        "RecordInvalid",
        "Record validation errors",
        details={field: [{"description": description, "error": "InvalidValue"}]},
    )


class ZendeskDesk:
    def __init__(self, generator: Generator, clock: SandboxClock, outbox: Outbox) -> None:
        self._generator = generator
        self._clock = clock
        self._outbox = outbox
        self._generated = lru_cache(maxsize=4096)(generator.ticket)
        self.changed: dict[int, TicketRecord] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        # Both built together on the first export that needs one (one pass over the tenant).
        self._export_index: list[tuple[int, int]] | None = None
        self._event_index: array[int] | None = None  # generated audits, see _pack_event
        # (unix time, ticket id, audit index) of every audit a write added, in time order.
        self._written_events: list[Event] = []
        self.changed_organizations: dict[int, dict[str, Any]] = {}
        self._organization_index: list[tuple[int, int]] | None = None  # generated, by update

    # --- reading ---------------------------------------------------------------------

    @property
    def ticket_count(self) -> int:
        return self._generator.ticket_count

    def record(self, ticket_id: int) -> TicketRecord:
        """Read-only view of a ticket; raises the vendor's 404."""
        found = self.changed.get(ticket_id)
        if found is not None:
            return found
        if not self._generator.has_ticket(ticket_id):
            raise not_found()
        return self._generated(ticket_id)

    def metrics(self, ticket_id: int) -> dict[str, Any]:
        """The ticket's metric set (its id is the ticket's), read off its comments/audits."""
        record = self.record(ticket_id)
        ticket = record.ticket
        by_requester = [c for c in record.comments if c["author_id"] == ticket["requester_id"]]
        agent_replies = [
            c for c in record.comments if c["public"] and c["author_id"] != ticket["requester_id"]
        ]
        status_changes = [
            audit["created_at"]
            for audit in record.audits
            for event in audit["events"]
            if event.get("field_name") == "status"
        ]
        solved = [
            audit["created_at"]
            for audit in record.audits
            for event in audit["events"]
            if event.get("field_name") == "status" and event.get("value") == "solved"
        ]
        return {
            "id": ticket_id,
            "ticket_id": ticket_id,
            "url": f"/api/v2/ticket_metrics/{ticket_id}.json",
            "created_at": ticket["created_at"],
            "updated_at": ticket["updated_at"],
            "requester_updated_at": by_requester[-1]["created_at"] if by_requester else None,
            "latest_comment_added_at": record.comments[-1]["created_at"],
            "status_updated_at": status_changes[-1] if status_changes else ticket["created_at"],
            "solved_at": solved[-1] if solved else None,
            "replies": len(agent_replies),
            "reopens": 0,
        }

    def ticket_ids(self, after: int = 0) -> Iterator[int]:
        return iter(range(max(after, 0) + 1, self._generator.ticket_count + 1))

    def changed_after(
        self, after: tuple[int, int], horizon: int, limit: int
    ) -> tuple[list[tuple[int, int]], bool]:
        """(updated unix time, id) of tickets changed after ``after`` and not after
        ``horizon``, oldest first, at most ``limit``; and whether more follow."""
        index, _ = self._indexes()
        generated = (
            entry
            for entry in islice(index, bisect_right(index, after), None)
            if entry[1] not in self.changed
        )
        written = sorted(
            (record.ticket["generated_timestamp"], ticket_id)
            for ticket_id, record in self.changed.items()
            if (record.ticket["generated_timestamp"], ticket_id) > after
        )
        due = takewhile(lambda entry: entry[0] <= horizon, heapq.merge(generated, written))
        chosen = list(islice(due, limit + 1))
        return chosen[:limit], len(chosen) > limit

    def _indexes(self) -> tuple[list[tuple[int, int]], array[int]]:
        """Generated tickets by update time and generated audits by time. Built once, on the
        first export: what the generator made never changes (a write copies the ticket and
        only appends audits, which ``_written_events`` tracks)."""
        if self._export_index is None or self._event_index is None:
            stamps, events = [], []
            for ticket_id in self.ticket_ids():
                record = self._generated(ticket_id)
                stamps.append((record.ticket["generated_timestamp"], ticket_id))
                events += [_pack_event(_unix(audit["created_at"]), ticket_id, n)
                           for n, audit in enumerate(record.audits)]  # fmt: skip
            self._export_index = sorted(stamps)
            events.sort()
            self._event_index = array("q", events)
        return self._export_index, self._event_index

    def events_since(self, start: int, horizon: int, limit: int) -> tuple[list[Event], bool]:
        """(unix time, ticket id, audit index) of the audits made at ``start`` or later and
        not after ``horizon``, oldest first; and whether more follow. At least ``limit`` when
        there are that many, and never a second cut in two: the rest of the last second
        comes along (Zendesk's time-based pages may exceed their size the same way)."""
        _, index = self._indexes()
        first = bisect_left(index, _pack_event(start, 0, 0))
        generated = (_unpack_event(index[n]) for n in range(first, len(index)))
        written = self._written_events[bisect_left(self._written_events, (start, 0, 0)) :]
        due = takewhile(lambda event: event[0] <= horizon, heapq.merge(generated, written))
        return _whole_seconds(due, limit)

    def ticket_event(self, event: Event, *, comments: bool) -> dict[str, Any]:
        """One audit as the ticket event export shows it: its comment, if any, as a child event
        (in full with ``comments``, else only flagged), then its field changes."""
        _, ticket_id, index = event
        record = self.record(ticket_id)
        audit = record.audits[index]
        children = []
        for child in audit["events"]:
            if child["type"] in ("Comment", "VoiceComment"):
                comment = _comment_of(audit, record.comments, index)
                children.append(
                    {**comment, "event_type": "Comment", "via_reference_id": None}
                    if comments
                    else {"id": comment["id"], "event_type": "Comment", "comment_present": True,
                          "comment_public": comment["public"]}
                )  # fmt: skip
            else:
                change = {k: v for k, v in child.items() if k != "type"}
                children.append({**change, "event_type": child["type"], "via": audit["via"],
                                 "via_reference_id": None})  # fmt: skip
        return {
            "id": audit["id"],
            "ticket_id": ticket_id,
            "timestamp": event[0],
            "created_at": audit["created_at"],
            "updater_id": audit["author_id"],
            "via": audit["via"],
            "system": audit["metadata"]["system"],
            "event_type": "Audit",
            "child_events": children,
        }

    def scenario(self, ticket_id: int) -> str:
        return self._generator.scenario(ticket_id)

    def user(self, user_id: int) -> dict[str, Any]:
        for agent in (API_USER, *AGENTS):
            if agent.id == user_id:
                return _agent_json(agent)
        if not self._generator.has_end_user(user_id):
            raise not_found()
        return self._generator.end_user(user_id)

    def user_ids(self) -> list[int]:
        return [API_USER.id, *(agent.id for agent in AGENTS)] + [
            END_USER_BASE + index for index in range(1, self._generator.end_user_count + 1)
        ]

    def organization(self, org_id: int) -> dict[str, Any]:
        if (changed := self.changed_organizations.get(org_id)) is not None:
            return changed
        if not self._generator.has_organization(org_id):
            raise not_found()
        return self._generator.organization(org_id)

    def organizations_since(
        self, start: int, horizon: int, limit: int
    ) -> tuple[list[tuple[int, int]], bool]:
        """(updated unix time, id) of the organizations updated at ``start`` or later and not
        after ``horizon``, oldest first, a time-based page (as :meth:`events_since`)."""
        if self._organization_index is None:
            self._organization_index = sorted(
                (_unix(self._generator.organization(org_id)["updated_at"]), org_id)
                for org_id in self.organization_ids()
            )
        index = self._organization_index
        generated = (
            entry
            for entry in islice(index, bisect_left(index, (start, 0)), None)
            if entry[1] not in self.changed_organizations
        )
        written = sorted(
            (_unix(org["updated_at"]), org_id)
            for org_id, org in self.changed_organizations.items()
            if _unix(org["updated_at"]) >= start
        )
        due = takewhile(lambda entry: entry[0] <= horizon, heapq.merge(generated, written))
        return _whole_seconds(due, limit)

    def update_organization(self, org_id: int, fields: dict[str, Any]) -> dict[str, Any]:
        """An admin's change of an organization's fields (plan, account status, stop flag):
        its ``updated_at`` moves to now, so the organization export shows it."""
        org = copy.deepcopy(self.organization(org_id))
        org["organization_fields"] = {**org["organization_fields"], **fields}
        previous = parse_iso(org["updated_at"])
        now = max(self._clock.now().replace(microsecond=0), previous + timedelta(seconds=1))
        org["updated_at"] = format_iso(now)
        self.changed_organizations[org_id] = org
        return org

    def organization_ids(self) -> range:
        return range(ORG_BASE + 1, ORG_BASE + self._generator.org_count + 1)

    def group(self, group_id: int) -> dict[str, Any]:
        if group_id not in GROUPS:
            raise not_found()
        return {
            "id": group_id,
            "url": f"/api/v2/groups/{group_id}.json",
            "name": GROUPS[group_id],
            "description": "",
            "default": group_id == 501,
            "deleted": False,
            "is_public": True,
            "created_at": _GROUP_CREATED,
            "updated_at": _GROUP_CREATED,
        }

    def ticket_field(self, field_id: int) -> dict[str, Any]:
        spec = _FIELDS.get(field_id)
        if spec is None:
            raise not_found()
        return {
            "id": spec.id,
            "url": f"/api/v2/ticket_fields/{spec.id}.json",
            "type": spec.type,
            "title": spec.title,
            "raw_title": spec.title,
            "description": "",
            "raw_description": "",
            "position": spec.id - 9000,
            "active": True,
            "required": False,
            "collapsed_for_agents": False,
            "regexp_for_validation": None,
            "title_in_portal": spec.title,
            "raw_title_in_portal": spec.title,
            "visible_in_portal": False,
            "editable_in_portal": False,
            "required_in_portal": False,
            "tag": None,
            "removable": True,
            "agent_description": None,
            "created_at": _GROUP_CREATED,
            "updated_at": _GROUP_CREATED,
            "custom_field_options": [
                {"id": spec.id * 100 + n, "name": name, "raw_name": name, "value": value,
                 "default": False}
                for n, (value, name) in enumerate(spec.options, start=1)
            ],
        }  # fmt: skip

    # --- writing ---------------------------------------------------------------------

    def _writable(self, ticket_id: int) -> TicketRecord:
        found = self.changed.get(ticket_id)
        if found is None:
            found = copy.deepcopy(self.record(ticket_id))
            self.changed[ticket_id] = found
        return found

    def update(
        self, ticket_id: int, changes: Any, *, many: bool = False
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Apply one ``PUT /tickets/{id}`` body's ``ticket`` (or one ticket of Update Many);
        answer (ticket, audit)."""
        if not isinstance(changes, dict):
            raise error(400, "InvalidValue", "Expected a 'ticket' object")
        if not many:
            # additional_tags / remove_tags are documented for Update Many only; a single
            # update ignores them (the strict reading of vendor-behaviours.md Z3): `tags`
            # replaces the ticket's tags.
            changes = {k: v for k, v in changes.items() if k not in _MANY_ONLY}
        current = self.record(ticket_id).ticket
        unknown = sorted(set(changes) - TICKET_ATTRIBUTES)
        if unknown:
            raise record_invalid("base", f"Unknown attribute(s): {', '.join(unknown)}")
        unmodelled = sorted(set(changes) - MODELLED_ATTRIBUTES)
        if unmodelled:
            raise record_invalid(
                "base", f"The sandbox does not model updating: {', '.join(unmodelled)}"
            )
        if changes.get("safe_update"):
            _check_stamp(current, changes.get("updated_stamp"))
        if current["status"] == "closed":
            raise record_invalid("status", "Status: closed prevents ticket update")
        planned = self._plan(current, changes)
        comment_input = changes.get("comment")
        comment = self._comment_from(comment_input) if comment_input is not None else None
        record = self._writable(ticket_id)
        if comment is not None and len(record.comments) >= MAX_COMMENTS:
            raise record_invalid("base", f"Ticket has reached the {MAX_COMMENTS} comment limit")
        return self._commit(record, planned, comment)

    def _plan(self, current: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
        """Validate ``changes`` against ``current``; answer the new values of changed fields."""
        planned: dict[str, Any] = {}
        if "status" in changes:
            status = changes["status"]
            if status not in STATUSES:
                raise record_invalid("status", f"Status: {status!r} is not valid")
            if status == "new" and current["status"] != "new":
                raise record_invalid("status", "Status: cannot be changed back to new")
            planned["status"] = status
        elif current["status"] == "new" and changes.get("comment"):
            planned["status"] = "open"  # an agent touching a new ticket opens it
        if "assignee_email" in changes:
            by_email = {agent.email: agent.id for agent in (API_USER, *AGENTS)}
            if changes["assignee_email"] not in by_email:
                raise record_invalid("assignee", "Assignee email is not an agent's")
            planned["assignee_id"] = by_email[changes["assignee_email"]]
        if "assignee_id" in changes:
            assignee = changes["assignee_id"]
            if assignee is not None and assignee not in {a.id for a in (API_USER, *AGENTS)}:
                raise record_invalid("assignee", "Assignee is not an agent")
            planned["assignee_id"] = assignee
        if "group_id" in changes:
            group = changes["group_id"]
            if group is not None and group not in GROUPS:
                raise record_invalid("group", "Group is invalid")
            planned["group_id"] = group
        for name in SIMPLE_ATTRIBUTES:
            if name in changes:
                planned[name] = changes[name]
        if planned.get("priority") not in PRIORITIES:
            raise record_invalid("priority", "Priority is invalid")
        if planned.get("type") not in TYPES:
            raise record_invalid("type", "Type is invalid")
        # The tags first, then the drop-down fields, whose option value is also a tag: a
        # field set in the same update keeps its tag whatever the tag list says.
        tags = _apply_tags(list(current["tags"]), changes)
        if "custom_fields" in changes:
            planned["custom_fields"], tags = _apply_custom_fields(
                current["custom_fields"], changes["custom_fields"], tags
            )
        if tags != current["tags"]:
            planned["tags"] = tags
        final_status = planned.get("status", current["status"])
        final_assignee = planned.get("assignee_id", current["assignee_id"])
        if final_status in ("solved", "closed") and final_assignee is None:
            raise record_invalid("status", "Status: solved requires an assignee")
        return planned

    def _comment_from(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise record_invalid("comment", "Comment must be an object")
        body = data.get("body")
        if body is None and isinstance(data.get("html_body"), str):
            body = _TAG_PATTERN.sub("", data["html_body"])
        if not isinstance(body, str) or not body.strip():
            raise record_invalid("comment", "Comment: body cannot be blank")
        public = data.get("public", True)
        if not isinstance(public, bool):
            raise record_invalid("comment", "Comment: public must be a boolean")
        author_id = data.get("author_id", API_USER.id)
        if not isinstance(author_id, int):
            raise record_invalid("comment", "Comment: author_id must be an integer")
        self.user(author_id)
        return {"body": body, "html_body": data.get("html_body"), "public": public,
                "author_id": author_id}  # fmt: skip

    def _commit(
        self,
        record: TicketRecord,
        planned: dict[str, Any],
        comment: dict[str, Any] | None,
        *,
        channel: str = "api",
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        ticket = record.ticket
        now = self._bump(ticket)
        events: list[dict[str, Any]] = []
        audit_id = self._next_audit_id(record)
        if comment is not None:
            comment_id = record.ticket["id"] * COMMENTS_PER_TICKET + len(record.comments) + 1
            added = comment_json(comment_id, audit_id, now, channel=channel, **comment)
            record.comments.append(added)
            events.append({"id": audit_id * 10, "type": "Comment", "body": added["body"],
                           "public": added["public"], "author_id": added["author_id"]})  # fmt: skip
            if added["public"] and added["author_id"] != ticket["requester_id"]:
                self._email_requester(ticket, added["body"], now)
        changes = [change for name, value in planned.items() for change in
                   _change_events(name, ticket.get(name), value)]  # fmt: skip
        for offset, change in enumerate(changes, start=1):
            events.append({"id": audit_id * 10 + offset, "type": "Change", **change})
        ticket.update(planned)
        audit = {
            "id": audit_id,
            "ticket_id": ticket["id"],
            "author_id": comment["author_id"] if comment else API_USER.id,
            "created_at": ticket["updated_at"],
            "metadata": {"system": {}, "custom": {}},
            "via": {"channel": channel, "source": {"from": {}, "to": {}, "rel": None}},
            "events": events,
        }
        record.audits.append(audit)
        self._audited(record)
        return ticket, audit

    def _bump(self, ticket: dict[str, Any]) -> datetime:
        """Move ``updated_at`` to now, strictly later than before so stamps always change."""
        now = self._clock.now().replace(microsecond=0)
        previous = parse_iso(ticket["updated_at"])
        if now <= previous:
            now = previous + timedelta(seconds=1)
        ticket["updated_at"] = format_iso(now)
        ticket["generated_timestamp"] = int(now.timestamp())
        return now

    def _next_audit_id(self, record: TicketRecord) -> int:
        # Ids above every comment index of this ticket: unique without a global counter.
        ticket_id: int = record.ticket["id"]
        return ticket_id * COMMENTS_PER_TICKET + MAX_COMMENTS + len(record.audits)

    def _email_requester(self, ticket: dict[str, Any], body: str, now: datetime) -> None:
        requester = self.user(ticket["requester_id"])
        self._outbox.send(
            at=format_iso(now),
            vendor="zendesk",
            ref=f"zendesk:{ticket['id']}",
            to=requester.get("email"),
            subject=f"[Ticket #{ticket['id']}] {ticket['subject']}",
            body=body,
        )

    def add_activity(self, ticket_id: int, kind: str, body: str) -> dict[str, Any]:
        """A requester's reply or missed call/email; reopens the ticket like Zendesk does."""
        record = self._writable(ticket_id)
        ticket = record.ticket
        requester = self.user(ticket["requester_id"])
        if kind in ("missed_call", "abandoned_call") and not requester.get("phone"):
            raise record_invalid("base", "The requester has no phone number to call from")
        if ticket["status"] == "closed":
            raise record_invalid("status", "Status: closed prevents ticket update")
        reopen = ticket["status"] in ("new", "pending", "hold", "solved")
        changes = (("status", "open", ticket["status"]),) if reopen else ()
        now = self._bump(ticket)
        comment = add_inbound_comment(record, kind, requester, now, body, changes)
        self._audited(record)
        if reopen:
            ticket["status"] = "open"
        return comment

    def _audited(self, record: TicketRecord) -> None:
        """Put the audit a write just added into the event export."""
        index = len(record.audits) - 1
        at = _unix(record.audits[index]["created_at"])
        insort(self._written_events, (at, record.ticket["id"], index))

    def replace_tags(self, ticket_id: int, tags: list[str], mode: str) -> list[str]:
        """``/tickets/{id}/tags``: ``set`` (POST), ``add`` (PUT) or ``remove`` (DELETE)."""
        current = self.record(ticket_id).ticket
        key = {"set": "tags", "add": "additional_tags", "remove": "remove_tags"}[mode]
        new = _apply_tags(current["tags"], {key: tags})
        if new != current["tags"]:
            self._commit(self._writable(ticket_id), {"tags": new}, None)
        return new

    # --- persistence -------------------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        return {
            "tickets": {
                str(ticket_id): {"ticket": r.ticket, "comments": r.comments, "audits": r.audits,
                                 "scenario": r.scenario}
                for ticket_id, r in self.changed.items()
            },
            "jobs": self.jobs,
            "organizations": {str(k): org for k, org in self.changed_organizations.items()},
        }  # fmt: skip

    def load(self, data: dict[str, Any]) -> None:
        self.changed = {
            int(ticket_id): TicketRecord(r["ticket"], r["comments"], r["audits"], r["scenario"])
            for ticket_id, r in data.get("tickets", {}).items()
        }
        self.jobs = dict(data.get("jobs", {}))
        self.changed_organizations = {
            int(org_id): org for org_id, org in data.get("organizations", {}).items()
        }
        self._written_events = sorted(
            (_unix(audit["created_at"]), ticket_id, index)
            for ticket_id, record in self.changed.items()
            for index, audit in enumerate(record.audits)
            if index >= len(self._generated(ticket_id).audits)
        )


Event = tuple[int, int, int]  # (unix time, ticket id, index in the ticket's audits)
Timed = TypeVar("Timed", bound=tuple[int, ...])


def _whole_seconds(due: Iterable[Timed], limit: int) -> tuple[list[Timed], bool]:
    """A time-based export page of ``due`` (in time order, unix time first): at least
    ``limit`` items when there are that many, and never a second cut in two; and whether
    more follow."""
    chosen: list[Timed] = []
    for item in due:
        if len(chosen) >= limit and item[0] != chosen[-1][0]:
            return chosen, True
        chosen.append(item)
    return chosen, False


_TICKET_BITS, _AUDIT_BITS = 21, 10  # up to 2M tickets of up to 1,024 generated audits


def _pack_event(at: int, ticket_id: int, index: int) -> int:
    """A generated audit as one 64-bit integer that sorts by time: 1M tickets' worth of
    audits fit in tens of MB (an array), where tuples would take hundreds."""
    if ticket_id >> _TICKET_BITS or index >> _AUDIT_BITS:
        raise ValueError(f"ticket {ticket_id} audit {index}: beyond the event index")
    return (at << (_TICKET_BITS + _AUDIT_BITS)) | (ticket_id << _AUDIT_BITS) | index


def _unpack_event(packed: int) -> Event:
    at, rest = divmod(packed, 1 << (_TICKET_BITS + _AUDIT_BITS))
    ticket_id, index = divmod(rest, 1 << _AUDIT_BITS)
    return at, ticket_id, index


def _unix(stamp: str) -> int:
    return int(parse_iso(stamp).timestamp())


def _comment_of(audit: dict[str, Any], comments: list[dict[str, Any]], last: int) -> Any:
    """The comment ``audit`` added. Audits and comments both grow in time order and every
    comment has its audit, so it sits at or before the audit's own index."""
    for position in range(min(last, len(comments) - 1), -1, -1):
        if comments[position]["audit_id"] == audit["id"]:
            return comments[position]
    raise LookupError(f"audit {audit['id']} names a comment the ticket does not have")


def _agent_json(agent: Any) -> dict[str, Any]:
    return {
        "id": agent.id,
        "url": f"/api/v2/users/{agent.id}.json",
        "name": agent.name,
        "email": agent.email,
        "phone": None,
        "role": agent.role,
        "role_type": None,
        "active": True,
        "verified": True,
        "suspended": False,
        "organization_id": None,
        "default_group_id": 501,
        "time_zone": "Eastern Time (US & Canada)",
        "iana_time_zone": "America/New_York",
        "locale": "en-US",
        "locale_id": 1,
        "tags": [],
        "user_fields": {},
        "restricted_agent": False,
        "created_at": _GROUP_CREATED,
        "updated_at": _GROUP_CREATED,
    }


def _change_events(name: str, previous: Any, value: Any) -> list[dict[str, Any]]:
    """Audit ``Change`` events as Zendesk writes them: one per custom field (named by its
    id), tags as one space-separated string."""
    if name == "custom_fields":
        before = {entry["id"]: entry["value"] for entry in previous}
        return [
            {"field_name": str(entry["id"]), "value": entry["value"],
             "previous_value": before.get(entry["id"])}
            for entry in value
            if before.get(entry["id"]) != entry["value"]
        ]  # fmt: skip
    if name == "tags":
        return [{"field_name": "tags", "value": " ".join(value),
                 "previous_value": " ".join(previous)}]  # fmt: skip
    return [{"field_name": name, "value": value, "previous_value": previous}]


def _check_stamp(current: dict[str, Any], stamp: Any) -> None:
    if not isinstance(stamp, str):
        raise record_invalid("updated_stamp", "updated_stamp is required with safe_update")
    try:
        matches = parse_iso(stamp) == parse_iso(current["updated_at"])
    except ValueError as exc:
        raise record_invalid("updated_stamp", "updated_stamp is not a timestamp") from exc
    if not matches:
        raise error(
            409,
            "UpdateConflict",
            "Safe Update prevented the update due to outdated ticket data. "
            "Please fetch the latest ticket data and try again.",
        )


def _apply_custom_fields(
    current: list[dict[str, Any]], updates: Any, tags: list[str]
) -> tuple[list[dict[str, Any]], list[str]]:
    """New custom_fields list and tags: a tagger field's option value is also a tag."""
    if not isinstance(updates, list):
        raise record_invalid("custom_fields", "custom_fields must be a list of {id, value}")
    values = {entry["id"]: entry["value"] for entry in current}
    tags = list(tags)
    for entry in updates:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), int):
            raise record_invalid("custom_fields", "Each custom field needs an integer id")
        spec = _FIELDS.get(entry["id"])
        if spec is None:
            raise record_invalid("custom_fields", f"Custom field {entry['id']} does not exist")
        value = entry.get("value")
        if value in ("", []):
            value = None
        if value is not None:
            _check_field_value(spec, value)
        if spec.type in ("tagger", "multiselect"):  # option values are also the ticket's tags
            old, new = values.get(spec.id), value
            for tag in old if isinstance(old, list) else [old]:
                if tag in tags:
                    tags.remove(tag)
            for tag in new if isinstance(new, list) else [new]:
                if tag is not None and tag not in tags:
                    tags.append(tag)
        values[spec.id] = value
    return [{"id": key, "value": value} for key, value in values.items()], sorted(tags)


def _check_field_value(spec: TicketField, value: Any) -> None:
    """A value as Zendesk types the field (vendor-behaviours.md Z4); 422 otherwise."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    valid = {
        "tagger": lambda: value in spec.values,
        "multiselect": lambda: isinstance(value, list) and set(value) <= spec.values,
        "checkbox": lambda: isinstance(value, bool),
        "integer": lambda: isinstance(value, int) and not isinstance(value, bool),
        "decimal": lambda: number,
        "date": lambda: _is_date(value),
        "text": lambda: isinstance(value, str),
    }[spec.type]()
    if not valid:
        what = {"tagger": "a valid option", "multiselect": "a list of valid options",
                "checkbox": "true or false", "integer": "an integer", "decimal": "a number",
                "date": "a date (YYYY-MM-DD)", "text": "text"}[spec.type]  # fmt: skip
        raise record_invalid(spec.title, f"{spec.title}: {value!r} is not {what}")


def _is_date(value: Any) -> bool:
    try:
        return isinstance(value, str) and len(value) == 10 and bool(date.fromisoformat(value))
    except ValueError:
        return False


def _apply_tags(tags: list[str], changes: dict[str, Any]) -> list[str]:
    result = list(tags)
    for key in ("tags", "additional_tags", "remove_tags"):
        given = changes.get(key)
        if given is None:
            continue
        if isinstance(given, str):
            given = given.split()
        if not isinstance(given, list) or not all(isinstance(tag, str) for tag in given):
            raise record_invalid(key, f"{key} must be a list of strings")
        cleaned = [tag.strip().lower().replace(" ", "_") for tag in given if tag.strip()]
        if key == "tags":
            result = cleaned
        elif key == "additional_tags":
            result += [tag for tag in cleaned if tag not in result]
        else:
            result = [tag for tag in result if tag not in cleaned]
    return sorted(dict.fromkeys(result))
