"""Benchmark (a script, not a test): the Zendesk connector vs the usual zenpy script.

Both do the same job against a fresh sandbox (same seed, same tickets): read every candidate
ticket (not solved/closed) with its requester and comments, then give ``--due`` of them the
day-6 treatment of seed 004: internal note, status SOLVED, assignee "Unresponsive
Customers/Roxy V", order status "unresponsive", tag ``followup_worker``.

- connector: incremental export with side-loaded users, every ticket's comments from the ticket
  event export (a ticket's own comments read only when the export cannot tell: the "comment
  reads" column), one paced ``safe_update`` per acted ticket.
- plain: zenpy, the way such scripts are usually written: list tickets, ``ticket.requester``
  (one user lookup per requester), comments per ticket, one ``tickets.update`` per change.

Prints API calls (reads, writes, 429s, per-ticket comment reads, from the sandbox's own
counters) and wall time.

    python benchmarks/connectors_bench.py --tickets 10000 --due 1000 --rate-limit 20000

Last run (10,000 tickets, 8,781 candidates, 1,000 due): the connector made 1,049 calls (49
reads: 3 name lists, 36 event export pages, 10 ticket export pages; 1,000 writes; no
per-ticket comment read, no 429) in 15.7 s; the zenpy script 17,973 (12,973 reads, 5,000
writes) in 69.1 s: 17.1x as many. With ``--bulk``: 69 calls (10 jobs, 10 polls).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import requests
from requests.adapters import HTTPAdapter
from zenpy import Zenpy
from zenpy.lib.api_objects import Comment, CustomField

from connectors.mapping import load_mapping
from connectors.settings import Timeouts, VendorLimits
from connectors.zendesk import ZendeskConnector
from policies.model import Action, ActionType, Case, PlanItem, Status, idempotency_key
from sandbox.server import RunningSandbox, run_subprocess

MAPPING = load_mapping(Path(__file__).parents[1] / "deploy" / "mapping.sandbox.yaml")
EMAIL, TOKEN = "worker@example.com", "zd-sandbox-token"
UNRESPONSIVE_GROUP, ROXY, ORDER_STATUS_FIELD = "Unresponsive Customers", "Roxy V", "Order status"
COMMENTS = "GET /api/v2/tickets/{ticket_id:int}/comments"


@dataclass
class Figures:
    name: str
    candidates: int
    acted: int
    reads: int
    writes: int
    rate_limited: int
    comment_reads: int
    seconds: float

    @property
    def calls(self) -> int:
        return self.reads + self.writes


def sandbox_figures(admin: httpx.Client) -> tuple[int, int, int, int]:
    """Reads, writes, 429s and per-ticket comment reads the sandbox counted."""
    stats = admin.get("/stats").json()
    zendesk = stats["vendors"].get("zendesk", {})
    limited = sum(e["count"] for e in stats["endpoints"] if str(e["status"]) == "429")
    comments = sum(e["count"] for e in stats["endpoints"] if e["endpoint"] == COMMENTS)
    return zendesk.get("reads", 0), zendesk.get("writes", 0), limited, comments


def day6_actions() -> tuple[Action, ...]:
    return (
        Action(ActionType.NOTE, {"body": "customer unresponsive - closing ticket"}),
        Action(ActionType.SET_STATUS, {"status": "solved"}),
        Action(ActionType.SET_ASSIGNEE, {"assignee": f"{UNRESPONSIVE_GROUP}/{ROXY}"}),
        Action(ActionType.SET_FIELD, {"field": "order_status", "value": "unresponsive"}),
    )


async def run_connector(running: RunningSandbox, due: int, limits: VendorLimits) -> Figures:
    assert MAPPING.zendesk is not None
    mapping = MAPPING.zendesk.model_copy(update={"endpoint_limits": {}})
    started = time.perf_counter()
    zendesk = ZendeskConnector.connect(
        running.urls["zendesk"], EMAIL, TOKEN, mapping,
        limits=limits, timeouts=Timeouts(), plans=MAPPING.plans,
        clock=lambda: datetime.now(UTC),
    )  # fmt: skip
    chosen: list[Case] = []
    candidates = 0
    async with zendesk:
        async for case in zendesk.cases():
            candidates += 1
            if case.status is not Status.SOLVED and len(chosen) < due:
                chosen.append(case)
        items = [
            PlanItem(case, "general_inquiry", "day6", 4, 4, day6_actions(), "benchmark",
                     idempotency_key("general_inquiry", case.ref, 4, case.updated_at.isoformat()))
            for case in chosen
        ]  # fmt: skip
        results = await zendesk.apply_many(items)
    seconds = time.perf_counter() - started
    failed = [r for r in results if r.outcome.value in ("failed", "conflict")]
    if failed:
        print(f"  connector: {len(failed)} writes not applied, e.g. {failed[0]}")
    with httpx.Client(base_url=running.urls["admin"]) as admin:
        reads, writes, limited, comments = sandbox_figures(admin)
    return Figures("connector", candidates, len(items), reads, writes, limited, comments, seconds)


class _ToSandbox(HTTPAdapter):
    """zenpy only speaks to https://<subdomain>.zendesk.com: route that to the sandbox."""

    def __init__(self, base: str) -> None:
        super().__init__()
        self._base = base

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        assert request.url is not None
        sent = request.copy()
        sent.url = self._base + request.url.split(".zendesk.com", 1)[1]
        if request.method == "PUT" and request.body:
            # zenpy repeats the ticket id in the body; Zendesk ignores it, the sandbox refuses it.
            body = json.loads(request.body)
            body.get("ticket", {}).pop("id", None)
            sent.prepare_body(data=None, files=None, json=body)
        response = super().send(sent, **kwargs)
        # zenpy picks its response handler by the Zendesk URL of the request.
        response.request, response.url = request, request.url
        return response


