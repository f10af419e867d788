"""The live worker against a sandbox that misbehaves on a fifth of all vendor calls.

Seven mixes, six on every call of all three vendors, reads and writes alike: 429 storms,
500/502/503, answers later than the client waits (the write still lands), connections cut
before the request was applied, cut after it was, and all of those together; the seventh
cuts the connection after applying a fifth of the calls to each write endpoint of every
vendor. Each mix runs the same scenario (tenant seed, sandbox clock, cycle instants) as a run
without faults, and:

* every cycle completes and returns its summary, and the summaries count the retries;
* a day's cycles settle: a fault only delays a follow-up to the next cycle (a schedule tick
  later), and the day ends on a cycle with nothing left due and every vendor read;
* afterwards the helpdesks are *equal*, fact by fact (:func:`faults_support.effects`): every
  note and reply by its text and marker, every email, every status, assignee, field and tag
  change, Intercom parts and Asana stories, each as often as without faults. Only ids, write
  times and the order of two writes to one case (the first failed, the second went ahead, the
  first came next cycle) may differ; the reference replays the faulty run's cycle instants, so
  both had the same chances to act. No exception: an Asana bug's email to the customer
  (Intercom's ``POST /messages``) is looked for by its marker before it is sent again. Per
  vendor the suite prints the facts compared, duplicates and missed (both 0) and the facts
  written later than in the reference (delayed), with ``-rP``.

The mixes run side by side in worker processes (they mostly wait: on backoff, shortened to
0.1 s, and on 429s' Retry-After), so the suite takes about as long as its slowest mix (the 429
storm, 40 s alone; 2-3 minutes on a loaded 2-core machine).
The long variant (120 tickets, three days, about 3.5 minutes) runs with ``--run-slow``.
"""

from __future__ import annotations

import multiprocessing
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("sandbox.server", reason="the sandbox package is not in this tree")

from tests.integration import faults_support
from tests.integration.faults_support import FAULT_MIXES, Run, Scenario

SCENARIO = Scenario(tickets=20, days=2)
LONG = Scenario(tickets=120, days=3, max_cycles=10)


@dataclass(frozen=True, slots=True)
class Pair:
    faulty: Run
    reference: Run


def run_pair(scenario: Scenario, mix: str, workdir: Path) -> Pair:
    """The mix, then the reference at the instants the mix's cycles ran."""
    faulty = faults_support.run(scenario, workdir / "faults", FAULT_MIXES[mix])
    reference = faults_support.run(scenario, workdir / "reference", instants=faulty.instants)
    return Pair(faulty, reference)


def _pairs(scenario: Scenario, workdir: Path) -> Iterator[dict[str, Future[Pair]]]:
    # forkserver: the children fork from one process that imported the worker and the
    # sandbox once, rather than each importing them anew.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([faults_support.__name__])
    with ProcessPoolExecutor(len(FAULT_MIXES), mp_context=context) as pool:
        yield {
            mix: pool.submit(run_pair, scenario, mix, workdir / str(n))
            for n, mix in enumerate(FAULT_MIXES)
        }


@pytest.fixture(scope="module")
def pairs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Future[Pair]]]:
    yield from _pairs(SCENARIO, tmp_path_factory.mktemp("faults"))


@pytest.fixture(scope="module")
def long_pairs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Future[Pair]]]:
    yield from _pairs(LONG, tmp_path_factory.mktemp("faults-long"))


# The first of these waits for its mix while all seven run side by side: on a 2-core machine
# shared with other work that is more than the default 120 s.
@pytest.mark.timeout(600)
@pytest.mark.parametrize("mix", FAULT_MIXES)
def test_a_fifth_of_the_calls_failing_changes_nothing_the_helpdesk_shows(
    pairs: dict[str, Future[Pair]], mix: str
) -> None:
    check(mix, pairs[mix].result())


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("mix", FAULT_MIXES)
def test_three_days_of_a_bigger_helpdesk_under_faults_match_a_run_without(
    long_pairs: dict[str, Future[Pair]], mix: str
) -> None:
    check(mix, long_pairs[mix].result())


def check(mix: str, pair: Pair) -> None:
    faulty, reference = pair.faulty, pair.reference
    what_happened = faulty.story()
    outcomes = sum((summary.counts for summary in faulty.summaries), Counter[str]())
    print(  # shown with -rP: what each mix did, for the record
        f"{mix}: {faulty.faults} faults, {len(faulty.summaries)} cycles, items "
        f"{dict(sorted(outcomes.items()))}, {faulty.retries} retries counted; "
        f"{reference.effects.total()} facts compared, {reference.written} of them written"
    )

    assert reference.settled
    # Fault-free: nothing failed on purpose. It may still count a retry: with the client's
    # timeout at 0.5 s, a loaded machine (CI) can answer one call past it, which is retried.
    assert reference.faults == 0
    assert reference.written > 0, "the scenario owes nothing: it tests nothing"

    assert faulty.settled, f"a day ended with something still due:\n{what_happened}"
    # A mix on every call hits every cycle (reads first); one on writes only may miss one.
    every_call = all(rule.endpoint == "*" for rule in FAULT_MIXES[mix])
    counted = [s.retries > 0 for s in faulty.summaries] if every_call else [faulty.retries > 0]
    assert all(counted), f"retries not counted:\n{what_happened}"
    comparisons = faults_support.compare(reference, faulty)
    for c in comparisons:
        print(  # shown with -rP: the exact comparison, per vendor
            f"    {c.vendor}: {c.compared} facts written compared, {c.duplicates} duplicates,"
            f" {c.missed} missed, {len(c.delayed)} delayed"
            f" ({faulty.writes[c.vendor]} write requests,"
            f" {sum(n for (v, _, _), n in faulty.faulted.items() if v == c.vendor)} faulted)"
        )
        for fact, when, late in c.delayed:
            print(f"      delayed {when} -> {late}: {faults_support.short(fact, 160)}")
    differences = faults_support.difference(reference.effects, faulty.effects)
    assert not differences, f"the helpdesks differ:\n{differences}\n\nfaults:\n{what_happened}"
    assert [(c.duplicates, c.missed) for c in comparisons] == [(0, 0)] * 3
    assert (faulty.owed_after, reference.owed_after) == (0, 0)
