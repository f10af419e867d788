"""SIGTERM / SIGINT mid-cycle: the case in hand is finished, no new one starts, exit 0."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("worker_sigterm_child.py")


@pytest.mark.parametrize("received", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_mid_cycle_finishes_the_case_in_hand_and_exits_0(
    tmp_path: Path, received: signal.Signals
) -> None:
    child = subprocess.Popen(
        [sys.executable, str(CHILD), f"sqlite:///{tmp_path / 'ledger.sqlite3'}"],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdin is not None
    assert child.stdout.readline() == "writing zendesk:1\n"

    child.send_signal(received)
    assert child.stderr is not None
    # Release the write only once the worker has taken the signal in.
    for line in child.stderr:
        if "shutdown requested" in line:
            break
    out, _ = child.communicate("go\n", timeout=60)

    assert child.returncode == 0
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["written"] == ["zendesk:1"]
    assert summary["applied"] == 1
    assert summary["interrupted"] is True
