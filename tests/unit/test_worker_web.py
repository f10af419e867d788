"""The HTTP endpoints of `followup serve`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tests.unit.worker_support import MONDAY, fake_zendesk, make_runtime
from worker.delivery.decisions import RunMode
from worker.delivery.ledger import Ledger
from worker.runtime.cycle import CycleSummary, Runtime
from worker.runtime.switches import dry_run_switch
from worker.runtime.web import ServiceStatus, create_app

ADMIN = "admin-secret"
AUTH = {"Authorization": f"Bearer {ADMIN}"}


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    yield make_runtime(ledger, fake_zendesk("1"), dry_run=True)
    ledger.close()


@pytest.fixture
def status() -> ServiceStatus:
    return ServiceStatus()


def _client(runtime: Runtime, status: ServiceStatus, admin: str | None) -> httpx.AsyncClient:
    app = create_app(runtime, status, admin_token=admin)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://worker")


@pytest.fixture
async def client(runtime: Runtime, status: ServiceStatus) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(runtime, status, ADMIN) as client:
        yield client


async def test_healthz(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}


async def test_ready_before_any_cycle_when_the_ledger_is_writable(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/readyz")
    assert (response.status_code, response.json()["ready"]) == (200, True)


async def test_not_ready_when_the_last_cycle_could_not_read_a_vendor(
    client: httpx.AsyncClient, status: ServiceStatus
) -> None:
    status.last_cycle = CycleSummary(
        cycle_id="c1",
        at=MONDAY,
        mode=RunMode(True, "test"),
        errors=("acme: zendesk: ConnectError()",),
        error_count=1,
    )
    response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["problems"] == ["cycle c1: acme: zendesk: ConnectError()"]


async def test_not_ready_when_the_ledger_cannot_be_written(status: ServiceStatus) -> None:
    unwritable = Ledger(sa.create_engine("sqlite:////nonexistent/dir/ledger.sqlite3"))
    async with _client(make_runtime(unwritable, fake_zendesk()), status, ADMIN) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["problems"] == ["the ledger is not writable: OperationalError"]


async def test_metrics_are_prometheus_text(client: httpx.AsyncClient) -> None:
    response = await client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    assert "followup_last_success_timestamp_seconds" in response.text


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": ADMIN}]
)
async def test_admin_needs_the_bearer_token(
    client: httpx.AsyncClient, runtime: Runtime, headers: dict[str, str]
) -> None:
    response = await client.post("/admin/dry-run", json={"dry_run": False}, headers=headers)
    assert response.status_code == 401
    assert dry_run_switch(runtime.ledger) is None


async def test_admin_flips_dry_run_for_every_process(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    assert (await client.get("/admin/dry-run", headers=AUTH)).json()["dry_run"] is True

    response = await client.post(
        "/admin/dry-run", json={"dry_run": False, "reason": "go-live"}, headers=AUTH
    )

    assert response.json() == {
        "dry_run": False,
        "why": "the runtime dry-run switch is off",
        "switch": "off",
        "configured": True,
    }
    assert dry_run_switch(runtime.ledger) is False
    [change] = runtime.ledger.switch_log("dry_run")
    assert (change.value, change.reason) == ("off", "go-live")
    assert change.by.startswith("admin api (")


async def test_admin_rejects_a_malformed_body(client: httpx.AsyncClient) -> None:
    response = await client.post("/admin/dry-run", json={"dry_run": "no"}, headers=AUTH)
    assert response.status_code == 400


async def test_admin_is_disabled_without_a_token(runtime: Runtime, status: ServiceStatus) -> None:
    async with _client(runtime, status, None) as client:
        response = await client.get("/admin/dry-run", headers={"Authorization": "Bearer "})
    assert response.status_code == 404
