"""A replica process killed with SIGKILL (no cleanup) loses its tenants to the survivors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

import pytest
import sqlalchemy as sa

from tests.integration.leases_support import POSTGRES_URL, lease_schema
from worker.runtime.leases import lease_metadata

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]
REPLICA = Path(__file__).with_name("leases_replica.py")
TENANTS = 20
TTL_SECONDS = 2.0
PATIENCE_SECONDS = 60.0  # only to stop a broken build from hanging; never the assertion


class Holding(NamedTuple):
    holder: str
    fencing_token: int
    acquired_at: datetime
    expires_at: datetime


def holdings(engine: sa.Engine) -> dict[str, Holding]:
    """Who holds which tenant right now, by the database's clock."""
    leases = lease_metadata.tables["tenant_leases"]
    query = sa.select(
        leases.c.tenant_id,
        leases.c.holder,
        leases.c.fencing_token,
        leases.c.acquired_at,
        leases.c.expires_at,
    ).where(leases.c.holder.is_not(None), leases.c.expires_at > sa.func.statement_timestamp())
    with engine.connect() as conn:
        return {row.tenant_id: Holding(*row[1:]) for row in conn.execute(query)}


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + PATIENCE_SECONDS
    while not condition():
        assert time.monotonic() < deadline, "replicas never reached the expected state"
        time.sleep(0.05)


@pytest.fixture
def schema_engine() -> Iterator[tuple[sa.Engine, str]]:
    with lease_schema() as scoped:
        yield scoped


def test_a_killed_replicas_tenants_are_taken_over(schema_engine: tuple[sa.Engine, str]) -> None:
    engine, schema = schema_engine
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    replicas = {
        name: subprocess.Popen(
            [
                sys.executable,
                str(REPLICA),
                POSTGRES_URL,
                schema,
                name,
                str(TENANTS),
                str(TTL_SECONDS),
            ],
            cwd=ROOT,
            env=env,
        )
        for name in ("r1", "r2", "r3")
    }
    try:

        def spread() -> bool:
            per_replica = [h.holder for h in holdings(engine).values()]
            return len(per_replica) == TENANTS and all(
                per_replica.count(name) >= 6 for name in replicas
            )

        wait_until(spread)
        victims = {t: h for t, h in holdings(engine).items() if h.holder == "r3"}

        replicas["r3"].send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        replicas["r3"].wait()

        def taken_over() -> bool:
            now_held = holdings(engine)
            return len(now_held) == TENANTS and all(h.holder != "r3" for h in now_held.values())

        wait_until(taken_over)
        takeover_seconds = time.monotonic() - killed_at
        after = holdings(engine)
    finally:
        for process in replicas.values():
            if process.poll() is None:
                process.terminate()
        for process in replicas.values():
            process.wait(timeout=PATIENCE_SECONDS)

    lag_after_lapse = max(
        after[t].acquired_at - h.expires_at for t, h in victims.items()
    ).total_seconds()
    print(
        f"\ntakeover of {len(victims)} tenants after SIGKILL: {takeover_seconds:.2f} s "
        f"(TTL {TTL_SECONDS} s, renewals every {TTL_SECONDS / 3:.2f} s, polled every 50 ms); "
        f"claimed at most {lag_after_lapse * 1000:.0f} ms after the dead leases lapsed"
    )
    assert [h.holder for h in after.values()].count("r1") == 10  # the survivors split evenly
    for tenant, dead in victims.items():
        assert after[tenant].fencing_token > dead.fencing_token  # the dead replica is fenced off
        assert after[tenant].acquired_at >= dead.expires_at  # not taken while still in force
