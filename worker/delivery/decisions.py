"""What to do with a plan item, decided without IO so every case is a row in a test table.

Four questions, four functions:

* :func:`run_mode` - is this run dry or live? (CLI flag, ops' runtime switch, configuration)
* :func:`decide` - given the run mode, the policy's own override and what the ledger knows
  about the item's idempotency key, apply it, finish what an earlier attempt started, verify
  an attempt that died without outcome first, record it as planned only, or leave it alone?
* :func:`after_write` - given what the vendor said, is the item settled or must the case be
  re-read and re-planned?
* :func:`after_interruption` - an attempt a dead process left unfinished, its case read
  again: done, or to be finished, with or without its reply?
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from connectors.base import WriteOutcome
from worker.delivery.ledger import LiveRecord, Outcome

__all__ = [
    "Decision",
    "NextStep",
    "RunMode",
    "Settlement",
    "Verdict",
    "after_interruption",
    "after_write",
    "decide",
    "is_dry",
    "outcome_counts_as_failure",
    "run_mode",
]


@dataclass(frozen=True, slots=True)
class RunMode:
    dry_run: bool
    why: str


def run_mode(*, flag: bool | None, switch: bool | None, configured: bool) -> RunMode:
    """Dry or live, from the command's ``--dry-run/--live`` flag (None: not given), the runtime
    switch ops flip with ``followup dry-run on|off`` (None: never flipped) and
    ``FOLLOWUP_DRY_RUN``.

    The switch turned *on* is a brake and beats everything, even ``--live``: ops who stop the
    worker must be able to trust that it stopped. Otherwise an explicit flag wins, then the
    switch turned off, then the configuration (dry-run unless told otherwise).
    """
    if switch is True:
        if flag is False:
            return RunMode(True, "the runtime dry-run switch is on; --live ignored")
        return RunMode(True, "the runtime dry-run switch is on")
    if flag is not None:
        return RunMode(flag, "--dry-run given" if flag else "--live given")
    if switch is False:
        return RunMode(False, "the runtime dry-run switch is off")
    return RunMode(configured, f"FOLLOWUP_DRY_RUN={'true' if configured else 'false'}")


class Verdict(StrEnum):
    APPLY = "apply"  # record the intent, write to the vendor, record the outcome
    RESUME = "resume"  # an earlier attempt got part-way: apply the rest, the reply is out
    VERIFY = "verify"  # an earlier attempt may have written: look for its marker first
    PLAN_ONLY = "plan_only"  # dry-run: record and show the plan, write nothing
    SKIP = "skip"  # already on the case: writing again would duplicate it


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    dry_run: bool
    why: str


def is_dry(*, run_dry: bool, policy_dry_run: bool | None) -> bool:
    """Will the item be planned only? Then :func:`decide` can only say PLAN_ONLY or SKIP, and
    nothing about it needs the vendor."""
    return run_dry or policy_dry_run is True


def decide(
    *,
    run_dry: bool,
    policy_dry_run: bool | None,
    ledger: LiveRecord | None,
) -> Decision:
    """One plan item. ``ledger`` is :meth:`worker.delivery.ledger.Ledger.latest_outcome` of its key
    (the tenant's).

    A policy may make itself dry-run while the run is live (to trial a new policy) but never
    live while the run is dry: dry-run has to mean that nothing is written.
    """
    dry_run = is_dry(run_dry=run_dry, policy_dry_run=policy_dry_run)
    if ledger is not None:
        done, last = ledger
        if done:
            return Decision(Verdict.SKIP, dry_run, "already applied (ledger)")
        if last is None and not dry_run:
            return Decision(Verdict.VERIFY, dry_run, "an earlier attempt has no outcome")
    if dry_run:
        why = "dry-run run" if run_dry else "the policy is dry-run"
        return Decision(Verdict.PLAN_ONLY, dry_run, why)
    if ledger is not None and ledger[1] is Outcome.INCOMPLETE:
        return Decision(Verdict.RESUME, dry_run, "finishing what an earlier attempt started")
    if ledger is not None and ledger[1] is Outcome.INTERRUPTED:
        # Its reply may be out and unrecorded: the connector looks for it before sending it
        # (Zendesk's marker tag, Intercom's reply by its body, an Asana bug's email by the
        # marker in its body).
        why = "finishing an interrupted attempt; its reply was not recorded as sent"
        return Decision(Verdict.APPLY, dry_run, why)
    if ledger is not None and ledger[1] is not None:
        return Decision(Verdict.APPLY, dry_run, f"retrying after {ledger[1].value}")
    return Decision(Verdict.APPLY, dry_run, "due")


class NextStep(StrEnum):
    SETTLED = "settled"  # record the outcome; nothing more this cycle
    REPLAN = "replan"  # an agent changed the case: re-read it, re-plan, try once more


def after_write(outcome: WriteOutcome, *, replanned: bool) -> NextStep:
    """A conflict earns one re-read and re-plan per cycle; a second one waits for next cycle."""
    if outcome is WriteOutcome.CONFLICT and not replanned:
        return NextStep.REPLAN
    return NextStep.SETTLED


@dataclass(frozen=True, slots=True)
class Settlement:
    outcome: Outcome
    detail: str


def after_interruption(*, marker_found: bool, reply_out: bool) -> Settlement:
    """An attempt a dead process left unfinished (no outcome, or only the checkpoint saying
    its reply was out), settled on a fresh read of its case.

    Its footer on the case: the whole follow-up landed. Absent: some of it may have landed
    all the same (the reply, a closed conversation, an Asana date field) and stop the plan
    from offering it again, so it is not left to the plan: it is finished, at once, like a
    follow-up a connector reported half done. Without its reply when the ledger recorded the
    reply as sent (INCOMPLETE); otherwise with it (INTERRUPTED), and the connector skips a
    reply it finds on the case. The customer writing since is the finisher's to check.
    """
    if marker_found:
        return Settlement(Outcome.ALREADY_APPLIED, "interrupted; marker found on re-read")
    if reply_out:
        why = "interrupted after its reply went out; marker absent: the rest is finished"
        return Settlement(Outcome.INCOMPLETE, why)
    why = "interrupted; marker absent: finished again, a reply already sent is not repeated"
    return Settlement(Outcome.INTERRUPTED, why)


def outcome_counts_as_failure(outcome: Outcome) -> bool:
    """A conflict left after the re-plan is a failure too, and so is a follow-up half done or
    cut off: it did not (all) happen."""
    return outcome in (Outcome.FAILED, Outcome.CONFLICT, Outcome.INCOMPLETE, Outcome.INTERRUPTED)
