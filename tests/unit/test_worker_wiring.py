"""Putting settings, policies, mapping and connectors together; counting vendor calls."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from connectors.settings import VendorLimits
from policies.model import PlanItem, Source
from tests.acceptance import seed_days
from tests.unit.worker_support import MONDAY, isolate_settings
from worker.delivery.ledger import Ledger
from worker.metrics import MeteredTransport, Metrics
from worker.runtime.wiring import (
    WiringError,
    build_calendar,
    build_connectors,
    build_planner,
    connector_limits,
    open_runtime,
)
from worker.settings import Settings

SANDBOX = "http://127.0.0.1:8800"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate_settings(monkeypatch, tmp_path)


def _settings(**values: object) -> Settings:
    return Settings(**values)  # type: ignore[arg-type]


def test_the_bundled_policies_compile_into_a_planner() -> None:
    settings = _settings()
    plan = build_planner(settings, build_calendar(settings))
    assert list(plan([], {}, MONDAY)) == []


def test_broken_policies_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text("policies:\n  - name: 3\n", encoding="utf-8")
    settings = _settings(policies=tmp_path)
    with pytest.raises(WiringError, match=r"broken\.yaml"):
        build_planner(settings, build_calendar(settings))


def test_one_connector_per_vendor_with_url_token_and_mapping(tmp_path: Path) -> None:
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("zendesk: {}\nintercom: {}\nasana: {project: Bugs}\n", encoding="utf-8")
    settings = _settings(
        mapping=mapping,
        zendesk_url=f"{SANDBOX}/zendesk",
        zendesk_email="worker@example.com",
        zendesk_token="zd",
        intercom_url=f"{SANDBOX}/intercom",
        intercom_token="ic",
    )
    connectors = build_connectors(settings, Metrics())
    assert {source: c.source for source, c in connectors.items()} == {
        Source.ZENDESK: Source.ZENDESK,
        Source.INTERCOM: Source.INTERCOM,
    }


def test_the_retry_backoff_is_the_settings_for_every_vendor_when_given() -> None:
    given = connector_limits(_settings(http_backoff=0.05))
    default = connector_limits(_settings())
    assert [v.backoff_initial for v in (given.zendesk, given.intercom, given.asana)] == [0.05] * 3
    assert default.zendesk.backoff_initial == VendorLimits().backoff_initial


def test_the_rate_window_is_the_settings_for_every_vendor() -> None:
    scaled = connector_limits(_settings(rate_window=1.0))
    assert [v.rate_window for v in (scaled.zendesk, scaled.intercom, scaled.asana)] == [1.0] * 3
    assert connector_limits(_settings()).zendesk.rate_window == 60.0


def test_a_bad_mapping_file_is_a_wiring_error(tmp_path: Path) -> None:
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("zendesk:\n  groups: 3\n", encoding="utf-8")
    settings = _settings(intercom_url=f"{SANDBOX}/intercom", intercom_token="ic", mapping=mapping)
    with pytest.raises(WiringError, match=r"mapping\.yaml:2"):
        build_connectors(settings, Metrics())


async def test_no_vendor_at_all_is_refused(tmp_path: Path) -> None:
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    with pytest.raises(WiringError, match="no vendor configured"):
        async with open_runtime(_settings(), ledger):
            pass
    ledger.close()


async def test_vendor_calls_throttling_and_latency_are_counted_per_tenant() -> None:
    now = [0.0]

    def vendor(request: httpx.Request) -> httpx.Response:
        now[0] += 0.3 if request.url.host == "slow" else 0.01  # time spent answering
        if request.url.path.endswith("/down"):
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(429 if request.url.path.endswith("/busy") else 200)

    metrics = Metrics()

    def tenant_transport(tenant: str, host: str) -> MeteredTransport:
        vendors = {f"http://{host}/zendesk": "zendesk", f"http://{host}/zendesk-eu": "zendesk_eu"}
        mock = httpx.MockTransport(vendor)
        return MeteredTransport(metrics, vendors, mock, tenant=tenant, clock=lambda: now[0])

    async with httpx.AsyncClient(
        transport=tenant_transport("acme", "slow"), base_url="http://slow"
    ) as client:
        await client.get("/zendesk/ok")
        await client.get("/zendesk/busy")
        with pytest.raises(httpx.ConnectError):
            await client.get("/zendesk/down")
        await client.get("/zendesk-eu/ok")
        await client.get("/elsewhere")
    async with httpx.AsyncClient(
        transport=tenant_transport("globex", "fast"), base_url="http://fast"
    ) as client:
        await client.get("/zendesk/ok")

    text = metrics.exposition().decode()
    acme = 'tenant="acme",vendor="zendesk"'
    assert f'followup_api_calls_total{{status="2xx",{acme}}} 1.0' in text
    assert f'followup_api_calls_total{{status="4xx",{acme}}} 1.0' in text
    assert f'followup_api_calls_total{{status="error",{acme}}} 1.0' in text
    assert f"followup_api_throttled_total{{{acme}}} 1.0" in text
    assert 'followup_api_calls_total{status="2xx",tenant="acme",vendor="zendesk_eu"} 1.0' in text
    assert 'followup_api_calls_total{status="2xx",tenant="acme",vendor="other"} 1.0' in text
    assert 'followup_api_calls_total{status="2xx",tenant="globex",vendor="zendesk"} 1.0' in text
    assert 'followup_api_throttled_total{tenant="globex"' not in text
    # Which client's helpdesk is slow: acme's three Zendesk calls took 0.3 s each, globex's 0.01.
    assert f'followup_api_call_duration_seconds_bucket{{le="0.25",{acme}}} 0.0' in text
    assert f'followup_api_call_duration_seconds_bucket{{le="0.5",{acme}}} 3.0' in text
    globex = 'tenant="globex",vendor="zendesk"'
    assert f'followup_api_call_duration_seconds_bucket{{le="0.05",{globex}}} 1.0' in text


async def test_a_request_repeating_a_failed_one_is_a_retry() -> None:
    answers = iter([503, 200, 429, 200, 500])
    now = [0.0]

    def vendor(request: httpx.Request) -> httpx.Response:
        return httpx.Response(next(answers))

    metrics = Metrics()
    transport = MeteredTransport(
        metrics,
        {"http://v/asana": "asana"},
        httpx.MockTransport(vendor),
        tenant="acme",
        clock=lambda: now[0],
    )
    async with httpx.AsyncClient(transport=transport, base_url="http://v/asana") as client:
        await client.get("/tasks/1")  # 503
        await client.get("/tasks/1")  # retry, 200
        await client.get("/tasks/2")  # 429
        await client.get("/tasks/3")  # another request, not a retry; 200
        now[0] = 1000.0
        await client.get("/tasks/2")  # long after: a new call, not a retry; 500

    text = metrics.exposition().decode()
    assert 'followup_api_retries_total{tenant="acme",vendor="asana"} 1.0' in text


async def test_failed_calls_never_repeated_are_forgotten_after_the_retry_window() -> None:
    now = [0.0]
    transport = MeteredTransport(
        Metrics(),
        {"http://v/zendesk": "zendesk"},
        httpx.MockTransport(lambda request: httpx.Response(503)),
        tenant="acme",
        retry_window=300.0,
        clock=lambda: now[0],
    )
    async with httpx.AsyncClient(transport=transport, base_url="http://v/zendesk") as client:
        for ticket in range(1, 1001):  # a day of failures, one every 90 s, none repeated
            now[0] = ticket * 90.0
            await client.get(f"/tickets/{ticket}")

    assert transport.awaiting_retry == 4  # the last 300 s: 3 earlier failures and this one


def test_the_pack_s_settings_are_the_same_for_live_runs_as_for_plan() -> None:
    # Issue 14: FOLLOWUP_POLICY_SETTINGS was honoured by `plan` and ignored by `run`/`serve`.
    case = seed_days.ticket(request_type="refund")
    when = seed_days.at("2026-03-02")
    default = _settings()
    chosen = _settings(policy_settings="refund_day_one_note=from_one; ein_bot_owner=Jo Q")
    assert list(build_planner(default, build_calendar(default))([case], {}, when)) == []
    planned = list(build_planner(chosen, build_calendar(chosen))([case], {}, when))
    assert [item.step_label for item in planned if isinstance(item, PlanItem)] == ["1/3"]


def test_an_unknown_pack_setting_stops_the_wiring() -> None:
    with pytest.raises(WiringError, match="unknown setting override"):
        build_planner(_settings(policy_settings="no_such=1"), build_calendar(_settings()))
