"""Validate recorded httpx exchanges against the vendors' OpenAPI descriptions.

The descriptions live in ``../shared/specs/`` (never copied into the project); each is parsed
once per session. Tests skip, saying why, when the folder is absent.
"""

from __future__ import annotations

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
    """YAML 1.1 reads a bare ``=`` as the 'value' tag; Zendesk's examples contain some."""


_SpecLoader.add_constructor(
    "tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node)
)  # type: ignore[arg-type]


@functools.cache
def openapi(vendor: str) -> OpenAPI:
    path = SPECS / SPEC_FILES[vendor]
    if not path.exists():
        pytest.skip(f"vendor description {path} is absent: contract tests need ../shared/specs/")
    with path.open(encoding="utf-8") as stream:
        data = yaml.load(stream, Loader=_SpecLoader)
    return OpenAPI.from_dict(_string_keys(data), config=Config(spec_validator_cls=None))


def _string_keys(node: Any) -> Any:
    """JSON semantics: Asana's description writes status codes as bare (integer) YAML keys."""
    if isinstance(node, dict):
        return {str(k): _string_keys(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_string_keys(v) for v in node]
    return node


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
