"""Several helpdesks in one deployment: the roster of tenants and each one's settings.

The ``FOLLOWUP_*`` settings are the ``default`` tenant (served when it has a vendor, or when
there is no tenants file). ``FOLLOWUP_TENANTS_FILE`` names a YAML file listing more::

    tenants:
      - name: acme
        zendesk_url: https://acme.zendesk.com
        zendesk_email: api@acme.example
        zendesk_token_env: ACME_ZENDESK_TOKEN      # or zendesk_token_file: /run/secrets/acme
        mapping: acme-mapping.yaml                 # relative to this file's folder
        policies: acme-policies/
        timezone: Europe/Berlin
        holidays_country: DE
        workdays: mon-fri
        zendesk_rate_limit: 200

A tenant may set only the keys of :data:`TENANT_KEYS`; what it leaves out comes from the
deployment's settings, except the vendors: a tenant never inherits another's credentials.
Tokens are never written in the file, only the name of a variable (``<token>_env``) or of a
file (``<token>_file``) holding them, so the file can be reviewed and versioned.

A file that cannot be read is a startup error. A tenant entry that is wrong is reported as a
:class:`BrokenTenant` and left out; the other tenants are served.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from worker.settings import Settings, SettingsError, load_settings

__all__ = [
    "DEFAULT_TENANT",
    "TENANT_KEYS",
    "BrokenTenant",
    "TenantRoster",
    "TenantSettings",
    "load_tenants",
]

DEFAULT_TENANT = "default"

_VENDOR_KEYS = (
    "zendesk_url",
    "zendesk_email",
    "zendesk_token",
    "intercom_url",
    "intercom_token",
    "asana_url",
    "asana_token",
)
_SECRET_KEYS = ("zendesk_token", "intercom_token", "asana_token")
_PATH_KEYS = ("mapping", "policies")
TENANT_KEYS = frozenset(
    {
        *_VENDOR_KEYS,
        *_PATH_KEYS,
        "timezone",
        "holidays_country",
        "holidays_subdivision",
        "workdays",
        "zendesk_rate_limit",
        "intercom_rate_limit",
        "asana_rate_limit",
    }
)
"""What a tenant entry may set; everything else (ledger, schedule, ports...) is per deployment."""

# Tenant names become metric labels, log fields and lease ids: keep them plain.
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


@dataclass(frozen=True, slots=True)
class TenantSettings:
    name: str
    settings: Settings


@dataclass(frozen=True, slots=True)
class BrokenTenant:
    """A tenant left out, and why (one line, no secret in it)."""

    name: str
    reason: str


@dataclass(frozen=True, slots=True)
class TenantRoster:
    tenants: tuple[TenantSettings, ...]
    broken: tuple[BrokenTenant, ...] = ()

    def secret_values(self) -> frozenset[str]:
        """Every tenant's tokens and API user emails, for the log redactor."""
        return frozenset().union(*(tenant.settings.secret_values() for tenant in self.tenants))


def load_tenants(settings: Settings, environ: Mapping[str, str] = os.environ) -> TenantRoster:
    """The default tenant and the tenants file's; raises :class:`SettingsError` if the file
    itself is unusable (missing, not YAML, no list of named tenants, a name twice)."""
    default = TenantSettings(DEFAULT_TENANT, settings)
    if settings.tenants_file is None:
        return TenantRoster((default,))
    entries = _entries(settings.tenants_file)
    folder = settings.tenants_file.parent
    tenants = [default] if settings.vendor_urls else []
    broken = []
    for name, entry in entries.items():
        try:
            overrides = _overrides(entry, folder, environ)
            tenants.append(
                TenantSettings(name, load_settings(**(settings.model_dump() | overrides)))
            )
        except SettingsError as exc:
            broken.append(BrokenTenant(name, str(exc)))
    return TenantRoster(tuple(tenants), tuple(broken))


def _entries(path: Path) -> dict[str, dict[str, Any]]:
    where = f"FOLLOWUP_TENANTS_FILE {path}"
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError(f"{where}: cannot read ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise SettingsError(f"{where}: not valid YAML ({exc})") from exc
    listed = document.get("tenants") if isinstance(document, dict) else None
    if not isinstance(listed, list):
        raise SettingsError(f"{where}: expected a mapping with a `tenants:` list")
    entries: dict[str, dict[str, Any]] = {}
    for position, entry in enumerate(listed, start=1):
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not _NAME.match(name):
            raise SettingsError(
                f"{where}: tenant #{position} needs a `name` of lowercase letters, digits, "
                "dashes and underscores"
            )
        if name == DEFAULT_TENANT or name in entries:
            raise SettingsError(f"{where}: tenant name {name!r} is used twice")
        entries[name] = {key: value for key, value in entry.items() if key != "name"}
    return entries


def _overrides(entry: dict[str, Any], folder: Path, environ: Mapping[str, str]) -> dict[str, Any]:
    overrides: dict[str, Any] = dict.fromkeys(_VENDOR_KEYS)  # never inherited
    for key, value in entry.items():
        secret, _, reference = key.rpartition("_")
        if secret in _SECRET_KEYS and reference in ("env", "file"):
            overrides[secret] = _secret(key, str(value), folder, environ)
        elif key in _SECRET_KEYS:
            raise SettingsError(
                f"{key}: write {key}_env (a variable name) or {key}_file (a path), never the "
                "token itself"
            )
        elif key in _PATH_KEYS:
            overrides[key] = folder / str(value)
        elif key in TENANT_KEYS:
            overrides[key] = value
        else:
            raise SettingsError(f"{key}: not a per-tenant setting")
    return overrides


def _secret(key: str, reference: str, folder: Path, environ: Mapping[str, str]) -> str:
    if key.endswith("_env"):
        value = environ.get(reference)
        if not value:
            raise SettingsError(f"{key}: variable {reference} is not set")
        return value
    path = folder / reference
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SettingsError(f"{key}: cannot read {path} ({exc.strerror})") from exc
