"""Several tenants in one sandbox: own data and state under /t/<name>, one shared clock."""

from __future__ import annotations

from dataclasses import replace

import httpx
import pytest

from sandbox.app import build_app
from sandbox.options import config_from_args
from tests.unit.sandbox_support import ZENDESK_AUTH, small_sandbox


async def test_tenants_have_their_own_data_and_writes_but_one_clock() -> None:
    default = small_sandbox()
    config = replace(default.config, tenants=("acme", "globex"))
    app = build_app(config, default)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
        client.headers.update(ZENDESK_AUTH)
        root = (await client.get("/zendesk/api/v2/tickets/3")).json()["ticket"]
        acme = (await client.get("/t/acme/zendesk/api/v2/tickets/3")).json()["ticket"]
        assert root != acme

        change = {"ticket": {"tags": ["acme_only"]}}
        await client.put("/t/acme/zendesk/api/v2/tickets/3", json=change)
        globex = (await client.get("/t/globex/zendesk/api/v2/tickets/3")).json()["ticket"]
        assert "acme_only" not in globex["tags"]
        acme_stats = (await client.get("/t/acme/_admin/stats")).json()["total"]
        assert (
            acme_stats["writes"],
            (await client.get("/_admin/stats")).json()["total"]["writes"],
        ) == (1, 0)

        await client.post("/t/globex/_admin/clock", json={"advance_days": 3})
        assert (await client.get("/_admin/clock")).json()["now"] == "2026-03-14T15:00:00Z"
        urls = (await client.get("/t/acme/_admin/tenant")).json()["urls"]
        assert urls["zendesk"] == "http://sandbox/t/acme/zendesk"


def test_tenant_names_must_be_url_safe() -> None:
    config, _ = config_from_args(["--tenants", "acme, globex-eu"], environ={})
    assert config.tenants == ("acme", "globex-eu")
    with pytest.raises(SystemExit):
        config_from_args(["--tenants", "Acme/../x"], environ={})
