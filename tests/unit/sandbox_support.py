"""Shared helpers of the sandbox's unit tests: an in-process client on a small tenant."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import httpx

from sandbox.app import build_app
from sandbox.config import SandboxConfig
from sandbox.faults import FaultPlan
from sandbox.state import Sandbox

START = datetime(2026, 3, 11, 15, 0, tzinfo=UTC)  # a Wednesday
ZENDESK_AUTH = {
    "Authorization": "Basic "
    + base64.b64encode(b"worker@example.com/token:zd-sandbox-token").decode()
}
INTERCOM_AUTH = {"Authorization": "Bearer ic-sandbox-token"}
ASANA_AUTH = {"Authorization": "Bearer as-sandbox-token"}


def small_sandbox(**overrides: Any) -> Sandbox:
    settings: dict[str, Any] = {
        "tickets": 300,
        "seed": 7,
        "start": START,
        "frozen_clock": True,
        "faults": FaultPlan(),
    }
    settings.update(overrides)
    return Sandbox(SandboxConfig(**settings))


def client_for(sandbox: Sandbox) -> httpx.AsyncClient:
    app = build_app(sandbox.config, sandbox)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox")
