"""The footer the worker signs its notes with, and reading it back."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connectors.footer import parse_footer, with_footer
from policies.model import Case, CaseKind, PlanItem, Source, Status

AT = datetime(2026, 3, 10, tzinfo=UTC)
CASE = Case(Source.ZENDESK, "1", CaseKind.TICKET, Status.PENDING, AT, AT)
ITEM = PlanItem(CASE, "refund", "day2", 2, 3, (), "why", "0a1b2c3d4e5f6a7b")
FOOTER = "— followup-worker · refund · step 2/3 · fw-0a1b2c3d4e5f6a7b"


@pytest.mark.parametrize(
    ("body", "signed"),
    [("2/3", f"2/3\n\n{FOOTER}"), ("2/3\n\n", f"2/3\n\n{FOOTER}"), ("  ", FOOTER)],
)
def test_with_footer_appends_one_signature_line(body: str, signed: str) -> None:
    assert with_footer(body, ITEM) == signed


@pytest.mark.parametrize(
    ("text", "found"),
    [
        (f"2/3\n\n{FOOTER}", ("refund", 2, "0a1b2c3d4e5f6a7b")),
        (f"<p>2/3</p><p>{FOOTER}</p>", ("refund", 2, "0a1b2c3d4e5f6a7b")),  # Intercom HTML
        (f"quoted {FOOTER.replace('2/3', '1/3')}\n{FOOTER}", ("refund", 2, "0a1b2c3d4e5f6a7b")),
        (
            "— followup-worker · bug every 5 days · step 1/1 · fw-abc",
            ("bug every 5 days", 1, "abc"),
        ),
        ("customer unresponsive - closing ticket", None),
        ("followup-worker step 2/3 fw-abc", None),
    ],
)
def test_parse_footer(text: str, found: tuple[str, int, str] | None) -> None:
    mark = parse_footer(text, AT)
    assert (None if mark is None else (mark.policy, mark.step, mark.key)) == found
    assert mark is None or mark.at == AT


@pytest.mark.parametrize(
    ("step", "max_steps"), [(2, 3), (4, 3), (7, 0)], ids=["step", "after-last", "open-ended"]
)
def test_every_footer_written_reads_back_as_its_step(step: int, max_steps: int) -> None:
    # "after 3/3" and "#7" too: a policy's final handling that does not read back as done
    # is planned again every day (only the ledger would stop a second write).
    item = PlanItem(CASE, "refund", "r", step, max_steps, (), "why", "0a1b2c3d4e5f6a7b")
    mark = parse_footer(with_footer("done", item), AT)
    assert mark is not None
    assert (mark.policy, mark.step, mark.key) == ("refund", step, "0a1b2c3d4e5f6a7b")
