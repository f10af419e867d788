"""Three replicas, one PostgreSQL ledger, a sandbox with 20 tenants; one replica is SIGKILLed
in the middle of its cycle.

Each replica is a ``followup serve --every 1 --live`` process. The sandbox's clock runs, so the
replicas plan as of now; the tenants are open every day of the week, in a holiday calendar with
no holiday today, so the suite finds work whatever day it runs. The promises checked:

* zero duplicates: no ``fw-<key>`` marker twice on any ticket of any tenant;
* every tenant served: after the survivors stop (SIGTERM: they hand their leases back), a last
  ``run --once``, alone, reads every tenant and finds every due follow-up already done;
* takeover: nobody claims the killed replica's tenants before its leases expired, and the
  survivors do claim them (the delay is printed; timings are never asserted).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import holidays
import httpx
import pytest
import sqlalchemy as sa

from tests.integration.leases_support import POSTGRES_URL, reachable_postgres
from worker.runtime.leases import lease_metadata

server = pytest.importorskip("sandbox.server", reason="the sandbox package is not in this tree")
faults = pytest.importorskip("sandbox.faults")

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]
TENANTS = tuple(f"t{n:02d}" for n in range(1, 21))
TICKETS_PER_TENANT = 8
TTL_SECONDS = 3.0
SLOW_WRITE_SECONDS = 0.4  # some writes linger, so the kill lands with writes in flight
PATIENCE_SECONDS = 90.0  # only to stop a broken build from hanging; never the assertion
MARKER = re.compile(r"fw-[0-9a-f]+")


@contextmanager
def fresh_database() -> Iterator[str]:
    """A database of its own (``followup_replicas_<random>``), dropped afterwards."""
    admin = reachable_postgres(isolation_level="AUTOCOMMIT")
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
            "timezone": "UTC",
            "workdays": "mon-sun",
            "holidays_country": open_today(),
        }
        for name in TENANTS
    ]
    path = folder / "tenants.yaml"
    path.write_text(json.dumps({"tenants": entries}), encoding="utf-8")  # JSON is YAML
    return path


@dataclass
class Replica:
    """One ``followup serve`` process, its lease holder id and its metrics port."""

    name: str
    port: int
    process: subprocess.Popen[str]

    @classmethod
    def start(cls, name: str, env: dict[str, str], logs: Path) -> Replica:
        port = free_port()
        replica_env = {**env, "FOLLOWUP_REPLICA_ID": name, "FOLLOWUP_HTTP_PORT": str(port)}
        with (logs / f"{name}.err").open("w") as err:  # the child keeps its copy
            process = subprocess.Popen(
                [sys.executable, "-m", "worker", "serve", "--every", "1"],
                cwd=ROOT,
                env=replica_env,
                stdout=subprocess.DEVNULL,
                stderr=err,
                text=True,
            )
        return cls(name, port, process)

    def cycles(self) -> int:
        """Cycles finished so far, from its /metrics (0 while it is starting)."""
        try:
            text = httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=5).text
        except httpx.TransportError:
            return 0
        found = re.findall(r'^followup_cycles_total\{result="\w+"\} (\S+)$', text, re.MULTILINE)
        return int(sum(float(count) for count in found))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=PATIENCE_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def open_today() -> str:
    """A holiday calendar without a holiday today, so the tenants have work today."""
    today = datetime.now(UTC).date()
    return next(
        country
        for country in ("US", "DE", "JP", "BR", "IN", "FR")
        if today not in holidays.country_holidays(country, years=today.year)
    )


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
            tickets=TICKETS_PER_TENANT, limits={}, tenants=TENANTS, faults=slow_writes
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
            "FOLLOWUP_DRY_RUN": "false",
            "FOLLOWUP_LEASE_TTL": str(TTL_SECONDS),
            "FOLLOWUP_ZENDESK_RATE_LIMIT": "100000",
            "FOLLOWUP_CONCURRENCY": "4",
            "FOLLOWUP_LOG_FORMAT": "json",
        }
        engine = sa.create_engine(database_url)
        replicas = [Replica.start(f"replica-{n}", env, tmp_path) for n in (1, 2, 3)]
        try:
            # Kill the replica holding the most tenants while writes are in flight.
            def victim_writing() -> Replica | None:
                held = Counter(g.holder for g in grants(engine).values() if g.in_force)
                busiest = max(replicas, key=lambda r: held[r.name])
                return busiest if held[busiest.name] and pending_intents(engine) else None

            # Keep the replica seen writing: asking again could find its writes already done.
            spotted: list[Replica] = []

            def spot_victim() -> bool:
                spotted[:] = [v for v in [victim_writing()] if v is not None]
                return bool(spotted)

            wait_until(spot_victim, "a replica writing")
            victim = spotted[0]
            victim.process.send_signal(signal.SIGKILL)
            victim.process.wait()
            killed_at = time.monotonic()
            # Read after the kill: a lease the victim released on its own just before dying
            # is not orphaned, and its next holder did not have to wait for it to expire.
            orphaned = {
                t: g for t, g in grants(engine).items() if g.in_force and g.holder == victim.name
            }
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
                lapsed_at = orphaned[tenant].expires_at
                assert grant.holder != victim.name
                assert grant.acquired_at is not None
                assert lapsed_at is not None
                assert grant.acquired_at >= lapsed_at, f"{tenant} claimed before its lease expired"
            takeover_first_s = min(seconds for _, seconds in regranted.values())
            takeover_all_s = max(seconds for _, seconds in regranted.values())

            # Two more cycles of each survivor once the dead one's intents are reconciled.
            survivors = [r for r in replicas if r is not victim]
            wait_until(lambda: pending_intents(engine) == 0, "the dead replica's intents settled")
            cycles = {r.name: r.cycles() for r in survivors}
            wait_until(
                lambda: all(r.cycles() >= cycles[r.name] + 2 for r in survivors),
                "two more cycles of each survivor",
            )
        finally:
            for replica in replicas:
                replica.stop()
        left_held = [g for g in grants(engine).values() if g.in_force]

        # Alone now, a last run claims all 20 tenants, reads them all, finds nothing left to do.
        reads_before = tenant_reads(sandbox.base_url)
        last = subprocess.run(
            [sys.executable, "-m", "worker", "run", "--once", "--json"],
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
    assert left_held == [], "a replica stopped by SIGTERM kept its leases"
    assert [key for key, count in seen.items() if count > 1] == []
    assert [t for t in TENANTS if reads_after[t] <= reads_before[t]] == []
    assert summary.get("applied", 0) == 0, summary
    assert summary["failed"] == 0
    assert summary["errors"] == 0
    assert {t for t, _, _ in seen} == set(TENANTS)
