"""The chaos harness (scripts/chaos.py) in miniature: SIGKILLed live workers over simulated
days leave the sandbox exactly as an un-killed run does - no duplicate, nothing missed - on
all three vendors: Zendesk tickets, Intercom conversations and tickets, Asana bugs.

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
    for vendor in ("zendesk", "intercom", "asana"):  # every vendor was written to
        assert findings.compared[f"{vendor} notes"] > 0, findings.report()


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_a_hundred_kills_over_ten_days_change_nothing_the_customers_see() -> None:
    findings = chaos.run(chaos.Scenario(kills=100, seed=7))

    assert findings.kills == 100
    assert findings.clean, findings.report()


FOOTER = "Noted.\n\n— followup-worker · {policy} · step 1/3 · fw-{key}"


def test_the_comparison_reports_a_note_written_twice_and_one_never_written() -> None:
    reference, killed = chaos.Observation(), chaos.Observation()
    for ref, key in (("zendesk:1", "aa"), ("asana:1206", "bb")):
        reference.note(ref, FOOTER.format(policy="awaiting-customer", key=key))
    for _ in range(2):
        killed.note("zendesk:1", FOOTER.format(policy="awaiting-customer", key="aa"))
    killed.note("asana:1206", "an engineer's comment, not the worker's")

    duplicates, missed, extra = chaos.compare(reference, killed)

    assert duplicates == ["zendesk:1: note fw-aa (awaiting-customer step 1) x2"]
    assert missed == ["asana:1206: note fw-bb (awaiting-customer step 1)"]
    assert extra == []


def test_a_state_change_made_more_often_than_in_the_reference_is_a_duplicate() -> None:
    reference, killed = chaos.Observation(), chaos.Observation()
    close, assign = ("intercom:7", "state", "closed"), ("intercom:7", "assignee", "2")
    reference.changes.update({close: 1, assign: 1})
    killed.changes.update({close: 2, assign: 2})  # an assignment sent again changes nothing

    duplicates, _, _ = chaos.compare(reference, killed)

    assert duplicates == ["intercom:7: state -> closed x2 (reference x1)"]
