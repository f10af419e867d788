"""The executor's choices, as tables: run mode, what to do with an item, what after a write."""

from __future__ import annotations

import pytest

from connectors.base import WriteOutcome
from worker.delivery.decisions import (
    NextStep,
    Verdict,
    after_interruption,
    after_write,
    decide,
    outcome_counts_as_failure,
    run_mode,
)
from worker.delivery.ledger import Outcome


@pytest.mark.parametrize(
    ("flag", "switch", "configured", "dry_run"),
    [
        # nothing said: FOLLOWUP_DRY_RUN decides, and it defaults to dry-run
        (None, None, True, True),
        (None, None, False, False),
        # ops flipped the runtime switch: it beats the configuration...
        (None, False, True, False),
        (None, True, False, True),
        # ...an explicit flag beats a switch turned off...
        (True, False, False, True),
        (False, None, True, False),
        # ...but the switch turned on is a brake that even --live cannot release
        (False, True, False, True),
        (True, True, False, True),
    ],
)
def test_run_mode(flag: bool | None, switch: bool | None, configured: bool, dry_run: bool) -> None:
    assert run_mode(flag=flag, switch=switch, configured=configured).dry_run is dry_run


def test_live_flag_against_the_brake_says_why() -> None:
    assert "--live ignored" in run_mode(flag=False, switch=True, configured=False).why


DONE = (True, Outcome.APPLIED)
DONE_THEN_CONFLICT = (True, Outcome.CONFLICT)  # applied, then a re-planned retry conflicted
PENDING = (False, None)
FAILED = (False, Outcome.FAILED)
CONFLICT = (False, Outcome.CONFLICT)
INCOMPLETE = (False, Outcome.INCOMPLETE)
INTERRUPTED = (False, Outcome.INTERRUPTED)


@pytest.mark.parametrize(
    ("run_dry", "policy_dry", "ledger", "verdict", "dry_run"),
    [
        (False, None, None, Verdict.APPLY, False),
        (True, None, None, Verdict.PLAN_ONLY, True),
        # a policy can make itself dry-run in a live run, never live in a dry run
        (False, True, None, Verdict.PLAN_ONLY, True),
        (True, False, None, Verdict.PLAN_ONLY, True),
        (False, False, None, Verdict.APPLY, False),
        # the ledger says it is on the case already: never a second write
        (False, None, DONE, Verdict.SKIP, False),
        (True, None, DONE, Verdict.SKIP, True),
        (False, None, DONE_THEN_CONFLICT, Verdict.SKIP, False),
        # an attempt died without outcome: look for the marker before writing again
        (False, None, PENDING, Verdict.VERIFY, False),
        (True, None, PENDING, Verdict.PLAN_ONLY, True),
        # earlier failures and conflicts are retried
        (False, None, FAILED, Verdict.APPLY, False),
        (False, None, CONFLICT, Verdict.APPLY, False),
        # part of it landed, the reply among it: the rest is applied, the reply not again
        (False, None, INCOMPLETE, Verdict.RESUME, False),
        (True, None, INCOMPLETE, Verdict.PLAN_ONLY, True),
        # a dead process's attempt, marker absent, reply not recorded as sent: all of it
        # again (the connector skips a reply it finds on the case)
        (False, None, INTERRUPTED, Verdict.APPLY, False),
        (True, None, INTERRUPTED, Verdict.PLAN_ONLY, True),
    ],
)
def test_decide(
    run_dry: bool,
    policy_dry: bool | None,
    ledger: tuple[bool, Outcome | None] | None,
    verdict: Verdict,
    dry_run: bool,
) -> None:
    decision = decide(run_dry=run_dry, policy_dry_run=policy_dry, ledger=ledger)
    assert (decision.verdict, decision.dry_run) == (verdict, dry_run)


@pytest.mark.parametrize(
    ("outcome", "replanned", "next_step"),
    [
        (WriteOutcome.APPLIED, False, NextStep.SETTLED),
        (WriteOutcome.ALREADY_APPLIED, False, NextStep.SETTLED),
        (WriteOutcome.FAILED, False, NextStep.SETTLED),
        (WriteOutcome.CONFLICT, False, NextStep.REPLAN),
        # one re-plan per cycle: a second conflict waits for the next cycle
        (WriteOutcome.CONFLICT, True, NextStep.SETTLED),
    ],
)
def test_after_write(outcome: WriteOutcome, replanned: bool, next_step: NextStep) -> None:
    assert after_write(outcome, replanned=replanned) is next_step


@pytest.mark.parametrize(
    ("marker_found", "reply_out", "outcome"),
    [
        # the footer is on the case: the whole follow-up landed, whatever the checkpoint says
        (True, False, Outcome.ALREADY_APPLIED),
        (True, True, Outcome.ALREADY_APPLIED),
        # absent, the reply recorded as out: the rest is finished, the reply not again
        (False, True, Outcome.INCOMPLETE),
        # absent, nothing recorded: finished with its reply (looked for before it is sent)
        (False, False, Outcome.INTERRUPTED),
    ],
)
def test_after_interruption(marker_found: bool, reply_out: bool, outcome: Outcome) -> None:
    assert after_interruption(marker_found=marker_found, reply_out=reply_out).outcome is outcome


@pytest.mark.parametrize(
    ("outcome", "failure"),
    [
        (Outcome.APPLIED, False),
        (Outcome.ALREADY_APPLIED, False),
        (Outcome.SKIPPED, False),
        (Outcome.FAILED, True),
        (Outcome.CONFLICT, True),
        (Outcome.INCOMPLETE, True),
        (Outcome.INTERRUPTED, True),
    ],
)
def test_outcome_counts_as_failure(outcome: Outcome, failure: bool) -> None:
    assert outcome_counts_as_failure(outcome) is failure
