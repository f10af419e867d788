"""Logs: the context every event carries, one summary per cycle, and no secret ever printed."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from structlog.testing import capture_logs

from connectors.fake import Fault
from tests.unit.worker_support import MONDAY, fake_zendesk, make_runtime
from worker.delivery.ledger import Ledger
from worker.logs import CONTEXT_FIELDS, REDACTED, RedactSecrets, configure_logging
from worker.runtime.cycle import run_cycle

TOKEN = "zd-very-secret-token"
EMAIL = "worker@acme.test"


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    opened = Ledger.open(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    yield opened
    opened.close()


@pytest.fixture(autouse=True)
def reset_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.reset_defaults()
    root.handlers, root.level = handlers, level


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"token": "abc"}, {"token": REDACTED}),
        (
            {"zendesk_token": "abc", "Authorization": "Bearer x"},
            {"zendesk_token": REDACTED, "Authorization": REDACTED},
        ),
        ({"detail": f"401 with {TOKEN}"}, {"detail": f"401 with {REDACTED}"}),
        ({"user": EMAIL}, {"user": REDACTED}),
        (
            {"request": {"headers": {"authorization": "Basic x"}, "url": f"/x?t={TOKEN}"}},
            {"request": {"headers": {"authorization": REDACTED}, "url": f"/x?t={REDACTED}"}},
        ),
        ({"ids": [TOKEN, 3]}, {"ids": [REDACTED, 3]}),
        ({"error": ValueError(f"bad {TOKEN}")}, {"error": f"bad {REDACTED}"}),
        ({"token": None, "count": 3, "ok": True}, {"token": None, "count": 3, "ok": True}),
    ],
)
def test_redaction(event: dict[str, object], expected: dict[str, object]) -> None:
    with capture_logs(processors=[RedactSecrets({TOKEN, EMAIL})]) as logs:
        structlog.get_logger().info("x", **event)
    [captured] = logs
    assert {k: v for k, v in captured.items() if k not in ("event", "log_level")} == expected


async def test_item_events_carry_the_whole_context(ledger: Ledger) -> None:
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        await run_cycle(make_runtime(ledger, fake_zendesk("1")), at=MONDAY)

    [followup] = [e for e in logs if e["event"] == "follow-up"]
    assert followup["tenant"] == "acme"
    assert followup["case"] == "zendesk:1"
    assert followup["policy"] == "general-inquiry"
    assert followup["step"] == "1/3"
    assert followup["action"] == "note"
    assert followup["dry_run"] is False
    assert followup["outcome"] == "applied"
    assert followup["cycle_id"]
    summaries = [e for e in logs if e["event"] == "cycle finished"]
    assert [(s["planned"], s["applied"], s["ok"]) for s in summaries] == [(1, 1, True)]


async def test_json_logs_never_contain_a_secret(ledger: Ledger) -> None:
    out = io.StringIO()
    configure_logging(secrets={TOKEN, EMAIL}, log_format="json", stream=out)
    fake = fake_zendesk("1", "2")
    fake.inject("1", Fault.RAISE, error=PermissionError(f"401 for {EMAIL}/token:{TOKEN}"))
    await run_cycle(make_runtime(ledger, fake), at=MONDAY)
    fake.fetch_error = ConnectionError(f"reset while sending token {TOKEN}")  # a traceback
    await run_cycle(make_runtime(ledger, fake), at=MONDAY)
    structlog.get_logger().error("oops", headers={"Authorization": f"Basic {TOKEN}"})

    text = out.getvalue()
    assert TOKEN not in text
    assert EMAIL not in text
    events = [json.loads(line) for line in text.splitlines()]
    assert all(set(CONTEXT_FIELDS) <= event.keys() for event in events)
    failed = next(e for e in events if e["event"] == "follow-up" and e["case"] == "zendesk:1")
    assert failed["level"] == "warning"
    assert REDACTED in failed["detail"]
    unreadable = next(e for e in events if e["event"] == "cases unreadable; the rest wait")
    assert "Traceback" in unreadable["exception"]
    assert events[-1]["headers"] == {"Authorization": REDACTED}


def test_standard_library_logs_are_rendered_and_redacted_too() -> None:
    out = io.StringIO()
    configure_logging(secrets={TOKEN}, log_format="json", stream=out)

    logging.getLogger("apscheduler.scheduler").warning("job missed; token %s", TOKEN)
    logging.getLogger("httpx").info("HTTP Request: GET /tickets")  # below WARNING: dropped

    [event] = [json.loads(line) for line in out.getvalue().splitlines()]
    assert event["event"] == f"job missed; token {REDACTED}"
    assert event["logger"] == "apscheduler.scheduler"
    assert event["level"] == "warning"
