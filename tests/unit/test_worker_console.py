"""The ops console's pages, served in-process over fake connectors (the browser suite runs
them against the sandbox: tests/integration/test_console_browser.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from connectors.fake import FakeConnector
from connectors.resolution import NameCheck
from policies.calendar import BusinessCalendar
from policies.language import BUNDLED_PACK
from policies.model import Account, Source
from tests.unit.worker_support import MONDAY, fake_zendesk, make_case, make_runtime
from worker.console import ConsoleSetup, TenantView
from worker.console.live import MappingChecks, helpdesk_link
from worker.delivery.ledger import Ledger
from worker.runtime.cycle import Runtime, run_cycle
from worker.runtime.leases import LeaseKeeper, LocalLeases
from worker.runtime.web import ServiceStatus, create_app
from worker.runtime.wiring import build_rulebook
from worker.settings import Settings

ADMIN = "console-secret"
_DAYS_3 = timedelta(days=3)


@pytest.fixture
def fake() -> FakeConnector:
    return fake_zendesk("1", "2")


@pytest.fixture
def runtime(tmp_path: Path, fake: FakeConnector) -> Iterator[Runtime]:
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    runtime = make_runtime(ledger, fake)
    runtime.clock = lambda: MONDAY
    yield runtime
    ledger.close()


def _setup(runtime: Runtime) -> ConsoleSetup:
    settings = Settings(
        zendesk_url="https://acme.zendesk.example",
        zendesk_email="api@acme.example",
        zendesk_token="zendesk-secret",
        _env_file=None,  # type: ignore[call-arg]
    )
    calendar = BusinessCalendar(timezone=settings.timezone, country="US")
    [tenant] = runtime.tenants
    view = TenantView(tenant, settings, calendar, build_rulebook(settings))
    return ConsoleSetup({tenant.name: view}, [], settings.zone, MappingChecks())


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(runtime, ServiceStatus(), admin_token=ADMIN, console=_setup(runtime))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://worker") as client:
        yield client


async def _signed_in(client: httpx.AsyncClient) -> None:
    response = await client.post("/console/login", data={"token": ADMIN})
    assert response.status_code == 303


async def test_pages_ask_for_the_admin_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/console/")
    assert (response.status_code, response.headers["location"]) == (303, "/console/login")
    wrong = await client.post("/console/login", data={"token": "guess"})
    assert wrong.status_code == 401
    assert "wrong token" in wrong.text

    await _signed_in(client)

    assert ADMIN not in client.cookies["followup_console"]
    assert (await client.get("/console/")).status_code == 200


async def test_a_bearer_token_opens_the_pages_too(client: httpx.AsyncClient) -> None:
    response = await client.get("/console/policies", headers={"Authorization": f"Bearer {ADMIN}"})
    assert response.status_code == 200
    assert "awaiting-customer" in response.text
    assert str(BUNDLED_PACK) in response.text


async def test_the_console_is_off_without_an_admin_token(runtime: Runtime) -> None:
    app = create_app(runtime, ServiceStatus(), admin_token=None, console=_setup(runtime))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://worker") as client:
        response = await client.get("/console/")
    assert response.status_code == 404
    assert "FOLLOWUP_ADMIN_TOKEN" in response.text


async def test_now_shows_each_tenant_turn_without_secrets(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await run_cycle(runtime, at=MONDAY + _DAYS_3)
    await _signed_in(client)

    page = (await client.get("/console/")).text

    assert 'id="tenant-acme"' in page
    assert '<td class="cases">2</td>' in page
    assert '<td class="applied">2</td>' in page
    assert "this process (no leases" in page
    assert "zendesk-secret" not in page
    assert "api@acme.example" not in page


async def test_now_names_the_lease_holder(client: httpx.AsyncClient, runtime: Runtime) -> None:
    runtime.leases = LeaseKeeper(LocalLeases(), "replica-a", timedelta(seconds=30))
    await _signed_in(client)
    assert "nobody: no replica works this tenant now" in (await client.get("/console/")).text

    runtime.leases.refresh(["acme"], now=MONDAY)

    assert "this replica (replica-a), until" in (await client.get("/console/")).text


class _MappedZendesk(FakeConnector):
    """A vendor with a mapping to check, as the real connectors have."""

    checks = 0

    async def check(self) -> list[NameCheck]:
        self.checks += 1
        return [
            NameCheck("zendesk", "group", "Support", "11"),
            NameCheck("zendesk", "agent", "Roxy V", None),
        ]


async def test_now_lists_mapped_names_the_vendor_does_not_have(tmp_path: Path) -> None:
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    mapped = _MappedZendesk(Source.ZENDESK, [make_case("1")], [Account("acme", "Acme")])
    runtime = make_runtime(ledger, mapped)
    app = create_app(runtime, ServiceStatus(), admin_token=ADMIN, console=_setup(runtime))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://worker") as client:
        await _signed_in(client)
        first = (await client.get("/console/")).text
        await client.get("/console/")
    ledger.close()

    assert "zendesk agent Roxy V" in first
    assert "Support" not in first
    assert mapped.checks == 1  # kept for a while: a page load is not a vendor call each time


async def test_dry_run_flip_needs_who_and_why_and_holds_for_the_next_cycle(
    client: httpx.AsyncClient, runtime: Runtime, fake: FakeConnector
) -> None:
    await _signed_in(client)

    refused = await client.post("/console/dry-run", data={"dry_run": "on", "operator": "jo"})
    assert refused.status_code == 400
    flipped = await client.post(
        "/console/dry-run",
        data={"dry_run": "on", "operator": "jo", "reason": "Zendesk migration tonight"},
    )
    assert flipped.status_code == 303

    page = (await client.get("/console/dry-run")).text
    assert "Dry-run is ON" in page
    assert "Zendesk migration tonight" in page
    assert "jo (console," in page
    summary = await run_cycle(runtime, at=MONDAY + _DAYS_3)
    assert summary.mode.dry_run
    assert fake.writes == []
    metrics = (await client.get("/metrics")).text
    assert "followup_dry_run 1.0" in metrics
    assert 'followup_tenant_lease_held{tenant="acme"} 1.0' in metrics
    assert "followup_dry_run_switch_on_since_timestamp_seconds 0.0" not in metrics


async def test_a_case_shows_its_history_and_a_link_to_the_helpdesk(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await run_cycle(runtime, at=MONDAY + _DAYS_3)
    await _signed_in(client)

    page = (await client.get("/console/case", params={"ref": "zendesk:1"})).text

    assert 'id="history"' in page
    assert "applied" in page
    assert 'href="https://acme.zendesk.example/agent/tickets/1"' in page
    assert 'id="explain"' in page


async def test_ahead_draws_a_bar_per_business_day(client: httpx.AsyncClient) -> None:
    await _signed_in(client)

    page = (await client.get("/console/ahead", params={"days": "3"})).text

    assert page.count('<g class="bar"') == 4
    assert 'id="by-step"' in page


def test_helpdesk_links_only_for_the_tenant_vendors() -> None:
    settings = Settings(  # type: ignore[call-arg]
        zendesk_url="https://z.example/",
        zendesk_email="bot@z.example",
        zendesk_token="t",
        _env_file=None,
    )
    assert helpdesk_link(settings, "zendesk:7") == "https://z.example/agent/tickets/7"
    assert helpdesk_link(settings, "asana:7") is None
