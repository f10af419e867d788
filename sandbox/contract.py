"""The vendors' OpenAPI descriptions as the sandbox's request validator (and the tests' response
check): one validator for the sandbox and the contract tests.

The descriptions are read where they live, never copied into the project: ``--specs-dir`` /
``FOLLOWUP_SPECS_DIR``, else ``shared/specs`` in a folder above the checkout (``../shared/specs``
next to the repository, one level further up for a git worktree). Each file is parsed once per
process (the parsed form is cached on disk, keyed by the file's size and mtime, because the
YAML takes seconds to read), and each operation is compiled on first use: its path pattern, its
parameters with their casting rules, and one JSON-schema validator per parameter and body.

Where a description is wrong about the working API, the fix is a *patch* of the description
below (:data:`PATCHES`, each naming the defect listed in ``vendor-behaviours.md``), never a
special case in the validator. Where a description is looser than the vendor's answers, the
response check has *allowances* (:data:`RESPONSE_ALLOWANCES`).
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml
from jsonschema.exceptions import ValidationError
from openapi_schema_validator import OAS30ReadValidator, OAS30WriteValidator

__all__ = [
    "PATCHES",
    "PROCESS_TALLY",
    "RESPONSE_ALLOWANCES",
    "SPEC_FILES",
    "SPEC_SERVER_PREFIX",
    "Contract",
    "Patch",
    "Rejection",
    "ResponseAllowance",
    "SpecsMissing",
    "ValidationTally",
    "default_specs_dir",
    "operation_of",
]

SPECS_ENV = "FOLLOWUP_SPECS_DIR"
SPEC_FILES = {
    "zendesk": "zendesk-support.yaml",
    "intercom": "intercom-2.16.yaml",
    "asana": "asana_oas.yaml",
}
# The part of the URL path the description's server URL holds (its paths start after it).
SPEC_SERVER_PREFIX = {"zendesk": "", "intercom": "", "asana": "/api/1.0"}
RESPONSE_SAMPLES = 20
_CACHE_FORMAT = 1  # bump when the cached form of a description changes


class SpecsMissing(RuntimeError):
    """The vendor descriptions are not where the validator was told to look."""


def default_specs_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``FOLLOWUP_SPECS_DIR``, else the first ``shared/specs`` above this checkout."""
    environ = os.environ if environ is None else environ
    if environ.get(SPECS_ENV):
        return Path(environ[SPECS_ENV])
    repo = Path(__file__).resolve().parents[1]
    return next(
        (p / "shared" / "specs" for p in repo.parents if (p / "shared" / "specs").is_dir()),
        repo.parent / "shared" / "specs",
    )


# --- the description defects, patched in one place ------------------------------------------


@dataclass(frozen=True, slots=True)
class Patch:
    vendor: str
    defect: str  # as vendor-behaviours.md "Defects of the descriptions themselves" names it
    apply: Callable[[dict[str, Any]], None]


def _drop_groups_user_id(spec: dict[str, Any]) -> None:
    operation = spec["paths"]["/api/v2/groups"]["get"]
    operation["parameters"] = [
        p for p in operation["parameters"] if p.get("$ref") != "#/components/parameters/UserId"
    ]


def _custom_field_values(spec: dict[str, Any]) -> None:
    field_values = spec["components"]["schemas"]["TicketUpdateInput"]["properties"]
    field_values["custom_fields"]["items"] = {
        "type": "object",
        "required": ["id"],
        "properties": {"id": {"type": "integer"}, "value": {"nullable": True}},
    }


def _cursor_replaces_start_time(spec: dict[str, Any]) -> None:
    path = spec["paths"]["/api/v2/incremental/tickets/cursor"]
    start_time = dict(spec["components"]["parameters"]["IncrementalUnixTime"], required=False)
    path["parameters"] = [
        start_time if p.get("$ref") == "#/components/parameters/IncrementalUnixTime" else p
        for p in path["parameters"]
    ]


