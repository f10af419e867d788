"""Several tenants in one deployment: the tenants file, its secrets, and a bad entry's fate."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.worker_support import isolate_settings
from worker.delivery.ledger import Ledger
from worker.metrics import Metrics
from worker.runtime.tenants import DEFAULT_TENANT, load_tenants
from worker.runtime.wiring import open_runtime
from worker.settings import Settings, SettingsError

MAPPING = "zendesk: {}\n"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate_settings(monkeypatch, tmp_path)


def _file(folder: Path, text: str) -> Path:
    (folder / "mapping.yaml").write_text(MAPPING, encoding="utf-8")
    path = folder / "tenants.yaml"
    path.write_text(text, encoding="utf-8")
    return path


ACME = """
  - name: acme
    zendesk_url: http://127.0.0.1:8800/t/acme/zendesk
    zendesk_email: api@acme.example
    zendesk_token_env: ACME_TOKEN
    mapping: mapping.yaml
    timezone: Europe/Berlin
    holidays_country: DE
"""


def test_each_tenant_has_its_own_vendor_calendar_and_mapping(tmp_path: Path) -> None:
    (tmp_path / "globex-token").write_text("gx-secret\n", encoding="utf-8")
    tenants_file = _file(
        tmp_path,
        "tenants:"
        + ACME
        + """
  - name: globex
    intercom_url: http://127.0.0.1:8800/t/globex/intercom
    intercom_token_file: globex-token
    intercom_rate_limit: 50
""",
    )
    settings = Settings(
        tenants_file=tenants_file,
        timezone="America/Chicago",
        zendesk_url="http://default/zendesk",
        zendesk_email="default@example.com",
        zendesk_token="default-token",
    )

    roster = load_tenants(settings, environ={"ACME_TOKEN": "acme-secret"})

    assert [t.name for t in roster.tenants] == [DEFAULT_TENANT, "acme", "globex"]
    _, acme, globex = (t.settings for t in roster.tenants)
    assert acme.zendesk_token is not None
    assert acme.zendesk_token.get_secret_value() == "acme-secret"
    assert (acme.timezone, acme.holidays_country) == ("Europe/Berlin", "DE")
    assert acme.mapping == tmp_path / "mapping.yaml"
    # Calendar settings are inherited, vendor credentials never are.
    assert globex.timezone == "America/Chicago"
    assert (globex.zendesk_url, globex.zendesk_token) == (None, None)
    assert globex.intercom_rate_limit == 50
    assert {"acme-secret", "gx-secret", "default-token"} <= roster.secret_values()
    assert roster.broken == ()


def test_the_default_tenant_is_left_out_when_it_has_no_vendor(tmp_path: Path) -> None:
    settings = Settings(tenants_file=_file(tmp_path, "tenants:" + ACME))
    roster = load_tenants(settings, environ={"ACME_TOKEN": "t"})
    assert [t.name for t in roster.tenants] == ["acme"]


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ("zendesk_token: inline-secret", "never the token itself"),
        ("zendesk_token_env: NOT_SET_ANYWHERE", "variable NOT_SET_ANYWHERE is not set"),
        ("database_url: sqlite:///other.sqlite3", "database_url: not a per-tenant setting"),
        ("timezone: Mars/Olympus", "unknown time zone"),
    ],
)
def test_a_wrong_entry_is_reported_and_the_others_kept(
    tmp_path: Path, entry: str, reason: str
) -> None:
    tenants_file = _file(tmp_path, "tenants:" + ACME + f"  - name: broken\n    {entry}\n")

    roster = load_tenants(Settings(tenants_file=tenants_file), environ={"ACME_TOKEN": "t"})

    assert [t.name for t in roster.tenants] == ["acme"]
    [broken] = roster.broken
    assert broken.name == "broken"
    assert reason in broken.reason
    assert "inline-secret" not in broken.reason


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("tenants: [{name: a}, {name: a}]", "used twice"),
        ("tenants: [{name: default}]", "used twice"),
        ("tenants: [{zendesk_url: x}]", "needs a `name`"),
        ("- name: a", "expected a mapping with a `tenants:` list"),
        ("tenants: [", "not valid YAML"),
    ],
)
def test_an_unusable_file_stops_the_start(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(SettingsError, match=problem):
        load_tenants(Settings(tenants_file=_file(tmp_path, text)))


def test_a_missing_file_stops_the_start(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="cannot read"):
        load_tenants(Settings(tenants_file=tmp_path / "absent.yaml"))


async def test_a_tenant_that_does_not_wire_up_never_stops_the_others(tmp_path: Path) -> None:
    tenants_file = _file(
        tmp_path,
        "tenants:" + ACME + "  - name: nomapping\n    zendesk_url: http://x/zendesk\n"
        "    zendesk_email: a@b.c\n    zendesk_token_env: ACME_TOKEN\n    mapping: absent.yaml\n",
    )
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("ACME_TOKEN", "t")
    settings = Settings(tenants_file=tenants_file)
    metrics = Metrics()
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    try:
        async with open_runtime(settings, ledger, metrics=metrics) as runtime:
            assert [tenant.name for tenant in runtime.tenants] == ["acme"]
    finally:
        ledger.close()
        monkeypatch.undo()
    assert 'followup_tenant_broken{tenant="nomapping"} 1.0' in metrics.exposition().decode()


@pytest.mark.parametrize(
    ("text", "days"),
    [("mon-fri", {0, 1, 2, 3, 4}), ("sun-thu", {6, 0, 1, 2, 3}), ("mon,wed, sat", {0, 2, 5})],
)
def test_workdays_name_the_days_open_for_business(text: str, days: set[int]) -> None:
    assert Settings(workdays=text).workday_numbers == days


def test_unknown_workdays_are_refused() -> None:
    with pytest.raises(ValueError, match="day names"):
        Settings(workdays="monday-friday")
