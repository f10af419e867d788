"""Validate recorded httpx exchanges against the vendors' OpenAPI descriptions.

The descriptions live in ``../shared/specs/`` (never copied into the project); each is parsed
once per session. Tests skip, saying why, when the folder is absent.
"""

from __future__ import annotations

import copy
import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
import yaml
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

REPO = Path(__file__).resolve().parents[2]
# FOLLOWUP_SPECS_DIR, else ``../shared/specs`` next to the checkout (a git worktree sits one
# level deeper, so look further up).
SPECS = (
    Path(os.environ["FOLLOWUP_SPECS_DIR"])
    if os.environ.get("FOLLOWUP_SPECS_DIR")
    else next(
        (p / "shared" / "specs" for p in REPO.parents if (p / "shared" / "specs").is_dir()),
        REPO.parent / "shared" / "specs",
    )
)
Exchange = tuple[httpx.Request, httpx.Response]
SPEC_FILES = {
    "zendesk": "zendesk-support.yaml",
    "intercom": "intercom-2.16.yaml",
    "asana": "asana_oas.yaml",
}


class _SpecLoader(yaml.CSafeLoader):
    """JSON-like YAML: string keys (Asana writes status codes as bare integer keys) and
    Zendesk's bare ``=`` scalar (which YAML 1.1 reads as the 'value' tag) as a string."""

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        mapping = super().construct_mapping(node, deep=deep)
        return {str(key): value for key, value in mapping.items()}


_SpecLoader.add_constructor(
    "tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node)
)  # type: ignore[arg-type]


def specs_present() -> bool:
    return all((SPECS / name).exists() for name in SPEC_FILES.values())


def description_data(vendor: str) -> dict[str, Any]:
    """The vendor's OpenAPI description as a fresh dict (callers may adapt it)."""
    return copy.deepcopy(_loaded(vendor))


@functools.cache
def _loaded(vendor: str) -> dict[str, Any]:
    path = SPECS / SPEC_FILES[vendor]
    if not path.exists():
        pytest.skip(f"vendor description {path} is absent: contract tests need ../shared/specs/")
    with path.open(encoding="utf-8") as stream:
        data: dict[str, Any] = yaml.load(stream, Loader=_SpecLoader)
    return data


VALIDATED: set[tuple[str, str, str]] = set()
"""(vendor, who, operation) checked this session; ``who`` is "connector" (what the connectors
send and parse) or "sandbox" (what it serves). Printed at the end of the run (tests/conftest.py)."""

_SERVER_PREFIX = {"asana": "/api/1.0"}  # the part of the path the description's server holds


@functools.cache
def _operations(vendor: str) -> list[tuple[re.Pattern[str], str, dict[str, Any]]]:
    paths = _loaded(vendor)["paths"]
    literal_first = sorted(paths, key=lambda template: template.count("{"))
    return [
        (re.compile(re.sub(r"\{[^/}]+\}", "[^/]+", template) + "$"), template, paths[template])
        for template in literal_first
    ]


def note_validated(vendor: str, who: str, method: str, path: str) -> None:
    """Remember which described operation a validated exchange exercised."""
    path = path.removeprefix(_SERVER_PREFIX.get(vendor, ""))
    for pattern, template, operations in _operations(vendor):
        if pattern.match(path) and (operation := operations.get(method.lower())):
            name = operation.get("operationId", "")
            VALIDATED.add((vendor, who, f"{method.upper()} {template} ({name})"))
            return


@functools.cache
def openapi(vendor: str) -> OpenAPI:
    return OpenAPI.from_dict(description_data(vendor), config=Config(spec_validator_cls=None))


@dataclass(frozen=True)
class SpecRequest:
    """openapi-core's Request protocol over an httpx.Request."""

    request: httpx.Request

    @property
    def host_url(self) -> str:
        return f"{self.request.url.scheme}://{self.request.url.netloc.decode()}"

    @property
    def path(self) -> str:
        return self.request.url.path

    @property
    def full_url_pattern(self) -> str:
        return self.host_url + self.path

    @property
    def method(self) -> str:
        return self.request.method.lower()

    @functools.cached_property
    def parameters(self) -> RequestParameters:
        # openapi-core writes the matched path parameters into this object: keep one.
        return RequestParameters(
            query=ImmutableMultiDict(self.request.url.params.multi_items()),
            header=Headers(list(self.request.headers.items())),
            cookie=ImmutableMultiDict(),
        )

    @property
    def content_type(self) -> str:
        return self.request.headers.get("content-type", "")

    @property
    def body(self) -> bytes | None:
        return self.request.content or None


@dataclass(frozen=True)
class SpecResponse:
    response: httpx.Response

    @property
    def data(self) -> bytes:
        return self.response.content

    @property
    def status_code(self) -> int:
        return self.response.status_code

    @property
    def content_type(self) -> str:
        return self.response.headers.get("content-type", "")

    @property
    def headers(self) -> Headers:
        return Headers(list(self.response.headers.items()))


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


# Where a description contradicts the vendor's documented, working API. Each entry names the
# defect; anything else the validator reports fails the test.
KNOWN_DEFECTS: dict[str, list[tuple[str, str]]] = {
    "zendesk": [
        (
            r"^request GET /api/v2/groups: Missing required path parameter: user_id$",
            "ListGroups lists the UserId parameter of /users/{user_id}/groups",
        ),
        (
            r"^request PUT /api/v2/tickets/\d+: InvalidRequestBody: ticket/custom_fields/\d+"
            r"(/id: Tried to write read-only property|: '(key|type|title)' is a required property)",
            "TicketUpdateInput.custom_fields points at the field *definition* schema; the API "
            "takes [{id, value}] (zendesk-notes.md, Writing)",
        ),
    ],
    "asana": [
        (
            r"^request PUT /api/1\.0/tasks/\d+: InvalidRequestBody: data/custom_fields/\w+: "
            r"\{'date': '\d{4}-\d\d-\d\d'\} is not of type 'string'$",
            "TaskRequest.custom_fields types every value as a string while its own text lists "
            'enum gids, numbers and objects; a date field takes {"date": "YYYY-MM-DD"}',
        ),
    ],
}


def contract_errors(vendor: str, exchanges: list[Exchange]) -> list[str]:
    """Every way the recorded requests and responses disagree with the vendor description."""
    api = openapi(vendor)
    problems: list[str] = []
    for request, response in exchanges:
        where = f"{request.method} {request.url.path}"
        note_validated(vendor, "connector", request.method, request.url.path)
        spec_request = SpecRequest(request)
        for error in api.iter_request_errors(spec_request):
            problems += [f"request {where}: {line}" for line in _explain(error)]
        for error in api.iter_response_errors(spec_request, SpecResponse(response)):
            problems += [
                f"response {where} {response.status_code}: {line}" for line in _explain(error)
            ]
    defects = [re.compile(pattern) for pattern, _ in KNOWN_DEFECTS.get(vendor, [])]
    return [p for p in problems if not any(d.search(p) for d in defects)]


def _explain(error: Any) -> list[str]:
    """One line per schema error (the error itself would repeat the whole value)."""
    details = getattr(error, "schema_errors", None) or getattr(
        getattr(error, "__cause__", None), "schema_errors", None
    )
    if details:
        name = type(error).__name__
        return [f"{name}: {'/'.join(str(p) for p in e.path)}: {e.message}" for e in details]
    cause = error.__cause__
    return [f"{error}" + (f" ({cause})" if cause else "")]
