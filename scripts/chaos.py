"""Chaos run: SIGKILL the live worker at random moments over simulated days, then compare.

    python scripts/chaos.py --kills 100 --seed 7

Two sandboxes run as separate processes (so they outlive every worker), with the same
generated tenant and no rate limits, and the worker is configured for all three of its vendors:
Zendesk tickets, Intercom conversations and tickets, Asana bug tasks (whose customers are
emailed through Intercom's ``POST /messages``), with ``deploy/mapping.sandbox.yaml``. Day by day
(business days, the sandbox clock set to the day's instant):

* the chaos sandbox sees ``run --once --live`` started over and over and SIGKILLed at random
  moments - half of the kills at a random delay, half right after an intent was recorded,
  while the sandbox's ``slow`` fault holds the writes in flight (the write lands, the answer
  never comes), so a kill often falls between the writes of one item: a Zendesk reply and its
  note, an Intercom reply, state change and note, an Asana email, field update and story (the
  email itself is not held: see :data:`WRITES`) - then one last run that is left to finish
  the day;
* the reference sandbox sees one un-killed run.

A killed worker's held write still lands, up to :data:`SLOW_WRITE_SECONDS` later: the next
worker is started once it has. A restart quicker than that could read a case before the write
lands and write it again; Zendesk's ``safe_update`` refuses such a second copy, Intercom and
Asana have nothing like it, and no real restart (a schedule tick, a lease taken over) is that
quick.

At the end the two are compared (from the sandboxes' saved state): every worker footer
``fw-<key>`` on a ticket, conversation, Intercom ticket or task, every email in the outbox
(Zendesk and Intercom replies, Intercom messages) and every status or state change (Zendesk
audits, Intercom close/snooze/open parts and ticket state changes). A key or an email seen
twice, or a status change made more often than in the reference, is a duplicate; what the
reference did and the chaos run did not is missed; the other way round, extra. The exit code
is 1 unless all three are empty.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a plain script: the sandbox package sits next to it
    sys.path.insert(0, str(ROOT))

from connectors.footer import parse_footer  # noqa: E402
from sandbox.server import RunningSandbox, run_subprocess  # noqa: E402

__all__ = ["Findings", "Observation", "Scenario", "business_days", "compare", "main", "run"]

FIRST_DAY = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # a Monday, 10:00 in New York
SLOW_WRITE_SECONDS = 0.6  # how long a held write stays in the vendor before it lands
SLOW_WRITE_SHARE = 0.3  # share of the worker's writes held that long
# The worker's writes that may be held, by vendor (endpoints as the sandbox routes them); an
# Asana bug's email (Intercom's POST /messages) too: it is looked for by its marker before it
# is sent again.
WRITES = {
    "zendesk": ("PUT *",),
    "intercom": (
        "POST /conversations/*/*",
        "POST /tickets/*/reply",
        "PUT /tickets/*",
        "POST /messages",
    ),
    "asana": ("PUT /tasks/*", "POST /tasks/*/stories"),
}
# Changes that are done once per follow-up: one seen more often than in the reference is a
# duplicate (tags, fields and assignees may be set again to the value they have).
STATE_FIELDS = frozenset({"status", "state"})
NEXT_TICK = timedelta(minutes=15)  # FOLLOWUP_SCHEDULE's default spacing


@dataclass(frozen=True, slots=True)
class Scenario:
    kills: int
    seed: int = 1
    tickets: int = 60
    days: int = 10
    max_delay: float = 4.0  # the longest a worker lives before a random-delay kill

    @property
    def instants(self) -> list[datetime]:
        return business_days(FIRST_DAY, self.days)


def business_days(first: datetime, count: int) -> list[datetime]:
    """``count`` instants a day apart from ``first``, weekends skipped."""
    days: list[datetime] = []
    day = first
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


@dataclass(slots=True)
class Observation:
    """What a sandbox's customers and agents can see the worker did."""

    notes: Counter[tuple[str, str]] = field(default_factory=Counter)  # (case ref, fw key)
    steps: dict[tuple[str, str], tuple[str, int]] = field(default_factory=dict)  # -> policy/step
    emails: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # (ref, subject, body)
    changes: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # (ref, field, to)

    def note(self, ref: str, text: str | None) -> None:
        """A comment, part or story: a follow-up if it carries the worker's footer."""
        mark = parse_footer(text or "", FIRST_DAY)
        if mark is not None:
            self.notes[ref, mark.key] += 1
            self.steps[ref, mark.key] = (mark.policy, mark.step)


