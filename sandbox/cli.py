"""``python -m sandbox`` / ``followup-sandbox``: build the sandbox from its options (see
:mod:`sandbox.options`), print the worker's .env lines, and serve until stopped."""

from __future__ import annotations

from collections.abc import Sequence

from sandbox.clock import format_iso
from sandbox.contract import SpecsMissing
from sandbox.options import config_from_args
from sandbox.server import READY_PREFIX, bind, serve
from sandbox.state import Sandbox

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> None:
    config, log_level = config_from_args(argv)
    try:
        sandbox = Sandbox(config)
    except SpecsMissing as exc:
        raise SystemExit(f"followup sandbox: {exc}") from exc
    if sandbox.contract is not None:
        sandbox.contract.load()  # seconds on the first run: before listening, not on a request
    sock = bind(config.host, config.port)
    base_url = f"http://{config.host}:{sock.getsockname()[1]}"
    print(
        f"followup sandbox: {config.tickets:,} tickets, seed {config.seed}, "
        f"clock {format_iso(sandbox.clock.now())}"
        + (f", time scale {config.time_scale:g}x" if config.time_scale != 1 else "")
    )
    print("# for the worker's .env:")
    for line in config.env_lines(base_url):
        print(line)
    print(
        f"# admin API: {base_url}/_admin (clock, activity, change, outbox, requests, stats, "
        "faults, limits)"
    )
    validation = "off" if sandbox.contract is None else f"on ({sandbox.contract.specs_dir})"
    print(f"# request validation against the vendor descriptions: {validation}")
    print(f"{READY_PREFIX}{base_url}", flush=True)
    serve(sandbox, sock, log_level=log_level)
