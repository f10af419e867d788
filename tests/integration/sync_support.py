"""What the issue 13 connector tests share: a stand-in for the case store, which keeps every
change a ``changes`` stream gives and the cursor at each checkpoint, and the sandbox's count
of one vendor's calls."""

from __future__ import annotations

from typing import Any

import httpx

from connectors.base import Change, Checkpoint, Gone, Syncs
from policies.model import Case


class Store:
    """One tenant's store of one vendor: its cases by id, and the cursor kept."""

    def __init__(self) -> None:
        self.cases: dict[str, Case] = {}
        self.cursor: str | None = None

    def known(self, case_id: str) -> Case | None:
        return self.cases.get(case_id)

    async def sync(self, connector: Syncs) -> list[Change]:
        """One cycle: every change stored, the cursor kept at each checkpoint."""
        got = [change async for change in connector.changes(self.cursor, self.known)]
        for change in got:
            if isinstance(change, Case):
                self.cases[change.id] = change
            elif isinstance(change, Gone):
                self.cases.pop(change.case_id, None)
            elif isinstance(change, Checkpoint):
                self.cursor = change.cursor
        return got


def of_type(changes: list[Change], kind: type) -> list[Any]:
    return [change for change in changes if isinstance(change, kind)]


def vendor_calls(admin: httpx.Client, vendor: str) -> dict[str, int]:
    """The sandbox's count of ``vendor``'s calls since its stats were reset, by endpoint."""
    calls: dict[str, int] = {}
    for row in admin.get("/stats").json()["endpoints"]:
        if row["vendor"] == vendor:
            calls[row["endpoint"]] = calls.get(row["endpoint"], 0) + row["count"]
    return calls
