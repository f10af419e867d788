"""The fault suite's driver: one scenario, once with injected faults and once without.

A run is the live worker (its real connectors, over HTTP) against an in-process sandbox with all
three vendors, cycle after cycle at the instants ``followup serve`` would pick (a schedule tick
apart, which also takes the worker's own writes past the Zendesk export's one-minute settle).
Under faults a day gets cycles until one leaves nothing due; the reference replays exactly the
same instants, so the two helpdesks can be compared fact by fact: :func:`effects` is what the
customers, agents and engineers can see, as a multiset with ids and write times left out.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import structlog

from sandbox.faults import FaultPlan, FaultRule
from sandbox.server import RunningSandbox, run_in_thread
from sandbox.state import Sandbox
from worker.delivery.ledger import Ledger
from worker.runtime.cycle import CycleSummary, run_cycle
from worker.runtime.wiring import open_runtime
from worker.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
FIRST_DAY = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)  # a Wednesday, 10:00 in New York
TICK = timedelta(minutes=15)  # FOLLOWUP_SCHEDULE's spacing
CLIENT_TIMEOUT = 0.5  # FOLLOWUP_HTTP_TIMEOUT: a "slow" answer comes 1.5 times later
# FOLLOWUP_HTTP_BACKOFF: the suite is about what lands, not how long a retry waits (0.5 s by
# default); waiting less keeps a cycle under faults at a few seconds.
RETRY_BACKOFF = 0.1
SHARE = 0.2  # of every vendor call, reads and writes, all three vendors

# Every write endpoint of the three vendors, as the sandbox routes them.
WRITE_ENDPOINTS = (
    ("zendesk", "PUT /api/v2/tickets/*"),
    ("zendesk", "POST /api/v2/tickets/*"),
    ("zendesk", "DELETE /api/v2/tickets/*"),
    ("intercom", "POST /conversations/*/reply"),
    ("intercom", "POST /conversations/*/parts"),
    ("intercom", "POST /messages"),
    ("intercom", "POST /tickets/*/reply"),
    ("intercom", "PUT /tickets/*"),
    ("asana", "PUT /tasks/*"),
    ("asana", "POST /tasks/*/stories"),
)


def on_every_call(mix: Mapping[str, float]) -> list[FaultRule]:
    """Each kind on its own share of all calls (rules are drawn in turn, so shares add up)."""
    rules, left = [], 1.0
    for kind, share in mix.items():
        rules.append(FaultRule("*", kind, share / left))
        left -= share
    return rules


def on_every_write(kind: str, share: float) -> list[FaultRule]:
    """``kind`` on ``share`` of the calls to each write endpoint of every vendor."""
    return [FaultRule(vendor, kind, share, endpoint) for vendor, endpoint in WRITE_ENDPOINTS]


FAULT_MIXES: dict[str, list[FaultRule]] = {
    "429 storm": on_every_call({"429": SHARE}),
    "500/502/503": on_every_call({"500": SHARE / 3, "502": SHARE / 3, "503": SHARE / 3}),
    "answers past the client's timeout": on_every_call({"slow": SHARE}),
    "dropped before apply": on_every_call({"drop_before": SHARE}),
    "dropped after apply": on_every_call({"drop_after": SHARE}),
    "dropped after apply, every write endpoint": on_every_write("drop_after", SHARE),
    "all of them": on_every_call({
        "429": SHARE / 6, "500": SHARE / 18, "502": SHARE / 18, "503": SHARE / 18,
        "slow": SHARE / 6, "drop_before": SHARE / 6, "drop_after": SHARE / 6,
    }),
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Scenario:
    tickets: int = 20  # Intercom and Asana get their generator's minimum (40 each) anyway
    days: int = 1
    seed: int = 3
    fault_seed: int = 5
    max_cycles: int = 8  # a day's cycles under faults; the test fails if they do not settle

    @property
    def days_at(self) -> list[datetime]:
        return [FIRST_DAY + timedelta(days=n) for n in range(self.days)]


@dataclass(slots=True)
class Run:
    """What one run did (a summary per cycle, by day) and left (:func:`effects`)."""

    days: list[list[CycleSummary]] = field(default_factory=list)
    effects: Counter[tuple[Any, ...]] = field(default_factory=Counter)
    moments: dict[tuple[Any, ...], list[str]] = field(default_factory=dict)  # fact -> written at
    owed_after: int = 0  # items a dry-run still plans after the last cycle
    faults: int = 0  # vendor calls the sandbox failed on purpose
    faulted: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # vendor, endpoint,
    # kind -> calls failed on purpose
    writes: Counter[str] = field(default_factory=Counter)  # vendor -> write requests made
    changed: Counter[tuple[Any, ...]] = field(default_factory=Counter)  # facts the cycles
    # added or took away: what the worker did

    @property
    def written(self) -> int:
        return self.changed.total()

    @property
    def summaries(self) -> list[CycleSummary]:
        return [summary for day in self.days for summary in day]

    @property
    def instants(self) -> list[list[datetime]]:
        return [[summary.at for summary in day] for day in self.days]

    @property
    def retries(self) -> int:
        return sum(summary.retries for summary in self.summaries)

    @property
    def settled(self) -> bool:
        """Every day ended on a cycle that did everything due and read every vendor."""
        return all(day and day[-1].ok for day in self.days)

    def story(self) -> str:
        """Each cycle in a line, and its errors: for assertion messages (each item's outcome
        is in the ledger and the logs; a summary keeps only figures)."""
        lines = []
        for summary in self.summaries:
            counts = ", ".join(f"{k} {v}" for k, v in sorted(summary.counts.items()))
            lines.append(
                f"{summary.at:%a %H:%M} planned {summary.planned} ({counts}), "
                f"failed {summary.failed}, errors {summary.error_count}, "
                f"retries {summary.retries}"
            )
            lines += [f"    {error}" for error in summary.errors]
        return "\n".join(lines)


def fault_plan(rules: list[FaultRule], seed: int) -> FaultPlan:
    return FaultPlan(
        [dataclasses.replace(rule) for rule in rules], seed=seed, slow_seconds=CLIENT_TIMEOUT * 1.5
    )


def run(
    scenario: Scenario,
    workdir: Path,
    mix: list[FaultRule] | None = None,
    *,
    instants: list[list[datetime]] | None = None,
) -> Run:
    """The scenario with ``mix`` injected (None: no faults). Cycles a tick apart until one is
    ok, or at ``instants`` exactly (a reference replaying a faulty run's cycles)."""
    workdir.mkdir(parents=True, exist_ok=True)
    plan = fault_plan(mix, scenario.fault_seed) if mix else FaultPlan()
    result = Run()
    with (
        _quiet_logs(),
        run_in_thread(
            tickets=scenario.tickets,
            seed=scenario.seed,
            start=FIRST_DAY,
            frozen_clock=True,
            limits={},
            faults=plan,
        ) as running,
    ):
        assert running.sandbox is not None
        settings = _settings(running, workdir / "ledger.sqlite3")
        ledger = Ledger.open(settings.database_url)
        before = effects(running.sandbox)
        try:
            for day, day_at in enumerate(scenario.days_at):
                planned = instants[day] if instants is not None else None
                result.days.append(_day(running.sandbox, settings, ledger, day_at, planned,
                                        scenario.max_cycles))  # fmt: skip
            running.sandbox.faults = FaultPlan()  # what is owed, asked of a well sandbox
            last = result.summaries[-1].at
            result.owed_after = _cycle(settings, ledger, last, dry_run=True).planned
            result.effects = effects(running.sandbox)
            result.moments = moments(running.sandbox)
            result.changed = (result.effects - before) + (before - result.effects)
            result.faults = running.sandbox.traffic.stats()["total"]["faults"]
            for entry in running.sandbox.traffic.entries(limit=1_000_000):
                if entry["write"]:
                    result.writes[entry["vendor"]] += 1
                if entry["fault"]:
                    result.faulted[entry["vendor"], entry["endpoint"], entry["fault"]] += 1
        finally:
            ledger.close()
    return result


def _day(
    sandbox: Sandbox,
    settings: Settings,
    ledger: Ledger,
    day_at: datetime,
    instants: list[datetime] | None,
    max_cycles: int,
) -> list[CycleSummary]:
    summaries: list[CycleSummary] = []
    for at in instants or (day_at + TICK * n for n in range(max_cycles)):
        sandbox.clock.set(at)
        summaries.append(_cycle(settings, ledger, at))
        # Cycles are 15 minutes apart in the helpdesk's time but back to back here: a write
        # the sandbox holds ("slow") must land before the next cycle looks for it, as it
        # would have in those 15 minutes.
        if any(rule.kind == "slow" for rule in sandbox.faults.rules):
            time.sleep(sandbox.faults.slow_seconds)
        if instants is None and summaries[-1].ok:
            break
    return summaries


def _cycle(settings: Settings, ledger: Ledger, at: datetime, *, dry_run: bool = False) -> Any:
    async def one() -> CycleSummary:
        async with open_runtime(settings, ledger) as runtime:
            return await run_cycle(runtime, at=at, dry_run=dry_run)

    return asyncio.run(one())


def _settings(running: RunningSandbox, ledger: Path) -> Settings:
    config, urls = running.config, running.urls
    return Settings(
        _env_file=None,  # type: ignore[call-arg]  # pydantic-settings' own init argument
        zendesk_url=urls["zendesk"],
        zendesk_email=config.zendesk_email,
        zendesk_token=config.zendesk_token,
        intercom_url=urls["intercom"],
        intercom_token=config.intercom_token,
        asana_url=urls["asana"],
        asana_token=config.asana_token,
        mapping=ROOT / "deploy" / "mapping.sandbox.yaml",
        database_url=f"sqlite:///{ledger}",
        dry_run=False,
        http_timeout=CLIENT_TIMEOUT,
        http_backoff=RETRY_BACKOFF,
        zendesk_rate_limit=100_000,  # the sandbox runs without limits; the faults are the test
        intercom_rate_limit=100_000,
        asana_rate_limit=100_000,
    )


@contextmanager
def _quiet_logs() -> Iterator[None]:
    """The worker logs every failed call with its traceback: here that is only noise, and
    formatting it costs more than the cycle. The configuration before comes back after."""
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    try:
        yield
    finally:
        structlog.configure(**saved)


# -- what the helpdesk shows --------------------------------------------------------------

# When something was written and under which id: the only things a fault may change.
_WHEN_AND_ID = frozenset(
    {"id", "gid", "audit_id", "created_at", "updated_at", "notified_at", "modified_at",
     "completed_at", "generated_timestamp", "last_admin_reply_at", "url"}
)  # fmt: skip


def effects(sandbox: Sandbox) -> Counter[tuple[Any, ...]]:
    """Every ticket, conversation and bug, and the outbox, as a multiset of facts.

    A record's fields are facts as they stand; its comments, parts and stories, and its audit
    changes, are facts each (a duplicate counts twice). Ids and write times are left out, and a
    tag change is each tag added or removed: which write of two to one ticket added a tag, and
    what value a change replaced, depends on their order, which a fault may swap (the first
    fails, the second goes ahead, the first is done next cycle); the writes themselves may not.
    """
    return Counter(fact for fact, _ in _facts(sandbox))


def moments(sandbox: Sandbox) -> dict[tuple[Any, ...], list[str]]:
    """When each written fact (comment, part, story, email) was written, oldest first."""
    found: dict[tuple[Any, ...], list[str]] = {}
    for fact, at in _facts(sandbox):
        if at is not None:
            found.setdefault(fact, []).append(at)
    return {fact: sorted(times) for fact, times in found.items()}


def _facts(sandbox: Sandbox) -> Iterator[tuple[tuple[Any, ...], str | None]]:
    """Each fact, and when it was written if the vendor says (a field's value does not)."""
    for ticket_id in sandbox.zendesk.ticket_ids():
        record = sandbox.zendesk.record(ticket_id)
        ref = f"zendesk:{ticket_id}"
        yield from _untimed(_fields(ref, record.ticket, _ZENDESK_FIELDS))
        for c in record.comments:
            yield (ref, "comment", c["author_id"], c["public"], c["body"]), str(c["created_at"])
        yield from _untimed(
            (ref, "change", *change)
            for audit in record.audits
            for event in audit["events"]
            if event["type"] == "Change"
            for change in _changes(event)
        )
    for conversation in sandbox.intercom.all_conversations():
        ref = f"intercom:{conversation['id']}"
        source = conversation["source"]
        if source["delivered_as"] == "admin_initiated":
            # Started by POST /messages: numbered in the order the emails went out, which
            # faults may change; known by what it says instead.
            ref = f"intercom:message:{_canonical(source)}"
        yield from _untimed(_fields(ref, conversation, _INTERCOM_FIELDS))
        for part in conversation["conversation_parts"]["conversation_parts"]:
            yield (ref, "part", _canonical(part)), str(part["created_at"])
    for number, ticket in sorted(sandbox.intercom.tickets.items()):
        yield (f"intercom-ticket:{number}", "ticket", _canonical(ticket)), None
    for _, task in sandbox.asana.tasks():
        ref = f"asana:{task['gid']}"
        yield (ref, "task", _canonical(task)), None
        for story in sandbox.asana.stories(task["gid"]):
            yield (ref, "story", _canonical(story)), str(story["created_at"])
    for m in sandbox.outbox.dump():
        yield ("outbox", m["vendor"], m["ref"], m["to"], m["subject"], m["body"]), str(m["at"])


def _untimed(facts: Iterable[tuple[Any, ...]]) -> Iterator[tuple[tuple[Any, ...], None]]:
    return ((fact, None) for fact in facts)


_ZENDESK_FIELDS = ("status", "assignee_id", "group_id", "priority", "type", "subject", "due_at",
                   "tags", "custom_fields")  # fmt: skip
_INTERCOM_FIELDS = ("state", "open", "snoozed_until", "admin_assignee_id", "team_assignee_id",
                    "priority", "tags", "custom_attributes", "waiting_since")  # fmt: skip


def _fields(
    ref: str, record: Mapping[str, Any], names: tuple[str, ...]
) -> Iterator[tuple[Any, ...]]:
    for name in names:
        yield ref, name, json.dumps(record.get(name), sort_keys=True)


def _changes(event: Mapping[str, Any]) -> Iterator[tuple[Any, ...]]:
    """An audit's change: the field and its new value; for tags, each tag added or removed."""
    if event["field_name"] != "tags":
        yield event["field_name"], json.dumps(event["value"])
        return
    before, after = set(event["previous_value"].split()), set(event["value"].split())
    yield from (("tag added", tag) for tag in sorted(after - before))
    yield from (("tag removed", tag) for tag in sorted(before - after))


def _canonical(record: Mapping[str, Any]) -> str:
    """A part, story or task as JSON without its id and write times (they sit at the top)."""
    kept = {key: value for key, value in record.items() if key not in _WHEN_AND_ID}
    return json.dumps(kept, sort_keys=True)


def difference(reference: Counter[tuple[Any, ...]], seen: Counter[tuple[Any, ...]]) -> str:
    """The facts the two runs disagree on, one a line, with how often each run shows them."""
    return "\n".join(
        f"reference x{reference[fact]}, under faults x{seen[fact]}: {short(fact)}"
        for fact in sorted(set(reference) | set(seen), key=repr)
        if reference[fact] != seen[fact]
    )


@dataclass(frozen=True, slots=True)
class Comparison:
    """One vendor's facts in a faulty run against the reference: ``compared`` the facts the
    reference wrote (added or took away), ``duplicates`` copies beyond the reference's,
    ``missed`` copies the reference has and the faulty run has not, ``delayed`` facts written
    in both, later under faults (each with the reference's and the faulty run's times)."""

    vendor: str
    compared: int
    duplicates: int
    missed: int
    delayed: list[tuple[tuple[Any, ...], list[str], list[str]]]


def compare(reference: Run, faulty: Run) -> list[Comparison]:
    """Per vendor, the faulty run's facts against the reference's."""
    written = reference.changed
    extra, lacking = faulty.effects - reference.effects, reference.effects - faulty.effects
    result = []
    for vendor in ("zendesk", "intercom", "asana"):
        mine = partial(_vendor_of_fact_is, vendor)
        delayed = [
            (fact, times, faulty.moments.get(fact, []))
            for fact, times in reference.moments.items()
            if mine(fact) and faulty.moments.get(fact, times) > times
        ]
        result.append(
            Comparison(
                vendor,
                compared=sum(n for fact, n in written.items() if mine(fact)),
                duplicates=sum(n for fact, n in extra.items() if mine(fact)),
                missed=sum(n for fact, n in lacking.items() if mine(fact)),
                delayed=delayed,
            )
        )
    return result


def _vendor_of_fact_is(vendor: str, fact: tuple[Any, ...]) -> bool:
    """Emails count for the vendor that sent them (an Asana bug's go through Intercom)."""
    where = str(fact[1]) if fact[0] == "outbox" else str(fact[0])
    return where.partition(":")[0].partition("-")[0] == vendor


def short(fact: tuple[Any, ...], width: int = 300) -> str:
    text = " | ".join(str(part) for part in fact)
    return text if len(text) <= width else text[: width - 3] + "..."
