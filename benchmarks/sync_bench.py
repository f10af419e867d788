"""Benchmark (a script, not a test): what a sync cycle costs, at the vendors' documented limits.

For each tenant size, a sandbox in a process of its own serves N Zendesk tickets (with the
Intercom conversations and Asana bugs its generators make alongside) at its default limits,
the documented ones (Zendesk 700/min and incremental exports 10/min, Intercom 10,000/min,
Asana 1,500/min; sandbox/limits.py), under ``--time-scale S``: its clock runs S times faster
and every rate window lasts 60/S real seconds, so "10 export requests a minute" stays 10 per
sandbox minute. The worker is told the same (``FOLLOWUP_RATE_WINDOW=60/S``, its pacing
unchanged otherwise) and is given the same per-minute limits as the sandbox enforces.

Then ``followup run --once --dry-run --json`` runs cycle after cycle, one process each, all
on one SQLite ledger (``FOLLOWUP_DATABASE_URL``, or ``--database-url``) kept between cycles,
each planning as of the sandbox's clock (``--at``):

- cycle 1: the first sync;
- cycle 2: nothing changed since;
- cycles 3..: ``--change`` (1%) of each vendor's cases changed between cycles, as customers
  and agents would (``POST /_admin/change``: replies, comments, solves).

Printed per cycle: cases in the tenant, cases changed before it, API calls per vendor (the
sandbox's ``/_admin/stats``), the cycle's time (its summary's, without the process's start
and exit), real and scaled: vendor seconds = real seconds x S, an upper bound, since the
worker's own CPU time is counted S times too (the process's CPU time is printed beside it;
at ``--time-scale 1`` the figure is the true one), and the worker's peak RSS (``wait4``'s
``ru_maxrss``: the worker alone). Choose S so that the cycles wait on the rate windows, not
on CPU: once the worker and the sandbox (one Python process) are busy all the time, a larger
S only inflates the scaled figures. For the first sync,
its export floor: export pages read / the 10 pages a minute the incremental exports allow
(both exports counted against one budget, as the worker's mapping paces them). Then the
sandbox's own start time and memory, and the goals of issue 13 (point 6), pass or fail.

    python -m benchmarks.sync_bench --quick                    # a few thousand tickets
    python -m benchmarks.sync_bench --tickets 100000 1000000 --time-scale 60
    python -m benchmarks.sync_bench --tickets 1000000 --cycles 0   # the sandbox alone
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import yaml

from benchmarks.scale_bench import ROOT, ReplicaRun, run_replica
from connectors.mapping import ZENDESK_ENDPOINT_LIMITS
from sandbox.clock import parse_iso
from sandbox.limits import DEFAULT_LIMITS, WINDOW_SECONDS
from sandbox.server import RunningSandbox, run_subprocess

__all__ = ["VENDORS", "Cycle", "SizeRun", "bench", "goals", "main"]

# A Monday, 9:00 in New York: the cycles stay within business days for four sandbox days.
START = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
VENDORS = ("zendesk", "intercom", "asana")
# Zendesk's incremental exports, as the worker paces them (vendor-behaviours.md Z2): 10/min.
EXPORTS_PER_MINUTE = ZENDESK_ENDPOINT_LIMITS["incremental_exports"]
QUICK_TICKETS = 3_000


@dataclass(slots=True)
class Cycle:
    number: int
    cases: int  # in the tenant, every vendor
    changed: int  # cases changed since the cycle before
    calls: dict[str, int]  # per vendor
    export_pages: int
    run: ReplicaRun

    @property
    def seconds(self) -> float:
        """The cycle's own time (its summary's), without the process's start and exit."""
        return float(self.run.figures.get("duration_s", self.run.wall_s))


@dataclass(slots=True)
class SizeRun:
    tickets: int
    scale: float
    sandbox_start_s: float
    sandbox_index_s: float  # the first export request: the sandbox indexes every ticket
    sandbox_rss_mb: float  # once indexed, before any cycle
    sandbox_peak_mb: float  # at the end
    cycles: list[Cycle] = field(default_factory=list)

    @property
    def first(self) -> Cycle:
        return self.cycles[0]

    def export_floor_s(self) -> float:
        """The first sync's floor in sandbox seconds: its pages at the exports' limit."""
        return self.first.export_pages / EXPORTS_PER_MINUTE * WINDOW_SECONDS

    def first_sync_ratio(self) -> float:
        """The first sync's scaled time over its export floor."""
        floor = self.export_floor_s()
        return self.first.seconds * self.scale / floor if floor else math.nan


