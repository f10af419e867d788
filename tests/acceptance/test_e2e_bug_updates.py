"""End to end over real HTTP: bug updates by plan tier (seeds 000/001) through Asana and
Intercom, one live cycle per simulated business day, read back from the sandbox (the task's
"User last updated", its stories and their footers, the emails Intercom sent the contact).

Two weeks (Mon 9 to Fri 20 March 2026, New York). The cast is made from generated tasks by
pointing their "Intercom contact" at chosen customers: an Enterprise one with a single bug, a
Community one with three (one bundled update covers them all) and a canceled one.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.unit.worker_support import Heard, listen
from worker.delivery.ledger import Ledger
from worker.runtime.cycle import CycleSummary, run_cycle
from worker.runtime.wiring import open_runtime
from worker.settings import Settings

server = pytest.importorskip("sandbox.server", reason="the sandbox package is not in this tree")
tenant = pytest.importorskip("sandbox.tenant")

ROOT = Path(__file__).resolve().parents[2]
ZONE = ZoneInfo("America/New_York")
DAYS = [date(2026, 3, d) for d in (9, 10, 11, 12, 13, 16, 17, 18, 19, 20)]  # Mon 9 .. Fri 20
FIELDS = {f.name: f.gid for f in tenant.ASANA_FIELDS}
FOOTER = re.compile(r"— followup-worker · (?P<policy>\S+) · step (?P<step>.+?) · fw-\w+$")
SUBJECT = "Update on your bug report"


def local(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=ZONE)


@dataclass
class BugDay:
    """What one task gained on one day, and the emails its contact got."""

    stories: list[tuple[str, str]] = field(default_factory=list)  # (policy, text)
    emails: list[str] = field(default_factory=list)
    user_last_updated: str | None = None


class Vendors:
    def __init__(self, running: Any) -> None:
        config = running.config
        self.admin = httpx.Client(base_url=running.urls["admin"], timeout=10)
        self.asana = httpx.Client(
            base_url=running.urls["asana"],
            headers={"Authorization": f"Bearer {config.asana_token}"},
            timeout=10,
        )
        self.intercom = httpx.Client(
            base_url=running.urls["intercom"],
            headers={"Authorization": f"Bearer {config.intercom_token}"},
            timeout=10,
        )
        self.seen_stories: dict[str, int] = {}
        self.seen_email = 0

    def close(self) -> None:
        for client in (self.admin, self.asana, self.intercom):
            client.close()

    def set_clock(self, instant: datetime) -> None:
        self.admin.post("/clock", json={"set": instant.isoformat(), "frozen": True})

    def contacts(self) -> list[dict[str, Any]]:
        found, params = [], {"per_page": "150"}
        while True:
            page = self.intercom.get("/contacts", params=params).json()
            found += page["data"]
            after = ((page.get("pages") or {}).get("next") or {}).get("starting_after")
            if not after:
                return found
            params = {"per_page": "150", "starting_after": after}

    def company_plans(self) -> dict[str, str]:
        """Company id -> plan name: where Intercom keeps a customer's plan."""
        companies = self.intercom.get("/companies", params={"per_page": "150"}).json()
        assert companies["pages"]["total_pages"] == 1
        return {c["id"]: c["plan"]["name"] for c in companies["data"] if c.get("plan")}

    def open_tasks(self) -> list[dict[str, Any]]:
        fields = "assignee,custom_fields.name,custom_fields.text_value"
        params = {"completed_since": "now", "limit": "100", "opt_fields": fields}
        found = []
        while True:
            page = self.asana.get(
                f"/projects/{tenant.ASANA_PROJECT_GID}/tasks", params=params
            ).json()
            found += page["data"]
            offset = (page.get("next_page") or {}).get("offset")
            if not offset:
                return found
            params = {**params, "offset": offset}

    def set_task(self, gid: str, **by_name: Any) -> None:
        values = {FIELDS[name]: value for name, value in by_name.items()}
        response = self.asana.put(f"/tasks/{gid}", json={"data": {"custom_fields": values}})
        response.raise_for_status()

    def stories(self, gid: str) -> list[dict[str, Any]]:
        params = {"opt_fields": "created_by.name,resource_subtype,text", "limit": "100"}
        stories: list[dict[str, Any]] = self.asana.get(
            f"/tasks/{gid}/stories", params=params
        ).json()["data"]
        return stories

    def user_last_updated(self, gid: str) -> str | None:
        params = {"opt_fields": "custom_fields.name,custom_fields.date_value.date"}
        task = self.asana.get(f"/tasks/{gid}", params=params).json()["data"]
        wanted = FIELDS["User last updated"]
        value = next(f for f in task["custom_fields"] if f["gid"] == wanted)["date_value"]
        return None if value is None else str(value["date"])

    def mark_read(self, gids: list[str]) -> None:
        for gid in gids:
            self.seen_stories[gid] = len(self.stories(gid))
        self.seen_email = len(self.admin.get("/outbox").json()["messages"])

    def day(self, cast: dict[str, tuple[str, str]]) -> dict[str, BugDay]:
        """What each task of the cast gained since the last call (role -> (task, contact))."""
        emails = self.admin.get("/outbox", params={"after": self.seen_email}).json()["messages"]
        records = {}
        for role, (gid, contact) in cast.items():
            record = BugDay(user_last_updated=self.user_last_updated(gid))
            stories = self.stories(gid)
            for story in stories[self.seen_stories.get(gid, 0) :]:
                if story["resource_subtype"] != "comment_added":
                    continue
                found = FOOTER.search(story["text"])
                assert found, f"an unsigned story on {gid}: {story['text']!r}"
                record.stories.append((found["policy"], story["text"]))
            self.seen_stories[gid] = len(stories)
            record.emails = [
                m["body"]
                for m in emails
                if m["ref"] == f"intercom:contact:{contact}" and m["subject"].startswith(SUBJECT)
            ]
            records[role] = record
        if emails:
            self.seen_email = emails[-1]["seq"]
        return records