def _update_many_body(spec: dict[str, Any]) -> None:
    # Zendesk's reference: {"ticket": {...}} with ?ids=, or {"tickets": [{"id": .., ...}]}.
    update = {"$ref": "#/components/schemas/TicketUpdateInput"}
    with_id = {"allOf": [update, {"type": "object", "required": ["id"],
                                  "properties": {"id": {"type": "integer"}}}]}  # fmt: skip
    spec["paths"]["/api/v2/tickets/update_many"]["put"]["requestBody"] = {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "ticket": update,
                        "tickets": {"type": "array", "maxItems": 100, "items": with_id},
                    },
                }
            }
        },
    }


def _asana_custom_field_values(spec: dict[str, Any]) -> None:
    own = spec["components"]["schemas"]["TaskRequestBase"]["allOf"][1]
    fields = own["properties"]["custom_fields"]
    fields["additionalProperties"] = {}  # enum gid, string, number, object or array


PATCHES: tuple[Patch, ...] = (
    Patch("zendesk", "ListGroups declares a path parameter user_id its path does not have",
          _drop_groups_user_id),
    Patch("zendesk", "TicketUpdateInput.custom_fields items are the field definition; the API "
          "takes [{id, value}]", _custom_field_values),
    Patch("zendesk", "incremental cursor export requires start_time on every page; the cursor "
          "replaces it after the first", _cursor_replaces_start_time),
    Patch("zendesk", "PUT /api/v2/tickets/update_many declares no request body",
          _update_many_body),
    Patch("asana", "TaskRequestBase.custom_fields types every value as a string; its own text "
          "allows an enum gid, string, number, object or array", _asana_custom_field_values),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class ResponseAllowance:
    """A way the vendor's answers are looser than its description (responses only)."""

    vendor: str
    reason: str
    allows: Callable[[ValidationError], bool]


RESPONSE_ALLOWANCES: tuple[ResponseAllowance, ...] = (
    ResponseAllowance(
        "zendesk",
        "the description leaves `nullable` off fields the live API answers with null "
        "(external_id, custom_fields[].value, agent_description...)",
        lambda error: error.instance is None and error.validator in ("type", "format", "enum"),
    ),
    ResponseAllowance(
        "zendesk",
        "organization_fields values may be booleans (checkbox fields answer true/false)",
        lambda error: (
            "organization_fields" in error.absolute_path and isinstance(error.instance, bool)
        ),
    ),
    ResponseAllowance(
        "zendesk",
        "custom field values are typed by field (checkbox booleans, multiselect lists, "
        "numbers: vendor-behaviours.md Z4), in tickets and in audit/event changes alike; "
        "TicketObject.custom_fields[].value says string",
        lambda error: (
            list(error.absolute_path)[-1:] == ["value"]
            and isinstance(error.instance, bool | int | float | list)
        ),
    ),
    ResponseAllowance(
        "asana",
        "an unassigned task answers `assignee: null`; the description's assignee is not nullable",
        lambda error: error.instance is None and list(error.absolute_path)[-1:] == ["assignee"],
    ),
    ResponseAllowance(
        "asana",
        "an event's `parent` is null for other than added/removed events (asana_oas.yaml 3706, "
        "EventResponse.parent says so); its schema is not nullable",
        lambda error: error.instance is None and list(error.absolute_path)[-1:] == ["parent"],
    ),
)


# --- loading -------------------------------------------------------------------------------


class _SpecLoader(yaml.CSafeLoader):
    """JSON-like YAML: string keys (Asana writes status codes as bare integer keys) and
    Zendesk's bare ``=`` scalar (which YAML 1.1 reads as the 'value' tag) as a string."""

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        mapping = super().construct_mapping(node, deep=deep)
        return {str(key): value for key, value in mapping.items()}


_SpecLoader.add_constructor(
    "tag:yaml.org,2002:value",
    lambda loader, node: loader.construct_scalar(node),  # type: ignore[arg-type]
)


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "followup-sandbox"


def _parse(path: Path) -> dict[str, Any]:
    """The description at ``path``, through a JSON cache outside the project."""
    stat = path.stat()
    cached = _cache_dir() / f"{path.stem}-{stat.st_size}-{stat.st_mtime_ns}-{_CACHE_FORMAT}.json"
    try:
        data: dict[str, Any] = json.loads(cached.read_text(encoding="utf-8"))
        return data
    except (OSError, ValueError):
        pass
    with path.open(encoding="utf-8") as stream:
        data = yaml.load(stream, Loader=_SpecLoader)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps(data, default=str), encoding="utf-8")
        partial.replace(cached)
    except OSError:
        pass  # a read-only home: parse again next time
    return data


