"""Child process for test_worker_signals: one `run_once` over three cases, stoppable.

The first write announces itself on stdout and waits for a line on stdin, so the test can
deliver SIGTERM while that case is in hand. Prints the summary as JSON at the end.
"""

from __future__ import annotations

import asyncio
import json
import sys

from policies.model import PlanItem
from tests.unit.worker_support import MONDAY, fake_zendesk, make_runtime
from worker.delivery.ledger import Ledger
from worker.logs import configure_logging
from worker.runtime.service import run_once


async def main(ledger_url: str) -> None:
    loop = asyncio.get_running_loop()

    async def hold_first_write(item: PlanItem) -> None:
        print(f"writing {item.case.ref}", flush=True)
        await loop.run_in_executor(None, sys.stdin.readline)

    configure_logging(secrets=(), log_format="json")  # logs to stderr, results on stdout
    fake = fake_zendesk("1", "2", "3")
    fake.before_write = hold_first_write
    ledger = Ledger.open(ledger_url)
    summary = await run_once(make_runtime(ledger, fake, concurrency=1), at=MONDAY)
    ledger.close()
    print(json.dumps({**summary.as_dict(), "written": [i.case.ref for i in fake.writes]}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
