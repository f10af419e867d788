"""Connector settings: where each vendor is, how to log in, and how hard we may push it.

Limits depend on the tenant's vendor plan (Zendesk Team 200/min ... Enterprise 700/min; Asana
150/min free, 1,500/min paid), so they are settings, not constants. The runtime builds these
from its own settings; ``VendorEnv`` reads the ``FOLLOWUP_*`` variables for commands that only
need the connectors (``followup connectors check``).
"""

from __future__ import annotations

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ConnectorLimits", "Timeouts", "VendorEnv", "VendorLimits"]


class Timeouts(BaseModel):
    """Seconds; see httpx.Timeout. Explicit per phase so a stuck vendor cannot stall a run."""

    model_config = ConfigDict(frozen=True)

    connect: float = 5.0
    read: float = 30.0
    write: float = 30.0
    pool: float = 10.0
    # A Zendesk export page holds up to 1,000 ticket updates with full comment bodies, and a
    # retry spends one of the export's 10 requests a minute (vendor-behaviours.md Z6).
    export_read: float = 120.0

    def to_httpx(self) -> httpx.Timeout:
        return httpx.Timeout(connect=self.connect, read=self.read, write=self.write, pool=self.pool)

    def for_exports(self) -> httpx.Timeout:
        """The same, with the read phase long enough for a full export page."""
        read = max(self.read, self.export_read)
        return httpx.Timeout(connect=self.connect, read=read, write=self.write, pool=self.pool)


class VendorLimits(BaseModel):
    """How one vendor of one tenant may be used."""

    model_config = ConfigDict(frozen=True)

    requests_per_minute: int | None = Field(
        default=None,
        gt=0,
        description="The plan's limit; used until (and unless) the vendor's headers tell.",
    )
    # 5%: the pacing benchmark (benchmarks/pacing_bench.py) finished within 5% of the ideal
    # k/R with no 429s; 10% left more room for agents' apps but cost 11% in wall time.
    headroom: float = Field(
        default=0.05,
        ge=0.0,
        lt=1.0,
        description="Share of the budget left unused, for agents' apps sharing the same limit.",
    )
    rate_window: float = Field(
        default=60.0,
        gt=0,
        description=(
            "Seconds of the vendor's rate window (its limits are per minute). Shorter only"
            " against a sandbox whose clock runs faster (followup-sandbox --time-scale S:"
            " 60/S), so the same pacing keeps to its scaled windows."
        ),
    )
    max_concurrent_reads: int = Field(default=10, gt=0)
    max_concurrent_writes: int = Field(default=5, gt=0)
    read_attempts: int = Field(default=4, gt=0, description="Tries per read, transient errors.")
    write_attempts: int = Field(
        default=3,
        gt=0,
        description="Tries per write when it was provably not applied (429, connect errors).",
    )
    backoff_initial: float = Field(
        default=0.5, gt=0, description="First wait before retrying a failed read (seconds)."
    )
    backoff_max: float = Field(default=15.0, gt=0, description="Longest wait between retries.")
    default_retry_after: float = Field(
        default=10.0, gt=0, description="Wait on a 429 that does not say how long."
    )


class ConnectorLimits(BaseModel):
    """Per-vendor limits of one tenant; defaults are the vendors' published paid-plan figures."""

    model_config = ConfigDict(frozen=True)

    zendesk: VendorLimits = VendorLimits(
        requests_per_minute=700, max_concurrent_reads=10, max_concurrent_writes=5
    )
    intercom: VendorLimits = VendorLimits(
        requests_per_minute=1000, max_concurrent_reads=10, max_concurrent_writes=5
    )
    asana: VendorLimits = VendorLimits(
        requests_per_minute=1500, max_concurrent_reads=50, max_concurrent_writes=15
    )
    timeouts: Timeouts = Timeouts()


class VendorEnv(BaseSettings):
    """Vendor URLs and credentials from ``FOLLOWUP_*``; a vendor without URL+token is unused."""

    model_config = SettingsConfigDict(env_prefix="FOLLOWUP_", extra="ignore")

    zendesk_url: str | None = None
    zendesk_email: str | None = None
    zendesk_token: SecretStr | None = None
    intercom_url: str | None = None
    intercom_token: SecretStr | None = None
    asana_url: str | None = None
    asana_token: SecretStr | None = None