_DESCRIPTIONS: dict[tuple[Path, str], _Description] = {}
_LOAD_LOCK = threading.Lock()


def _description(specs_dir: Path, vendor: str) -> _Description:
    key = (specs_dir, vendor)
    with _LOAD_LOCK:
        if key not in _DESCRIPTIONS:
            spec = _parse(specs_dir / SPEC_FILES[vendor])
            for patch in PATCHES:
                if patch.vendor == vendor:
                    patch.apply(spec)
            _DESCRIPTIONS[key] = _Description(vendor, spec)
        return _DESCRIPTIONS[key]


# --- compiled operations -------------------------------------------------------------------

_SCALARS: dict[str, Callable[[str], Any]] = {
    "integer": int,
    "number": float,
    "boolean": lambda raw: {"true": True, "false": False}[raw],
}


def _cast(kind: str | None, raw: str) -> Any:
    """A query/path/header string as the schema's type (unchanged when it does not parse:
    the schema validator then says what is wrong with it)."""
    parse = _SCALARS.get(kind or "")
    if parse is None:
        return raw
    try:
        return parse(raw)
    except (ValueError, KeyError):
        return raw


def _resolved(spec: dict[str, Any], node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        target: Any = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


@dataclass(frozen=True, slots=True)
class _Parameter:
    name: str
    location: str
    required: bool
    style: str
    explode: bool
    schema: dict[str, Any]
    validate: Callable[[Any], Iterable[ValidationError]]

    def value(self, values: _Values) -> Any:
        """The parameter's value from the request (``_MISSING`` when absent)."""
        kind = self.schema.get("type")
        if self.style == "deepObject":
            prefix = f"{self.name}["
            found = {k[len(prefix) : -1]: v for k, v in values.items() if k.startswith(prefix)}
            if not found:
                return _MISSING
            properties = self.schema.get("properties", {})
            return {k: _cast(properties.get(k, {}).get("type"), v) for k, v in found.items()}
        raws = values.getlist(self.name)
        if not raws:
            return _MISSING
        if kind == "array":
            item_kind = self.schema.get("items", {}).get("type")
            parts = raws if self.explode else [p for raw in raws for p in raw.split(",")]
            return [_cast(item_kind, part) for part in parts]
        return _cast(kind, raws[-1])


_MISSING = object()


class _Values:
    """Case-(in)sensitive multi-valued lookup over query pairs or headers."""

    def __init__(self, pairs: Iterable[tuple[str, str]], *, fold_case: bool = False) -> None:
        self._fold = fold_case
        self._pairs = [(k.lower() if fold_case else k, v) for k, v in pairs]

    def getlist(self, name: str) -> list[str]:
        name = name.lower() if self._fold else name
        return [v for k, v in self._pairs if k == name]

    def items(self) -> list[tuple[str, str]]:
        return self._pairs


_IGNORED_HEADERS = {"accept", "content-type", "authorization"}  # OpenAPI 3.0: not parameters


@dataclass
class _Operation:
    vendor: str
    method: str
    template: str
    operation_id: str
    spec: dict[str, Any]
    _responses: dict[str, Callable[[Any], Iterable[ValidationError]] | None] = field(
        default_factory=dict
    )

    @property
    def name(self) -> str:
        return f"{self.method.upper()} {self.template} ({self.operation_id})"

    @cached_property
    def parameters(self) -> list[_Parameter]:
        raw = self.spec["paths"][self.template]
        declared = [*raw.get("parameters", []), *raw[self.method].get("parameters", [])]
        chosen: dict[tuple[str, str], dict[str, Any]] = {}
        for entry in declared:  # operation-level entries override path-level ones
            param = _resolved(self.spec, entry)
            chosen[(param["name"], param["in"])] = param
        compiled = []
        for (name, location), param in chosen.items():
            if location == "cookie" or "schema" not in param:
                continue
            if location == "header" and name.lower() in _IGNORED_HEADERS:
                continue
            style = param.get("style", "simple" if location in ("path", "header") else "form")
            schema = _resolved(self.spec, param["schema"])
            compiled.append(
                _Parameter(
                    name=name,
                    location=location,
                    required=bool(param.get("required")) or location == "path",
                    style=style,
                    explode=bool(param.get("explode", style == "form")),
                    schema=schema,
                    validate=_write_validator(self.spec, schema),
                )
            )
        return compiled

    @cached_property
    def body(self) -> tuple[bool, dict[str, Callable[[Any], Iterable[ValidationError]] | None]]:
        """(required, media type -> validator) of the request body; ({}) when none is declared."""
        node = _resolved(self.spec, self.spec["paths"][self.template][self.method])
        body = _resolved(self.spec, node.get("requestBody"))
        if not body:
            return False, {}
        media = {
            kind: (_write_validator(self.spec, content["schema"]) if "schema" in content else None)
            for kind, content in body.get("content", {}).items()
        }
        return bool(body.get("required")), media

    def response_validator(self, status: int) -> Callable[[Any], Iterable[ValidationError]] | None:
        key = str(status)
        if key not in self._responses:
            responses = self.spec["paths"][self.template][self.method].get("responses", {})
            chosen = next(
                (responses[k] for k in (key, f"{key[0]}XX", "default") if k in responses), None
            )
            content = (_resolved(self.spec, chosen) or {}).get("content", {})
            schema = content.get("application/json", {}).get("schema")
            self._responses[key] = (
                _read_validator(self.spec, schema) if schema is not None else None
            )
        return self._responses[key]


def _schema_validator(
    validator_cls: Any, spec: dict[str, Any], schema: dict[str, Any]
) -> Callable[[Any], Iterable[ValidationError]]:
    # openapi-core's own OAS 3.0 dialects (nullable, readOnly/writeOnly, formats), built once per
    # schema. The description's keys sit beside the schema's own at the root, so the
    # description's "#/components/..." references resolve (validators ignore unknown keys).
    validator = validator_cls({**spec, **schema}, format_checker=validator_cls.FORMAT_CHECKER)
    iter_errors: Callable[[Any], Iterable[ValidationError]] = validator.iter_errors
    return iter_errors


def _write_validator(
    spec: dict[str, Any], schema: dict[str, Any]
) -> Callable[[Any], Iterable[ValidationError]]:
    return _schema_validator(OAS30WriteValidator, spec, _resolved(spec, schema))


def _read_validator(
    spec: dict[str, Any], schema: dict[str, Any]
) -> Callable[[Any], Iterable[ValidationError]]:
    return _schema_validator(OAS30ReadValidator, spec, _resolved(spec, schema))


class _Description:
    """One vendor's (patched) description, its operations indexed by path shape."""

    def __init__(self, vendor: str, spec: dict[str, Any]) -> None:
        self.vendor = vendor
        self.spec = spec
        # Literal segments win over templated ones ("/tickets/show_many" before "/tickets/{id}").
        templates = sorted(spec["paths"], key=lambda template: template.count("{"))
        self._by_depth: dict[int, list[tuple[re.Pattern[str], str, list[str]]]] = {}
        for template in templates:
            names = re.findall(r"\{([^/}]+)\}", template)
            regex = re.sub(r"\\\{[^/}]+\\\}", "([^/]+)", re.escape(template))
            entry = (re.compile(regex + "$"), template, names)
            self._by_depth.setdefault(template.count("/"), []).append(entry)
        self._operations: dict[tuple[str, str], _Operation] = {}

    def find(self, method: str, path: str) -> tuple[_Operation | None, dict[str, str], str]:
        """(operation, path parameters, why not found)."""
        method = method.lower()
        for pattern, template, names in self._by_depth.get(path.count("/"), []):
            match = pattern.match(path)
            if match is None:
                continue
            if method not in self.spec["paths"][template]:
                continue  # another template of the same shape may declare it
            key = (template, method)
            if key not in self._operations:
                self._operations[key] = _Operation(
                    vendor=self.vendor,
                    method=method,
                    template=template,
                    operation_id=self.spec["paths"][template][method].get("operationId", ""),
                    spec=self.spec,
                )
            return self._operations[key], dict(zip(names, match.groups(), strict=True)), ""
        return None, {}, f"{method.upper()} {path} is not in the {self.vendor} description"


# --- what the sandbox and the tests call -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rejection:
    vendor: str
    status: int  # the vendor's answer: 404 for an undescribed operation, else 400
    message: str


@dataclass(slots=True)
class ValidationTally:
    """How many requests were checked and refused (and responses, when those are checked)."""

    requests: int = 0
    rejected: int = 0
    responses: int = 0
    responses_invalid: int = 0
    problems: Counter[str] = field(default_factory=Counter)  # distinct problem -> times
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, *, response: bool, problem: str | None) -> None:
        with self._lock:
            if response:
                self.responses += 1
                self.responses_invalid += problem is not None
            else:
                self.requests += 1
                self.rejected += problem is not None
            if problem is not None and (problem in self.problems or len(self.problems) < 50):
                self.problems[problem] += 1

    def absorb(self, other: Mapping[str, Any]) -> None:
        """Add another tally's :meth:`to_dict` (a sandbox run in another process)."""
        with self._lock:
            self.requests += int(other.get("requests", 0))
            self.rejected += int(other.get("rejected", 0))
            self.responses += int(other.get("responses", 0))
            self.responses_invalid += int(other.get("responses_invalid", 0))
            self.problems.update(other.get("problems", {}))

    def to_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": self.requests,
                "rejected": self.rejected,
                "responses": self.responses,
                "responses_invalid": self.responses_invalid,
                "problems": dict(self.problems),
            }


