"""The ops console of ``followup serve``: what the worker did, what it will do, and the
dry-run switch, as server-rendered pages (:mod:`worker.console.app`)."""

from worker.console.app import console_routes
from worker.console.live import TenantView
from worker.console.setup import ConsoleSetup, console_setup

__all__ = ["ConsoleSetup", "TenantView", "console_routes", "console_setup"]
