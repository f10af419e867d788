"""The ops console in a real browser (Debian's chromium, driven through chromium-driver by
Selenium) against ``followup serve`` on the sandbox's Zendesk.

What a new user does: sign in with the admin token, see the last cycles, today and the next
days, open a case's history, flip dry-run with a reason and see the audit entry; and the
next cycle then writes nothing to the vendor (counted at the sandbox) although follow-ups are
due. Screenshots of each page go to the test's folder, or to ``$CONSOLE_SCREENSHOTS``
when set (how docs/console-now.png was made).

Skipped, saying so, where chromium or chromium-driver is not installed; ``.ci/run`` installs
both.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from apscheduler.triggers.interval import IntervalTrigger

from tests.unit.worker_support import isolate_settings
from worker.console import console_setup
from worker.delivery.ledger import Ledger, TenantTurn
from worker.runtime.service import serve
from worker.runtime.tenants import load_tenants
from worker.runtime.wiring import open_runtime
from worker.settings import load_settings

server = pytest.importorskip("sandbox.server", reason="the sandbox package is not in this tree")
faults = pytest.importorskip("sandbox.faults")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
by = pytest.importorskip("selenium.webdriver.common.by")

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason="needs Debian's chromium and chromium-driver: "
    "apt-get install chromium chromium-driver (.ci/run installs them)",
)

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)  # a Wednesday afternoon, no holiday
ADMIN_TOKEN = "console-admin-token"
WRITES_FAIL = faults.FaultPlan(
    [
        faults.FaultRule("zendesk", "500", 1.0, "PUT *"),
        faults.FaultRule("zendesk", "500", 1.0, "POST *"),
    ]
)


def _browser(profile: Path) -> Any:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,1000",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    # The driver Debian ships, never one Selenium Manager would download.
    service = webdriver.ChromeService(executable_path=str(CHROMEDRIVER))
    return webdriver.Chrome(options=options, service=service)


def _wait_until(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:.0f} s for {what}")
        time.sleep(0.1)


class Session:
    """The browser, the console's address and where screenshots go."""

    def __init__(self, browser: Any, root: str, shots: Path) -> None:
        self.browser = browser
        self.root = root
        self.shots = shots

    def open(self, path: str) -> None:
        self.browser.get(f"{self.root}{path}")

    def text(self, css: str) -> str:
        return str(self.browser.find_element(by.By.CSS_SELECTOR, css).text)

    def has(self, css: str) -> bool:
        return bool(self.browser.find_elements(by.By.CSS_SELECTOR, css))

    def shot(self, name: str) -> None:
        self.shots.mkdir(parents=True, exist_ok=True)
        self.browser.save_screenshot(str(self.shots / f"console-{name}.png"))

    def flip(self, state: str, who: str, why: str) -> None:
        self.open("/console/dry-run")
        self.browser.find_element(by.By.ID, f"dry-run-{state}").click()
        self.browser.find_element(by.By.ID, "operator").send_keys(who)
        self.browser.find_element(by.By.ID, "reason").send_keys(why)
        self.browser.find_element(by.By.ID, "flip-button").click()


@pytest.fixture
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
def sandbox() -> Iterator[Any]:
    with server.run_in_thread(tickets=40, start=START, limits={}, faults=WRITES_FAIL) as running:
        yield running


def _writes(sandbox: Any) -> int:
    stats = httpx.get(f"{sandbox.urls['admin']}/stats", timeout=10).json()
    return int(stats["total"]["writes_applied"])


def _turns(ledger: Ledger) -> list[TenantTurn]:
    return ledger.recent_turns(per_tenant=50).get("default", [])


