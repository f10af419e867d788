"""The chaos harness (scripts/chaos.py) in miniature: SIGKILLed live workers over simulated
days leave the sandbox exactly as an un-killed run does - no duplicate, nothing missed.

The long run (100 kills) is ``python scripts/chaos.py --kills 100 --seed 7`` or
``pytest tests/integration/test_chaos_short.py --run-slow``.
"""

from __future__ import annotations

import pytest

pytest.importorskip("sandbox.server", reason="the sandbox package is not in this tree")

from tests.integration.chaos_support import load_chaos

chaos = load_chaos()


def test_five_kills_over_two_days_change_nothing_the_customers_see() -> None:
    findings = chaos.run(chaos.Scenario(kills=5, seed=11, tickets=40, days=2))

    assert findings.kills == 5
    assert findings.clean, findings.report()


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_a_hundred_kills_over_ten_days_change_nothing_the_customers_see() -> None:
    findings = chaos.run(chaos.Scenario(kills=100, seed=7))

    assert findings.kills == 100
    assert findings.clean, findings.report()


def test_the_comparison_reports_a_note_written_twice_and_one_never_written() -> None:
    reference, killed = chaos.Observation(), chaos.Observation()
    for seen in (reference, killed):
        seen.steps[1, "aa"] = seen.steps[2, "bb"] = ("awaiting-customer", 1)
    reference.notes.update({(1, "aa"): 1, (2, "bb"): 1})
    killed.notes.update({(1, "aa"): 2})

    duplicates, missed, extra = chaos.compare(reference, killed)

    assert duplicates == ["ticket 1: note fw-aa (awaiting-customer step 1) x2"]
    assert missed == ["ticket 2: note fw-bb (awaiting-customer step 1)"]
    assert extra == []
