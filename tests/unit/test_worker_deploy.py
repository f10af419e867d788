"""The deployment files only use settings the worker knows (a typo there fails silently)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from worker.settings import ENV_PREFIX, Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
KNOWN = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields}
SECRET_FILES = {
    f"{ENV_PREFIX}{name.upper()}_FILE"
    for name, field in Settings.model_fields.items()
    if "SecretStr" in str(field.annotation)
}
FILES = sorted(p for p in DEPLOY.rglob("*") if p.is_file() and p.name != "mapping.sandbox.yaml")


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_followup_variable_is_a_setting(path: Path) -> None:
    used = set(re.findall(r"\b(FOLLOWUP_[A-Z_]+)\b", path.read_text(encoding="utf-8")))
    assert used <= KNOWN | SECRET_FILES


@pytest.mark.parametrize("path", [p for p in FILES if p.suffix == ".yaml"], ids=str)
def test_yaml_files_parse(path: Path) -> None:
    assert all(doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")))