def run_zenpy(running: RunningSandbox, due: int) -> Figures:
    started = time.perf_counter()
    session = requests.Session()
    session.mount("https://bench.zendesk.com", _ToSandbox(running.urls["zendesk"]))
    zenpy = Zenpy(subdomain="bench", email=EMAIL, token=TOKEN, session=session)
    group_id = next(g.id for g in zenpy.groups() if g.name == UNRESPONSIVE_GROUP)
    roxy_id = next(u.id for u in zenpy.users(role="agent") if u.name == ROXY)
    field_id = next(f.id for f in zenpy.ticket_fields() if f.title == ORDER_STATUS_FIELD)
    chosen = []
    candidates = 0
    for ticket in zenpy.tickets():
        if ticket.status in ("solved", "closed"):
            continue
        candidates += 1
        _ = ticket.requester.email  # what the usual script does to decide email vs call
        _ = list(zenpy.tickets.comments(ticket=ticket.id))
        if len(chosen) < due:
            chosen.append(ticket)
    changes: list[Callable[[Any], None]] = [
        lambda t: setattr(t, "comment", Comment(body="customer unresponsive", public=False)),
        lambda t: (setattr(t, "group_id", group_id), setattr(t, "assignee_id", roxy_id)),
        lambda t: setattr(t, "custom_fields", [CustomField(id=field_id, value="unresponsive")]),
        lambda t: setattr(t, "status", "solved"),  # last: solving needs the assignee
    ]
    for ticket in chosen:
        for change in changes:  # one call per change, as zenpy scripts usually go
            fresh = zenpy.tickets(id=ticket.id)
            change(fresh)
            zenpy.tickets.update(fresh)
        zenpy.tickets.add_tags(ticket.id, ["followup_worker"])
    seconds = time.perf_counter() - started
    with httpx.Client(base_url=running.urls["admin"]) as admin:
        reads, writes, limited, comments = sandbox_figures(admin)
    return Figures(
        "zenpy script", candidates, len(chosen), reads, writes, limited, comments, seconds
    )


def sandbox_args(tickets: int, rate_limit: int) -> list[str]:
    return ["--tickets", str(tickets), "--seed", "1", "--rate-limit", f"zendesk={rate_limit}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=10_000)
    parser.add_argument("--due", type=int, default=1_000)
    parser.add_argument("--rate-limit", type=int, default=20_000, help="sandbox Zendesk rpm")
    parser.add_argument("--skip-plain", action="store_true", help="only run the connector")
    args = parser.parse_args()
    limits = VendorLimits(requests_per_minute=args.rate_limit, max_concurrent_reads=10,
                          max_concurrent_writes=10)  # fmt: skip
    rows = []
    with run_subprocess(*sandbox_args(args.tickets, args.rate_limit)) as running:
        rows.append(asyncio.run(run_connector(running, args.due, limits)))
    if not args.skip_plain:
        with run_subprocess(*sandbox_args(args.tickets, args.rate_limit)) as running:
            rows.append(run_zenpy(running, args.due))
    print(f"\n{args.tickets} tickets, {args.due} due, sandbox limit {args.rate_limit}/min\n")
    header = f"{'':14}{'candidates':>11}{'acted':>7}{'reads':>8}{'writes':>8}{'calls':>8}"
    print(header + f"{'429s':>6}{'comment reads':>15}{'seconds':>9}{'writes/acted':>14}")
    for r in rows:
        print(
            f"{r.name:14}{r.candidates:>11}{r.acted:>7}{r.reads:>8}{r.writes:>8}{r.calls:>8}"
            f"{r.rate_limited:>6}{r.comment_reads:>15}{r.seconds:>9.1f}"
            f"{r.writes / max(r.acted, 1):>14.2f}"
        )
    if not args.skip_plain:
        for row in rows[:-1]:
            print(f"plain script / {row.name} calls: {rows[-1].calls / row.calls:.1f}x")


if __name__ == "__main__":
    main()
