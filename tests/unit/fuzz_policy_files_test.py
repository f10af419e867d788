"""Fuzz: broken policy packs and tenant mapping files.

Each example starts from a valid file (a file of the bundled pack, ``deploy/mapping.sandbox.yaml``)
and breaks it, either as text (a line dropped, a nasty line inserted: a tab, an unclosed bracket,
a recursive alias, a complex key, bytes that are not UTF-8) or as data (a key deleted, a value
of another type, an unknown key, an unknown enum value, a bad duration) dumped back to YAML.
Loading must either succeed or raise the loader's documented error, every problem of which
reads ``file:line: field: message`` with the line inside the file. Nothing else may escape.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from connectors.errors import MappingError
from connectors.mapping import load_mapping
from policies.language import BUNDLED_PACK
from policies.rules import load_rulebook
from policies.yamlsource import SourceError
from tests.fuzz_support import FUZZ, fuzz_settings, mutated

MAPPING = Path(__file__).parents[2] / "deploy" / "mapping.sandbox.yaml"
PACK_FILES = sorted(p.name for p in BUNDLED_PACK.glob("*.yaml"))
NASTY_LINES = [
    "\tsteps: tab-indented",
    "key: [unclosed",
    "key: 'unterminated",
    "loop: &a [*a]",
    "ref: *undefined",
    "? [a, b]\n: complex key",
    "<<: 5",
    "!!python/object/apply:os.system [echo]",
    "%YAML 9.9",
    "---\nsecond: document",
    "key: {a: 1, a: 2}",
    "- a list item among keys",
    "  deeper: indentation",
    "name: \x00",
    "weird: \u202e\u0301",
]
NOT_UTF8 = b"\xff\xfe bad bytes"
# One problem of a SourceError or MappingError: "<file>:<line>: <field>: <message>" (the field
# may be empty for a syntax error).
PROBLEM = re.compile(r"^(?P<file>.+?):(?P<line>\d+): (?P<rest>.+)$")


@st.composite
def broken_text(draw: st.DrawFn, text: str) -> bytes:
    """The file's text with one to three lines dropped, replaced or inserted."""
    lines = text.splitlines()
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(lines)))
        match draw(st.sampled_from(["drop", "insert", "replace"])):
            case "drop" if at < len(lines):
                del lines[at]
            case "replace" if at < len(lines):
                lines[at] = draw(st.sampled_from(NASTY_LINES))
            case _:
                lines.insert(at, draw(st.sampled_from(NASTY_LINES)))
    encoded = "\n".join(lines).encode("utf-8", errors="surrogatepass")
    if draw(st.integers(0, 9)) == 0:
        encoded = NOT_UTF8 + encoded
    return encoded


@st.composite
def broken_data(draw: st.DrawFn, text: str) -> bytes:
    """The file's data, damaged (see :func:`tests.fuzz_support.mutated`), dumped back."""
    data = draw(mutated(yaml.safe_load(text)))
    dumped: str = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    return dumped.encode("utf-8", errors="surrogatepass")


def broken(text: str) -> st.SearchStrategy[bytes]:
    return broken_text(text) | broken_data(text)


def assert_located(message: str, files: dict[str, int]) -> None:
    """Every problem line names one of ``files`` and a line inside it."""
    lines = message.splitlines()
    assert lines
    for line in lines:
        found = PROBLEM.match(line)
        assert found, f"not file:line: ...: {line!r}"
        assert found["file"] in files, line
        assert 1 <= int(found["line"]) <= files[found["file"]], line
        assert found["rest"].strip()


def _lines(content: bytes) -> int:
    """Lines a problem may point at: the end of the file (after its last newline) counts."""
    return content.count(b"\n") + 1


