"""Vendor webhooks on `followup serve`, over real HTTP: a signed, fresh, first-seen delivery
marks its case changed; an unsigned, forged, stale or replayed one is refused and counted."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from policies.model import Source
from tests.integration.test_worker_serve import NEVER_DURING_THE_TEST, _until_healthy
from tests.unit.worker_support import fake_zendesk, make_runtime
from worker.delivery.ledger import Ledger
from worker.runtime.cycle import Runtime
from worker.runtime.service import serve
from worker.runtime.web import WebhookSetup
from worker.webhooks import intercom_signature, zendesk_signature

ZENDESK_SECRET = "zd-signing-secret"
INTERCOM_SECRET = "ic-client-secret"
NOW = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)


class Served:
    def __init__(self, base: str, runtime: Runtime) -> None:
        self.base = base
        self.runtime = runtime


@pytest.fixture
async def served(tmp_path: Path, unused_tcp_port: int) -> AsyncIterator[Served]:
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    runtime = make_runtime(ledger, fake_zendesk("1"))
    result = Served(f"http://127.0.0.1:{unused_tcp_port}", runtime)
    setup = WebhookSetup(
        secrets={"zendesk": ZENDESK_SECRET, "intercom": INTERCOM_SECRET},
        clock=lambda: NOW,
    )
    serving = asyncio.create_task(
        serve(
            runtime,
            trigger=NEVER_DURING_THE_TEST,
            host="127.0.0.1",
            port=unused_tcp_port,
            admin_token=None,
            webhooks=setup,
        )
    )
    await _until_healthy(f"{result.base}/healthz")
    yield result
    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.wait_for(serving, timeout=30)
    ledger.close()


Delivery = tuple[str, dict[str, str]]  # body, headers


def _zendesk(ticket: int, *, at: datetime = NOW, secret: str = ZENDESK_SECRET) -> Delivery:
    body = json.dumps({"type": "zen:event-type:ticket.comment_added", "detail": {"id": ticket}})
    stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return body, {
        "X-Zendesk-Webhook-Signature": zendesk_signature(secret, stamp, body.encode()),
        "X-Zendesk-Webhook-Signature-Timestamp": stamp,
    }


def _intercom(
    notification: str, item: dict[str, str], *, secret: str = INTERCOM_SECRET
) -> Delivery:
    body = json.dumps({
        "type": "notification_event", "id": notification, "topic": "conversation.user.replied",
        "created_at": int(NOW.timestamp()),
        "data": {"type": "notification_event_data", "item": item},
    })  # fmt: skip
    return body, {"X-Hub-Signature": intercom_signature(secret, body.encode())}


async def test_verified_webhooks_mark_their_case_and_the_rest_are_refused_and_counted(
    served: Served,
) -> None:
    conversation = {"type": "conversation", "id": "10042"}
    async with httpx.AsyncClient(base_url=served.base) as client:

        async def post(path: str, delivery: Delivery) -> int:
            body, headers = delivery
            return (await client.post(path, content=body, headers=headers)).status_code

        zendesk, intercom = "/webhooks/acme/zendesk", "/webhooks/acme/intercom"
        stale = NOW - timedelta(minutes=10)
        answers = {
            "zendesk valid": await post(zendesk, _zendesk(7)),
            "zendesk replayed": await post(zendesk, _zendesk(7)),
            "zendesk forged": await post(zendesk, _zendesk(8, secret="guess")),
            "zendesk stale": await post(zendesk, _zendesk(9, at=stale)),
            "zendesk unsigned": await post(zendesk, ('{"ticket_id": 10}', {})),
            "intercom valid": await post(intercom, _intercom("n1", conversation)),
            "intercom replayed": await post(intercom, _intercom("n1", conversation)),
            "intercom forged": await post(intercom, _intercom("n2", conversation, secret="x")),
            "intercom ping": await post(intercom, _intercom("n3", {"type": "ping"})),
            "unknown tenant": await post("/webhooks/other/zendesk", _zendesk(11)),
        }
        metrics = (await client.get("/metrics")).text
    assert answers == {
        "zendesk valid": 200, "zendesk replayed": 403, "zendesk forged": 401,
        "zendesk stale": 403, "zendesk unsigned": 401, "intercom valid": 200,
        "intercom replayed": 403, "intercom forged": 401, "intercom ping": 200,
        "unknown tenant": 404,
    }  # fmt: skip
    store = served.runtime.store  # pushed: read on their own at the tenant's next sync
    assert store.pushed("acme", Source.ZENDESK) == ["7"]
    assert store.pushed("acme", Source.INTERCOM) == ["10042"]
    for vendor, result, count in [
        ("zendesk", "accepted", 1), ("zendesk", "replayed", 1), ("zendesk", "bad_signature", 1),
        ("zendesk", "stale", 1), ("zendesk", "unsigned", 1), ("intercom", "accepted", 2),
        ("intercom", "replayed", 1), ("intercom", "bad_signature", 1),
    ]:  # fmt: skip
        line = f'followup_webhooks_total{{result="{result}",tenant="acme",vendor="{vendor}"}}'
        assert f"{line} {count:.1f}" in metrics
    assert ZENDESK_SECRET not in metrics
