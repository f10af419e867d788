"""Suite-wide options: ``--run-slow`` runs the tests marked ``slow`` (the long chaos run).
At the end, the vendor operations the contract tests validated against ``../shared/specs``."""

from __future__ import annotations

import sys

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-slow", action="store_true", default=False, help="also run tests marked slow"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    support = sys.modules.get("tests.contract.contract_support")
    validated = sorted(getattr(support, "VALIDATED", ()))
    if not validated:
        return
    title = f"{len(validated)} vendor operations validated against the specs"
    terminalreporter.write_sep("-", title)
    for vendor, who, operation in validated:
        terminalreporter.write_line(f"{vendor:8} {who:9} {operation}")