PROCESS_TALLY = ValidationTally()
"""Every :class:`Contract` of this process also counts here: the test session's summary."""


class Contract:
    """Checks exchanges against the descriptions in ``specs_dir``, counting each check in
    ``tally`` and :data:`PROCESS_TALLY`."""

    def __init__(
        self,
        specs_dir: Path,
        *,
        check_responses: bool = False,
        response_samples: int | None = RESPONSE_SAMPLES,
        process_tally: ValidationTally | None = PROCESS_TALLY,
    ) -> None:
        missing = [name for name in SPEC_FILES.values() if not (specs_dir / name).is_file()]
        if missing:
            raise SpecsMissing(
                f"vendor descriptions not found in {specs_dir} ({', '.join(missing)}): "
                f"set {SPECS_ENV} or --specs-dir, or turn request validation off"
            )
        self.specs_dir = specs_dir
        self.check_responses = check_responses
        self.tally = ValidationTally()
        self.process_tally = process_tally  # None: deliberate refusals (tests) stay out of it
        self._response_samples = response_samples
        self._responses_seen: dict[tuple[str, str, int], int] = {}

    def load(self, *vendors: str) -> None:
        """Read the descriptions now (a server does this before it listens)."""
        for vendor in vendors or SPEC_FILES:
            _description(self.specs_dir, vendor)

    def check_request(
        self,
        vendor: str,
        method: str,
        path: str,
        *,
        query: Iterable[tuple[str, str]] = (),
        headers: Iterable[tuple[str, str]] = (),
        content_type: str = "",
        body: bytes = b"",
    ) -> Rejection | None:
        """Why the description refuses this request, or None. ``path`` is relative to the
        description's server (``/api/v2/tickets/1``, ``/tasks/1``)."""
        rejection = _request_rejection(
            _description(self.specs_dir, vendor), method, path, query, headers, content_type, body
        )
        problem = None if rejection is None else f"{vendor} {method} {path}: {rejection.message}"
        self._count(response=False, problem=problem)
        return rejection

    def check_response(
        self, vendor: str, method: str, path: str, status: int, content_type: str, body: bytes
    ) -> list[str]:
        """How the answer disagrees with the description (allowances applied). Each operation
        and status is checked ``response_samples`` times (None: always): large pages take a
        while to check, and the first answers of an operation show its shape."""
        description = _description(self.specs_dir, vendor)
        operation, _, _ = description.find(method, path)
        if operation is None:
            return []
        seen = self._responses_seen.get((operation.name, vendor, status), 0)
        if self._response_samples is not None and seen >= self._response_samples:
            return []
        self._responses_seen[(operation.name, vendor, status)] = seen + 1
        problems: list[str] = []
        if "json" in content_type and body:
            validate = operation.response_validator(status)
            if validate is not None:
                try:
                    data = json.loads(body)
                except ValueError:
                    problems.append("the body is not JSON")
                else:
                    problems += [
                        _describe(error)
                        for error in validate(data)
                        if not any(
                            a.vendor == vendor and a.allows(leaf)
                            for leaf in _leaves(error)
                            for a in RESPONSE_ALLOWANCES
                        )
                    ]
        where = f"{vendor} {method} {path} -> {status}"
        self._count(response=True, problem=f"{where}: {'; '.join(problems)}" if problems else None)
        return problems

    def _count(self, *, response: bool, problem: str | None) -> None:
        self.tally.count(response=response, problem=problem)
        if self.process_tally is not None:
            self.process_tally.count(response=response, problem=problem)