def _rss_mb(pid: int, field_name: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of a process, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) / 1024
    return math.nan


def _mapping(folder: Path) -> Path:
    """The sandbox mapping with Zendesk's endpoint limits back at their documented defaults
    (the bundled one lifts them for the limitless demo and test sandboxes)."""
    data = yaml.safe_load((ROOT / "deploy" / "mapping.sandbox.yaml").read_text())
    data["zendesk"].pop("endpoint_limits", None)
    path = folder / "mapping.json"
    path.write_text(json.dumps(data), encoding="utf-8")  # JSON is YAML
    return path


def _worker_env(sandbox: RunningSandbox, folder: Path, database_url: str | None) -> dict[str, str]:
    settings = dict(line.split("=", 1) for line in sandbox.config.env_lines(sandbox.base_url))
    limits = {vendor: DEFAULT_LIMITS[vendor].per_minute for vendor in VENDORS}
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(ROOT),
        **settings,
        "FOLLOWUP_MAPPING": str(_mapping(folder)),
        "FOLLOWUP_DATABASE_URL": database_url or f"sqlite:///{folder / 'ledger.sqlite3'}",
        "FOLLOWUP_RATE_WINDOW": str(WINDOW_SECONDS / sandbox.config.time_scale),
        **{f"FOLLOWUP_{vendor.upper()}_RATE_LIMIT": str(rpm) for vendor, rpm in limits.items()},
        "FOLLOWUP_LOG_LEVEL": "error",
        "FOLLOWUP_LOG_FORMAT": "json",
    }


def _counts(admin: httpx.Client) -> tuple[dict[str, int], int]:
    """Requests per vendor since the last reset, and the export pages among them."""
    stats = admin.get("/stats").json()
    calls = {vendor: int(stats["vendors"].get(vendor, {}).get("requests", 0)) for vendor in VENDORS}
    pages = sum(
        int(e["count"])
        for e in stats["endpoints"]
        if e["vendor"] == "zendesk" and "/incremental/" in e["endpoint"] and e["status"] == "200"
    )
    return calls, pages


def _prime(admin: httpx.Client, zendesk: str, token_auth: httpx.BasicAuth) -> float:
    """One export request, timed: the sandbox indexes its tickets on the first. Then fresh
    rate windows, so the first cycle starts with its whole export budget."""
    now = parse_iso(admin.get("/clock").json()["now"])
    started = time.perf_counter()
    httpx.get(
        f"{zendesk}/api/v2/incremental/tickets/cursor.json",
        params={"start_time": int(now.timestamp()) - 3600},
        auth=token_auth,
        timeout=3600,
    ).raise_for_status()
    seconds = time.perf_counter() - started
    admin.put("/limits", json=admin.get("/limits").json()).raise_for_status()
    admin.post("/reset-stats").raise_for_status()
    return seconds


def bench(
    tickets: int, scale: float, cycles: int, change: float, database_url: str | None
) -> SizeRun:
    args = ("--tickets", str(tickets), "--start", START.isoformat(), "--time-scale", str(scale))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder, run_subprocess(*args) as sandbox:
        start_s = time.perf_counter() - started
        assert sandbox.pid is not None
        config = sandbox.config
        auth = httpx.BasicAuth(f"{config.zendesk_email}/token", config.zendesk_token)
        with httpx.Client(base_url=sandbox.urls["admin"], timeout=600) as admin:
            index_s = _prime(admin, sandbox.urls["zendesk"], auth)
            tenant = admin.get("/tenant").json()
            kinds = ("tickets", "intercom_conversations", "asana_tasks")
            cases = sum(int(tenant[kind]) for kind in kinds)
            size = SizeRun(tickets, scale, start_s, index_s, _rss_mb(sandbox.pid, "VmRSS"), 0.0)
            env = _worker_env(sandbox, Path(folder), database_url)
            for number in range(1, cycles + 1):
                changed = 0
                if number >= 3:
                    answer = admin.post("/change", json={"fraction": change, "seed": number})
                    changed = sum(c["changed"] for c in answer.json()["changes"])
                admin.post("/reset-stats").raise_for_status()
                at = parse_iso(admin.get("/clock").json()["now"])
                run = run_replica(env, Path(folder), number, at)
                calls, pages = _counts(admin)
                size.cycles.append(Cycle(number, cases, changed, calls, pages, run))
                print(_cycle_line(size, size.cycles[-1]), flush=True)
            size.sandbox_peak_mb = _rss_mb(sandbox.pid, "VmHWM")
    return size


