"""The options of ``python -m sandbox`` / ``followup-sandbox``: flags over environment.

Every flag has a ``SANDBOX_<FLAG>`` environment variable (``--rate-limit`` ->
``SANDBOX_RATE_LIMIT``, repeated values separated by ``;``); a flag given on the command
line wins over the environment.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from sandbox.clock import parse_iso
from sandbox.config import SandboxConfig, default_start
from sandbox.faults import FAULT_KINDS, FaultPlan, parse_fault
from sandbox.limits import DEFAULT_LIMITS, VendorLimit

__all__ = ["build_parser", "config_from_args"]

ENV_PREFIX = "SANDBOX_"
TENANT_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


def _env_name(flag: str) -> str:
    return ENV_PREFIX + flag.lstrip("-").replace("-", "_").upper()


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number above 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="followup-sandbox",
        description="A stateful local Zendesk + Intercom + Asana for the follow-up worker.",
        epilog="Every flag can also be set as SANDBOX_<FLAG> (e.g. SANDBOX_TICKETS=50000).",
    )
    add = parser.add_argument
    add("--host", default="127.0.0.1")
    add("--port", type=int, default=8800, help="0 picks a free port")
    add("--tickets", type=int, default=10_000, help="generated Zendesk tickets (up to 1,000,000)")
    add("--seed", type=int, default=1, help="the generator's seed: same seed, same tenant")
    add(
        "--start",
        type=parse_iso,
        default=None,
        help="the clock's start instant (ISO-8601; default: now); data is laid out before it",
    )
    add("--frozen-clock", action="store_true", help="the clock moves only when told to")
    add(
        "--time-scale",
        type=_positive,
        default=1.0,
        metavar="S",
        help="the clock ticks S sandbox seconds per real second and every rate window lasts "
        "60/S real seconds (10 exports a minute stay 10 per sandbox minute); Retry-After and "
        "resets stay real seconds. Pace the worker alike: FOLLOWUP_RATE_WINDOW=60/S",
    )
    add("--zendesk-email", default="worker@example.com")
    add("--zendesk-token", default="zd-sandbox-token", help="an admin's API token")
    add("--zendesk-agent-email", default="agent@example.com")
    add("--zendesk-agent-token", default="zd-agent-token", help="an agent's (403 on exports)")
    add("--intercom-token", default="ic-sandbox-token")
    add("--asana-token", default="as-sandbox-token")
    add("--admin-token", default=None, help="require 'Authorization: Bearer TOKEN' on /_admin")
    add(
        "--rate-limit",
        action="append",
        default=[],
        metavar="VENDOR=RPM",
        help="requests per minute for a vendor (0: unlimited), repeatable",
    )
    add("--no-rate-limits", action="store_true", help="no rate limits at all (benchmarks)")
    add(
        "--fault",
        action="append",
        default=[],
        metavar="VENDOR:KIND=P[@ENDPOINT]",
        help=f"inject a fault with probability P; kinds: {', '.join(FAULT_KINDS)}; repeatable",
    )
    add("--fault-seed", type=int, default=0, help="seed of the fault RNG, to replay a run")
    add("--slow-seconds", type=float, default=30.0, help="delay of the 'slow' fault")
    add(
        "--state-file",
        type=Path,
        default=None,
        help="load state from this JSON file at start, save it at shutdown",
    )
    add(
        "--tenants",
        default="",
        metavar="NAME,NAME",
        help="extra tenants served under /t/<name>/... (own data, limits, faults; one clock)",
    )
    add(
        "--specs-dir",
        type=Path,
        default=None,
        help="the vendors' OpenAPI descriptions (default: $FOLLOWUP_SPECS_DIR, ../shared/specs)",
    )
    add(
        "--no-request-validation",
        action="store_true",
        help="serve requests the vendor descriptions refuse (raw load benchmarks only)",
    )
    add("--check-responses", action="store_true", help="also check answers against them")
    add("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    return parser  # fmt: skip


def _apply_env(parser: argparse.ArgumentParser, environ: Mapping[str, str]) -> None:
    """Turn SANDBOX_* variables into parser defaults, parsed by the flag's own type."""
    for action in parser._actions:  # argparse has no public way to walk its arguments
        if not action.option_strings or action.dest == "help":
            continue
        raw = environ.get(_env_name(action.option_strings[0]))
        if raw is None:
            continue
        if isinstance(action, argparse._StoreTrueAction):
            action.default = raw.strip().lower() in ("1", "true", "yes", "on")
        elif isinstance(action, argparse._AppendAction):
            action.default = [part.strip() for part in raw.split(";") if part.strip()]
        else:
            action.default = action.type(raw) if callable(action.type) else raw


def config_from_args(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> tuple[SandboxConfig, str]:
    """The sandbox settings and the log level, from flags over SANDBOX_* variables."""
    parser = build_parser()
    _apply_env(parser, os.environ if environ is None else environ)
    args = parser.parse_args(argv)
    limits = {} if args.no_rate_limits else dict(DEFAULT_LIMITS)
    for item in args.rate_limit:
        vendor, _, rpm = item.partition("=")
        if vendor not in DEFAULT_LIMITS or not rpm.isdigit():
            parser.error(f"--rate-limit {item!r}: expected zendesk|intercom|asana=RPM")
        limits[vendor] = VendorLimit(int(rpm) or None)  # replaces the per-endpoint limits too
    tenants = tuple(name.strip() for name in args.tenants.split(",") if name.strip())
    for name in tenants:
        if not TENANT_NAME.fullmatch(name):
            parser.error(f"--tenants {name!r}: use lowercase letters, digits and dashes")
    try:
        rules = [parse_fault(item) for item in args.fault]
    except ValueError as exc:
        parser.error(str(exc))
    return SandboxConfig(
        tickets=args.tickets,
        seed=args.seed,
        start=args.start or default_start(),
        frozen_clock=args.frozen_clock,
        time_scale=args.time_scale,
        host=args.host,
        port=args.port,
        zendesk_email=args.zendesk_email,
        zendesk_token=args.zendesk_token,
        zendesk_agent_email=args.zendesk_agent_email,
        zendesk_agent_token=args.zendesk_agent_token,
        intercom_token=args.intercom_token,
        asana_token=args.asana_token,
        admin_token=args.admin_token,
        limits=limits,
        faults=FaultPlan(rules, seed=args.fault_seed, slow_seconds=args.slow_seconds),
        state_file=args.state_file,
        tenants=tenants,
        validate_requests=not args.no_request_validation,
        specs_dir=args.specs_dir,
        check_responses=args.check_responses,
    ), args.log_level
