"""``python -m sandbox`` settings: flags, their SANDBOX_* variables, and what wins."""

from __future__ import annotations

import pytest

from sandbox.options import config_from_args


def test_defaults_are_the_contract_ones() -> None:
    config, log_level = config_from_args([], environ={})
    assert (config.host, config.port, config.tickets) == ("127.0.0.1", 8800, 10_000)
    assert config.zendesk_token == "zd-sandbox-token"
    assert config.limits["zendesk"].per_minute == 700
    assert log_level == "warning"
    assert "FOLLOWUP_ZENDESK_URL=http://127.0.0.1:8800/zendesk" in config.env_lines(
        "http://127.0.0.1:8800"
    )


def test_environment_mirrors_every_flag_and_flags_win() -> None:
    environ = {
        "SANDBOX_TICKETS": "5000",
        "SANDBOX_SEED": "9",
        "SANDBOX_FROZEN_CLOCK": "true",
        "SANDBOX_START": "2026-03-11T15:00:00Z",
        "SANDBOX_FAULT": "zendesk:503=0.5; asana:slow=0.1@PUT *",
        "SANDBOX_RATE_LIMIT": "intercom=100",
        "SANDBOX_ADMIN_TOKEN": "let-me-in",
    }
    config, _ = config_from_args(["--seed", "4"], environ=environ)
    assert (config.tickets, config.seed, config.frozen_clock) == (5000, 4, True)
    assert config.start.isoformat() == "2026-03-11T15:00:00+00:00"
    assert [(r.vendor, r.kind, r.endpoint) for r in config.faults.rules] == [
        ("zendesk", "503", "*"),
        ("asana", "slow", "PUT *"),
    ]
    assert config.limits["intercom"].per_minute == 100
    assert config.admin_token == "let-me-in"


def test_rate_limit_flag_replaces_the_default_endpoint_limits() -> None:
    default, _ = config_from_args([], environ={})
    assert default.limits["zendesk"].endpoints["PUT /api/v2/tickets/{ticket_id}"] == 100
    config, _ = config_from_args(["--rate-limit", "zendesk=20000"], environ={})
    assert (config.limits["zendesk"].per_minute, config.limits["zendesk"].endpoints) == (20000, {})


def test_no_rate_limits_and_bad_values() -> None:
    config, _ = config_from_args(["--no-rate-limits"], environ={})
    assert config.limits == {}
    with pytest.raises(SystemExit):
        config_from_args(["--rate-limit", "jira=5"], environ={})
    with pytest.raises(SystemExit):
        config_from_args(["--fault", "zendesk:explode=1"], environ={})