def _customer(
    contacts: list[dict[str, Any]],
    plans: dict[str, str],
    plan: str | None,
    status: str,
    taken: set[str],
) -> str:
    """A contact of ``plan`` (None: any; its company's, else its own attribute) and
    ``status`` that no open bug points at yet."""
    for contact in contacts:
        custom = contact.get("custom_attributes") or {}
        companies = [plans[c["id"]] for c in contact["companies"]["data"] if c["id"] in plans]
        if (
            plan in (None, (companies or [custom.get("plan")])[0])
            and custom.get("account_status") == status
            and not custom.get("stop_followups")
            and contact["id"] not in taken
        ):
            return str(contact["id"])
    raise AssertionError(f"no {status} {plan or ''} contact among the generated ones")


def _cast(vendors: Vendors) -> dict[str, tuple[str, str]]:
    """role -> (task gid, contact id); the contacts' other open bugs are pointed elsewhere."""
    tasks = [t for t in vendors.open_tasks() if t.get("assignee")]
    contact_field = FIELDS["Intercom contact"]
    taken = {
        str(f["text_value"])
        for t in tasks
        for f in t["custom_fields"]
        if f["gid"] == contact_field and f.get("text_value")
    }
    contacts, plans = vendors.contacts(), vendors.company_plans()
    enterprise = _customer(contacts, plans, "enterprise", "active", taken)
    community = _customer(contacts, plans, "community", "active", taken)
    canceled = _customer(contacts, plans, None, "canceled", taken)
    chosen = [str(t["gid"]) for t in tasks[:5]]
    cast = {
        "enterprise": (chosen[0], enterprise),
        "community_1": (chosen[1], community),
        "community_2": (chosen[2], community),
        "community_3": (chosen[3], community),
        "canceled": (chosen[4], canceled),
    }
    # Enterprise: last told Mon 2 March (due on Mon 9 and Mon 16); the others long ago.
    for role, (gid, contact) in cast.items():
        told = "2026-03-02" if role == "enterprise" else "2026-02-02"
        vendors.set_task(gid, **{"Intercom contact": contact, "User last updated": {"date": told}})
    return cast


