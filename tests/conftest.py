"""Suite-wide options: ``--run-slow`` runs the tests marked ``slow`` (the long chaos run).

Every sandbox of the run validates the requests it receives against the vendor descriptions
(sandbox/contract.py) and, here, checks its answers too (``SANDBOX_CHECK_RESPONSES``, inherited
by sandbox subprocesses). At the end: the vendor operations the contract tests validated, and
the sandbox-validation summary, added up over every sandbox of the run (in this process and in
subprocesses started with ``sandbox.server.run_subprocess``)."""

from __future__ import annotations

import os
import sys

import pytest

from sandbox.contract import PROCESS_TALLY

os.environ.setdefault("SANDBOX_CHECK_RESPONSES", "1")


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
    _validation_summary(terminalreporter)
    support = sys.modules.get("tests.contract.contract_support")
    validated = sorted(getattr(support, "VALIDATED", ()))
    if not validated:
        return
    title = f"{len(validated)} vendor operations validated against the specs"
    terminalreporter.write_sep("-", title)
    for vendor, who, operation in validated:
        terminalreporter.write_line(f"{vendor:8} {who:9} {operation}")


def _validation_summary(terminalreporter: pytest.TerminalReporter) -> None:
    tally = PROCESS_TALLY.to_dict()
    if not tally["requests"]:
        return
    terminalreporter.write_sep("-", "sandbox validation against the vendor descriptions")
    terminalreporter.write_line(
        f"requests validated: {tally['requests']}, rejected: {tally['rejected']}; "
        f"responses checked: {tally['responses']}, not matching: {tally['responses_invalid']}"
    )
    for problem, times in tally["problems"].items():
        terminalreporter.write_line(f"  {times:5} x {problem[:300]}")
