"""Three replicas, one PostgreSQL ledger, a sandbox with 20 tenants; one replica is SIGKILLed
in the middle of its cycle.

Each replica is a loop of ``followup run --once --live`` processes (what a cron or a Kubernetes
CronJob per replica does), each process a fresh replica id. The promises checked:

* zero duplicates: no ``fw-<key>`` marker twice on any ticket of any tenant;
* every tenant served: a last run, alone, finds every due follow-up already done;
* takeover: nobody claims the killed replica's tenants before its leases expired, and the
  survivors do claim them (the delay is printed; timings are never asserted).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest
import sqlalchemy as sa

from tests.integration.leases_support import POSTGRES_URL
from worker.leases import lease_metadata

server = pytest.importorskip("sandbox.server", reason="the sandbox package is not in this tree")
faults = pytest.importorskip("sandbox.faults")

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)  # a Wednesday afternoon
TENANTS = tuple(f"t{n:02d}" for n in range(1, 21))
TICKETS_PER_TENANT = 8
TTL_SECONDS = 3.0
SLOW_WRITE_SECONDS = 0.4  # some writes linger, so the kill lands with writes in flight
PATIENCE_SECONDS = 90.0  # only to stop a broken build from hanging; never the assertion
MARKER = re.compile(r"fw-[0-9a-f]+")


@contextmanager
def fresh_database() -> Iterator[str]:
    """A database of its own (``followup_replicas_<random>``), dropped afterwards."""
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect():
            pass
    except sa.exc.OperationalError as exc:
        admin.dispose()
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}: {exc.orig}")
    name = f"followup_replicas_{secrets.token_hex(4)}"
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    try:
        yield sa.make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def tenants_file(folder: Path, base_url: str, email: str) -> Path:
    mapping = ROOT / "deploy" / "mapping.sandbox.yaml"
    entries = [
        {
            "name": name,
            "zendesk_url": f"{base_url}/t/{name}/zendesk",
            "zendesk_email": email,
            "zendesk_token_env": "SANDBOX_ZENDESK_TOKEN",
            "mapping": str(mapping),
        }
        for name in TENANTS
    ]
    path = folder / "tenants.yaml"
    path.write_text(json.dumps({"tenants": entries}), encoding="utf-8")  # JSON is YAML
    return path


@dataclass
class Replica:
    """A loop of ``run --once`` processes until stopped, or until its process is killed."""

    name: str
    env: dict[str, str]
    logs: Path
    runs: int = 0
    process: subprocess.Popen[str] | None = None
    summaries: list[dict[str, Any]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        command = [sys.executable, "-m", "worker", "run", "--once", "--live", "--json"]
        while not self._stop.is_set():
            with (self.logs / f"{self.name}-{self.runs}.err").open("w") as err:
                self.process = subprocess.Popen(
                    [*command, "--at", START.isoformat()],
                    cwd=ROOT,
                    env=self.env,
                    stdout=subprocess.PIPE,
                    stderr=err,
                    text=True,
                )
                out, _ = self.process.communicate()
            if self.process.returncode == -signal.SIGKILL:
                return
            if out.strip():
                self.summaries.append(json.loads(out))
            self.runs += 1

    def kill(self) -> None:
        self._stop.set()
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=PATIENCE_SECONDS)


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + PATIENCE_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


class Grant(NamedTuple):
    holder: str | None
    fencing_token: int
    acquired_at: datetime | None
    expires_at: datetime | None
    in_force: bool


def grants(engine: sa.Engine) -> dict[str, Grant]:
    """tenant -> its latest lease grant, in force or not (by the database's clock)."""
    leases = lease_metadata.tables["tenant_leases"]
    in_force = sa.and_(
        leases.c.holder.is_not(None), leases.c.expires_at > sa.func.statement_timestamp()
    )
    query = sa.select(
        leases.c.tenant_id,
        leases.c.holder,
        leases.c.fencing_token,
        leases.c.acquired_at,
        leases.c.expires_at,
        in_force,
    )
    try:
        with engine.connect() as conn:
            return {row.tenant_id: Grant(*row[1:]) for row in conn.execute(query)}
    except sa.exc.ProgrammingError:  # the first replica has not created the table yet
        return {}


def pending_intents(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return (
            conn.scalar(sa.text("SELECT count(*) FROM followup_attempts WHERE outcome IS NULL"))
            or 0
        )


def tenant_reads(base_url: str) -> dict[str, int]:
    """Vendor reads each tenant has served so far."""
    with httpx.Client(base_url=base_url, timeout=10) as client:
        return {
            tenant: int(client.get(f"/t/{tenant}/_admin/stats").json()["total"]["reads"])
            for tenant in TENANTS
        }


def markers_by_ticket(base_url: str, email: str, token: str) -> Counter[tuple[str, str, str]]:
    """(tenant, ticket, marker) -> how many comments carry it, over every tenant's tickets."""
    seen: Counter[tuple[str, str, str]] = Counter()
    with httpx.Client(base_url=base_url, timeout=10, auth=(f"{email}/token", token)) as client:
        for tenant in TENANTS:
            listed = client.get(f"/t/{tenant}/_admin/tickets", params={"limit": 10_000}).json()
            for ticket in listed["tickets"]:
                url = f"/t/{tenant}/zendesk/api/v2/tickets/{ticket['id']}/comments.json"
                for comment in client.get(url).json()["comments"]:
                    for marker in set(MARKER.findall(comment["body"])):
                        seen[(tenant, str(ticket["id"]), marker)] += 1
    return seen


def test_three_replicas_one_killed_no_duplicate_every_tenant_served(tmp_path: Path) -> None:
    slow_writes = faults.FaultPlan(
        [faults.FaultRule("zendesk", "slow", 0.1, "PUT *")], slow_seconds=SLOW_WRITE_SECONDS
    )
    with (
        fresh_database() as database_url,
        server.run_in_thread(
            tickets=TICKETS_PER_TENANT,
            start=START,
            frozen_clock=True,
            limits={},
            tenants=TENANTS,
            faults=slow_writes,
        ) as sandbox,
    ):
        config = sandbox.config
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(ROOT),
            "SANDBOX_ZENDESK_TOKEN": config.zendesk_token,
            "FOLLOWUP_TENANTS_FILE": str(
                tenants_file(tmp_path, sandbox.base_url, config.zendesk_email)
            ),
            "FOLLOWUP_DATABASE_URL": database_url,
            "FOLLOWUP_LEASE_TTL": str(TTL_SECONDS),
            "FOLLOWUP_ZENDESK_RATE_LIMIT": "100000",
            "FOLLOWUP_CONCURRENCY": "4",
            "FOLLOWUP_LOG_FORMAT": "json",
        }
        engine = sa.create_engine(database_url)
        replicas = [Replica(f"replica-{n}", env, tmp_path) for n in (1, 2, 3)]
        try:
            for replica in replicas:
                replica.start()

            # Kill the replica holding the most tenants while its cycle is writing.
            def victim_writing() -> Replica | None:
                held = Counter(g.holder for g in grants(engine).values() if g.in_force)
                for replica in sorted(replicas, key=lambda r: -held[_holder_of(r, held)]):
                    if replica.process and _holder_of(replica, held) and pending_intents(engine):
                        return replica
                return None

            wait_until(lambda: victim_writing() is not None, "a replica writing")
            victim = victim_writing()
            assert victim is not None
            before = grants(engine)
            holder = _holder_of(victim, Counter(g.holder for g in before.values() if g.in_force))
            orphaned = {t: g for t, g in before.items() if g.in_force and g.holder == holder}
            victim.kill()
            killed_at = time.monotonic()
            in_flight = pending_intents(engine)
            # The first grant after the victim's (a higher fencing token) of each of its tenants,
            # and how long after the kill it was seen.
            regranted: dict[str, tuple[Grant, float]] = {}

            def taken_over() -> bool:
                for tenant, grant in grants(engine).items():
                    old = orphaned.get(tenant)
                    if old and tenant not in regranted and grant.fencing_token > old.fencing_token:
                        regranted[tenant] = (grant, time.monotonic() - killed_at)
                return len(regranted) == len(orphaned)

            wait_until(taken_over, "the survivors to take the killed replica's tenants over")
            for tenant, (grant, _) in regranted.items():
                assert grant.holder != holder
                assert grant.acquired_at is not None
                assert orphaned[tenant].expires_at is not None
                assert grant.acquired_at >= orphaned[tenant].expires_at, (
                    f"{tenant} claimed before its lease expired"
                )
            takeover_first_s = min(seconds for _, seconds in regranted.values())
            takeover_all_s = max(seconds for _, seconds in regranted.values())

            # Let the survivors finish: another run each once the dead one's intents are settled.
            survivors = [r for r in replicas if r is not victim]
            wait_until(
                lambda: pending_intents(engine) == 0,
                "the killed replica's intents to be reconciled",
            )
            settled_runs = {r.name: r.runs for r in survivors}
            wait_until(
                lambda: all(r.runs > settled_runs[r.name] for r in survivors),
                "another run of each survivor",
            )
        finally:
            for replica in replicas:
                replica.stop()

        # Alone now, a last run claims all 20 tenants, reads them all, finds nothing left to do.
        reads_before = tenant_reads(sandbox.base_url)
        last = subprocess.run(
            [
                sys.executable,
                "-m",
                "worker",
                "run",
                "--once",
                "--live",
                "--json",
                "--at",
                START.isoformat(),
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=PATIENCE_SECONDS,
            check=False,
        )
        assert last.returncode == 0, last.stderr[-3000:]
        summary = json.loads(last.stdout)
        reads_after = tenant_reads(sandbox.base_url)
        seen = markers_by_ticket(sandbox.base_url, config.zendesk_email, config.zendesk_token)
        engine.dispose()

    print(
        f"\nreplicas: killed one holding {len(orphaned)} tenants with {in_flight} write(s) in "
        f"flight; first tenant taken over after {takeover_first_s:.2f} s, all after "
        f"{takeover_all_s:.2f} s (TTL {TTL_SECONDS:.0f} s); "
        f"{len(seen)} follow-ups written over {len({t for t, _, _ in seen})} tenants"
    )
    assert orphaned, "the killed replica held no tenant"
    assert [key for key, count in seen.items() if count > 1] == []
    assert [t for t in TENANTS if reads_after[t] <= reads_before[t]] == []
    assert summary.get("applied", 0) == 0, summary
    assert summary["failed"] == 0
    assert {t for t, _, _ in seen} == set(TENANTS)


def _holder_of(replica: Replica, held: Counter[str]) -> str:
    """The lease holder id of the replica's current process (``host-<pid>-<random>``)."""
    if replica.process is None:
        return ""
    infix = f"-{replica.process.pid}-"
    return next((holder for holder in held if infix in holder), "")
