"""Only the evidence of candidate cases is read (issue 12, deliverable 2): an Intercom
conversation's parts (``GET /conversations/{id}``) and an Asana task's stories
(``GET /tasks/{gid}/stories``) are read only for cases a policy could plan something for
(:meth:`policies.rules.Rulebook.may_plan`), and the plan is the very plan of reading every
case in full, account totals (Community bundles, "Standard with a high-priority ticket")
included."""

from __future__ import annotations

import re
import shutil
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.asana import AsanaConnector
from connectors.base import MayPlan, every_case
from connectors.intercom import IntercomConnector
from connectors.mapping import load_mapping
from connectors.settings import Timeouts, VendorLimits
from policies.calendar import BusinessCalendar
from policies.language import BUNDLED_PACK
from policies.model import Case, CaseKind, Source
from policies.planner import item_to_dict, plan, with_open_cases
from policies.rules import Rulebook, load_rulebook

Read = tuple[list[Case], dict[str, Any], Counter[str]]

sandbox_server = pytest.importorskip("sandbox.server", reason="needs the sandbox package")

START = datetime(2026, 3, 11, 15, 0, tzinfo=UTC)
MAPPING = load_mapping(Path(__file__).parents[2] / "deploy" / "mapping.sandbox.yaml")
CALENDAR = BusinessCalendar(timezone="America/New_York", country="US")
ONE_READ = re.compile(r"/conversations/(\d+)$|/tasks/(\d+)/stories$")


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Any]:
    with sandbox_server.run_in_thread(tickets=60, seed=5, start=START, frozen_clock=True) as sb:
        yield sb


class Recording(httpx.AsyncBaseTransport):
    """Every request's path, on its way to the sandbox."""

    def __init__(self) -> None:
        self._real = httpx.AsyncHTTPTransport()
        self.paths: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        return await self._real.handle_async_request(request)

    def evidence_reads(self) -> Counter[str]:
        """Per-case reads: ``conversation:<id>`` and ``stories:<gid>``, how many of each."""
        found = (ONE_READ.search(p) for p in self.paths)
        return Counter(
            f"conversation:{m[1]}" if m[1] else f"stories:{m[2]}" for m in found if m is not None
        )


async def read_all(
    sandbox: Any, may_plan: MayPlan
) -> tuple[list[Case], dict[str, Any], Counter[str]]:
    """Accounts and cases of Intercom and Asana, and the per-case reads made for them."""
    assert MAPPING.intercom is not None
    assert MAPPING.asana is not None
    recording = Recording()
    limits, timeouts = VendorLimits(backoff_initial=0.01, backoff_max=0.05), Timeouts()
    intercom = IntercomConnector.connect(
        sandbox.urls["intercom"], "ic-sandbox-token", MAPPING.intercom, limits=limits,
        timeouts=timeouts, transport=recording, plans=MAPPING.plans, may_plan=may_plan,
    )  # fmt: skip
    asana = AsanaConnector.connect(
        sandbox.urls["asana"], "as-sandbox-token", MAPPING.asana, limits=limits,
        timeouts=timeouts, transport=recording, may_plan=may_plan,
    )  # fmt: skip
    async with intercom, asana:
        accounts = {a.id: a async for a in intercom.accounts()}
        cases = [c async for c in intercom.cases()] + [c async for c in asana.cases()]
    return cases, accounts, recording.evidence_reads()


def planned(rulebook: Rulebook, cases: list[Case], accounts: dict[str, Any]) -> list[Any]:
    """The plan over the next two weeks of business days, as ``followup plan`` prints it."""
    totals = with_open_cases(accounts, cases)
    days = [START + timedelta(days=d) for d in range(15)]
    return [
        (day.isoformat(), item_to_dict(result))
        for day in days
        for result in plan(cases, totals, day, rulebook, CALENDAR)
    ]


def known(case: Case, accounts: dict[str, Any]) -> Any:
    """The account the connector asks ``may_plan`` with: Intercom's own contacts; an Asana
    bug's account lives in Intercom, which the Asana connector does not read."""
    if case.source is Source.ASANA or case.account_id is None:
        return None
    return accounts.get(case.account_id)


def evidence_key(case: Case) -> str:
    return f"conversation:{case.id}" if case.kind is CaseKind.CONVERSATION else f"stories:{case.id}"


def stricter_pack(tmp: Path) -> Rulebook:
    """The bundled pack, but the 3-Follow-Up protocol only for unassigned cases: a pack under
    which the sandbox's (assigned) open Intercom conversations cannot be due."""
    folder = tmp / "pack"
    shutil.copytree(BUNDLED_PACK, folder)
    path = folder / "awaiting_customer.yaml"
    text = path.read_text()
    marker = "      status: [pending]\n"
    assert marker in text
    path.write_text(text.replace(marker, marker + "      assigned: false\n", 1))
    return load_rulebook(folder)


@pytest.mark.parametrize("pack", ["bundled", "stricter"])
async def test_only_candidates_get_their_parts_and_stories_read_and_the_plan_is_the_same(
    sandbox: Any, pack: str, tmp_path: Path
) -> None:
    rulebook = load_rulebook() if pack == "bundled" else stricter_pack(tmp_path)
    full, full_accounts, every_read = await read_all(sandbox, every_case)
    light, accounts, reads = await read_all(sandbox, rulebook.may_plan)

    # The same cases, each read at most once; a per-case read only for a candidate.
    assert [c.ref for c in light] == [c.ref for c in full]
    assert max(reads.values(), default=1) == 1
    candidates = {evidence_key(c) for c in full if rulebook.may_plan(c, known(c, accounts))}
    assert set(reads) == candidates & set(every_read)
    skipped = set(every_read) - set(reads)
    assert skipped, "the case set has open cases no policy can plan (unassigned bugs...)"
    assert any(k.startswith("stories:") for k in skipped)
    if pack == "stricter":
        assert any(k.startswith("conversation:") for k in skipped)
    else:  # pending conversations of canceled or stop-flagged contacts
        assert any(k.startswith("conversation:") for k in skipped)
        silenced = {a.id for a in accounts.values() if a.canceled or a.stop_followups}
        assert all(
            c.account_id in silenced
            for c in full
            if f"conversation:{c.id}" in skipped and c.kind is CaseKind.CONVERSATION
        )

    # Skipped cases still count in their accounts' open cases, titles and priorities...
    assert with_open_cases(accounts, light) == with_open_cases(full_accounts, full)
    # ... and the plan (due items, not-due, cannot-judge) is the plan of reading everything.
    assert planned(rulebook, light, accounts) == planned(rulebook, full, full_accounts)
