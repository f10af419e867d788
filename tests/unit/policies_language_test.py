"""Policy files: the bundled pack loads, and every mistake is reported as file:line: field."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import pytest
import yaml

from policies.language import BUNDLED_PACK, load_pack, policy_json_schema
from policies.yamlsource import SourceError, load_located

VALID = """\
policies:
  - name: nudge
    description: Pending tickets get one reminder.
    source: test
    selector:
      status: [pending]
    cadence:
      type: sequence
      steps:
        - day: 3
          actions:
            - note: "{n}/{max}"
"""


def write(folder: Path, text: str, name: str = "policy.yaml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def problems(folder: Path, **overrides: str) -> list[str]:
    with pytest.raises(SourceError) as caught:
        load_pack(folder, overrides)
    return [str(p) for p in caught.value.problems]


def test_valid_file_loads(tmp_path: Path) -> None:
    write(tmp_path, VALID)
    (policy,) = load_pack(tmp_path).policies
    assert policy.name == "nudge"


@pytest.mark.parametrize(
    ("old", "new", "line", "field", "message"),
    [
        (
            "        - day: 3",
            "        - day: zero",
            10,
            "policies.0.cadence.steps.0.day",
            "valid integer",
        ),
        (
            "      status: [pending]",
            "      status: [waiting]",
            6,
            "policies.0.selector.status.0",
            "Input should be",
        ),
        (
            "      status: [pending]",
            "      statuss: [pending]",
            6,
            "policies.0.selector.statuss",
            "Extra inputs are not permitted",
        ),
        ("    source: test\n", "", 2, "policies.0.source", "Field required"),
        (
            '            - note: "{n}/{max}"',
            '            - note: "{n} of {total}"',
            12,
            "policies.0.cadence.steps.0.actions.0.note",
            "unknown placeholder {total}",
        ),
        (
            '            - note: "{n}/{max}"',
            "            - reply: no_such_template",
            12,
            "policies.0.cadence.steps.0.actions.0.reply",
            "unknown template 'no_such_template'",
        ),
        (
            '            - note: "{n}/{max}"',
            "            - {note: x, status: open}",
            12,
            "policies.0.cadence.steps.0.actions.0",
            "exactly one key",
        ),
        (
            "      type: sequence",
            "      type: hourly",
            8,
            "policies.0.cadence.type",
            "does not match any of the expected tags",
        ),
        ("  - name: nudge", "  - name: Nudge Policy", 2, "policies.0.name", "should match"),
    ],
)
def test_errors_name_file_line_and_field(
    tmp_path: Path, old: str, new: str, line: int, field: str, message: str
) -> None:
    assert old in VALID
    path = write(tmp_path, VALID.replace(old, new))
    (problem,) = problems(tmp_path)
    assert problem.startswith(f"{path}:{line}: {field}: "), problem
    assert message in problem


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace("      status: [pending]", "      status: [pending"))
    (problem,) = problems(tmp_path)
    assert problem.startswith(f"{path}:7: invalid YAML")


def test_every_file_is_checked_not_just_the_first(tmp_path: Path) -> None:
    write(tmp_path, VALID.replace("day: 3", "day: -1"), "a.yaml")
    write(
        tmp_path, VALID.replace("name: nudge", "name: other").replace("[pending]", "[x]"), "b.yaml"
    )
    found = problems(tmp_path)
    assert [p.split(":")[0] for p in found] == [str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml")]


def test_an_empty_folder_is_not_a_valid_pack(tmp_path: Path) -> None:
    assert problems(tmp_path) == [f"{tmp_path}:1: no policies (*.yaml files with policies:)"]


def test_duplicate_policy_names_are_refused(tmp_path: Path) -> None:
    write(tmp_path, VALID, "a.yaml")
    write(tmp_path, VALID, "b.yaml")
    assert any("duplicate policy 'nudge'" in p for p in problems(tmp_path))


SETTINGS = """\
settings:
  reminder_day:
    description: Which day the reminder goes out.
    default: third
    choices: {third: 3, fifth: 5}
