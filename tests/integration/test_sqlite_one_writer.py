"""One writer per SQLite ledger (issue 14): two ``run --once --live`` processes on one SQLite
ledger, an overlapping cron tick, never both act on a tenant.

Leases share tenants between replicas on PostgreSQL only; on SQLite the second process is
refused while the first holds the ledger (:func:`worker.delivery.ledger.sole_writer`).
The race is real:
two processes started together against one sandbox serving all three vendors; the promise
checked is what the vendors show afterwards, whichever process got there first: no follow-up
signed twice, no email sent twice.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from worker.delivery.ledger import sole_writer
from worker.demo import HOLIDAYS_COUNTRY, MAPPING, TIMEZONE, DemoOptions, sandbox_config

server = pytest.importorskip("sandbox.server", reason="the sandbox package is not in this tree")

ROOT = Path(__file__).resolve().parents[2]
MARKER = re.compile(r"— followup-worker · .+? · step .+? · fw-([0-9a-zA-Z]+)")
CONFIG = sandbox_config(DemoOptions(days=1, tickets=60))
AT = CONFIG.start + timedelta(hours=1)  # the demo's cycle hour of its first day


@pytest.fixture
def sandbox() -> Iterator[Any]:
    with server.run_in_thread(CONFIG) as running:
        yield running


def worker_env(running: Any, ledger: Path) -> dict[str, str]:
    config, urls = running.config, running.urls
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(ROOT),
        "FOLLOWUP_ZENDESK_URL": urls["zendesk"],
        "FOLLOWUP_ZENDESK_EMAIL": config.zendesk_email,
        "FOLLOWUP_ZENDESK_TOKEN": config.zendesk_token,
        "FOLLOWUP_INTERCOM_URL": urls["intercom"],
        "FOLLOWUP_INTERCOM_TOKEN": config.intercom_token,
        "FOLLOWUP_ASANA_URL": urls["asana"],
        "FOLLOWUP_ASANA_TOKEN": config.asana_token,
        "FOLLOWUP_MAPPING": str(MAPPING),
        "FOLLOWUP_TIMEZONE": TIMEZONE,
        "FOLLOWUP_HOLIDAYS_COUNTRY": HOLIDAYS_COUNTRY,
        "FOLLOWUP_DATABASE_URL": f"sqlite:///{ledger}",
        "FOLLOWUP_LOG_LEVEL": "warning",
    }


def start_run(env: dict[str, str]) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "worker", "run", "--once", "--live", "--at", AT.isoformat()]
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def signed_and_emailed(state: dict[str, Any]) -> tuple[Counter[tuple[str, str]], Counter[str]]:
    """Each worker footer written since the sandbox's (frozen) clock started, by vendor and
    key, and each email by case and body, as many times as the sandbox holds them."""
    since = CONFIG.start.astimezone(UTC)
    signed: Counter[tuple[str, str]] = Counter()
    for record in state["zendesk"]["tickets"].values():
        for comment in record["comments"]:
            if datetime.fromisoformat(comment["created_at"]) >= since:
                signed.update(("zendesk", k) for k in MARKER.findall(comment["body"]))
    intercom = state["intercom"]
    for kind, records in (
        ("conversation", intercom["conversations"]),
        ("ticket", intercom["tickets"]),
    ):
        for record in records.values():
            for part in record[f"{kind}_parts"][f"{kind}_parts"]:
                if datetime.fromtimestamp(part["created_at"], UTC) >= since:
                    signed.update(("intercom", k) for k in MARKER.findall(part.get("body") or ""))
    for task in state["asana"].values():
        for story in task["stories"]:
            if datetime.fromisoformat(story["created_at"]) >= since:
                signed.update(("asana", k) for k in MARKER.findall(story.get("text") or ""))
    emailed = Counter(f"{m['ref']}|{m['body']}" for m in state["outbox"])
    return signed, emailed


def test_a_run_on_a_sqlite_ledger_another_process_holds_is_refused(
    sandbox: Any, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.sqlite3"
    with sole_writer(f"sqlite:///{ledger}"):
        refused = start_run(worker_env(sandbox, ledger))
        out, err = refused.communicate(timeout=300)
    assert refused.returncode == 2, out + err
    assert err.count("\n") == 1  # one line, no traceback
    assert (
        f"the SQLite ledger {ledger} is in use by another followup process (pid {os.getpid()})"
        in err
    )
    signed, emailed = signed_and_emailed(sandbox.sandbox.dump())
    assert (signed, emailed) == (Counter(), Counter())  # it wrote nothing


def test_two_live_runs_racing_on_one_sqlite_ledger_write_nothing_twice(
    sandbox: Any, tmp_path: Path
) -> None:
    env = worker_env(sandbox, tmp_path / "ledger.sqlite3")
    runs = [start_run(env), start_run(env)]
    outputs = [run.communicate(timeout=300) for run in runs]
    signed, emailed = signed_and_emailed(sandbox.sandbox.dump())

    duplicates = Counter(vendor for (vendor, _), n in signed.items() if n > 1)
    duplicates["email"] += sum(n > 1 for n in emailed.values())
    print(f"signed {len(signed)}, emails {len(emailed)}, duplicates {dict(duplicates)}")
    assert duplicates.total() == 0
    assert {vendor for vendor, _ in signed} == {"zendesk", "intercom", "asana"}
    for run, (out, err) in zip(runs, outputs, strict=True):
        # each either did the cycle, or was refused in one line because the other held it
        assert run.returncode in (0, 1) or "is in use by another followup process" in err, out + err
