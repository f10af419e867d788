"""Settings: environment, .env, *_FILE secrets, one-line errors, and .env.example complete."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from policies.model import Source
from tests.unit.worker_support import isolate_settings
from worker.settings import ENV_PREFIX, Settings, SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate_settings(monkeypatch, tmp_path)


def test_defaults_are_safe_and_zero_setup() -> None:
    settings = load_settings()
    assert settings.dry_run is True
    assert settings.database_url.startswith("sqlite:///")
    assert settings.vendor_urls == {}


def test_a_vendor_is_used_with_all_its_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOLLOWUP_INTERCOM_URL", "http://127.0.0.1:8800/intercom/")
    monkeypatch.setenv("FOLLOWUP_INTERCOM_TOKEN", "ic-token")
    assert load_settings().vendor_urls == {"http://127.0.0.1:8800/intercom": Source.INTERCOM}


@pytest.mark.parametrize(
    ("given", "missing"),
    [
        ({"FOLLOWUP_ASANA_URL": "http://127.0.0.1:8800/asana/api/1.0"}, "FOLLOWUP_ASANA_TOKEN"),
        ({"FOLLOWUP_INTERCOM_TOKEN": "ic-token"}, "FOLLOWUP_INTERCOM_URL"),
        (
            {"FOLLOWUP_ZENDESK_URL": "https://acme.zendesk.com", "FOLLOWUP_ZENDESK_TOKEN": ""},
            "FOLLOWUP_ZENDESK_EMAIL and FOLLOWUP_ZENDESK_TOKEN",  # empty means unset
        ),
    ],
)
def test_a_half_configured_vendor_is_an_error_naming_what_is_missing(
    monkeypatch: pytest.MonkeyPatch, given: dict[str, str], missing: str
) -> None:
    # Issue 14: an empty or misspelled token silently dropped the vendor (198 cases of 2,849).
    for variable, value in given.items():
        monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=f"^invalid setting {missing} missing: "):
        load_settings()


def test_dotenv_is_read_and_empty_values_mean_unset(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "FOLLOWUP_DRY_RUN=false\nFOLLOWUP_ASANA_URL=\nFOLLOWUP_CONCURRENCY=9\n", encoding="utf-8"
    )
    settings = load_settings()
    assert (settings.dry_run, settings.asana_url, settings.concurrency) == (False, None, 9)


def test_secrets_can_come_from_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "zendesk_token"
    secret.write_text("zd-from-file\n", encoding="utf-8")
    monkeypatch.setenv("FOLLOWUP_ZENDESK_TOKEN_FILE", str(secret))
    monkeypatch.setenv("FOLLOWUP_ZENDESK_URL", "https://acme.zendesk.com")
    monkeypatch.setenv("FOLLOWUP_ZENDESK_EMAIL", "worker@acme.test")
    settings = load_settings()
    assert settings.zendesk_token is not None
    assert settings.zendesk_token.get_secret_value() == "zd-from-file"
    assert "zd-from-file" not in repr(settings)


def test_an_unreadable_secret_file_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOLLOWUP_ADMIN_TOKEN_FILE", "/nonexistent/admin")
    with pytest.raises(SettingsError, match=r"^FOLLOWUP_ADMIN_TOKEN_FILE: cannot read"):
        load_settings()


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("FOLLOWUP_ZENDESK_URL", "acme.zendesk", "FOLLOWUP_ZENDESK_URL: Input should be a valid"),
        ("FOLLOWUP_DATABASE_URL", "mysql://db", "FOLLOWUP_DATABASE_URL: expected a sqlite"),
        (
            "FOLLOWUP_DATABASE_URL",
            "postgresql://u:pw@db:notaport/x",
            "FOLLOWUP_DATABASE_URL: malformed URL",
        ),
        ("FOLLOWUP_SCHEDULE", "every day", "FOLLOWUP_SCHEDULE:"),
        ("FOLLOWUP_TIMEZONE", "Mars/Olympus", "FOLLOWUP_TIMEZONE: unknown time zone"),
        ("FOLLOWUP_HOLIDAYS_COUNTRY", "XX", "FOLLOWUP_HOLIDAYS_COUNTRY: no holiday calendar"),
        ("FOLLOWUP_CONCURRENCY", "0", "FOLLOWUP_CONCURRENCY: Input should be greater than 0"),
        ("FOLLOWUP_LOG_FORMAT", "xml", "FOLLOWUP_LOG_FORMAT: Input should be"),
        ("FOLLOWUP_DRY_RUN", "perhaps", "FOLLOWUP_DRY_RUN: Input should be a valid boolean"),
    ],
)
def test_a_bad_setting_is_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert str(raised.value).startswith(f"invalid setting {message}")
    assert "\n" not in str(raised.value)


def test_zendesk_needs_the_api_user_email(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOLLOWUP_ZENDESK_URL", "https://acme.zendesk.com")
    monkeypatch.setenv("FOLLOWUP_ZENDESK_TOKEN", "zd-token")
    with pytest.raises(SettingsError, match="FOLLOWUP_ZENDESK_EMAIL missing"):
        load_settings()


def test_a_bad_setting_never_echoes_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOLLOWUP_ADMIN_TOKEN", "s3cr3t-admin")
    monkeypatch.setenv("FOLLOWUP_HTTP_PORT", "s3cr3t-admin")
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert "s3cr3t-admin" not in str(raised.value)


def test_secret_values_lists_tokens_and_the_api_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOLLOWUP_ZENDESK_URL", "https://acme.zendesk.com")
    monkeypatch.setenv("FOLLOWUP_ZENDESK_EMAIL", "worker@acme.test")
    monkeypatch.setenv("FOLLOWUP_ZENDESK_TOKEN", "zd-token")
    monkeypatch.setenv("FOLLOWUP_ADMIN_TOKEN", "admin-token")
    assert load_settings().secret_values() == {"worker@acme.test", "zd-token", "admin-token"}


def test_env_example_documents_every_setting() -> None:
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    documented = set(re.findall(r"^#? ?(FOLLOWUP_[A-Z_]+)=", text, re.MULTILINE))
    expected = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields}
    assert expected <= documented


def test_the_cli_stops_on_a_bad_setting_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "worker", "dry-run", "status"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "FOLLOWUP_TIMEZONE": "Mars/Olympus", "PATH": "/usr/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr == (
        "followup: invalid setting FOLLOWUP_TIMEZONE: unknown time zone 'Mars/Olympus'\n"
    )
