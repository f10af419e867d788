"""Benchmark (a script, not a test): does pacing use a rate limit fully without crossing it?

The sandbox models Zendesk's limits as documented (vendor-behaviours.md Z2): the account's
``--account-rpm`` a minute (Enterprise, 700), advertised in ``X-Rate-Limit``, and Update
Ticket's own R a minute (100 as documented), enforced but advertised nowhere. The Zendesk
connector writes to k pending tickets (an internal note "1/3" and status pending: one ``PUT``
each), all at once through ``apply_many`` as the worker hands them over; its own caps, the
account's headers and its Update Ticket budget (the mapping's ``endpoint_limits``, R) decide
the rest. The ideal is the slower of k writes at R and every call at the account's limit.

Modes of a case ``R:k[:mode]``:

- ``writes``: the tickets were read before the run, with the limit lifted; the run is the
  writes (plus the three name-resolution reads every connector starts with).
- ``reads``: the same connector reads the k tickets (ticket + comments) under the limit, then
  writes: the window the writes start in is partly used by reads it made itself.
- ``shared``: another app spent ``--shared`` of the account's window just before the run (a
  burst of reads); the connector only learns that from ``X-Rate-Limit-Remaining``.

Prints per case: wall time, the ideal (the k writes at R, or every call of the window at the
account's limit, the other app's included, whichever is slower), the ratio to it, and the 429s
the sandbox answered and the client saw.

    python -m benchmarks.pacing_bench                       # the default cases (~6 min)
    python -m benchmarks.pacing_bench --case 100:300 --case 100:150:reads --headroom 0
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
DEFAULT_CASES = ("100:150", "100:300", "100:150:reads", "100:150:shared")
UPDATE_TICKET = "PUT /api/v2/tickets/{ticket_id}"

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
    account_rpm: int
    seconds: float
    calls: int  # every Zendesk request of the run, as the sandbox counted them
    writes: int
    spent_before: int  # requests another app made in the same window just before
    limited_sandbox: int
    limited_client: int
    failed: int

    @property
    def ideal_writes(self) -> float:
        """The k writes at Update Ticket's limit."""
        return self.case.due / self.case.rpm * 60

    @property
    def ideal_account(self) -> float:
        """Every call of the window at the account's limit, the other app's included."""
        return (self.spent_before + self.calls) / self.account_rpm * 60

    @property
    def ideal(self) -> float:
        return max(self.ideal_writes, self.ideal_account)


class Admin:
    """The sandbox's admin API: limits, counters, pending tickets."""

    def __init__(self, url: str) -> None:
        self._http = httpx.Client(base_url=url)

    def limit(self, account_rpm: int | None, update_rpm: int | None = None) -> None:
        """Fresh windows: the account's (None: unlimited) and Update Ticket's (None: only
        the account's); the sandbox restarts its windows."""
        endpoints = {} if update_rpm is None else {UPDATE_TICKET: update_rpm}
        limits = {"zendesk": {"per_minute": account_rpm, "endpoints": endpoints}}
        self._http.put("/limits", json=limits).raise_for_status()

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


def connector(
    url: str, limits: VendorLimits, update_rpm: int | None
) -> tuple[ZendeskConnector, VendorClient]:
    """A connector on a fresh client (fresh budgets); the client is returned for its counters.
    ``update_rpm``: the tenant's Update Ticket limit as its mapping says it (None: unpaced)."""
    endpoint_limits = {} if update_rpm is None else {"update_ticket": update_rpm}
    mapping = cast(ZendeskMapping, MAPPING.zendesk).model_copy(
        update={"endpoint_limits": endpoint_limits}
    )
    zendesk = ZendeskConnector.connect(
        url, EMAIL, TOKEN, mapping, limits=limits, timeouts=Timeouts(), plans=MAPPING.plans
    )
    return zendesk, zendesk._client


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
    bench: BenchCase,
    url: str,
    admin: Admin,
    limits: VendorLimits,
    account_rpm: int,
    shared: float,
    label: str,
) -> Figures:
    ids = admin.pending(bench.due)
    cases: list[Case] = []
    if bench.mode != "reads":  # read the tickets outside the measured run, unlimited
        admin.limit(None)
        reader, _ = connector(url, VendorLimits(requests_per_minute=None), None)
        async with reader:
            cases = await read_cases(reader, ids)
    admin.limit(account_rpm, bench.rpm)
    spent_before = round(account_rpm * shared) if bench.mode == "shared" else 0
    await spend(url, spent_before)
    admin.reset_stats()
    zendesk, client = connector(url, limits, bench.rpm)
    async with zendesk:
        started = time.perf_counter()
        if bench.mode == "reads":
            cases = await read_cases(zendesk, ids)
        results = await zendesk.apply_many([reminder(c, label) for c in cases])
        seconds = time.perf_counter() - started
    calls, writes, limited = admin.counts()
    failed = sum(1 for r in results if r.outcome.value != "applied")
    return Figures(
        bench,
        account_rpm,
        seconds,
        calls,
        writes,
        spent_before,
        limited,
        client.calls["rate_limited"],
        failed,
    )


def table(figures: list[Figures], headroom: float) -> str:
    lines = [
        f"connector headroom {headroom:.0%}; R = Update Ticket's limit; ideal = max(writes / R,"
        " (before + calls) / account limit); x = wall / ideal",
        f"{'case':>17}{'calls':>7}{'writes':>7}{'before':>7}{'wall s':>8}"
        f"{'ideal w':>9}{'ideal acc':>10}{'x ideal':>8}{'429 srv':>8}{'429 cli':>8}",
    ]
    for f in figures:
        lines.append(
            f"{f.case!s:>17}{f.calls:>7}{f.writes:>7}{f.spent_before:>7}{f.seconds:>8.1f}"
            f"{f.ideal_writes:>9.1f}{f.ideal_account:>10.1f}{f.seconds / f.ideal:>8.2f}"
            f"{f.limited_sandbox:>8}{f.limited_client:>8}"
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
                await run_case(
                    bench,
                    running.urls["zendesk"],
                    admin,
                    limits,
                    args.account_rpm,
                    args.shared,
                    f"{n}",
                )
            )
            print(table(figures[-1:], args.headroom).splitlines()[-1], flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", type=BenchCase.parse, action="append", help="R:k[:mode]")
    parser.add_argument("--tickets", type=int, default=2_000, help="sandbox tenant size")
    parser.add_argument(
        "--account-rpm", type=int, default=700, help="the account's limit (X-Rate-Limit)"
    )
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
