"""A write is sent again after a lost answer only when a fresh read shows it did not land, and
only when the vendor would refuse a second copy should the first still be on its way."""

from __future__ import annotations

import pytest

from connectors.errors import OutcomeUnknown
from connectors.once import WriteOnce


class Vendor:
    """Answers (or loses the answer) as scripted; counts what was sent and read."""

    def __init__(self, *lost: bool, landed: bool = False) -> None:
        self._lost = list(lost)
        self._landed = landed
        self.sent = 0
        self.looked = 0

    async def send(self) -> str:
        self.sent += 1
        if self._lost and self._lost.pop(0):
            raise OutcomeUnknown("zendesk", "PUT", "/api/v2/tickets/1")
        return "ok"

    async def landed(self) -> bool:
        self.looked += 1
        return self._landed


@pytest.mark.parametrize(
    ("vendor", "answer", "landed_before", "sent", "looked", "calls"),
    [
        (Vendor(False), "ok", False, 1, 0, 1),
        (Vendor(True, landed=True), None, True, 1, 1, 2),
        (Vendor(True, False, landed=False), "ok", False, 2, 1, 3),
    ],
    ids=["answered", "lost-but-landed", "lost-and-absent"],
)
async def test_a_guarded_write_is_sent_again_when_it_did_not_land(
    vendor: Vendor, answer: str | None, landed_before: bool, sent: int, looked: int, calls: int
) -> None:
    once = WriteOnce(guarded=True)
    written = await once.send(vendor.send, vendor.landed)
    assert (written.answer, written.landed_before) == (answer, landed_before)
    assert (vendor.sent, vendor.looked, once.calls) == (sent, looked, calls)


async def test_idempotent_writes_are_resent_without_a_look() -> None:
    vendor, once = Vendor(True, False), WriteOnce()
    assert (await once.send(vendor.send, None)).answer == "ok"
    assert (vendor.sent, vendor.looked) == (2, 0)


async def test_an_unguarded_write_found_absent_is_left_to_the_next_cycle() -> None:
    # Absent now may be "still on its way": a second copy could land beside it.
    vendor, once = Vendor(True, False, landed=False), WriteOnce()
    with pytest.raises(OutcomeUnknown):
        await once.send(vendor.send, vendor.landed)
    assert (vendor.sent, vendor.looked, once.calls) == (1, 1, 2)


async def test_an_unguarded_write_found_on_the_case_is_done() -> None:
    vendor, once = Vendor(True, landed=True), WriteOnce()
    written = await once.send(vendor.send, vendor.landed)
    assert (written.answer, written.landed_before, vendor.sent) == (None, True, 1)


async def test_a_second_lost_answer_is_raised_not_sent_a_third_time() -> None:
    vendor, once = Vendor(True, True), WriteOnce(guarded=True)
    with pytest.raises(OutcomeUnknown):
        await once.send(vendor.send, vendor.landed)
    assert vendor.sent == 2
