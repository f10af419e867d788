"""Validate recorded httpx exchanges against the vendors' OpenAPI descriptions, with the
sandbox's validator (sandbox/contract.py: one validator, one list of description patches).

The descriptions live in ``../shared/specs/`` (never copied into the project); each is parsed
once per process. Tests skip, saying why, when the folder is absent.
"""

from __future__ import annotations

import functools

import httpx
import pytest
import respx

from sandbox.contract import (
    SPEC_FILES,
    SPEC_SERVER_PREFIX,
    Contract,
    default_specs_dir,
    operation_of,
)

SPECS = default_specs_dir()
Exchange = tuple[httpx.Request, httpx.Response]


def specs_present() -> bool:
    return all((SPECS / name).exists() for name in SPEC_FILES.values())


@functools.cache
def contract() -> Contract:
    """Checks of recorded exchanges: every response, and none counted as sandbox traffic."""
    if not specs_present():
        pytest.skip(f"vendor descriptions not found in {SPECS}: contract tests need them")
    return Contract(SPECS, response_samples=None, process_tally=None)


def openapi(vendor: str) -> None:
    """Load the vendor's description now (module fixtures: the parse is not a test's time)."""
    contract().load(vendor)


VALIDATED: set[tuple[str, str, str]] = set()
"""(vendor, who, operation) checked this session; ``who`` is "connector" (what the connectors
send and parse) or "sandbox" (what it serves). Printed at the end of the run (tests/conftest.py)."""


def spec_path(vendor: str, url_path: str) -> str:
    """A request's path as the description writes it (below its server URL)."""
    return url_path.removeprefix(SPEC_SERVER_PREFIX[vendor])


def note_validated(vendor: str, who: str, method: str, path: str) -> None:
    """Remember which described operation a validated exchange exercised."""
    operation = operation_of(SPECS, vendor, method, spec_path(vendor, path))
    if operation is not None:
        VALIDATED.add((vendor, who, operation))


class Recorder(httpx.AsyncBaseTransport):
    """Answers from a respx router and keeps every exchange for validation."""

    def __init__(self, router: respx.MockRouter) -> None:
        self._inner = httpx.MockTransport(router.async_handler)
        self.exchanges: list[Exchange] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        await response.aread()
        self.exchanges.append((request, response))
        return response


def contract_errors(vendor: str, exchanges: list[Exchange]) -> list[str]:
    """Every way the recorded requests and responses disagree with the vendor description."""
    problems: list[str] = []
    for request, response in exchanges:
        where = f"{request.method} {request.url.path}"
        path = spec_path(vendor, request.url.path)
        note_validated(vendor, "connector", request.method, request.url.path)
        rejection = contract().check_request(
            vendor,
            request.method,
            path,
            query=request.url.params.multi_items(),
            headers=request.headers.multi_items(),
            content_type=request.headers.get("content-type", ""),
            body=request.content,
        )
        if rejection is not None:
            problems.append(f"request {where}: {rejection.message}")
        problems += [
            f"response {where} {response.status_code}: {problem}"
            for problem in contract().check_response(
                vendor,
                request.method,
                path,
                response.status_code,
                response.headers.get("content-type", ""),
                response.content,
            )
        ]
    return problems
