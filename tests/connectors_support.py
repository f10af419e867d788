"""Test helpers for the connector suites: a fake clock and a client wired to a respx router."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx
import respx

from connectors.http import EndpointClass, VendorClient
from connectors.settings import Timeouts, VendorLimits

SECRET_TOKEN = "s3cr3t-token-value"
AGENT_EMAIL = "agent.secret@example.com"


@dataclass
class FakeClock:
    """Monotonic time that only moves when the code under test sleeps."""

    now: float = 1000.0
    wall: float = 1_700_000_000.0
    sleeps: list[float] = field(default_factory=list)

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.wall + self.now

    async def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.sleeps.append(seconds)
            self.now += seconds


def make_client(
    router: respx.MockRouter,
    clock: FakeClock,
    *,
    vendor: str = "zendesk",
    base_url: str = "https://acme.zendesk.com",
    limits: VendorLimits | None = None,
    classes: Sequence[EndpointClass] = (),
) -> VendorClient:
    return VendorClient(
        vendor,
        base_url,
        limits=limits or VendorLimits(),
        timeouts=Timeouts(),
        auth=httpx.BasicAuth(f"{AGENT_EMAIL}/token", SECRET_TOKEN),
        transport=httpx.MockTransport(router.async_handler),
        clock=clock.monotonic,
        wall_clock=clock.time,
        sleep=clock.sleep,
        classes=classes,
    )
