"""Many cases changed at once, as customers and agents change them between two sync cycles.

``POST /_admin/change`` picks a share of a vendor's cases at random (a seed makes the pick
repeatable) and changes each in one of three ways, in turn: on Zendesk tickets and Intercom
conversations a customer reply, an agent's public comment, or a solve (close); on Asana bugs
an engineer taking the bug over, "User last updated" set to today (an agent told the
customer, as the bug-update policies do), or the bug completed. Every change goes through the
desk's own write methods, the ones the vendor APIs and ``/_admin/activity`` call, so it
stamps ``updated_at`` and lands in every change feed exactly as an API write would.

A case that cannot take its change (a closed ticket, a conversation or bug already closed for
a solve) is passed over for another; the answer counts what was done.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from sandbox.generator_asana import ASANA_TASK_BASE
from sandbox.generator_intercom import CONVERSATION_BASE
from sandbox.state import Sandbox
from sandbox.tenant import AGENTS, ASANA_FIELDS, ENGINEER_GIDS

__all__ = ["CHANGE_KINDS", "change_cases"]

CHANGE_KINDS = {
    "zendesk": ("customer_reply", "agent_comment", "solve"),
    "intercom": ("customer_reply", "agent_comment", "solve"),
    "asana": ("reassign", "user_updated", "complete"),
}
# Draws per wanted change before giving up: most cases take any change, closed ones none.
_DRAWS_PER_CHANGE = 20

Change = Callable[[int, int], bool]  # (case number, change number) -> was it made


def change_cases(sandbox: Sandbox, vendor: str, fraction: float, seed: int) -> dict[str, Any]:
    """Change ``fraction`` of ``vendor``'s cases; answer how many of each kind were made."""
    if vendor not in CHANGE_KINDS:
        raise ValueError(f"vendor must be one of {', '.join(CHANGE_KINDS)}")
    if not 0 <= fraction <= 1:
        raise ValueError("fraction must be between 0 and 1")
    total, changes = _changes(sandbox, vendor)
    wanted = round(total * fraction)
    made: Counter[str] = Counter()
    for number, case in enumerate(_draws(total, wanted, seed)):
        if sum(made.values()) == wanted:
            break
        kind = CHANGE_KINDS[vendor][sum(made.values()) % 3]
        if changes[kind](case, number):
            made[kind] += 1
    return {"vendor": vendor, "cases": total, "changed": sum(made.values()), "kinds": dict(made)}


def _draws(total: int, wanted: int, seed: int) -> Iterator[int]:
    """Distinct case numbers (1..total) in a random order, as many as may be needed."""
    rng = random.Random(seed)
    seen: set[int] = set()
    for _ in range(min(total, wanted * _DRAWS_PER_CHANGE)):
        number = rng.randint(1, total)
        if number not in seen:
            seen.add(number)
            yield number


def _changes(sandbox: Sandbox, vendor: str) -> tuple[int, dict[str, Change]]:
    """The vendor's number of cases and, per kind, how to make that change to case n."""
    if vendor == "zendesk":
        return sandbox.generator.ticket_count, _zendesk_changes(sandbox)
    if vendor == "intercom":
        return sandbox.generator.conversation_count, _intercom_changes(sandbox)
    return sandbox.generator.task_count, _asana_changes(sandbox)


def _zendesk_changes(sandbox: Sandbox) -> dict[str, Change]:
    desk = sandbox.zendesk

    def status(ticket_id: int) -> str:
        return str(desk.record(ticket_id).ticket["status"])

    def customer_reply(ticket_id: int, n: int) -> bool:
        if status(ticket_id) == "closed":
            return False
        desk.add_activity(ticket_id, "customer_reply", "Any news on this, please?")
        return True

    def agent_comment(ticket_id: int, n: int) -> bool:
        if status(ticket_id) == "closed":
            return False
        agent = AGENTS[n % len(AGENTS)]
        comment = {"body": "We are looking into it.", "public": True, "author_id": agent.id}
        desk.update(ticket_id, {"comment": comment})
        return True

    def solve(ticket_id: int, n: int) -> bool:
        ticket = desk.record(ticket_id).ticket
        if ticket["status"] in ("solved", "closed"):
            return False
        # Zendesk refuses a solve without an assignee: the agent solving it takes it.
        assignee = ticket["assignee_id"] or AGENTS[n % len(AGENTS)].id
        desk.update(ticket_id, {"status": "solved", "assignee_id": assignee})
        return True

    return {"customer_reply": customer_reply, "agent_comment": agent_comment, "solve": solve}


def _intercom_changes(sandbox: Sandbox) -> dict[str, Change]:
    desk = sandbox.intercom

    def conversation_id(number: int) -> str:
        return str(CONVERSATION_BASE + number)

    def customer_reply(number: int, n: int) -> bool:
        desk.contact_reply(conversation_id(number), "Any news on this, please?")
        return True

    def agent_comment(number: int, n: int) -> bool:
        admin = AGENTS[n % len(AGENTS)].intercom_id
        body = {"type": "admin", "message_type": "comment", "admin_id": admin,
                "body": "We are looking into it."}  # fmt: skip
        desk.reply(conversation_id(number), body)
        return True

    def solve(number: int, n: int) -> bool:
        if desk.conversation(conversation_id(number))["state"] == "closed":
            return False
        admin = AGENTS[n % len(AGENTS)].intercom_id
        desk.manage(conversation_id(number), {"message_type": "close", "admin_id": admin})
        return True

    return {"customer_reply": customer_reply, "agent_comment": agent_comment, "solve": solve}


def _asana_changes(sandbox: Sandbox) -> dict[str, Change]:
    desk = sandbox.asana
    user_last_updated = next(f.gid for f in ASANA_FIELDS if f.name == "User last updated")

    def gid(number: int) -> str:
        return str(ASANA_TASK_BASE + number)

    def reassign(number: int, n: int) -> bool:
        current = desk.task(gid(number))["assignee"]
        others = [engineer for engineer in ENGINEER_GIDS if engineer != current]
        desk.update(gid(number), {"assignee": others[n % len(others)]})
        return True

    def user_updated(number: int, n: int) -> bool:
        today = sandbox.clock.now().date().isoformat()
        if desk.task(gid(number))["custom_field_values"].get(user_last_updated) == today:
            return False  # setting the same date changes nothing (no story, no feed entry)
        desk.update(gid(number), {"custom_fields": {user_last_updated: today}})
        return True

    def complete(number: int, n: int) -> bool:
        if desk.task(gid(number))["completed"]:
            return False
        desk.update(gid(number), {"completed": True})
        return True

    return {"reassign": reassign, "user_updated": user_updated, "complete": complete}
