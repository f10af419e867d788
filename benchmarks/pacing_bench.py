"""Benchmark (a script, not a test): does pacing use a rate limit fully without crossing it?

The sandbox allows R Zendesk requests a minute; the Zendesk connector writes to k pending
tickets (an internal note "1/3" and status pending: one ``PUT`` each), all at once through
``apply_many`` as the worker hands them over; the connector's own caps and pacing decide the
rest. Its configured limit is the Enterprise default (700/min), so whenever R differs it must
learn the real limit from the ``X-Rate-Limit`` headers.

Modes of a case ``R:k[:mode]``:

- ``writes``: the tickets were read before the run, with the limit lifted; the run is the
  writes (plus the three name-resolution reads every connector starts with).
- ``reads``: the same connector reads the k tickets (ticket + comments) under the limit, then
  writes: the window the writes start in is partly used by reads it made itself.
- ``shared``: another app spent ``--shared`` of the window just before the run (a burst of
  reads); the connector only learns that from ``X-Rate-Limit-Remaining``.

Prints per case: wall time, the ideal at R for the writes alone and for every call spent in
the window (the run's, as the sandbox counted them, plus the other app's: the fair one, since
every call spends the same budget), the ratio to it and to the ideal at the budget the
connector means to use (R less its headroom), and the 429s the sandbox answered and the client
saw.

    python -m benchmarks.pacing_bench                       # the default cases (~4 min)
    python -m benchmarks.pacing_bench --case 600:300 --case 1200:600:reads --headroom 0
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

import httpx

from connectors.http import VendorClient
from connectors.mapping import ZendeskMapping, load_mapping
from connectors.settings import ConnectorLimits, Timeouts, VendorLimits
from connectors.zendesk import ZendeskConnector
from policies.model import Action, ActionType, Case, PlanItem, idempotency_key
from sandbox.server import run_subprocess

MAPPING = load_mapping(Path(__file__).parents[1] / "deploy" / "mapping.sandbox.yaml")
EMAIL, TOKEN = "worker@example.com", "zd-sandbox-token"
DEFAULT_CASES = ("600:300", "1200:600", "600:150:reads", "600:300:shared")

Mode = Literal["writes", "reads", "shared"]


@dataclass(frozen=True)
class BenchCase:
    rpm: int
    due: int
    mode: Mode

    @classmethod
    def parse(cls, text: str) -> BenchCase:
        rpm, due, *rest = text.split(":")
        mode = rest[0] if rest else "writes"
        if mode not in ("writes", "reads", "shared"):
            raise argparse.ArgumentTypeError(f"{text!r}: mode is writes, reads or shared")
        return cls(int(rpm), int(due), cast(Mode, mode))

    def __str__(self) -> str:
        return f"{self.rpm}:{self.due}:{self.mode}"


@dataclass(frozen=True)
class Figures:
    case: BenchCase
    seconds: float
    calls: int  # every Zendesk request of the run, as the sandbox counted them
    writes: int
    spent_before: int  # requests another app made in the same window just before
    limited_sandbox: int
    limited_client: int
    failed: int

    def ideal(self, calls: int) -> float:
        return calls / self.case.rpm * 60

    @property
    def ideal_writes(self) -> float:
        return self.ideal(self.case.due)

    @property
    def ideal_all(self) -> float:
        """Every call in the window spends the same budget, the other app's included."""
        return self.ideal(self.spent_before + self.calls)


class Admin:
    """The sandbox's admin API: limits, counters, pending tickets."""

    def __init__(self, url: str) -> None:
        self._http = httpx.Client(base_url=url)

    def limit(self, rpm: int | None) -> None:
        """A fresh window of ``rpm`` (None: unlimited); the sandbox restarts its windows."""
        self._http.put("/limits", json={"zendesk": {"per_minute": rpm}}).raise_for_status()

    def reset_stats(self) -> None:
        self._http.post("/reset-stats").raise_for_status()

    def counts(self) -> tuple[int, int, int]:
        """Zendesk requests, writes and 429s since the last reset."""
        stats = self._http.get("/stats").json()
        zendesk = stats["vendors"].get("zendesk", {})
        limited = sum(
            e["count"]
            for e in stats["endpoints"]
            if e["vendor"] == "zendesk" and str(e["status"]) == "429"
        )
        return zendesk.get("requests", 0), zendesk.get("writes", 0), limited

    def pending(self, count: int) -> list[str]:
        answer = self._http.get("/tickets", params={"status": "pending", "limit": count}).json()
        ids = [str(t["id"]) for t in answer["tickets"]]
        if len(ids) < count:
            raise SystemExit(f"the sandbox has {len(ids)} pending tickets, {count} wanted")
        return ids


