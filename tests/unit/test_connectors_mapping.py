"""The tenant mapping file: the sandbox example loads; mistakes are reported by file:line:field."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.errors import MappingError
from connectors.mapping import PlanNames, load_mapping
from policies.model import PlanTier

EXAMPLE = Path(__file__).parents[2] / "deploy" / "mapping.sandbox.yaml"


def test_the_sandbox_example_is_valid() -> None:
    mapping = load_mapping(EXAMPLE)
    assert mapping.zendesk is not None
    assert mapping.zendesk.ticket_fields["order_status"] == "Order status"
    assert mapping.asana is not None
    assert mapping.asana.project == "Bugs"


def test_errors_name_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "tenant.yaml"
    path.write_text(
        "zendesk:\n"
        "  ticket_fields:\n"
        "    industry: Industry\n"
        "  lookback_days: -3\n"
        "asana:\n"
        "  custom_fields: {}\n"
        "  colour: blue\n"
    )
    with pytest.raises(MappingError) as raised:
        load_mapping(path)
    message = str(raised.value)
    assert f"{path}:4: zendesk.lookback_days: Input should be greater than 0" in message
    assert f"{path}:5: asana.project: Field required" in message
    assert f"{path}:7: asana.colour: Extra inputs are not permitted" in message


def test_broken_yaml_is_a_mapping_error(tmp_path: Path) -> None:
    path = tmp_path / "tenant.yaml"
    path.write_text("zendesk: [unclosed\n")
    with pytest.raises(MappingError, match="invalid YAML"):
        load_mapping(path)


@pytest.mark.parametrize(
    ("raw", "tier"),
    [
        ("Enterprise", PlanTier.ENTERPRISE),
        (" trial ", PlanTier.TRIAL),
        ("legacy_gold", None),
        (None, None),
    ],
)
def test_plan_names_map_raw_values_to_tiers(raw: str | None, tier: PlanTier | None) -> None:
    assert PlanNames().tier(raw) == tier
