"""Sandbox settings: one dataclass, filled from CLI flags (each mirrored by a SANDBOX_ env var)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sandbox.faults import FaultPlan
from sandbox.limits import DEFAULT_LIMITS, VendorLimit

__all__ = ["SandboxConfig", "default_start"]


def default_start() -> datetime:
    """Now, to the minute: generated data is laid out relative to the clock's start."""
    return datetime.now(UTC).replace(second=0, microsecond=0)


@dataclass(slots=True)
class SandboxConfig:
    tickets: int = 10_000
    seed: int = 1
    start: datetime = field(default_factory=default_start)
    frozen_clock: bool = False
    # Sandbox seconds per real second: the clock ticks this much faster and every rate window
    # (a minute, Update Ticket's 10 minutes per ticket) lasts this much less real time.
    time_scale: float = 1.0
    host: str = "127.0.0.1"
    port: int = 8800
    zendesk_email: str = "worker@example.com"
    zendesk_token: str = "zd-sandbox-token"  # an admin's: the incremental exports need one
    zendesk_agent_email: str = "agent@example.com"
    zendesk_agent_token: str = "zd-agent-token"  # an agent's: 403 on the exports
    intercom_token: str = "ic-sandbox-token"
    asana_token: str = "as-sandbox-token"
    admin_token: str | None = None
    limits: dict[str, VendorLimit] = field(default_factory=lambda: dict(DEFAULT_LIMITS))
    faults: FaultPlan = field(default_factory=FaultPlan)
    state_file: Path | None = None
    request_log_size: int = 10_000
    tenants: tuple[str, ...] = ()  # extra tenants, served under /t/<name>/...
    # Every vendor request is checked against the vendor's OpenAPI description (sandbox/
    # contract.py); the descriptions are found in specs_dir, else FOLLOWUP_SPECS_DIR, else
    # ../shared/specs. Off only for raw load benchmarks.
    validate_requests: bool = True
    specs_dir: Path | None = None
    # Also check each answer against the description (tests: SANDBOX_CHECK_RESPONSES=1).
    check_responses: bool = field(
        default_factory=lambda: os.environ.get("SANDBOX_CHECK_RESPONSES", "") in ("1", "true")
    )

    def base_urls(self, base: str) -> dict[str, str]:
        return {
            "zendesk": f"{base}/zendesk",
            "intercom": f"{base}/intercom",
            "asana": f"{base}/asana/api/1.0",
            "admin": f"{base}/_admin",
        }

    def env_lines(self, base: str) -> list[str]:
        """What to put in the worker's ``.env`` to point it at this sandbox."""
        urls = self.base_urls(base)
        return [
            f"FOLLOWUP_ZENDESK_URL={urls['zendesk']}",
            f"FOLLOWUP_ZENDESK_EMAIL={self.zendesk_email}",
            f"FOLLOWUP_ZENDESK_TOKEN={self.zendesk_token}",
            f"FOLLOWUP_INTERCOM_URL={urls['intercom']}",
            f"FOLLOWUP_INTERCOM_TOKEN={self.intercom_token}",
            f"FOLLOWUP_ASANA_URL={urls['asana']}",
            f"FOLLOWUP_ASANA_TOKEN={self.asana_token}",
        ]
