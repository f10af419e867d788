"""One tenant's sandbox: the three desks, their clock, outbox, limits, faults and the
request contract, with saving and loading of the state."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from sandbox.asana import AsanaDesk
from sandbox.clock import SandboxClock, format_iso, parse_iso
from sandbox.config import SandboxConfig
from sandbox.contract import Contract, default_specs_dir
from sandbox.faults import FaultPlan
from sandbox.gate import Gate, VendorProfile
from sandbox.generator import Generator
from sandbox.intercom import IntercomDesk
from sandbox.limits import RateLimiter
from sandbox.outbox import Outbox
from sandbox.traffic import Traffic
from sandbox.zendesk import ZendeskDesk

__all__ = ["Sandbox", "tenant_config"]


class Sandbox:
    """Everything the server keeps in memory for one tenant."""

    def __init__(self, config: SandboxConfig, *, clock: SandboxClock | None = None) -> None:
        self.config = config
        self.clock = clock or SandboxClock(
            config.start, frozen=config.frozen_clock, scale=config.time_scale
        )
        self.generator = Generator(config.seed, config.tickets, config.start)
        self.outbox = Outbox()
        self.traffic = Traffic(config.request_log_size)
        self.limiter = RateLimiter(config.limits, time_scale=config.time_scale)
        self.faults: FaultPlan = config.faults
        self.zendesk = ZendeskDesk(self.generator, self.clock, self.outbox)
        self.intercom = IntercomDesk(self.generator, self.clock, self.outbox)
        self.asana = AsanaDesk(self.generator, self.clock)
        self.contract = (
            Contract(
                config.specs_dir or default_specs_dir(), check_responses=config.check_responses
            )
            if config.validate_requests
            else None
        )
        if config.state_file is not None and config.state_file.exists():
            self.load(json.loads(config.state_file.read_text()))

    def gate(self, profile: VendorProfile) -> Gate:
        return Gate(
            profile,
            limiter=self.limiter,
            faults=lambda: self.faults,
            traffic=self.traffic,
            clock=self.clock,
            contract=self.contract,
        )

    def dump(self) -> dict[str, Any]:
        return {
            "seed": self.config.seed,
            "tickets": self.config.tickets,
            "clock": format_iso(self.clock.now()),
            "zendesk": self.zendesk.dump(),
            "intercom": self.intercom.dump(),
            "asana": self.asana.dump(),
            "asana_events": self.asana.events,
            "outbox": self.outbox.dump(),
        }

    def load(self, data: dict[str, Any]) -> None:
        if (data.get("seed"), data.get("tickets")) != (self.config.seed, self.config.tickets):
            raise ValueError("the state file was saved for another --seed/--tickets")
        self.clock.set(parse_iso(data["clock"]))
        self.zendesk.load(data["zendesk"])
        self.intercom.load(data["intercom"])
        self.asana.load(data["asana"], data.get("asana_events", []))
        self.outbox.load(data["outbox"])

    def save(self) -> None:
        if self.config.state_file is not None:
            self.config.state_file.write_text(json.dumps(self.dump()))


def tenant_config(config: SandboxConfig, index: int, name: str) -> SandboxConfig:
    """The settings of extra tenant number ``index``: its own seed and state file."""
    state_file = config.state_file
    if state_file is not None:
        state_file = state_file.with_name(f"{state_file.stem}.{name}{state_file.suffix}")
    return replace(config, seed=config.seed + index, state_file=state_file, tenants=())
