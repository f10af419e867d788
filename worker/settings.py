"""Every knob of the worker, read from ``FOLLOWUP_*`` environment variables and ``.env``.

Secrets are :class:`~pydantic.SecretStr`, so they print as ``**********``; each can also be
read from a file named by ``FOLLOWUP_<NAME>_FILE`` (Docker and Kubernetes mount secrets as
files). :func:`load_settings` turns any validation problem into one :class:`SettingsError`
whose message is a single line naming the offending variable and never echoing its value.
Every setting is documented in ``.env.example``.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
from apscheduler.triggers.cron import CronTrigger
from pydantic import (
    AnyHttpUrl,
    Field,
    PositiveFloat,
    PositiveInt,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from policies.model import Source

__all__ = [
    "ENV_PREFIX",
    "Settings",
    "SettingsError",
    "load_settings",
    "setting_pairs",
    "unknown_variables",
]

ENV_PREFIX = "FOLLOWUP_"


class SettingsError(Exception):
    """A setting is missing or malformed. ``str()`` is one line fit for an operator."""


class _SecretFilesSource(PydanticBaseSettingsSource):
    """``FOLLOWUP_<NAME>_FILE=/run/secrets/name`` supplies the secret field ``<name>``."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        variable = f"{ENV_PREFIX}{field_name.upper()}_FILE"
        path = os.environ.get(variable)
        if not path:
            return None, field_name, False
        try:
            return Path(path).read_text(encoding="utf-8").strip(), field_name, False
        except OSError as exc:
            raise SettingsError(f"{variable}: cannot read {path} ({exc.strerror})") from exc

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            if not _is_secret(field):
                continue
            value, key, _ = self.get_field_value(field, name)
            if value is not None:
                values[key] = value
        return values


def _is_secret(field: FieldInfo) -> bool:
    return field.annotation in (SecretStr, SecretStr | None)


class Settings(BaseSettings):
    """The worker's configuration. Field ``foo_bar`` is the variable ``FOLLOWUP_FOO_BAR``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        env_ignore_empty=True,  # `FOLLOWUP_ASANA_URL=` in .env means "not set"
        frozen=True,
    )

    # Vendors: each used with all of its settings, or left out with none of them.
    zendesk_url: AnyHttpUrl | None = None
    zendesk_email: str | None = None
    zendesk_token: SecretStr | None = None
    intercom_url: AnyHttpUrl | None = None
    intercom_token: SecretStr | None = None
    asana_url: AnyHttpUrl | None = None
    asana_token: SecretStr | None = None

    # What to do.
    mapping: Path | None = None
    policies: Path | None = None
    # The pack's named choices, "name=choice;name=choice" (`--set name=choice` adds to them):
    # the same for `plan`, `run` and `serve`, so a preview is what a live run will do.
    policy_settings: str | None = None
    dry_run: bool = True

    # Where to remember it.
    database_url: str = "sqlite:///followup-ledger.sqlite3"

    # Which helpdesks: the settings above are the default tenant; this YAML lists more.
    tenants_file: Path | None = None

    # Replicas sharing one PostgreSQL ledger split the tenants by lease (worker.runtime.leases).
    lease_ttl: PositiveFloat = Field(default=30.0, description="seconds")
    # default: host-pid-random, see worker.runtime.leases.new_replica_id
    replica_id: str | None = None

    # When. ``every`` (seconds), when set, replaces the cron schedule: round-the-clock shops,
    # demos and the replica tests.
    schedule: str = "*/15 9-16 * * mon-fri"
    every: PositiveFloat | None = None
    timezone: str = "America/New_York"
    holidays_country: str = "US"
    holidays_subdivision: str | None = None
    workdays: str = "mon-fri"  # days of the week open for business: "mon-fri", "sun-thu", "mon,wed"

    # How hard to push the vendors.
    concurrency: PositiveInt = 4
    zendesk_rate_limit: PositiveInt = Field(default=400, description="requests per minute")
    intercom_rate_limit: PositiveInt = Field(default=1000, description="requests per minute")
    asana_rate_limit: PositiveInt = Field(default=150, description="requests per minute")
    # Seconds the vendors' per-minute limits are counted over: 60, except against a sandbox run
    # with --time-scale S, whose windows last 60/S seconds (benchmarks/sync_bench.py).
    rate_window: PositiveFloat = 60.0
    http_connect_timeout: PositiveFloat = 5.0
    http_timeout: PositiveFloat = 30.0
    # A Zendesk export page (up to 1,000 updates with their comments) may take longer.
    http_export_timeout: PositiveFloat = 120.0
    # Seconds before the first retry of a failed vendor call (then doubling, with jitter);
    # None: the connectors' own default.
    http_backoff: PositiveFloat | None = None

    # Observability and operations.
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=9464, ge=1, le=65535)
    admin_token: SecretStr | None = None
    # Verified webhooks on `followup serve` (worker/webhooks.py): Zendesk's webhook signing
    # secret, Intercom's app client secret. Unset: that vendor's webhook endpoint is off.
    zendesk_webhook_secret: SecretStr | None = None
    intercom_client_secret: SecretStr | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _SecretFilesSource(settings_cls), dotenv_settings)

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite://", "postgresql://", "postgres://", "postgresql+")):
            raise ValueError("expected a sqlite:/// or postgresql:// URL")
        try:
            make_url(value)
        except (ArgumentError, ValueError):  # e.g. a port that is not a number
            raise ValueError(
                "malformed URL (expected postgresql://user:password@host:port/database, "
                "the port a number)"
            ) from None
        return value

    @field_validator("policy_settings")
    @classmethod
    def _valid_pairs(cls, value: str | None) -> str | None:
        setting_pairs((value or "").split(";"))
        return value

    @field_validator("schedule")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        CronTrigger.from_crontab(value)  # raises ValueError naming the bad part
        return value

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("workdays")
    @classmethod
    def _valid_workdays(cls, value: str) -> str:
        _weekdays(value)
        return value

    @field_validator("holidays_country")
    @classmethod
    def _valid_country(cls, value: str) -> str:
        if value not in holidays.list_supported_countries():
            raise ValueError(f"no holiday calendar for country {value!r}")
        return value

    @model_validator(mode="after")
    def _complete_vendors(self) -> Settings:
        # A vendor is used with all of its settings or left out with none: one half set (an
        # empty or misspelled token) would silently drop that vendor's cases.
        for vendor, names in _VENDOR_SETTINGS.items():
            given = [n for n in names if getattr(self, n) is not None]
            if given and len(given) < len(names):
                missing = [_variable(n) for n in names if n not in given]
                raise ValueError(
                    f"{' and '.join(missing)} missing: {vendor} has "
                    f"{', '.join(_variable(n) for n in given)} but needs all of "
                    f"{', '.join(_variable(n) for n in names)} (or none, to leave it out)"
                )
        if self.holidays_subdivision:
            known = holidays.list_supported_countries()[self.holidays_country]
            if self.holidays_subdivision not in known:
                raise ValueError(
                    f"FOLLOWUP_HOLIDAYS_SUBDIVISION: {self.holidays_subdivision!r} is not a "
                    f"subdivision of {self.holidays_country}"
                )
        return self

    @property
    def policy_overrides(self) -> dict[str, str]:
        """``policy_settings`` as the pack's overrides (name -> choice)."""
        return setting_pairs((self.policy_settings or "").split(";"))

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def workday_numbers(self) -> frozenset[int]:
        """``workdays`` as ``date.weekday()`` numbers (Monday = 0)."""
        return _weekdays(self.workdays)

    @property
    def vendor_urls(self) -> dict[str, Source]:
        """Base URL -> vendor, for each vendor with both a URL and a token (the ones used)."""
        candidates = (
            (Source.ZENDESK, self.zendesk_url, self.zendesk_token),
            (Source.INTERCOM, self.intercom_url, self.intercom_token),
            (Source.ASANA, self.asana_url, self.asana_token),
        )
        return {
            str(url).rstrip("/"): source
            for source, url, token in candidates
            if url is not None and token is not None
        }

    def secret_values(self) -> frozenset[str]:
        """Every value that must never reach a log line: tokens and the API user's email."""
        secrets = [
            field.get_secret_value()
            for field in (
                self.zendesk_token,
                self.intercom_token,
                self.asana_token,
                self.admin_token,
                self.zendesk_webhook_secret,
                self.intercom_client_secret,
            )
            if field is not None
        ]
        if self.zendesk_email:
            secrets.append(self.zendesk_email)
        return frozenset(s for s in secrets if s)


