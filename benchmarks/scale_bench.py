"""Benchmark (a script, not a test): many tickets over 20 tenants, replicas sharing PostgreSQL.

For each total number of tickets, a sandbox process (no rate limits, frozen clock) serves 20
tenants of ``total / 20`` tickets each, generated lazily; ``--replicas`` processes of
``followup run --once --dry-run`` start together against one fresh PostgreSQL database and
split the tenants by lease. Printed per size: wall time of the slowest replica, cases read and
follow-ups planned, vendor API calls (the sandbox's own count), and each replica's peak RSS
(``wait4``'s ``ru_maxrss``), which should stay flat as the number of tickets grows.

    python benchmarks/scale_bench.py --tickets 10000 100000 --replicas 3
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from sandbox.server import run_subprocess

ROOT = Path(__file__).resolve().parents[1]
START = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)  # a Wednesday afternoon
TENANTS = tuple(f"t{n:02d}" for n in range(1, 21))
POSTGRES = os.environ.get(
    "FOLLOWUP_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@dataclass(frozen=True, slots=True)
class ReplicaRun:
    wall_s: float
    peak_rss_mb: float
    summary: dict[str, Any]


@contextmanager
def fresh_database() -> Iterator[str]:
    admin = sa.create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    name = f"followup_scale_{secrets.token_hex(4)}"
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    try:
        yield sa.make_url(POSTGRES).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def tenants_file(folder: Path, base_url: str) -> Path:
    entries = [
        {
            "name": name,
            "zendesk_url": f"{base_url}/t/{name}/zendesk",
            "zendesk_email": "worker@example.com",
            "zendesk_token_env": "SANDBOX_ZENDESK_TOKEN",
            "mapping": str(ROOT / "deploy" / "mapping.sandbox.yaml"),
            "zendesk_rate_limit": 1_000_000,
        }
        for name in TENANTS
    ]
    path = folder / "tenants.yaml"
    path.write_text(json.dumps({"tenants": entries}), encoding="utf-8")  # JSON is YAML
    return path


def run_replicas(count: int, env: dict[str, str]) -> list[ReplicaRun]:
    """Start ``count`` one-shot dry-run replicas together; wait for each, with its rusage."""
    command = [sys.executable, "-m", "worker", "run", "--once", "--dry-run", "--json"]
    started = time.perf_counter()
    processes = [
        subprocess.Popen(
            [*command, "--at", START.isoformat()],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for _ in range(count)
    ]
    runs = []
    for process in processes:
        assert process.stdout is not None
        out = process.stdout.read()  # before wait4: a full pipe would block the child
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        runs.append(
            ReplicaRun(
                wall_s=time.perf_counter() - started,
                peak_rss_mb=usage.ru_maxrss / 1024,  # KiB on Linux
                summary=json.loads(out) if out.strip() else {"exit": process.returncode},
            )
        )
    return runs


def api_calls(base_url: str) -> int:
    with httpx.Client(base_url=base_url, timeout=30) as client:
        totals = [client.get(f"/t/{name}/_admin/stats").json()["total"] for name in TENANTS]
    return sum(int(total["reads"]) + int(total["writes"]) for total in totals)


def bench(total_tickets: int, replicas: int) -> None:
    per_tenant = max(total_tickets // len(TENANTS), 1)
    sandbox_args = (
        *("--tickets", str(per_tenant), "--tenants", ",".join(TENANTS)),
        *("--start", START.isoformat(), "--frozen-clock", "--no-rate-limits"),
    )
    with (
        tempfile.TemporaryDirectory() as workdir,
        run_subprocess(*sandbox_args) as sandbox,
        fresh_database() as database_url,
    ):
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(ROOT),
            "SANDBOX_ZENDESK_TOKEN": sandbox.config.zendesk_token,
            "FOLLOWUP_TENANTS_FILE": str(tenants_file(Path(workdir), sandbox.base_url)),
            "FOLLOWUP_DATABASE_URL": database_url,
            "FOLLOWUP_LEASE_TTL": "10",
            "FOLLOWUP_LOG_LEVEL": "error",
            "FOLLOWUP_LOG_FORMAT": "json",
        }
        runs = run_replicas(replicas, env)
        calls = api_calls(sandbox.base_url)
    cases = sum(int(run.summary.get("cases", 0)) for run in runs)
    planned = sum(int(run.summary.get("planned", 0)) for run in runs)
    print(
        f"{per_tenant * len(TENANTS):>9} tickets: {max(r.wall_s for r in runs):7.1f} s, "
        f"{cases} cases read, {planned} follow-ups planned, {calls} API calls; per replica "
        + ", ".join(
            f"[{r.summary.get('cases', r.summary)} cases, peak {r.peak_rss_mb:.0f} MB]"
            for r in runs
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--replicas", type=int, default=3)
    args = parser.parse_args()
    for total in args.tickets:
        bench(total, args.replicas)


if __name__ == "__main__":
    main()