@dataclass(slots=True)
class Findings:
    kills: int
    mid_write: Counter[str]  # kills that left an item unfinished, by vendor
    duplicates: list[str]
    missed: list[str]
    extra: list[str]
    seconds: float
    incomplete_days: list[str] = field(default_factory=list)  # a final run that exited 1
    compared: Counter[str] = field(default_factory=Counter)  # what the reference shows

    @property
    def clean(self) -> bool:
        return not (self.duplicates or self.missed or self.extra)

    def report(self) -> str:
        lines = [
            f"kills {self.kills} (items left between intent and outcome: "
            f"{_figures(self.mid_write)}), duplicates {len(self.duplicates)}, "
            f"missed {len(self.missed)}, extra {len(self.extra)}, {self.seconds:.0f} s",
            f"  compared: {_figures(self.compared)}",
        ]
        if self.incomplete_days:
            lines.append(f"  runs that left something due: {', '.join(self.incomplete_days)}")
        for title, found in (("duplicate", self.duplicates), ("missed", self.missed),
                             ("extra", self.extra)):  # fmt: skip
            lines += [f"  {title}: {line}" for line in found]
        return "\n".join(lines)


def _figures(counts: Counter[str]) -> str:
    return ", ".join(f"{name} {count}" for name, count in sorted(counts.items())) or "none"


def _vendor(ref: str) -> str:
    return ref.partition(":")[0]


def coverage(seen: Observation) -> Counter[str]:
    """How many follow-ups (by vendor), emails and state changes an observation holds."""
    figures = Counter(f"{_vendor(ref)} notes" for ref, _ in seen.notes.elements())
    figures["emails"] = seen.emails.total()
    figures["state changes"] = sum(
        count for (_, name, _), count in seen.changes.items() if name in STATE_FIELDS
    )
    return figures


class Vendor:
    """The admin API of one running sandbox (started with ``--state-file``), plus a ledger
    for its worker."""

    def __init__(self, running: RunningSandbox, ledger: Path) -> None:
        self.running = running
        self.ledger = ledger
        self._http = httpx.Client(timeout=30)

    def close(self) -> None:
        self._http.close()

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        url = f"{self.running.urls['admin']}{path}"
        response = self._http.request(method, url, json=body)
        response.raise_for_status()
        return response.json()

    def state(self) -> Any:
        """Everything the sandbox changed: the tickets, conversations, Intercom tickets and
        tasks written to, with their comments, audits, parts and stories, and the outbox."""
        saved = self.admin("POST", "/save")["saved"]
        return json.loads(Path(saved).read_text())

    def worker_env(self) -> dict[str, str]:
        config = self.running.config
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(ROOT),
            "FOLLOWUP_ZENDESK_URL": self.running.urls["zendesk"],
            "FOLLOWUP_ZENDESK_EMAIL": config.zendesk_email,
            "FOLLOWUP_ZENDESK_TOKEN": config.zendesk_token,
            "FOLLOWUP_ZENDESK_RATE_LIMIT": "100000",
            "FOLLOWUP_INTERCOM_URL": self.running.urls["intercom"],
            "FOLLOWUP_INTERCOM_TOKEN": config.intercom_token,
            "FOLLOWUP_INTERCOM_RATE_LIMIT": "100000",
            "FOLLOWUP_ASANA_URL": self.running.urls["asana"],
            "FOLLOWUP_ASANA_TOKEN": config.asana_token,
            "FOLLOWUP_ASANA_RATE_LIMIT": "100000",
            "FOLLOWUP_MAPPING": str(ROOT / "deploy" / "mapping.sandbox.yaml"),
            "FOLLOWUP_DATABASE_URL": f"sqlite:///{self.ledger}",
            "FOLLOWUP_LOG_FORMAT": "json",
            "FOLLOWUP_LOG_LEVEL": "warning",
        }

    def start_worker(self, at: datetime) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "worker", "run", "--once", "--live", "--at", at.isoformat()],
            cwd=ROOT,
            env=self.worker_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def finish_day(self, at: datetime) -> bool:
        """One run left alone: it must complete. True when everything due was done (exit 0);
        exit 1 (something failed, it is due again next time) shows in the comparison."""
        worker = self.start_worker(at)
        _, stderr = worker.communicate(timeout=300)
        if worker.returncode not in (0, 1):
            raise RuntimeError(
                f"the un-killed run of {at:%Y-%m-%d} exited {worker.returncode}:\n"
                + stderr.decode(errors="replace")[-3000:]
            )
        return worker.returncode == 0

    def last_attempt(self) -> int:
        found = self._attempts("SELECT COALESCE(MAX(id), 0) FROM followup_attempts")
        return int(found[0][0]) if found else 0

    def pending_since(self, attempt: int) -> Counter[str]:
        """Attempts after ``attempt`` not finished, by vendor: a write in flight (no outcome
        yet, or part-way with its reply out)."""
        query = (
            "SELECT i.case_ref FROM followup_attempts a JOIN followup_intents i"
            f" ON i.id = a.intent_id WHERE a.id > {attempt} AND a.finished_at IS NULL"
        )
        return Counter(_vendor(str(row[0])) for row in self._attempts(query))

    def _attempts(self, query: str) -> list[Any]:
        if not self.ledger.exists():
            return []
        try:
            with sqlite3.connect(self.ledger, timeout=5) as db:
                return db.execute(query).fetchall()
        except sqlite3.OperationalError:  # not migrated yet, or locked for a moment
            return []

    def observe(self) -> Observation:
        seen = Observation()
        state = self.state()
        for ticket_id, record in state["zendesk"]["tickets"].items():
            ref = f"zendesk:{ticket_id}"
            for comment in record["comments"]:
                seen.note(ref, comment["body"])
            for audit in record["audits"]:
                for event in audit["events"]:
                    if event["type"] == "Change":
                        seen.changes[ref, event["field_name"], str(event["value"])] += 1
        intercom = state["intercom"]
        for number, conversation in intercom["conversations"].items():
            _intercom_parts(seen, f"intercom:{number}", conversation, "conversation_parts")
        for number, ticket in intercom["tickets"].items():
            _intercom_parts(seen, f"intercom:ticket:{number}", ticket, "ticket_parts")
        for gid, task in state["asana"].items():
            for story in task["stories"]:
                if story["resource_subtype"] == "comment_added":
                    seen.note(f"asana:{gid}", story["text"])
                else:  # a system story: a field changed, the task assigned
                    seen.changes[f"asana:{gid}", story["resource_subtype"], story["text"]] += 1
        for message in state["outbox"]:
            seen.emails[message["ref"], message["subject"], message["body"]] += 1
        return seen