def operation_of(specs_dir: Path, vendor: str, method: str, path: str) -> str | None:
    """``"GET /api/v2/tickets/{ticket_id} (ShowTicket)"`` for a request, if described."""
    operation, _, _ = _description(specs_dir, vendor).find(method, path)
    return None if operation is None else operation.name


def _leaves(error: ValidationError) -> list[ValidationError]:
    """The innermost errors (a oneOf/anyOf failure is allowed when a branch only is)."""
    if not error.context:
        return [error]
    return [error, *[leaf for child in error.context for leaf in _leaves(child)]]


def _describe(error: ValidationError) -> str:
    where = "/".join(str(part) for part in error.absolute_path)
    message = error.message
    if len(message) > 200:  # the value quoted whole; keep what is wrong with it
        message = f"{message[:120]} ... {message[-70:]}"
    return f"{where}: {message}" if where else message


def _request_rejection(
    description: _Description,
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Iterable[tuple[str, str]],
    content_type: str,
    body: bytes,
) -> Rejection | None:
    vendor = description.vendor
    operation, path_values, why = description.find(method, path)
    if operation is None:
        return Rejection(vendor, 404, why)
    sources = {
        "path": _Values(path_values.items()),
        "query": _Values(query),
        "header": _Values(headers, fold_case=True),
    }
    problems: list[str] = []
    for parameter in operation.parameters:
        value = parameter.value(sources[parameter.location])
        if value is _MISSING:
            if parameter.required:
                problems.append(f"{parameter.location} parameter {parameter.name} is required")
            continue
        problems += [
            f"{parameter.location} parameter {parameter.name}: {_describe(error)}"
            for error in parameter.validate(value)
        ]
    problems += _body_problems(operation, content_type, body)
    if not problems:
        return None
    return Rejection(vendor, 400, "; ".join(problems))


def _body_problems(operation: _Operation, content_type: str, body: bytes) -> list[str]:
    required, media = operation.body
    if not body:
        return ["a request body is required"] if required else []
    if not media:
        return []  # undeclared (Zendesk's tags endpoints take one all the same): not checked
    kind = content_type.split(";")[0].strip().lower()
    if kind not in media:
        return [f"content type {kind or '(none)'} not accepted; use {', '.join(media)}"]
    validate = media[kind]
    if validate is None or "json" not in kind:
        return []
    try:
        data = json.loads(body)
    except ValueError:
        return ["the request body is not valid JSON"]
    return [f"body {_describe(error)}" for error in validate(data)]
