"""The policy commands as ops use them: plan, explain, policies check|schema, bench plan."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from policies.language import load_pack
from worker.cli import app

EXAMPLE = Path(__file__).parents[2] / "examples" / "cases.yaml"
AT = "2026-03-11T10:00:00-04:00"
runner = CliRunner()


def run(*args: str, **env: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env={"COLUMNS": "200", **env})
    return result.exit_code, result.output


def test_example_input_exercises_every_policy_of_the_pack() -> None:
    code, out = run("plan", "--input", str(EXAMPLE), "--at", AT, "--format", "json")
    assert code == 0, out
    rows = json.loads(out)
    planned = {row["policy"] for row in rows if "policy" in row}
    assert planned == {p.name for p in load_pack().policies}
    assert any(row.get("unjudged") and "Gold" in row["reason"] for row in rows)


def test_plan_table_shows_steps_actions_and_reasons() -> None:
    code, out = run("plan", "--input", str(EXAMPLE), "--at", AT)
    assert code == 0, out
    assert "Unresponsive Customers/Vincent Ryan V" in out
    assert "after 3/3" in out
    assert "zendesk:1006" in out


def test_flags_have_environment_twins() -> None:
    code, out = run("plan", FOLLOWUP_INPUT=str(EXAMPLE), FOLLOWUP_AT=AT, FOLLOWUP_FORMAT="json")
    assert code == 0, out
    assert json.loads(out)


def test_horizon_previews_every_step_assuming_nobody_replies() -> None:
    code, out = run(
        "plan", "--input", str(EXAMPLE), "--at", AT, "--horizon", "5", "--format", "json"
    )
    assert code == 0, out
    general = [r for r in json.loads(out) if r["case"] == "zendesk:1001"]
    assert [(r["at"][:10], r["step"]) for r in general] == [
        ("2026-03-11", "2/3"),
        ("2026-03-13", "3/3"),
        ("2026-03-16", "after 3/3"),
    ]


def test_setting_override_changes_the_plan() -> None:
    code, out = run(
        "plan",
        "--input",
        str(EXAMPLE),
        "--at",
        AT,
        "--format",
        "json",
        "--set",
        "ein_bot_owner=Jo Q",
    )
    assert code == 0, out
    assert "Unresponsive Customers/Jo Q" in out


def test_setting_overrides_from_the_environment_keep_spaces() -> None:
    code, out = run(
        "plan",
        "--input",
        str(EXAMPLE),
        "--at",
        AT,
        "--format",
        "json",
        FOLLOWUP_POLICY_SETTINGS="ein_bot_owner=Jo Q; tsa_bot_owner=Al B",
    )
    assert code == 0, out
    assert "Unresponsive Customers/Jo Q" in out
    assert "Unresponsive Customers/Al B" in out


def test_explain_says_why_rule_by_rule() -> None:
    code, out = run("explain", "3102", "--input", str(EXAMPLE), "--at", AT)
    assert code == 0, out
    assert "covered by the account's bundled update on asana:3101" in out
    assert "bug-enterprise: needs plan is enterprise; has plan community" in out


def test_explain_unknown_case_fails_clearly() -> None:
    code, out = run("explain", "9999", "--input", str(EXAMPLE), "--at", AT)
    assert code == 1
    assert "no case '9999'" in out


def test_bad_input_file_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "cases.yaml"
    bad.write_text(
        "cases:\n  - id: 1\n    kind: ticket\n    status: waiting\n"
        "    created_at: 2026-03-02T09:00:00Z\n"
    )
    code, out = run("plan", "--input", str(bad), "--at", AT)
    assert code == 1
    assert f"{bad}:4: cases.0.status:" in out


def test_policies_check_accepts_the_bundled_pack_and_lists_settings() -> None:
    code, out = run("policies", "check", str(Path(load_pack().folder)))
    assert code == 0, out
    assert "ok: 17 policies" in out
    assert "setting standard_without_high_priority_cadence = quarterly" in out


def test_policies_check_reports_file_line_field(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(
        "policies:\n  - name: x\n    description: d\n"
        "    source: s\n    selector: {}\n"
        "    cadence: {type: every, rule: r, interval: {weeks: 1},"
        " actions: [{note: hi}]}\n"
    )
    code, out = run("policies", "check", str(tmp_path))
    assert code == 1
    assert f"{tmp_path / 'p.yaml'}:6: policies.0.cadence.interval.weeks: Extra inputs" in out


def test_policies_schema_is_json_schema() -> None:
    code, out = run("policies", "schema")
    assert code == 0
    schema = json.loads(out)
    assert schema["title"] == "followup-worker policy file"
    assert "policies" in schema["properties"]


def test_bench_prints_throughput_and_memory() -> None:
    code, out = run("bench", "plan", "--tickets", "300")
    assert code == 0, out
    assert "cases/s" in out
    assert "peak memory" in out


def test_policies_check_reports_a_broken_template(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "hello.j2").write_text("Hi {{ customer_name }\n")
    (tmp_path / "p.yaml").write_text(
        "policies:\n  - name: x\n    description: d\n    source: s\n    selector: {}\n"
        "    cadence: {type: every, rule: r, interval: {days: 1}, actions: [{reply: hello}]}\n"
    )
    code, out = run("policies", "check", str(tmp_path))
    assert code == 1
    assert f"{tmp_path / 'templates' / 'hello.j2'}:1: " in out


def test_tables_print_case_data_verbatim(tmp_path: Path) -> None:
    # A case id or reason from a helpdesk is data: ":ticket:" is not an emoji, "[red]" is not
    # markup (issue 14).
    hostile = tmp_path / "cases.yaml"
    hostile.write_text(
        "calendar: {timezone: America/New_York, country: US}\n"
        "cases:\n"
        "  - id: 'x:ticket:[red]y[/red]'\n"
        "    kind: ticket\n    status: open\n"
        "    created_at: 2026-03-11T09:00:00-04:00\n"
        "    assignee: Dana Smith\n"
        "    fields: {request_type: general_inquiry}\n"
    )
    code, out = run("plan", "--input", str(hostile), "--at", AT)
    assert code == 0, out
    assert "x:ticket:[red]y[/red]" in out
    assert "\N{TICKET}" not in out
    code, out = run("explain", "x:ticket:[red]y[/red]", "--input", str(hostile), "--at", AT)
    assert code == 0, out
    assert "zendesk:x:ticket:[red]y[/red] at" in out
