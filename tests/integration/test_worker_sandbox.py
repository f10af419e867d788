"""`followup run --once` as a process against the sandbox: the promises ops rely on.

* dry-run writes nothing (the sandbox's write counter stays at zero);
* a second run right after a live one does nothing;
* a process killed between intent and outcome (its write landed, the answer never came)
  leaves no duplicate after restart.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

server = pytest.importorskip("sandbox.server", reason="the sandbox package is not in this tree")
faults = pytest.importorskip("sandbox.faults")

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)  # a Wednesday afternoon
SLOW_WRITE_SECONDS = 3.0


@dataclass
class Trial:
    """A sandbox, a ledger and the environment of a worker pointed at both."""

    running: Any
    ledger: Path
    env: dict[str, str]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "worker", "run", "--once", "--at", START.isoformat(), *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def start(self, *args: str) -> subprocess.Popen[str]:
        command = [sys.executable, "-m", "worker", "run", "--once", "--at", START.isoformat()]
        with (self.ledger.parent / "worker.err").open("w") as log:  # the child keeps its copy
            return subprocess.Popen(
                [*command, *args],
                cwd=ROOT,
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=log,
                text=True,
            )

    def admin(self, path: str) -> Any:
        return httpx.get(f"{self.running.urls['admin']}{path}", timeout=10).json()

    def writes(self, counter: str = "writes") -> int:
        return int(self.admin("/stats")["total"][counter])

    def pending(self) -> list[str]:
        """Case refs of attempts without an outcome."""
        if not self.ledger.exists():
            return []
        with sqlite3.connect(self.ledger) as db:
            try:
                rows = db.execute(
                    "SELECT i.case_ref FROM followup_attempts a"
                    " JOIN followup_intents i ON i.id = a.intent_id WHERE a.outcome IS NULL"
                ).fetchall()
            except sqlite3.OperationalError:  # not migrated yet
                return []
        return [ref for (ref,) in rows]

    def comments(self, case_ref: str) -> list[str]:
        ticket = case_ref.removeprefix("zendesk:")
        config = self.running.config
        response = httpx.get(
            f"{self.running.urls['zendesk']}/api/v2/tickets/{ticket}/comments.json",
            auth=(f"{config.zendesk_email}/token", config.zendesk_token),
            timeout=10,
        )
        return [comment["body"] for comment in response.json()["comments"]]


@contextmanager
def _trial(tmp_path: Path, plan: Any = None) -> Iterator[Trial]:
    overrides: dict[str, Any] = {"tickets": 80, "start": START, "frozen_clock": True, "limits": {}}
    if plan is not None:
        overrides["faults"] = plan
    with server.run_in_thread(**overrides) as running:
        ledger = tmp_path / "ledger.sqlite3"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(ROOT),
            "FOLLOWUP_ZENDESK_URL": running.urls["zendesk"],
            "FOLLOWUP_ZENDESK_EMAIL": running.config.zendesk_email,
            "FOLLOWUP_ZENDESK_TOKEN": running.config.zendesk_token,
            "FOLLOWUP_ZENDESK_RATE_LIMIT": "100000",
            "FOLLOWUP_MAPPING": str(ROOT / "deploy" / "mapping.sandbox.yaml"),
            "FOLLOWUP_DATABASE_URL": f"sqlite:///{ledger}",
            "FOLLOWUP_LOG_FORMAT": "json",
        }
        yield Trial(running, ledger, env)


def _wait_until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:.0f} s for {what}")
        time.sleep(0.02)


@pytest.fixture
def trial(tmp_path: Path) -> Iterator[Trial]:
    with _trial(tmp_path) as trial:
        yield trial


def test_dry_run_writes_nothing_and_prints_the_plan(trial: Trial) -> None:
    result = trial.run("--json")

    assert result.returncode == 0, result.stderr[-2000:]
    assert '"dry_run": true' in result.stdout
    assert '"planned": 0' not in result.stdout
    assert trial.writes() == 0


def test_a_second_run_right_after_the_first_does_nothing(trial: Trial) -> None:
    first = trial.run("--live")
    assert first.returncode == 0, first.stderr[-2000:]
    written = trial.writes()
    assert written > 0

    second = trial.run("--live", "--json")

    assert second.returncode == 0, second.stderr[-2000:]
    assert '"planned": 0' in second.stdout
    assert trial.writes() == written


def test_a_kill_between_intent_and_outcome_leaves_no_duplicate(tmp_path: Path) -> None:
    # The first ticket update is applied SLOW_WRITE_SECONDS late: the worker is killed while
    # it waits for the answer, so its intent is recorded, its write lands, its outcome never.
    slow_first_write = faults.FaultPlan(
        [faults.FaultRule("zendesk", "slow", 1.0, "PUT *", times=1)],
        slow_seconds=SLOW_WRITE_SECONDS,
    )
    with _trial(tmp_path, slow_first_write) as trial:
        trial.env["FOLLOWUP_CONCURRENCY"] = "1"  # one case in hand when the kill comes
        worker = trial.start("--live")
        _wait_until(lambda: bool(trial.pending()) or worker.poll() is not None, "an intent")
        # The intent is recorded; the update goes out right after (a read or two, no waiting)
        # and stays in the vendor for SLOW_WRITE_SECONDS. Kill in the middle of that window.
        time.sleep(SLOW_WRITE_SECONDS / 3)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        log = (trial.ledger.parent / "worker.err").read_text()
        assert len(trial.pending()) == 1, (worker.returncode, log[-3000:])
        [interrupted] = trial.pending()
        _wait_until(lambda: trial.writes("writes_applied") > 0, "the slow write to land")
        landed = trial.comments(interrupted)

        restarted = trial.run("--live")

        assert restarted.returncode == 0, restarted.stderr[-2000:]
        reconciled = [line for line in restarted.stderr.splitlines() if "reconciled" in line]
        assert any(f'"case": "{interrupted}"' in line for line in reconciled), reconciled
        assert trial.pending() == []
        # Nothing landed is written twice: not a whole update (its footer landed), not the
        # reply of a reply-then-note item (its marker tag landed).
        after = trial.comments(interrupted)
        assert after[: len(landed)] == landed
        # The case may carry the footers of earlier steps (the generated history has some):
        # each follow-up's key is on it once.
        keys = [line.rsplit("· ", 1)[-1] for line in after if "— followup-worker ·" in line]
        assert keys, after
        assert len(keys) == len(set(keys)), after
        assert len(after) == len(set(after)), after


def _closed_port() -> int:
    with socket.socket() as probe:  # bound, never listening: connecting is refused
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    ("setting", "value", "cause"),
    [
        ("FOLLOWUP_ZENDESK_TOKEN", "wrong-token", "-> 401"),
        ("FOLLOWUP_ZENDESK_URL", "http://127.0.0.1:{port}/zendesk", "ConnectError"),
    ],
)
def test_a_vendor_failure_prints_its_cause_in_one_line(
    trial: Trial, setting: str, value: str, cause: str
) -> None:
    # Issue 14: the run printed only "1 errors"; the cause was in a JSON traceback.
    trial.env[setting] = value.format(port=_closed_port())
    trial.env["FOLLOWUP_HTTP_BACKOFF"] = "0.01"
    result = trial.run()
    assert result.returncode == 1
    errors = [line for line in result.stdout.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stdout[-2000:]
    assert errors[0].startswith("error: default: ")
    assert cause in errors[0]
    assert "wrong-token" not in result.stdout


def _mapping_with_a_missing_group(folder: Path, accepted: list[str]) -> Path:
    text = (ROOT / "deploy" / "mapping.sandbox.yaml").read_text(encoding="utf-8")
    assert "groups: [Support, Refunds," in text
    text = text.replace("groups: [Support, Refunds,", "groups: [Support, Refundz,")
    path = folder / "mapping.yaml"
    path.write_text(f"{text}\naccept_unresolved: {accepted!r}\n", encoding="utf-8")
    return path


def test_a_live_run_stops_before_any_write_on_a_name_the_vendor_lacks(
    trial: Trial, tmp_path: Path
) -> None:
    # Issue 14: `connectors check` failed, but `run --once --live` applied 1,891 follow-ups.
    trial.env["FOLLOWUP_MAPPING"] = str(_mapping_with_a_missing_group(tmp_path, []))
    stopped = trial.run("--live")
    assert stopped.returncode == 2
    assert stopped.stderr.splitlines()[-1] == "default: zendesk group 'Refundz' is not in zendesk"
    assert "nothing written" in stopped.stderr
    assert trial.writes() == 0
    assert trial.run().returncode in (0, 1)  # a dry run shows the plan all the same


def test_a_name_the_operator_accepts_does_not_stop_a_live_run(trial: Trial, tmp_path: Path) -> None:
    trial.env["FOLLOWUP_MAPPING"] = str(_mapping_with_a_missing_group(tmp_path, ["Refundz"]))
    accepted = trial.run("--live")
    assert accepted.returncode in (0, 1), accepted.stderr[-2000:]
    assert trial.writes() > 0
