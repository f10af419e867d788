"""The worker's signature on every write: a footer line carrying its idempotency marker.

``— followup-worker · <policy> · step <n>/<max> · fw-<key>`` ends every internal note, story or
admin note the worker writes. Agents read it ("the worker wrote this, and why"); the connectors
read it back into :class:`~policies.model.FollowUpMark` (where a case stands in its sequence),
which is also how a write whose outcome was lost is looked for: by its key.
"""

from __future__ import annotations

import re
from datetime import datetime

from policies.model import MARKER_PREFIX, FollowUpMark, PlanItem, marker_tag

__all__ = ["footer", "parse_footer", "with_footer"]

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