@contextmanager
def pack_with(name: str, content: bytes) -> Iterator[tuple[Path, dict[str, int]]]:
    """A copy of the bundled pack where ``name`` has ``content``; and each file's line count."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "pack"
        shutil.copytree(BUNDLED_PACK, folder)
        (folder / name).write_bytes(content)
        sizes = {str(p): _lines(p.read_bytes()) for p in folder.glob("*.yaml")}
        sizes[str(folder)] = 1  # problems of the pack as a whole (say, no policy at all)
        yield folder, sizes


def _load_pack(folder: Path) -> str | None:
    """The SourceError's message, or None when the broken pack still loads."""
    try:
        load_rulebook(folder)
    except SourceError as exc:
        return str(exc)
    return None


@fuzz_settings(100)  # a pack load is ~40 ms: keep the suite fast
@given(data=st.data())
def test_broken_policy_file(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(PACK_FILES))
    content = data.draw(broken((BUNDLED_PACK / name).read_text(encoding="utf-8")))
    with pack_with(name, content) as (folder, sizes):
        message = _load_pack(folder)
    if message is not None:
        assert_located(message, sizes)


def _load_mapping(path: Path) -> str | None:
    try:
        load_mapping(path)
    except MappingError as exc:
        return str(exc)
    return None


@FUZZ
@given(content=broken(MAPPING.read_text(encoding="utf-8")))
def test_broken_mapping_file(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mapping.yaml"
        path.write_bytes(content)
        message = _load_mapping(path)
        sizes = {str(path): _lines(content)}
    if message is not None:
        assert_located(message.removeprefix("invalid tenant mapping\n"), sizes)


def test_the_valid_files_load() -> None:
    """Unbroken, both load: otherwise every broken example would be rejected for nothing."""
    for name in PACK_FILES:
        with pack_with(name, (BUNDLED_PACK / name).read_bytes()) as (folder, _):
            assert _load_pack(folder) is None
    assert _load_mapping(MAPPING) is None


@pytest.mark.parametrize(
    ("content", "line"),
    [
        (b"policies:\n  - &a [*a]\n", 2),  # an alias inside itself
        (b"policies:\n  - &m {<<: *m}\n", 2),
        (b"policies:\n  ? [a, b]\n  : c\n", 2),  # a key that is a list
        (b"policies: []\nname: \x00\n", 2),
        (b"policies: []\n\xff\n", 2),
        (b"policies: [unclosed\n", 2),
        (b"policies: []\n---\npolicies: []\n", 2),
    ],
    ids=["recursive-alias", "recursive-merge", "complex-key", "nul", "not-utf8", "unclosed", "two"],
)
def test_nasty_yaml_is_one_located_problem(content: bytes, line: int) -> None:
    with pack_with("awaiting_customer.yaml", content) as (folder, sizes):
        message = _load_pack(folder)
    assert message is not None
    assert f"awaiting_customer.yaml:{line}: " in message
    assert_located(message, sizes)


@pytest.mark.parametrize(
    ("name", "valid", "broken", "expected", "at"),
    [
        # Both escaped as other errors before the fuzzer found them: jinja2's TemplateNotFound
        # when the pack compiled, and a TypeError from a list where a choice's name belongs.
        (
            "unresponsive_callers.yaml",
            "{template: unresponsive_followup}",
            "{template: archived}",
            "unknown template 'archived'",
            "{template: unresponsive_followup}",
        ),
        (
            "settings.yaml",
            "default: quarterly",
            "default: [quarterly]",
            "is not one of",
            "standard_without_high_priority_cadence:",  # the setting the default belongs to
        ),
    ],
    ids=["contact-template", "settings-default-list"],
)
def test_found_by_fuzzing_now_located_problems(
    name: str, valid: str, broken: str, expected: str, at: str
) -> None:
    text = (BUNDLED_PACK / name).read_text(encoding="utf-8")
    assert valid in text
    line = text[: text.index(at)].count("\n") + 1
    with pack_with(name, text.replace(valid, broken, 1).encode()) as (folder, sizes):
        message = _load_pack(folder)
    assert message is not None
    assert f"{name}:{line}: " in message
    assert expected in message
    assert_located(message, sizes)