def _part_change(part: Any) -> tuple[str, str] | None:
    """What an Intercom part changes on its conversation or ticket: (field, the value set)."""
    match part["part_type"]:
        case "close":
            return "state", "closed"
        case "snoozed" | "open":
            return "state", str(part["part_type"])
        case "ticket_state_updated_by_admin":
            return "state", str(part.get("ticket_state"))
        case "assignment":
            return "assignee", str((part.get("assigned_to") or {}).get("id"))
    return None


def _intercom_parts(seen: Observation, ref: str, record: Any, key: str) -> None:
    for part in record[key][key]:
        change = _part_change(part)
        if change is not None:
            seen.changes[(ref, *change)] += 1
        elif part["part_type"] in ("note", "comment"):
            seen.note(ref, part["body"])


def compare(reference: Observation, chaos: Observation) -> tuple[list[str], list[str], list[str]]:
    """(duplicates, missed, extra) of the chaos run against the reference."""
    duplicates = [
        f"{ref}: note fw-{key} ({_step(chaos, ref, key)}) x{count}"
        for (ref, key), count in sorted(chaos.notes.items())
        if count > 1
    ]
    duplicates += [  # the same words may go out twice by design (a resent template)
        f"{ref}: email {subject!r} x{count} (reference x{reference.emails[ref, subject, body]})"
        for (ref, subject, body), count in sorted(chaos.emails.items())
        if count > reference.emails[ref, subject, body]
    ]
    duplicates += [
        f"{ref}: {name} -> {value} x{count} (reference x{reference.changes[key]})"
        for key, count in sorted(chaos.changes.items())
        if count > reference.changes[key] and key[1] in STATE_FIELDS
        for ref, name, value in [key]
    ]
    missed = _difference(reference, chaos)
    extra = _difference(chaos, reference)
    return duplicates, missed, extra


def _step(seen: Observation, ref: str, key: str) -> str:
    policy, step = seen.steps[ref, key]
    return f"{policy} step {step}"


def _difference(one: Observation, other: Observation) -> list[str]:
    """Follow-ups and emails ``one`` shows and ``other`` does not."""
    found = [
        f"{ref}: note fw-{key} ({_step(one, ref, key)})"
        for ref, key in sorted(set(one.notes) - set(other.notes))
    ]
    found += [
        f"{ref}: email {subject!r}"
        for ref, subject, _ in sorted(set(one.emails) - set(other.emails))
    ]
    return found