"""


def test_settings_are_substituted_and_overridable(tmp_path: Path) -> None:
    write(tmp_path, SETTINGS, "settings.yaml")
    write(tmp_path, VALID.replace("day: 3", 'day: "${reminder_day}"'))
    assert load_pack(tmp_path).policies[0].cadence.steps[0].day == 3  # type: ignore[union-attr]
    overridden = load_pack(tmp_path, {"reminder_day": "fifth"})
    assert overridden.policies[0].cadence.steps[0].day == 5  # type: ignore[union-attr]
    assert overridden.choices == {"reminder_day": "fifth"}


def test_setting_mistakes_are_reported(tmp_path: Path) -> None:
    write(tmp_path, SETTINGS, "settings.yaml")
    path = write(tmp_path, VALID.replace("day: 3", 'day: "${reminder_dya}"'))
    (problem,) = problems(tmp_path)
    assert (
        problem == f"{path}:10: policies.0.cadence.steps.0.day: unknown setting ${{reminder_dya}}"
    )
    write(tmp_path, VALID)
    assert "is not one of ['fifth', 'third']" in problems(tmp_path, reminder_day="tenth")[0]
    assert "unknown setting override" in problems(tmp_path, nope="x")[0]


def test_bundled_pack_covers_every_seed_flow() -> None:
    pack = load_pack()
    sources = " ".join(p.source for p in pack.policies)
    for seed in ("000_", "001_", "002_", "003_", "004_"):
        assert seed in sources
    assert len(pack.policies) == 17


def test_bundled_pack_settings_name_every_seed_contradiction() -> None:
    text = (BUNDLED_PACK / "settings.yaml").read_text()
    for setting in (
        "standard_without_high_priority_cadence",
        "community_min_open_cases",
        "refund_day_one_note",
        "awaiting_customer_close_wait",
        "unresponsive_close_wait",
    ):
        assert setting in load_pack().choices
        assert (
            f"  {setting}:\n    # Contradiction" in text or f"  {setting}:\n    # The same" in text
        )


def test_json_schema_accepts_the_bundled_pack_after_substitution() -> None:
    schema = policy_json_schema()
    json.dumps(schema)
    settings = load_pack().settings
    for path in BUNDLED_PACK.glob("*.yaml"):
        if path.name != "settings.yaml":
            jsonschema.validate(load_located(path, settings).data, schema)


def test_json_schema_rejects_what_pydantic_rejects() -> None:
    bad = yaml.safe_load(VALID.replace("day: 3", "day: 0"))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, policy_json_schema())


def test_a_copy_of_the_bundled_pack_is_a_valid_folder(tmp_path: Path) -> None:
    shutil.copytree(BUNDLED_PACK, tmp_path / "pack")
    assert len(load_pack(tmp_path / "pack").policies) == 17


def test_a_date_only_start_reading_belongs_to_overdue_timeframes_only(tmp_path: Path) -> None:
    # Only a phase_overdue timeframe counts from the phase start; a phase_update announces the
    # phase the day it is entered, so the option would do nothing there and is refused.
    phases = """\
policies:
  - name: phases
    description: Phases.
    source: test
    selector: {status: [open]}
    cadence:
      type: TYPE
      date_only_start: opening
      phases: [{name: One, within: {business_days: 3}, what_it_means: x, next_steps: y}]
      actions: [{note: "{phase}"}]
"""
    write(tmp_path, phases.replace("TYPE", "phase_overdue"))
    assert load_pack(tmp_path).policies[0].name == "phases"
    path = write(tmp_path, phases.replace("TYPE", "phase_update"))
    (problem,) = problems(tmp_path)
    assert problem.startswith(f"{path}:")
    assert "date_only_start applies to phase_overdue timeframes only" in problem