_VENDOR_SETTINGS = {
    "Zendesk": ("zendesk_url", "zendesk_email", "zendesk_token"),
    "Intercom": ("intercom_url", "intercom_token"),
    "Asana": ("asana_url", "asana_token"),
}


def _variable(field_name: str) -> str:
    return f"{ENV_PREFIX}{field_name.upper()}"


_DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _weekdays(text: str) -> frozenset[int]:
    """``"mon-fri"``, ``"sun-thu"`` (ranges wrap past Sunday), ``"mon,wed,fri"``."""
    days: set[int] = set()
    for part in text.lower().replace(" ", "").split(","):
        first, _, last = part.partition("-")
        if first not in _DAY_NAMES or (last and last not in _DAY_NAMES):
            raise ValueError(f"expected day names like mon-fri or sun,tue, got {part!r}")
        start, end = _DAY_NAMES.index(first), _DAY_NAMES.index(last or first)
        days.update((start + offset) % 7 for offset in range((end - start) % 7 + 1))
    return frozenset(days)


def load_settings(**overrides: Any) -> Settings:
    """Read the settings; any problem becomes one :class:`SettingsError` line.

    ``overrides`` (field name -> value) come from CLI flags and win over the environment.
    """
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError(_one_line(exc)) from None


def _one_line(exc: ValidationError) -> str:
    # Only the location and pydantic's message, never the input: it may be a token.
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        location = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if location:
            problems.append(f"{ENV_PREFIX}{location.upper()}: {message}")
        else:
            problems.append(message)
    return "invalid setting " + "; ".join(problems)


def setting_pairs(pairs: Iterable[str]) -> dict[str, str]:
    """``NAME=CHOICE`` pairs (blank ones skipped) as overrides; a later pair wins. Values may
    hold spaces (bot owners' names). Raises ValueError naming a pair without ``=``."""
    overrides = {}
    for pair in pairs:
        if not pair.strip():
            continue
        name, sep, choice = pair.partition("=")
        if not sep:
            raise ValueError(f"{pair!r} is not NAME=CHOICE")
        overrides[name.strip()] = choice.strip()
    return overrides


def unknown_variables(environ: Mapping[str, str], also_known: Iterable[str]) -> list[str]:
    """One line per ``FOLLOWUP_*`` variable of ``environ`` that nothing reads, naming the
    closest known one: a misspelled name would otherwise be ignored without a word.
    ``also_known``: the variables the commands' own flags read (``FOLLOWUP_AT``...)."""
    known = set(also_known)
    for name, field in Settings.model_fields.items():
        known.add(_variable(name))
        if _is_secret(field):
            known.add(f"{_variable(name)}_FILE")
    lines = []
    for name in sorted(environ):
        if name.startswith(ENV_PREFIX) and name not in known:
            closest = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f" (did you mean {closest[0]}?)" if closest else ""
            lines.append(f"unknown setting {name} ignored{hint}")
    return lines
