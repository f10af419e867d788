"""Load measurement: requests/s the sandbox serves, measured by ``wrk`` from another process.

    python -m sandbox.loadtest [--tickets 10000] [--seconds 10] [--connections 8]

Starts the sandbox as a subprocess (rate limits off) and times its start to the first answer,
then drives three scenarios with wrk:
a 100-ticket cursor page with side-loads, a single ticket, and a ticket update carrying an
internal note + status + tags (spread over many tickets); then one client cursor-walks up to
20,000 tickets (cold pages). Prints one line per scenario.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from sandbox.server import run_subprocess

__all__ = ["main"]

AUTH = "Basic " + base64.b64encode(b"worker@example.com/token:zd-sandbox-token").decode()
UPDATE = {
    "ticket": {
        "status": "pending",
        "additional_tags": ["followup_worker"],
        "comment": {"body": "Unable to reach the customer. 2/3", "public": False},
    }
}
# wrk's Lua hook: every request updates the next ticket, so none hits the comment limit.
UPDATE_SCRIPT = """
local counter = 0
local body = '%s'
request = function()
  counter = counter + 1
  local path = "/zendesk/api/v2/tickets/" .. ((counter %% %d) + 1) .. ".json"
  return wrk.format("PUT", path, {["Authorization"] = "%s",
                                  ["Content-Type"] = "application/json"}, body)
end
"""


def _wrk(url: str, seconds: int, connections: int, script: Path | None = None) -> str:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-H", f"Authorization: {AUTH}"]
    if script is not None:
        command += ["-s", str(script)]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    latency = re.search(r"Latency\s+(\S+)", output)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return (
        f"{float(rate.group(1)) if rate else 0:8.0f} req/s, mean latency "
        f"{latency.group(1) if latency else '?'}, non-2xx {errors.group(1) if errors else 0}"
    )


def _walk(zendesk: str, limit: int) -> str:
    """Cursor-walk the first ``limit`` tickets in pages of 100: cold generation, not a cache."""
    started, seen = time.perf_counter(), 0
    url: str | None = f"{zendesk}/api/v2/tickets.json?page[size]=100&include=users,organizations"
    with httpx.Client(headers={"Authorization": AUTH}, timeout=30) as client:
        while url and seen < limit:
            body = client.get(url).json()
            seen += len(body["tickets"])
            url = body["links"]["next"]
    elapsed = time.perf_counter() - started
    return f"{seen:,} tickets in {elapsed:.1f} s ({seen / elapsed:,.0f} tickets/s, one client)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=10_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install -y wrk)")
    started = time.perf_counter()
    with (
        run_subprocess("--tickets", str(args.tickets), "--no-rate-limits") as running,
        tempfile.TemporaryDirectory() as folder,
    ):
        zendesk = running.urls["zendesk"]
        first = httpx.get(f"{zendesk}/api/v2/tickets/1.json", headers={"Authorization": AUTH})
        first.raise_for_status()
        startup = time.perf_counter() - started
        script = Path(folder) / "update.lua"
        script.write_text(UPDATE_SCRIPT % (json.dumps(UPDATE), args.tickets, AUTH))
        page = f"{zendesk}/api/v2/tickets.json?page[size]=100&include=users,organizations"
        wrk = f"wrk -t1 -c{args.connections} -d{args.seconds}s"
        print(f"sandbox {running.base_url}, {args.tickets:,} tickets: first answer "
              f"{startup:.2f} s after start; {wrk}")  # fmt: skip
        print("ticket page (100, side-loaded):", _wrk(page, args.seconds, args.connections))
        print("single ticket:                 ", _wrk(f"{zendesk}/api/v2/tickets/42.json",
                                                     args.seconds, args.connections))  # fmt: skip
        print("ticket update (note+status):   ", _wrk(zendesk, args.seconds, args.connections,
                                                     script))  # fmt: skip
        print("cursor walk, cold pages:       ", _walk(zendesk, min(args.tickets, 20_000)))


if __name__ == "__main__":
    main()
