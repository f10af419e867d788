"""``followup connectors check`` against the sandbox: every name of the example mapping
resolves; a name the vendor does not have is reported and fails the command."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from worker.cli import app

sandbox_server = pytest.importorskip("sandbox.server", reason="needs the sandbox package")

EXAMPLE = Path(__file__).parents[2] / "deploy" / "mapping.sandbox.yaml"


@pytest.fixture(scope="module")
def sandbox_env() -> Iterator[dict[str, str]]:
    with sandbox_server.run_in_thread(tickets=20, seed=2) as sandbox:
        lines = sandbox.config.env_lines(sandbox.base_url)
        yield dict(line.split("=", 1) for line in lines)


def run_check(env: dict[str, str], mapping: Path) -> Any:
    return CliRunner().invoke(app, ["connectors", "check", "--mapping", str(mapping)], env=env)


def test_every_name_of_the_example_mapping_resolves(sandbox_env: dict[str, str]) -> None:
    result = run_check(sandbox_env, EXAMPLE)
    assert result.exit_code == 0, result.output
    assert "every mapped name resolved" in result.output
    assert "zd-sandbox-token" not in result.output
    # Per Intercom ticket type, the state each policy status maps to (vendor-behaviours I2).
    rows = result.output.splitlines()
    for kind, state in (("Order issue", "4003"), ("Refund", "4005")):
        assert any(f"{kind}: pending:" in row and state in row for row in rows), result.output


def test_unknown_names_are_reported_and_fail(sandbox_env: dict[str, str], tmp_path: Path) -> None:
    mapping = tmp_path / "tenant.yaml"
    mapping.write_text(
        EXAMPLE.read_text()
        .replace("Dana K", "Dana Unknown")
        .replace("phase: Phase\n", "phase: Fase\n")
        .replace("solved: Resolved", "solved: Done")
    )
    result = run_check(sandbox_env, mapping)
    assert result.exit_code == 1
    # Dana is both a Zendesk agent and an Intercom admin; Phase is a Zendesk ticket field;
    # Done is no Intercom ticket state, of either ticket type.
    assert "5 name(s) could not be resolved" in result.output
    assert "Dana Unknown" in result.output
    assert "Order issue: solved: Done" in result.output
    assert "Refund: solved: Done" in result.output


def test_an_agent_token_fails_the_check_naming_the_admin_role(
    sandbox_env: dict[str, str],
) -> None:
    """vendor-behaviours.md Z1: both incremental exports are admins-only; the check calls
    each once and says, in one line, which role the token needs."""
    agent = {**sandbox_env, "FOLLOWUP_ZENDESK_EMAIL": "agent@example.com",
             "FOLLOWUP_ZENDESK_TOKEN": "zd-agent-token"}  # fmt: skip
    result = run_check(agent, EXAMPLE)
    assert result.exit_code == 1
    line = next(line for line in result.output.splitlines() if line.startswith("zendesk: "))
    assert "an admin's token is needed: this one gets 403 on" in line
    assert "/api/v2/incremental/tickets/cursor, /api/v2/incremental/ticket_events" in line
    assert "zd-agent-token" not in result.output


def test_the_mapping_comes_from_followup_mapping_too(sandbox_env: dict[str, str]) -> None:
    result = CliRunner().invoke(
        app, ["connectors", "check"], env={**sandbox_env, "FOLLOWUP_MAPPING": str(EXAMPLE)}
    )
    assert result.exit_code == 0, result.output