def _browse(session: Session, sandbox: Any, ledger: Ledger) -> None:
    """The user's visit, in a thread of its own: ``serve`` answers on the test's loop."""
    session.open("/console/")
    session.browser.find_element(by.By.ID, "token").send_keys(ADMIN_TOKEN)
    session.browser.find_element(by.By.ID, "sign-in").click()

    # Now: live cycles whose writes the vendor refuses (500): failed follow-ups, 0 written.
    _wait_until(lambda: any(turn.figures["failed"] for turn in _turns(ledger)), "a failed turn")
    session.open("/console/")
    assert session.text("#mode") == "LIVE"
    turns = session.text("#tenant-default table.turns")
    assert "failed" in turns
    assert "zendesk" in turns

    # Today and ahead: the chart and the calendar, from the vendor's current state.
    session.open("/console/ahead?tenant=default&days=5")
    bars = session.browser.find_elements(by.By.CSS_SELECTOR, "svg.chart g.bar")
    assert len(bars) == 6
    assert int(bars[0].get_attribute("data-count")) > 0
    assert session.has("#by-step td")
    session.shot("ahead")

    # A case: from the calendar to its history, explanation and helpdesk link.
    session.browser.find_element(by.By.CSS_SELECTOR, ".day li a").click()
    assert "failed" in session.text("#history")
    assert session.has("#explain td")
    link = session.browser.find_element(by.By.ID, "helpdesk-link").get_attribute("href")
    assert link.startswith(f"{sandbox.urls['zendesk']}/agent/tickets/")
    session.shot("case")

    # The dry-run switch: a reason is required, the audit list shows who, when and why.
    session.flip("on", "Jo Ops", "")  # the browser itself refuses: the field is required
    assert session.has("#reason:invalid")
    assert "Never flipped" in session.text("#audit")
    session.flip("on", "Jo Ops", "Zendesk maintenance: hold every write")
    assert session.text("#state").startswith("Dry-run is ON")
    audit = session.text("#audit")
    assert "Jo Ops (console," in audit
    assert "Zendesk maintenance: hold every write" in audit
    session.shot("dry-run")

    # A cycle started after the flip is dry; then the vendor takes writes again, and the
    # next cycle, with follow-ups due, still writes nothing.
    _wait_until(lambda: _turns(ledger)[0].dry_run, "a dry-run turn")
    sandbox.sandbox.faults = faults.FaultPlan()
    healed = _turns(ledger)[0].cycle_id
    _wait_until(lambda: _turns(ledger)[0].cycle_id != healed, "a cycle on the healed vendor")
    next_turn = _turns(ledger)[0]
    assert next_turn.dry_run
    assert next_turn.figures["counts"].get("skipped", 0) > 0
    assert _writes(sandbox) == 0

    # And off again: the next cycles write.
    session.flip("off", "Jo Ops", "maintenance over")
    _wait_until(
        lambda: _turns(ledger)[0].figures["counts"].get("applied", 0) > 0, "a live turn that wrote"
    )
    assert _writes(sandbox) > 0

    session.open("/console/")
    assert "dry-run" in session.text("#tenant-default table.turns")
    assert "maintenance over" in session.text("#dry-run-state")
    session.shot("now")

    session.open("/console/policies")
    assert "awaiting-customer" in session.text("#policies-default table.policies")
    session.shot("policies")


async def test_a_new_user_sees_the_plan_opens_a_case_and_flips_dry_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sandbox: Any, free_port: int
) -> None:
    shots = Path(os.environ.get("CONSOLE_SCREENSHOTS") or tmp_path / "screenshots").resolve()
    isolate_settings(monkeypatch, tmp_path)
    settings = load_settings(
        zendesk_url=sandbox.urls["zendesk"],
        zendesk_email=sandbox.config.zendesk_email,
        zendesk_token=sandbox.config.zendesk_token,
        zendesk_rate_limit=100_000,
        mapping=ROOT / "deploy" / "mapping.sandbox.yaml",
        database_url=f"sqlite:///{tmp_path / 'ledger.sqlite3'}",
        dry_run=False,
        http_backoff=0.01,
        admin_token=ADMIN_TOKEN,
    )
    roster = load_tenants(settings)
    ledger = Ledger.open(settings.database_url)
    profile = tmp_path / "chromium-profile"
    browser = _browser(profile)
    began = time.monotonic()
    try:
        async with open_runtime(settings, ledger, roster=roster) as runtime:
            # The sandbox's data is laid out around START: the worker's clock runs from there.
            runtime.clock = lambda: START + timedelta(seconds=time.monotonic() - began)
            serving = asyncio.create_task(
                serve(
                    runtime,
                    trigger=IntervalTrigger(seconds=1, timezone=UTC),
                    host="127.0.0.1",
                    port=free_port,
                    admin_token=ADMIN_TOKEN,
                    console=console_setup(settings, roster, runtime),
                )
            )
            session = Session(browser, f"http://127.0.0.1:{free_port}", shots)
            try:
                await asyncio.to_thread(_browse, session, sandbox, ledger)
            finally:
                if not serving.done():  # its handler is in place: the signal stops serve only
                    os.kill(os.getpid(), signal.SIGTERM)
                await asyncio.wait_for(serving, timeout=60)
    finally:
        browser.quit()
        ledger.close()
        shutil.rmtree(profile, ignore_errors=True)
    assert {path.name for path in shots.iterdir()} >= {
        "console-now.png",
        "console-ahead.png",
        "console-case.png",
        "console-dry-run.png",
        "console-policies.png",
    }
