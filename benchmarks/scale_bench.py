"""Benchmark (a script, not a test): many tickets over 20 tenants, replicas sharing PostgreSQL.

For each total number of tickets, a sandbox in a process of its own (no rate limits, frozen
clock) serves ``--tenants`` tenants of ``total / tenants`` tickets each, generated lazily;
``--replicas`` processes of ``followup run --once --dry-run --json`` start together against one
fresh PostgreSQL database and split the tenants by lease (each replica known to the others
beforehand, as ``serve`` replicas would be). Printed per size: the slowest
replica's wall time, cases read, follow-ups planned and vendor API calls (the sandbox's own
count), then per replica: tenants worked, cases, its cycle's wall time and API calls (the
replica's own count), its peak RSS (``wait4``'s ``ru_maxrss``: the worker alone, the sandbox
is another process) and its CPU time: the rest of its wall time it waited, mostly on the
sandbox, one Python process serving every replica. The last line puts each size's largest
replica peak side by side: it should stay flat as the number of tickets grows.

    python -m benchmarks.scale_bench --tickets 20000 100000 1000000 --replicas 3
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
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import httpx
import sqlalchemy as sa

from sandbox.server import run_subprocess
from worker.delivery.ledger import engine_url
from worker.runtime.leases import tenant_leases_for

ROOT = Path(__file__).resolve().parents[1]
START = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)  # a Wednesday afternoon
POSTGRES = os.environ.get(
    "FOLLOWUP_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@dataclass(frozen=True, slots=True)
class ReplicaRun:
    exit_code: int
    wall_s: float  # the process, start to exit
    cpu_s: float  # its user + system time: the rest of wall_s it waited (on the sandbox, mostly)
    peak_rss_mb: float
    figures: dict[str, Any]  # the summary's figures (the --json document without its items)


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


def tenant_names(count: int) -> tuple[str, ...]:
    return tuple(f"t{n:02d}" for n in range(1, count + 1))


def tenants_file(folder: Path, base_url: str, names: tuple[str, ...]) -> Path:
    entries = [
        {
            "name": name,
            "zendesk_url": f"{base_url}/t/{name}/zendesk",
            "zendesk_email": "worker@example.com",
            "zendesk_token_env": "SANDBOX_ZENDESK_TOKEN",
            "mapping": str(ROOT / "deploy" / "mapping.sandbox.yaml"),
            "zendesk_rate_limit": 1_000_000,
        }
        for name in names
    ]
    path = folder / "tenants.yaml"
    path.write_text(json.dumps({"tenants": entries}), encoding="utf-8")  # JSON is YAML
    return path


def figures_of(out: TextIO) -> dict[str, Any]:
    """The summary's figures: the lines of the --json document before its ``items``, which
    can be hundreds of megabytes and are not read."""
    head = []
    for line in out:
        if line.startswith('  "items"'):
            break
        head.append(line)
    text = "".join(head).rstrip().rstrip(",")
    return json.loads(text + "}") if text else {}


def introduce(database_url: str, replicas: int) -> None:
    """Heartbeats for every replica before any starts. One-shot replicas started together
    otherwise race: the first to refresh sees itself alone, takes its "fair share" of all 20
    tenants, and the others find none left (``serve`` replicas even this out over time)."""
    engine = sa.create_engine(engine_url(database_url))
    try:
        leases = tenant_leases_for(engine)
        leases.create_tables()
        for index in range(1, replicas + 1):
            leases.heartbeat(f"replica{index}", timedelta(minutes=5))
    finally:
        engine.dispose()


def run_replica(env: dict[str, str], workdir: Path, index: int, at: datetime = START) -> ReplicaRun:
    """One ``run --once --dry-run`` process planning as of ``at``; its output goes to files,
    never through a pipe (a full pipe would stall it), and its own rusage is taken with
    ``wait4``."""
    command = [sys.executable, "-m", "worker", "run", "--once", "--dry-run", "--json"]
    out_path, err_path = workdir / f"replica{index}.json", workdir / f"replica{index}.err"
    started = time.perf_counter()
    with out_path.open("w") as out, err_path.open("w") as err:
        process = subprocess.Popen(
            [*command, "--at", at.isoformat()],
            cwd=ROOT,
            env={**env, "FOLLOWUP_REPLICA_ID": f"replica{index}"},
            stdout=out,
            stderr=err,
        )
        _, status, usage = os.wait4(process.pid, 0)
    wall_s = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    with out_path.open() as out:
        figures = figures_of(out)
    if not figures:
        print(f"replica {index} printed no summary:\n{err_path.read_text()[-3000:]}")
    return ReplicaRun(
        exit_code=process.returncode,
        wall_s=wall_s,
        cpu_s=usage.ru_utime + usage.ru_stime,
        peak_rss_mb=usage.ru_maxrss / 1024,  # KiB on Linux
        figures=figures,
    )


def api_calls(base_url: str, names: tuple[str, ...]) -> int:
    with httpx.Client(base_url=base_url, timeout=30) as client:
        totals = [client.get(f"/t/{name}/_admin/stats").json()["total"] for name in names]
    return sum(int(total["reads"]) + int(total["writes"]) for total in totals)


def bench(total_tickets: int, tenants: int, replicas: int) -> float:
    """One size; prints its lines and returns the largest replica peak RSS (MB)."""
    names = tenant_names(tenants)
    per_tenant = max(total_tickets // tenants, 1)
    sandbox_args = (
        *("--tickets", str(per_tenant), "--tenants", ",".join(names)),
        *("--start", START.isoformat(), "--frozen-clock", "--no-rate-limits"),
    )
    with (
        tempfile.TemporaryDirectory() as folder,
        run_subprocess(*sandbox_args) as sandbox,
        fresh_database() as database_url,
    ):
        workdir = Path(folder)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(ROOT),
            "SANDBOX_ZENDESK_TOKEN": sandbox.config.zendesk_token,
            "FOLLOWUP_TENANTS_FILE": str(tenants_file(workdir, sandbox.base_url, names)),
            "FOLLOWUP_DATABASE_URL": database_url,
            "FOLLOWUP_LEASE_TTL": "10",
            "FOLLOWUP_LOG_LEVEL": "error",
            "FOLLOWUP_LOG_FORMAT": "json",
        }
        introduce(database_url, replicas)
        with ThreadPoolExecutor(replicas) as pool:
            runs = list(pool.map(lambda i: run_replica(env, workdir, i), range(1, replicas + 1)))
        calls = api_calls(sandbox.base_url, names)
    cases = sum(int(run.figures.get("cases", 0)) for run in runs)
    planned = sum(int(run.figures.get("planned", 0)) for run in runs)
    print(
        f"{per_tenant * tenants:>9} tickets over {tenants} tenants: "
        f"{max(r.wall_s for r in runs):7.1f} s, {cases} cases read, {planned} follow-ups "
        f"planned, {calls} API calls"
    )
    for index, run in enumerate(runs, start=1):
        print(
            f"    replica {index}: {len(run.figures.get('tenants', [])):>2} tenants, "
            f"{run.figures.get('cases', 0):>7} "
            f"cases, cycle {float(run.figures.get('duration_s', 0)):7.1f} s "
            f"(CPU {run.cpu_s:6.1f} s), "
            f"{run.figures.get('calls', 0):>7} API calls, peak RSS {run.peak_rss_mb:5.0f} MB"
            + ("" if run.exit_code in (0, 1) else f", exit {run.exit_code}")
        )
    return max(run.peak_rss_mb for run in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, nargs="+", default=[20_000, 100_000])
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--replicas", type=int, default=3)
    args = parser.parse_args()
    peaks = {total: bench(total, args.tenants, args.replicas) for total in args.tickets}
    print(
        "largest replica peak RSS by tickets: "
        + ", ".join(f"{total:,}: {peak:.0f} MB" for total, peak in peaks.items())
    )


if __name__ == "__main__":
    main()
