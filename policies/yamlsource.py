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
    text = _utf8(path)
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            reader = _Reader(loader, settings, name)
            data = reader.data(node, (), ()) if node is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise SourceError([Problem(name, _error_line(exc, text), "", _invalid(exc))]) from exc
    if reader.problems:
        raise SourceError(reader.problems)
    return Located(name, data, reader.lines)


def _utf8(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise SourceError([Problem(str(path), line, "", "not UTF-8 text")]) from exc


def _error_line(exc: yaml.YAMLError, text: str) -> int:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        return int(exc.problem_mark.line) + 1
    if isinstance(exc, yaml.reader.ReaderError):  # a character YAML does not allow
        return text.count("\n", 0, exc.position) + 1
    return 1


def _invalid(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError):
        return f"invalid YAML: {exc.problem}"
    if isinstance(exc, yaml.reader.ReaderError):
        return f"invalid YAML: character #x{exc.character:04x} is not allowed"
    return f"invalid YAML: {exc}"


class _Reader:
    """Builds plain data from the node tree, noting the line of every key path. Problems a
    plain ``safe_load`` would not see (or would crash on) are collected with their line."""

    def __init__(
        self, loader: yaml.SafeLoader, settings: Mapping[str, Any] | None, file: str
    ) -> None:
        self.loader = loader
        self.settings = settings
        self.file = file
        self.lines: dict[Path_, int] = {}
        self.problems: list[Problem] = []

    def _problem(self, node: yaml.Node, path: Path_, message: str) -> None:
        field = ".".join(str(p) for p in path)
        self.problems.append(Problem(self.file, node.start_mark.line + 1, field, message))

    def data(self, node: yaml.Node, path: Path_, ancestors: tuple[yaml.Node, ...]) -> Any:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if any(node is a for a in ancestors):
            self._problem(node, path, "an alias refers to a node that contains it")
            return None
        inner = (*ancestors, node)
        if isinstance(node, yaml.MappingNode):
            self.loader.flatten_mapping(node)  # resolves `<<: *anchor` merge keys
            result: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    self._problem(key_node, path, "a key must be a plain value")
                    continue
                key = self.loader.construct_object(key_node, deep=True)
                self.lines[(*path, key)] = key_node.start_mark.line + 1
                result[key] = self.data(value_node, (*path, key), inner)
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.data(item, (*path, i), inner) for i, item in enumerate(node.value)]
        value = self.loader.construct_object(node, deep=True)
        if self.settings is not None and isinstance(value, str) and "${" in value:
            line = node.start_mark.line + 1
            return _substitute(value, self.settings, self.problems, self.file, line, path)
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