def _cycle_line(size: SizeRun, cycle: Cycle) -> str:
    calls = ", ".join(f"{vendor} {cycle.calls[vendor]}" for vendor in VENDORS)
    line = (
        f"  cycle {cycle.number}: {cycle.cases:,} cases, {cycle.changed:,} changed; calls "
        f"{calls}; cycle {cycle.seconds:.1f} s real = {cycle.seconds * size.scale / 60:.1f} "
        f"vendor min (process {cycle.run.wall_s:.1f} s, CPU {cycle.run.cpu_s:.1f} s); "
        f"worker peak RSS {cycle.run.peak_rss_mb:.0f} MB"
        + ("" if cycle.run.exit_code in (0, 1) else f"; exit {cycle.run.exit_code}")
    )
    if cycle.number == 1:
        floor = size.export_floor_s()
        line += (
            f"\n    export floor: {cycle.export_pages} pages / {EXPORTS_PER_MINUTE} a minute = "
            f"{floor / 60:.1f} vendor min; first sync at {size.first_sync_ratio():.2f}x the floor"
        )
    return line


def goals(sizes: list[SizeRun]) -> list[tuple[str, bool | None, str]]:
    """Issue 13's goals: (goal, met (None: not measured), the figures it was judged on)."""
    steady = [(s, c) for s in sizes for c in s.cycles if c.number >= 3]
    idle = [(s, s.cycles[1]) for s in sizes if len(s.cycles) >= 2]
    million = [(s, c) for s, c in steady if s.tickets >= 1_000_000]
    peaks = {s.tickets: max(c.run.peak_rss_mb for c in s.cycles) for s in sizes}
    small, large = peaks.get(100_000), peaks.get(1_000_000)
    return [
        (
            "steady cycle (1% changed): calls <= 3 per changed case + 3, per vendor",
            all(c.calls[v] <= 3 * c.changed + 3 for _, c in steady for v in VENDORS)
            if steady else None,
            "; ".join(f"{s.tickets:,} cycle {c.number}: {sum(c.calls.values())} calls for "
                      f"{c.changed} changed" for s, c in steady),
        ),
        (
            "steady cycle at 1,000,000 tickets under 60 s scaled",
            all(c.seconds * s.scale < 60 for s, c in million) if million else None,
            "; ".join(f"{c.seconds * s.scale:.0f} s scaled" for s, c in million) or "not run",
        ),
        (
            "nothing changed: at most 3 calls per vendor",
            all(max(c.calls.values()) <= 3 for _, c in idle) if idle else None,
            "; ".join(f"{s.tickets:,}: {c.calls}" for s, c in idle),
        ),
        (
            "first sync within 1.2x of the export floor",
            all(s.first_sync_ratio() <= 1.2 for s in sizes) if sizes else None,
            "; ".join(f"{s.tickets:,}: {s.first_sync_ratio():.2f}x" for s in sizes),
        ),
        (
            "worker memory flat from 100,000 to 1,000,000 tickets (within 20%)",
            None if small is None or large is None else large <= small * 1.2,
            ", ".join(f"{t:,}: {mb:.0f} MB" for t, mb in peaks.items()),
        ),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_TICKETS:,} tickets only")
    parser.add_argument("--time-scale", type=float, default=60.0, help="the sandbox's S")
    parser.add_argument(
        "--cycles",
        type=int,
        default=4,
        help="first, idle, then 1%% changed each; 0: the sandbox alone (its start and memory)",
    )
    parser.add_argument("--change", type=float, default=0.01, help="share changed per cycle")
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    args = parser.parse_args()
    sizes = []
    for tickets in [QUICK_TICKETS] if args.quick else args.tickets:
        print(
            f"{tickets:,} tickets, time scale {args.time_scale:g} (vendor time = real x "
            f"{args.time_scale:g}; rate windows {WINDOW_SECONDS / args.time_scale:g} s real):",
            flush=True,
        )
        size = bench(tickets, args.time_scale, args.cycles, args.change, args.database_url)
        print(
            f"  sandbox: listening after {size.sandbox_start_s:.1f} s, tickets indexed in "
            f"{size.sandbox_index_s:.1f} s, RSS {size.sandbox_rss_mb:.0f} MB, peak "
            f"{size.sandbox_peak_mb:.0f} MB"
        )
        sizes.append(size)
    if args.cycles == 0:
        return
    print("goals (issue 13, point 6):")
    for goal, met, figures in goals(sizes):
        verdict = "not measured" if met is None else ("pass" if met else "FAIL")
        print(f"  [{verdict}] {goal}: {figures}")


if __name__ == "__main__":
    main()