def connector(url: str, limits: VendorLimits) -> tuple[ZendeskConnector, VendorClient]:
    """A connector on a fresh client (fresh budget); the client is returned for its counters."""
    mapping = cast(ZendeskMapping, MAPPING.zendesk).model_copy(update={"bulk_updates": False})
    client = VendorClient(
        "zendesk",
        url,
        auth=httpx.BasicAuth(f"{EMAIL}/token", TOKEN),
        limits=limits,
        timeouts=Timeouts(),
    )
    return ZendeskConnector(client, mapping, plans=MAPPING.plans), client


def reminder(case: Case, label: str) -> PlanItem:
    """Step 1/3 of a pending-ticket reminder; ``label`` keeps keys apart between cases."""
    actions = (
        Action(ActionType.NOTE, {"body": "reminder sent (benchmark)"}),
        Action(ActionType.SET_STATUS, {"status": "pending"}),
    )
    key = idempotency_key("pending_reminder", case.ref, 1, f"{label}/{case.updated_at}")
    return PlanItem(case, "pending_reminder", "reminder", 1, 3, actions, "benchmark", key)


async def read_cases(zendesk: ZendeskConnector, ids: list[str]) -> list[Case]:
    return list(await asyncio.gather(*(zendesk.fetch_case(i) for i in ids)))


async def spend(url: str, requests: int) -> None:
    """Another app's burst of reads on the same account."""
    auth = httpx.BasicAuth(f"{EMAIL}/token", TOKEN)
    async with httpx.AsyncClient(base_url=url, auth=auth) as other:
        gate = asyncio.Semaphore(20)

        async def one() -> None:
            async with gate:
                (await other.get("/api/v2/ticket_fields")).raise_for_status()

        await asyncio.gather(*(one() for _ in range(requests)))


async def run_case(
    bench: BenchCase, url: str, admin: Admin, limits: VendorLimits, shared: float, label: str
) -> Figures:
    ids = admin.pending(bench.due)
    cases: list[Case] = []
    if bench.mode != "reads":  # read the tickets outside the measured run, unlimited
        admin.limit(None)
        reader, _ = connector(url, VendorLimits(requests_per_minute=None))
        async with reader:
            cases = await read_cases(reader, ids)
    admin.limit(bench.rpm)
    spent_before = round(bench.rpm * shared) if bench.mode == "shared" else 0
    await spend(url, spent_before)
    admin.reset_stats()
    zendesk, client = connector(url, limits)
    async with zendesk:
        started = time.perf_counter()
        if bench.mode == "reads":
            cases = await read_cases(zendesk, ids)
        results = await zendesk.apply_many([reminder(c, label) for c in cases])
        seconds = time.perf_counter() - started
    calls, writes, limited = admin.counts()
    failed = sum(1 for r in results if r.outcome.value != "applied")
    return Figures(
        bench, seconds, calls, writes, spent_before, limited, client.calls["rate_limited"], failed
    )


def table(figures: list[Figures], headroom: float) -> str:
    lines = [
        f"connector headroom {headroom:.0%}; ideal w = writes / R; ideal all = (before + calls)"
        " / R; x usable = wall / (ideal all / (1 - headroom))",
        f"{'case':>17}{'calls':>7}{'writes':>7}{'before':>7}{'wall s':>8}"
        f"{'ideal w':>9}{'ideal all':>10}{'x all':>7}{'x usable':>9}{'429 srv':>8}{'429 cli':>8}",
    ]
    for f in figures:
        usable = f.ideal_all / (1 - headroom)
        lines.append(
            f"{f.case!s:>17}{f.calls:>7}{f.writes:>7}{f.spent_before:>7}{f.seconds:>8.1f}"
            f"{f.ideal_writes:>9.1f}{f.ideal_all:>10.1f}{f.seconds / f.ideal_all:>7.2f}"
            f"{f.seconds / usable:>9.2f}{f.limited_sandbox:>8}{f.limited_client:>8}"
            + (f"  ({f.failed} not applied)" if f.failed else "")
        )
    return "\n".join(lines)


async def run_all(args: argparse.Namespace) -> list[Figures]:
    limits = ConnectorLimits().zendesk.model_copy(update={"headroom": args.headroom})
    figures = []
    with run_subprocess("--tickets", str(args.tickets), "--seed", "1") as running:
        admin = Admin(running.urls["admin"])
        for n, bench in enumerate(args.case or [BenchCase.parse(c) for c in DEFAULT_CASES]):
            figures.append(
                await run_case(bench, running.urls["zendesk"], admin, limits, args.shared, f"{n}")
            )
            print(table(figures[-1:], args.headroom).splitlines()[-1], flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", type=BenchCase.parse, action="append", help="R:k[:mode]")
    parser.add_argument("--tickets", type=int, default=2_000, help="sandbox tenant size")
    parser.add_argument("--headroom", type=float, default=ConnectorLimits().zendesk.headroom)
    parser.add_argument(
        "--shared", type=float, default=0.5, help="share of R another app spends (shared mode)"
    )
    args = parser.parse_args()
    figures = asyncio.run(run_all(args))
    print()
    print(table(figures, args.headroom))


if __name__ == "__main__":
    main()
