"""Runtime switches ops flip without a restart, stored in the ledger every process shares."""

from __future__ import annotations

from datetime import datetime

import structlog

from worker.delivery.ledger import Ledger

__all__ = ["DRY_RUN", "dry_run_switch", "set_dry_run_switch"]

DRY_RUN = "dry_run"

log = structlog.get_logger("followup.switches")


def dry_run_switch(ledger: Ledger) -> bool | None:
    """True: forced dry-run; False: live; None: never flipped (FOLLOWUP_DRY_RUN decides)."""
    value = ledger.switch(DRY_RUN)
    return None if value is None else value == "on"


def set_dry_run_switch(
    ledger: Ledger, on: bool, *, by: str, at: datetime, reason: str = ""
) -> None:
    """Flip the switch for every process sharing the ledger; the ledger's audit log keeps who,
    when and ``reason``."""
    before = dry_run_switch(ledger)
    ledger.set_switch(DRY_RUN, "on" if on else "off", by=by, at=at, reason=reason)
    log.warning(
        "dry-run switch changed",
        dry_run=on,
        before="unset" if before is None else "on" if before else "off",
        by=by,
        reason=reason,
    )
