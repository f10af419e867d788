"""YAML with positions: turn a document into plain data plus the line of every key path, so
validation errors can say ``file:line: field: message`` instead of a pydantic ``loc`` tuple.

Also the one place pack settings are substituted: a scalar ``${name}`` becomes the setting's
value (of any type); ``${name}`` inside a longer string is replaced by its text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

__all__ = ["Located", "Problem", "SourceError", "load_located", "problems_from_validation"]

Path_ = tuple[str | int, ...]

_WHOLE = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
_EMBEDDED = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True, slots=True)
class Problem:
    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}"
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


class SourceError(ValueError):
    """A policy, settings or input file is invalid; ``problems`` names file, line and field."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(frozen=True, slots=True)
class Located:
    """A parsed YAML document and the 1-based line of every key path in it."""

    file: str
    data: Any
    lines: Mapping[Path_, int]

    def line_of(self, path: Path_) -> int:
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path, 1)


def load_located(path: Path, settings: Mapping[str, Any] | None = None) -> Located:
    """Parse ``path``; substitute ``${setting}`` references when ``settings`` is given."""
    name = str(path)
    try:
        loader = yaml.SafeLoader(path.read_text(encoding="utf-8"))
        try:
            node = loader.get_single_node()
            lines: dict[Path_, int] = {}
            problems: list[Problem] = []
            data = (
                _to_data(node, (), loader, lines, settings, problems, name)
                if node is not None
                else None
            )
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 1
        raise SourceError([Problem(name, line, "", f"invalid YAML: {exc.problem}")]) from exc
    if problems:
        raise SourceError(problems)
    return Located(name, data, lines)


def _to_data(
    node: yaml.Node,
    path: Path_,
    loader: yaml.SafeLoader,
    lines: dict[Path_, int],
    settings: Mapping[str, Any] | None,
    problems: list[Problem],
    file: str,
) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # resolves `<<: *anchor` merge keys
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            lines[(*path, key)] = key_node.start_mark.line + 1
            result[key] = _to_data(
                value_node, (*path, key), loader, lines, settings, problems, file
            )
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _to_data(item, (*path, i), loader, lines, settings, problems, file)
            for i, item in enumerate(node.value)
        ]
    value = loader.construct_object(node, deep=True)
    if settings is not None and isinstance(value, str) and "${" in value:
        return _substitute(value, settings, problems, file, node.start_mark.line + 1, path)
    return value


def _substitute(
    text: str,
    settings: Mapping[str, Any],
    problems: list[Problem],
    file: str,
    line: int,
    path: Path_,
) -> Any:
    field = ".".join(str(p) for p in path)
    for name in _EMBEDDED.findall(text):
        if name not in settings:
            problems.append(Problem(file, line, field, f"unknown setting ${{{name}}}"))
            return text
    whole = _WHOLE.match(text)
    if whole:
        return settings[whole.group(1)]
    return _EMBEDDED.sub(lambda m: str(settings[m.group(1)]), text)


def problems_from_validation(source: Located, error: ValidationError) -> list[Problem]:
    """Map each pydantic error ``loc`` onto the YAML path it names, and that path's line."""
    problems = []
    for detail in error.errors():
        loc = detail["loc"]
        if detail["type"] in ("union_tag_invalid", "union_tag_not_found"):
            # Point at the discriminator key itself (e.g. `type:`), not at its parent.
            loc = (*loc, str(detail.get("ctx", {}).get("discriminator", "")).strip("'"))
        path, missing = _walk(source.data, loc)
        field = ".".join(str(p) for p in (*path, *missing))
        problems.append(Problem(source.file, source.line_of(path), field, detail["msg"]))
    return problems


_ABSENT = object()


def _child(node: Any, segment: str | int) -> Any:
    if isinstance(node, dict):
        return node.get(segment, _ABSENT)
    if isinstance(node, list) and isinstance(segment, int) and 0 <= segment < len(node):
        return node[segment]
    return _ABSENT


def _walk(data: Any, loc: tuple[str | int, ...]) -> tuple[Path_, Path_]:
    """The part of ``loc`` present in ``data``; segments pydantic adds on its own (union tags,
    validator names) are skipped; a trailing absent key (a missing field) is returned apart."""
    path: list[str | int] = []
    current = data
    for i, segment in enumerate(loc):
        child = _child(current, segment)
        if child is not _ABSENT:
            current = child
            path.append(segment)
        elif i == len(loc) - 1 and isinstance(segment, str) and isinstance(current, dict):
            return tuple(path), (segment,)
    return tuple(path), ()
