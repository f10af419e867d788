"""The worker's signature on every write: a footer line carrying its idempotency marker.

``— followup-worker · <policy> · step <n>/<max> · fw-<key>`` ends every internal note, story or
admin note the worker writes. Agents read it ("the worker wrote this, and why"); the connectors
read it back into :class:`~policies.model.FollowUpMark` (where a case stands in its sequence),
which is also how a write whose outcome was lost is looked for: by its key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from policies.model import MARKER_PREFIX, Action, ActionType, FollowUpMark, PlanItem, marker_tag

__all__ = ["Texts", "footer", "parse_footer", "signed", "with_footer"]

# The step as PlanItem.step_label writes it: "2/3", "#4" (open-ended cadence) or "after 3/3"
# (what a policy does once its attempts are used up, step max + 1).
_FOOTER = re.compile(
    r"— followup-worker · (?P<policy>.+?) · step"
    r" (?:(?P<step>\d+)/\d+|#(?P<open>\d+)|after (?P<after>\d+)/\d+) · "
    + re.escape(MARKER_PREFIX)
    + r"(?P<key>[0-9a-zA-Z]+)"
)


def footer(item: PlanItem) -> str:
    return f"— followup-worker · {item.policy} · step {item.step_label} · {marker_tag(item.key)}"


def with_footer(body: str, item: PlanItem) -> str:
    return f"{body.rstrip()}\n\n{footer(item)}" if body.strip() else footer(item)


def signed(text: str) -> bool:
    """Whether the worker wrote ``text`` (it carries a footer)."""
    return _FOOTER.search(text) is not None


def parse_footer(text: str, at: datetime) -> FollowUpMark | None:
    """The follow-up a note records, if the worker wrote it (the last footer wins)."""
    matches = list(_FOOTER.finditer(text))
    if not matches:
        return None
    found = matches[-1]
    if found["after"] is not None:
        step = int(found["after"]) + 1
    else:
        step = int(found["step"] or found["open"])
    return FollowUpMark(policy=found["policy"], step=step, at=at, key=found["key"])


@dataclass(slots=True)
class Texts:
    """What a plan item says, gathered the same way for every vendor: public replies, and the
    lines of the one signed note (notes, and the channels an agent should reach out by)."""

    replies: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def take(self, action: Action) -> bool:
        """Collect ``action``'s text; False when it is not a text action."""
        match action.type:
            case ActionType.NOTE:
                self.notes.append(str(action.params["body"]))
            case ActionType.REPLY:
                self.replies.append(str(action.params["body"]))
            case ActionType.REACH_OUT:
                channels = ", ".join(str(c) for c in action.params.get("channels", []))
                self.notes.append(f"Reach out by: {channels}")
            case _:
                return False
        return True

    def reply(self) -> str | None:
        return "\n\n".join(self.replies) or None

    def signed_note(self, item: PlanItem) -> str:
        """The note every write leaves, ending with the footer (the item's reason if silent)."""
        return with_footer("\n\n".join(self.notes) or item.reason, item)