async def _cycle(settings: Settings, ledger: Ledger, at: datetime) -> tuple[CycleSummary, Heard]:
    async with open_runtime(settings, ledger) as runtime:
        heard = listen(runtime)
        return await run_cycle(runtime, at=at, dry_run=False), heard


@dataclass
class Story:
    cast: dict[str, tuple[str, str]]
    days: list[dict[str, BugDay]]
    cycles: list[tuple[CycleSummary, Heard]]

    def of(self, role: str) -> list[BugDay]:
        return [day[role] for day in self.days]


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    start = local(DAYS[0], 8)
    with server.run_in_thread(tickets=60, start=start, frozen_clock=True, limits={}) as running:
        config = running.config
        settings = Settings(
            intercom_url=running.urls["intercom"],
            intercom_token=config.intercom_token,
            asana_url=running.urls["asana"],
            asana_token=config.asana_token,
            intercom_rate_limit=100_000,
            asana_rate_limit=100_000,
            mapping=ROOT / "deploy" / "mapping.sandbox.yaml",
            dry_run=False,
            _env_file=None,  # type: ignore[call-arg]
        )
        ledger = Ledger.open(f"sqlite:///{tmp_path_factory.mktemp('bugs') / 'ledger.sqlite3'}")
        vendors = Vendors(running)
        try:
            vendors.set_clock(start)
            cast = _cast(vendors)
            vendors.mark_read([gid for gid, _ in cast.values()])
            days, cycles = [], []
            for day in DAYS:
                at = local(day, 10)
                vendors.set_clock(at)
                cycles.append(asyncio.run(_cycle(settings, ledger, at)))
                days.append(vendors.day(cast))
            yield Story(cast, days, cycles)
        finally:
            vendors.close()
            ledger.close()


def test_every_bug_update_is_delivered(story: Story) -> None:
    bug_items = [
        i for _, heard in story.cycles for i in heard.items if i.case_ref.startswith("asana:")
    ]
    assert bug_items
    assert {item.label for item in bug_items} == {"applied"}
    assert all(summary.errors == () for summary, _ in story.cycles)


def test_enterprise_bug_every_5_business_days_field_set_engineer_nudged(story: Story) -> None:
    days = story.of("enterprise")
    assert [i for i, d in enumerate(days) if d.stories] == [0, 5]  # Mon 9, Mon 16
    assert [len(d.emails) for d in days] == [1, 0, 0, 0, 0, 1, 0, 0, 0, 0]
    assert [d.user_last_updated for d in (days[0], days[4], days[5])] == [
        "2026-03-09",
        "2026-03-09",
        "2026-03-16",
    ]
    [(policy, text)] = days[5].stories
    assert policy == "bug-enterprise"
    # The engineer has been silent since the Mon 9 update: nudged in the story.
    assert "please add a status update" in text


def test_community_account_gets_one_update_covering_all_its_bugs(story: Story) -> None:
    roles = ("community_1", "community_2", "community_3")
    # The three bugs share one contact: its emails are the same list on each record.
    emails = [story.days[i]["community_1"].emails for i in range(len(DAYS))]
    assert [len(e) for e in emails] == [1, 0, 0, 0, 0, 1, 0, 0, 0, 0]
    assert "the 3 issues you reported" in emails[0][0]
    stories = [(role, i) for role in roles for i, d in enumerate(story.of(role)) if d.stories]
    assert len(stories) == 2  # one signed story per bundled update, on the lead bug
    assert len({role for role, _ in stories}) == 1
    # ...and every bug it speaks for shows the customer was told.
    assert {story.days[0][role].user_last_updated for role in roles} == {"2026-03-09"}
    assert {story.days[5][role].user_last_updated for role in roles} == {"2026-03-16"}


def test_canceled_accounts_get_nothing(story: Story) -> None:
    days = story.of("canceled")
    assert [(d.stories, d.emails) for d in days] == [([], [])] * len(DAYS)
