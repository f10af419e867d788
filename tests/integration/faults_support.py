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
import json
import logging
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

from sandbox.app import Sandbox
from sandbox.faults import FaultPlan, FaultRule
from sandbox.server import RunningSandbox, run_in_thread
from worker.cycle import CycleSummary, run_cycle
from worker.ledger import Ledger
from worker.settings import Settings
from worker.wiring import open_runtime

ROOT = Path(__file__).resolve().parents[2]
FIRST_DAY = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)  # a Wednesday, 10:00 in New York
TICK = timedelta(minutes=15)  # FOLLOWUP_SCHEDULE's spacing
CLIENT_TIMEOUT = 0.5  # FOLLOWUP_HTTP_TIMEOUT: a "slow" answer comes 1.5 times later
# FOLLOWUP_HTTP_BACKOFF: the suite is about what lands, not how long a retry waits (0.5 s by
# default); waiting less keeps a cycle under faults at a few seconds.
RETRY_BACKOFF = 0.1
SHARE = 0.2  # of every vendor call, reads and writes, all three vendors

FAULT_MIXES: dict[str, dict[str, float]] = {
    "429 storm": {"429": SHARE},
    "500/502/503": {"500": SHARE / 3, "502": SHARE / 3, "503": SHARE / 3},
    "answers past the client's timeout": {"slow": SHARE},
    "dropped before apply": {"drop_before": SHARE},
    "dropped after apply": {"drop_after": SHARE},
    "all of them": {
        "429": SHARE / 6, "500": SHARE / 18, "502": SHARE / 18, "503": SHARE / 18,
        "slow": SHARE / 6, "drop_before": SHARE / 6, "drop_after": SHARE / 6,
    },
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
    owed_after: int = 0  # items a dry-run still plans after the last cycle
    unanswered_emails: int = 0  # POST /messages that landed but whose answer was lost
    faults: int = 0  # vendor calls the sandbox failed on purpose
    written: int = 0  # facts the cycles added or took away: what the worker did

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


def fault_plan(mix: Mapping[str, float], seed: int) -> FaultPlan:
    """Each kind on its own share of the calls (rules are drawn in turn, so shares add up)."""
    rules, left = [], 1.0
    for kind, share in mix.items():
        rules.append(FaultRule("*", kind, share / left))
        left -= share
    return FaultPlan(rules, seed=seed, slow_seconds=CLIENT_TIMEOUT * 1.5)


def run(
    scenario: Scenario,
    workdir: Path,
    mix: Mapping[str, float] | None = None,
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
            result.written = ((result.effects - before) + (before - result.effects)).total()
            result.faults = running.sandbox.traffic.stats()["total"]["faults"]
            result.unanswered_emails = sum(
                1
                for entry in running.sandbox.traffic.entries(vendor="intercom", limit=100_000)
                if entry["endpoint"] == "POST /messages"
                and entry["applied"]
                and entry["fault"] in ("slow", "drop_after")
            )
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
    facts: Counter[tuple[Any, ...]] = Counter()
    for ticket_id in sandbox.zendesk.ticket_ids():
        record = sandbox.zendesk.record(ticket_id)
        ref = f"zendesk:{ticket_id}"
        facts.update(_fields(ref, record.ticket, _ZENDESK_FIELDS))
        facts.update(
            (ref, "comment", c["author_id"], c["public"], c["body"]) for c in record.comments
        )
        facts.update(
            (ref, "change", *change)
            for audit in record.audits
            for event in audit["events"]
            if event["type"] == "Change"
            for change in _changes(event)
        )
    for conversation in sandbox.intercom.all_conversations():
        ref = f"intercom:{conversation['id']}"
        facts.update(_fields(ref, conversation, _INTERCOM_FIELDS))
        facts.update(
            (ref, "part", _canonical(part))
            for part in conversation["conversation_parts"]["conversation_parts"]
        )
    for number, ticket in sorted(sandbox.intercom.tickets.items()):
        facts[f"intercom-ticket:{number}", "ticket", _canonical(ticket)] += 1
    for _, task in sandbox.asana.tasks():
        ref = f"asana:{task['gid']}"
        facts[ref, "task", _canonical(task)] += 1
        stories = sandbox.asana.stories(task["gid"])
        facts.update((ref, "story", _canonical(story)) for story in stories)
    facts.update(
        ("outbox", m["vendor"], m["ref"], m["to"], m["subject"], m["body"])
        for m in sandbox.outbox.dump()
    )
    return facts


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


# Emails to an Intercom contact (how an Asana bug's customer hears of it) go by POST /messages,
# which leaves nothing to look for until the contact answers: one whose answer was lost is sent
# again, at least once rather than exactly once (connectors.asana).
RESENDABLE = "intercom:contact:"


def emails_sent_again(
    reference: Counter[tuple[Any, ...]], seen: Counter[tuple[Any, ...]]
) -> Counter[tuple[Any, ...]]:
    """Copies of RESENDABLE emails beyond the reference's, and nothing else."""
    return Counter(
        {
            fact: count
            for fact, count in (seen - reference).items()
            if fact[0] == "outbox" and str(fact[2]).startswith(RESENDABLE)
        }
    )


def difference(reference: Counter[tuple[Any, ...]], seen: Counter[tuple[Any, ...]]) -> str:
    """The facts the two runs disagree on, one a line, with how often each run shows them."""
    return "\n".join(
        f"reference x{reference[fact]}, under faults x{seen[fact]}: {_short(fact)}"
        for fact in sorted(set(reference) | set(seen), key=repr)
        if reference[fact] != seen[fact]
    )


def _short(fact: tuple[Any, ...]) -> str:
    text = " | ".join(str(part) for part in fact)
    return text if len(text) <= 300 else text[:297] + "..."
