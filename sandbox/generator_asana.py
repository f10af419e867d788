"""Generated Asana data: the "Bugs" project's tasks (assignee, "Priority", "User last
updated", "Last follow-up date", "Intercom contact") and their stories, from (seed, gid)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sandbox.clock import parse_iso
from sandbox.generator import Generator
from sandbox.generator_intercom import intercom_contact_id
from sandbox.tenant import (
    ASANA_FIELDS,
    ASANA_PROJECT_GID,
    ASANA_USERS,
    ENGINEER_GIDS,
    PRIORITY_OPTIONS,
)

__all__ = [
    "ASANA_STORY_BASE",
    "ASANA_TASK_BASE",
    "STORIES_PER_TASK",
    "AsanaGenerator",
    "asana_time",
    "asana_users",
]

ASANA_TASK_BASE = 1_206_000_000_000_000
ASANA_STORY_BASE = 1_207_000_000_000_000
STORIES_PER_TASK = 1_000


class AsanaGenerator:
    def __init__(self, base: Generator) -> None:
        self._base = base

    def has_task(self, task_gid: int) -> bool:
        return 1 <= task_gid - ASANA_TASK_BASE <= self._base.task_count

    def task(self, task_gid: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """A bug task of the Bugs project and its stories."""
        index = task_gid - ASANA_TASK_BASE
        rng = self._base.rng(8, index)
        created = self._base.start - timedelta(days=rng.randint(5, 120), hours=rng.randint(0, 23))
        engineer = rng.choice(ENGINEER_GIDS) if rng.random() < 0.75 else None
        priority = rng.choices(PRIORITY_OPTIONS, (10, 15, 25, 30, 20))[0]
        user_updated = self._base.start - timedelta(days=rng.randint(0, 30))
        followed_up = (
            self._base.start - timedelta(days=rng.randint(0, 20)) if rng.random() < 0.6 else None
        )
        contact_index = rng.randint(1, self._base.contact_count)
        values: dict[str, Any] = {
            ASANA_FIELDS[0].gid: priority[0],
            ASANA_FIELDS[1].gid: user_updated.date().isoformat(),
            ASANA_FIELDS[2].gid: followed_up.date().isoformat() if followed_up else None,
            ASANA_FIELDS[3].gid: intercom_contact_id(contact_index),
        }
        stories = [
            _story(task_gid, 1, created, ENGINEER_GIDS[0], "system", "added to Bugs"),
        ]
        story_at = created
        for number in range(rng.randint(0, 3)):
            story_at = story_at + timedelta(days=rng.randint(1, 10), hours=rng.randint(0, 8))
            if story_at >= self._base.start or engineer is None:
                break
            stories.append(_story(task_gid, number + 2, story_at, engineer, "comment",
                                  "Looked into it; fix is in review."))  # fmt: skip
        modified = max(
            created, user_updated, *(parse_iso(story["created_at"]) for story in stories)
        )
        task = {
            "gid": str(task_gid),
            "resource_type": "task",
            "resource_subtype": "default_task",
            "name": f"Bug {index}: {rng.choice(('Export fails', 'Login loop', 'Sync lag'))}",
            "notes": f"Reported by Intercom contact {intercom_contact_id(contact_index)}.",
            "completed": rng.random() < 0.15,
            "completed_at": None,
            "assignee": engineer,
            "created_at": asana_time(created),
            "modified_at": asana_time(modified),
            "due_on": None,
            "projects": [ASANA_PROJECT_GID],
            "custom_field_values": values,
        }
        if task["completed"]:
            task["completed_at"] = task["modified_at"]
        return task, stories


def asana_time(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _story(
    task_gid: int, number: int, at: datetime, author: str, kind: str, text: str
) -> dict[str, Any]:
    return {
        "gid": str(ASANA_STORY_BASE + (task_gid - ASANA_TASK_BASE) * STORIES_PER_TASK + number),
        "resource_type": "story",
        "created_at": asana_time(at),
        "created_by": author,
        "resource_subtype": "comment_added" if kind == "comment" else "added_to_project",
        "type": kind,
        "text": text,
        "is_pinned": False,
        "is_edited": False,
    }


def asana_users() -> list[dict[str, Any]]:
    return [{"gid": gid, "resource_type": "user", "name": name, "email": email}
            for gid, name, email in ASANA_USERS]  # fmt: skip
