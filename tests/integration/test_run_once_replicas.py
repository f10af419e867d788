"""``run --once`` replicas started together against one PostgreSQL share the tenants: each
claims one tenant at a time, so more than one does work, and each tenant is worked once.

The replicas are processes (``once_replica_child.py``); each holds the first tenant it claimed
until every replica has claimed one, so who starts first never decides the outcome.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.integration.leases_support import postgres_schema_url
from worker.delivery.ledger import engine_url

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("once_replica_child.py")
TENANTS = [f"t{n}" for n in range(6)]
CASES_PER_TENANT = 2
PATIENCE_SECONDS = 90.0  # only to stop a broken build from hanging; never the assertion


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + PATIENCE_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


def holders(engine: sa.Engine) -> Counter[str]:
    """Replica -> leases in force it holds, by the database's clock."""
    query = sa.text(
        "SELECT holder FROM tenant_leases"
        " WHERE holder IS NOT NULL AND expires_at > statement_timestamp()"
    )
    try:
        with engine.connect() as conn:
            return Counter(conn.scalars(query))
    except sa.exc.ProgrammingError:  # no replica has created the table yet
        return Counter()


def attempts_by_tenant(engine: sa.Engine) -> dict[str, tuple[int, int]]:
    """tenant -> (cycles that wrote to it, live attempts)."""
    query = sa.text(
        "SELECT i.tenant, count(DISTINCT a.cycle_id), count(*) FROM followup_attempts a"
        " JOIN followup_intents i ON i.id = a.intent_id WHERE NOT i.dry_run GROUP BY i.tenant"
    )
    with engine.connect() as conn:
        return {tenant: (cycles, attempts) for tenant, cycles, attempts in conn.execute(query)}


def start(url: str, name: str, go: Path, logs: Path) -> subprocess.Popen[str]:
    with (logs / f"{name}.err").open("w") as err:  # the child keeps its copy
        return subprocess.Popen(
            [sys.executable, str(CHILD), url, name, str(go)],
            cwd=ROOT,
            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )


def summary_of(replica: subprocess.Popen[str], logs: Path, name: str) -> dict[str, Any]:
    out, _ = replica.communicate(timeout=PATIENCE_SECONDS)
    assert replica.returncode == 0, (logs / f"{name}.err").read_text()[-3000:]
    summary: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return summary


def test_three_run_once_replicas_share_six_tenants_each_worked_once(tmp_path: Path) -> None:
    go = tmp_path / "go"
    names = ["replica-1", "replica-2", "replica-3"]
    with postgres_schema_url() as url:
        engine = sa.create_engine(engine_url(url))
        replicas = [start(url, name, go, tmp_path) for name in names]
        try:
            wait_until(lambda: set(holders(engine)) == set(names), "each replica to claim")
            # Each took one tenant, not a share decided by who happened to start first.
            assert holders(engine) == dict.fromkeys(names, 1)
            go.touch()
            summaries = [summary_of(r, tmp_path, n) for r, n in zip(replicas, names, strict=True)]
        finally:
            for replica in replicas:
                if replica.poll() is None:
                    replica.kill()
                    replica.wait()
        written = attempts_by_tenant(engine)

        # Alone, once they are gone: a new run, which serves every tenant again (nothing due).
        again = summary_of(start(url, "later", go, tmp_path), tmp_path, "later")
        engine.dispose()

    worked = {s["replica"]: s["tenants"] for s in summaries}
    print(f"\nrun --once replicas started together: {worked}")
    assert sorted(t for tenants in worked.values() for t in tenants) == TENANTS
    assert all(worked.values()), "a replica got no tenant"
    assert sum(s.get("applied", 0) for s in summaries) == len(TENANTS) * CASES_PER_TENANT
    assert all(s["ok"] for s in summaries)
    assert written == dict.fromkeys(TENANTS, (1, CASES_PER_TENANT))
    assert sorted(again["tenants"]) == TENANTS
    assert again.get("applied", 0) == 0
