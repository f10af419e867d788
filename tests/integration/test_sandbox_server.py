"""The sandbox as a real HTTP server: dropped sockets, slow answers, a subprocess, state files."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from sandbox.faults import FaultPlan, FaultRule
from sandbox.server import run_in_thread, run_subprocess

AUTH = ("worker@example.com/token:zd-sandbox-token", "")
START = datetime(2026, 3, 11, 15, 0, tzinfo=UTC)


def zendesk(base_url: str, timeout: float = 5.0) -> httpx.Client:
    return httpx.Client(
        base_url=f"{base_url}/zendesk/api/v2",
        auth=httpx.BasicAuth("worker@example.com/token", "zd-sandbox-token"),
        timeout=httpx.Timeout(timeout),
    )


def tags_of(client: httpx.Client, ticket_id: int) -> list[str]:
    tags: list[str] = client.get(f"/tickets/{ticket_id}.json").json()["ticket"]["tags"]
    return tags


@pytest.mark.parametrize(("kind", "applied"), [("drop_before", False), ("drop_after", True)])
def test_dropped_connection_leaves_the_client_without_an_answer(kind: str, applied: bool) -> None:
    faults = FaultPlan([FaultRule("zendesk", kind, 1.0, "PUT *")])
    with (
        run_in_thread(tickets=50, seed=2, start=START, faults=faults) as running,
        zendesk(running.base_url) as client,
    ):
        change = {"ticket": {"tags": ["lost_answer"]}}
        with pytest.raises(httpx.TransportError):
            client.put("/tickets/4.json", json=change)
        assert ("lost_answer" in tags_of(client, 4)) is applied


def test_slow_answer_times_out_the_client_but_the_change_happens() -> None:
    faults = FaultPlan([FaultRule("zendesk", "slow", 1.0, "PUT *")], slow_seconds=0.5)
    with run_in_thread(tickets=50, seed=2, start=START, faults=faults) as running:
        with zendesk(running.base_url, timeout=0.1) as client, pytest.raises(httpx.ReadTimeout):
            client.put("/tickets/5", json={"ticket": {"tags": ["late"]}})
        with zendesk(running.base_url) as client:
            deadline = time.monotonic() + 5
            while "late" not in tags_of(client, 5) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert "late" in tags_of(client, 5)


def test_subprocess_prints_its_urls_and_serves_them() -> None:
    with run_subprocess("--tickets", "200", "--seed", "3", "--no-rate-limits") as running:
        assert running.urls["zendesk"] == f"{running.base_url}/zendesk"
        with zendesk(running.base_url) as client:
            response = client.get("/tickets/7.json?include=users")
            assert response.status_code == 200
            assert response.json()["ticket"]["id"] == 7
            assert "X-Rate-Limit" not in response.headers


def test_state_file_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "sandbox-state.json"
    settings = {"tickets": 50, "seed": 2, "start": START, "state_file": state}
    with run_in_thread(**settings) as running, zendesk(running.base_url) as client:
        client.put("/tickets/6", json={"ticket": {"comment": {"body": "kept", "public": False}}})
    assert state.exists()
    with run_in_thread(**settings) as running, zendesk(running.base_url) as client:
        comments = client.get("/tickets/6/comments").json()["comments"]
        assert comments[-1]["body"] == "kept"
