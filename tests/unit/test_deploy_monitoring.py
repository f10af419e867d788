"""The shipped Grafana dashboard and Prometheus alert rules (deploy/): promtool accepts the
rules and their unit tests pass, and every metric they name is one the worker exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import Counter, Gauge, Histogram

from worker.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "followup-alerts.yaml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "followup-alerts.test.yaml"
DASHBOARD = ROOT / "deploy" / "grafana" / "followup-dashboard.json"
METRIC = re.compile(r"\bfollowup_[a-z0-9_]+\b")


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian package prometheus; .ci/run installs it)")
    return subprocess.run(
        [promtool, *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_promtool_accepts_the_rules() -> None:
    checked = _promtool("check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_alerts_fire_on_their_cases_and_only_then() -> None:
    tested = _promtool("test", "rules", str(RULE_TESTS))
    assert tested.returncode == 0, tested.stdout + tested.stderr


def _exported() -> set[str]:
    """The series names the worker's registry can export."""
    names: set[str] = set()
    for collector in vars(Metrics()).values():
        if isinstance(collector, Histogram):
            names.update(f"{collector._name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
        elif isinstance(collector, Counter):
            names.add(f"{collector._name}_total")
        elif isinstance(collector, Gauge):
            names.add(collector._name)
    return names


def _rule_expressions() -> list[str]:
    document = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [rule["expr"] for group in document["groups"] for rule in group["rules"]]


def _dashboard_expressions() -> list[str]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    queries = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    variables = [v["definition"] for v in dashboard["templating"]["list"] if "definition" in v]
    return queries + variables


@pytest.mark.parametrize(
    "expressions", [_rule_expressions, _dashboard_expressions], ids=["rules", "dashboard"]
)
def test_every_metric_named_is_exported(expressions: Any) -> None:
    named = {name for expression in expressions() for name in METRIC.findall(expression)}

    assert named, "no followup_ metric named at all"
    assert named - _exported() == set()


def test_the_dashboard_covers_every_exported_metric() -> None:
    named = {name for e in _dashboard_expressions() for name in METRIC.findall(e)}
    histograms_by_bucket = {n for n in _exported() if not n.endswith(("_sum", "_count"))}

    assert histograms_by_bucket - named == set()