def _kill_one(vendor: Vendor, at: datetime, rng: random.Random, max_delay: float) -> Counter[str]:
    """Start a worker and SIGKILL it: after a random delay, or while a write is in flight.
    The items the kill left unfinished (between intent and outcome), by vendor."""
    before = vendor.last_attempt()
    worker = vendor.start_worker(at)
    deadline = time.monotonic() + rng.uniform(0.3, max_delay)
    wait_for_write = rng.random() < 0.5
    while worker.poll() is None and time.monotonic() < deadline:
        if wait_for_write and vendor.pending_since(before):
            # The intent is on record; its update goes out next and the sandbox may hold it.
            time.sleep(rng.uniform(0.0, SLOW_WRITE_SECONDS))
            break
        time.sleep(0.01)
    worker.send_signal(signal.SIGKILL)
    worker.communicate(timeout=30)
    time.sleep(SLOW_WRITE_SECONDS)  # what the sandbox held lands before the next worker reads
    return vendor.pending_since(before)


def _kills_per_day(kills: int, days: int) -> Iterator[int]:
    for day in range(days):
        yield kills // days + (1 if day < kills % days else 0)


def _sandbox_args(scenario: Scenario, state_file: Path) -> list[str]:
    return [
        "--tickets", str(scenario.tickets),
        "--seed", str(scenario.seed),
        "--start", FIRST_DAY.isoformat(),
        "--frozen-clock",
        "--no-rate-limits",
        "--state-file", str(state_file),
    ]  # fmt: skip


def _set_day(vendor: Vendor, at: datetime) -> None:
    vendor.admin("POST", "/clock", {"set": at.isoformat()})


def run(scenario: Scenario, *, log: Any = None) -> Findings:
    """The whole chaos run and its comparison with the reference run."""
    started = time.monotonic()
    rng = random.Random(scenario.seed)
    say = log or (lambda text: None)
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="chaos-")))
        chaos, reference = (
            Vendor(
                stack.enter_context(
                    run_subprocess(*_sandbox_args(scenario, workdir / f"{name}.json"))
                ),
                workdir / f"{name}.db",
            )
            for name in ("chaos", "ref")
        )
        stack.callback(chaos.close)
        stack.callback(reference.close)
        held_writes = {
            "seed": scenario.seed,
            "slow_seconds": SLOW_WRITE_SECONDS,
            "rules": [
                {"vendor": vendor, "kind": "slow", "probability": SLOW_WRITE_SHARE,
                 "endpoint": endpoint}
                for vendor, endpoints in WRITES.items()
                for endpoint in endpoints
            ],
        }  # fmt: skip
        chaos.admin("PUT", "/faults", held_writes)
        kills, mid_write = 0, Counter[str]()
        incomplete: list[str] = []
        per_day = _kills_per_day(scenario.kills, len(scenario.instants))
        for at, day_kills in zip(scenario.instants, per_day, strict=True):
            for vendor in (chaos, reference):
                _set_day(vendor, at)
            if not reference.finish_day(at):
                incomplete.append(f"reference {at:%a %d}")
            for _ in range(day_kills):
                mid_write += _kill_one(chaos, at, rng, scenario.max_delay)
                kills += 1
            # The day's last run comes a schedule tick later, as under `serve`: a ticket the
            # killed runs touched a moment ago is not in Zendesk's export for a minute.
            later = at + NEXT_TICK
            _set_day(chaos, later)
            if not chaos.finish_day(later):
                incomplete.append(f"chaos {at:%a %d}")
            say(f"{at:%a %Y-%m-%d}: {kills} kills so far, {time.monotonic() - started:.0f} s")
        expected = reference.observe()
        duplicates, missed, extra = compare(expected, chaos.observe())
    seconds = time.monotonic() - started
    return Findings(
        kills, mid_write, duplicates, missed, extra, seconds, incomplete, coverage(expected)
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--kills", type=int, default=100, help="SIGKILLs in all")
    parser.add_argument("--seed", type=int, default=1, help="tenant, fault and kill-timing seed")
    parser.add_argument("--tickets", type=int, default=60)
    parser.add_argument("--days", type=int, default=10, help="business days")
    args = parser.parse_args(argv)
    scenario = Scenario(kills=args.kills, seed=args.seed, tickets=args.tickets, days=args.days)
    findings = run(scenario, log=lambda text: print(text, flush=True))
    print(findings.report())
    return 0 if findings.clean else 1


if __name__ == "__main__":
    sys.exit(main())
