"""fields.py, pure: each setting's input as a form shows it (bounds from the models' rules, which are V9's CHECKs),
and a posted form read back into changes. No database: the rules are the models', proved equal to PostgreSQL's
elsewhere (test_models); here, that the inputs say the same thing."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from walltrack_config import fields
from walltrack_config.models import MODELS, TradingConfig


@pytest.mark.parametrize("domain", list(MODELS))
def test_every_setting_has_an_input_whose_bounds_the_model_agrees_with(domain):
    model = MODELS[domain]
    specs = fields.specs(domain)
    assert [s.name for s in specs] == list(model.model_fields)
    base = model().model_dump()
    for spec in specs:
        assert spec.meaning, spec.name
        if spec.kind not in ("integer", "decimal"):
            continue
        step = Decimal(spec.step)
        low, high = Decimal(spec.input_min or "-1e30"), Decimal(spec.input_max or "1e30")
        # The edges an input allows are accepted by the model; one step beyond each is refused.
        for edge, outside in ((low, low - step), (high, high + step)):
            inside = {spec.name: edge if spec.kind == "decimal" else int(edge)}
            try:
                model.model_validate(base | inside)
            except ValidationError as exc:  # only a rule over several fields may refuse an edge
                assert all(e["type"].startswith("chk_") for e in exc.errors()), (spec.name, edge, exc)
            if (spec.input_min is not None and edge == low) or (spec.input_max is not None and edge == high):
                with pytest.raises(ValidationError):
                    model.model_validate(base | {spec.name: outside if spec.kind == "decimal" else int(outside)})


def test_inputs_read_as_a_person_writes_them():
    by_name = {s.name: s for s in fields.specs("trading")}
    sol = by_name["max_position_sol"]
    assert (sol.step, sol.input_min, sol.bounds, sol.unit) == ("0.00000001", "0.00000001", "> 0", "SOL")
    pct = by_name["base_position_pct"]
    assert (pct.step, pct.input_min, pct.input_max, pct.bounds) == ("0.01", "0.01", "100", "> 0, ≤ 100")
    assert by_name["high_conviction_multiplier"].bounds == "1 to 10"
    assert by_name["max_concurrent_positions"].bounds == "> 0"  # INTEGER's own limit is not a rule to show
    assert by_name["sizing_mode"].choices == ("fixed", "risk_based")
    assert by_name["drawdown_reduction_tiers"].kind == "tiers"
    assert by_name["daily_loss_limit_enabled"].kind == "boolean"
    assert {s.name: s.kind for s in fields.specs("exit")}["default_strategy_standard_id"] == "uuid"


def test_a_form_gives_only_what_changed_as_typed():
    current = TradingConfig()
    form = {
        "base_position_pct": "2.00",  # the same number, written otherwise: no change
        "max_position_sol": " 1.5 ",
        "sizing_mode": "fixed",
        # daily_loss_limit_enabled unticked: a checkbox sends nothing
        "drawdown_reduction_tiers-0-threshold_pct": "5", "drawdown_reduction_tiers-0-size_reduction_pct": "0",
        "drawdown_reduction_tiers-1-threshold_pct": "", "drawdown_reduction_tiers-1-size_reduction_pct": "",
        "drawdown_reduction_tiers-2-threshold_pct": "12.5", "drawdown_reduction_tiers-2-size_reduction_pct": "abc",
        "score_threshold": "0.7",
    }
    changes = fields.from_form("trading", form, current)
    assert changes == {
        "max_position_sol": "1.5",
        "sizing_mode": "fixed",
        "daily_loss_limit_enabled": False,
        "drawdown_reduction_tiers": [{"threshold_pct": 5, "size_reduction_pct": 0},
                                     {"threshold_pct": 12.5, "size_reduction_pct": "abc"}],
    }
    # what the model then says about the text left as typed names the tier's field
    with pytest.raises(ValidationError) as refused:
        TradingConfig.model_validate(current.model_dump() | changes)
    assert "size_reduction_pct" in str(refused.value)


def test_a_form_that_changes_nothing_asks_for_nothing():
    current = TradingConfig()
    same = {s.name: str(s.default) for s in fields.specs("trading") if s.kind in ("integer", "decimal", "choice")}
    same["daily_loss_limit_enabled"] = "on"
    for i, tier in enumerate(current.drawdown_reduction_tiers):
        same[f"drawdown_reduction_tiers-{i}-threshold_pct"] = str(tier.threshold_pct)
        same[f"drawdown_reduction_tiers-{i}-size_reduction_pct"] = str(tier.size_reduction_pct)
    assert fields.from_form("trading", same, current) == {}


def test_hostile_tier_keys_are_ignored():
    form = {"drawdown_reduction_tiers-999-threshold_pct": "1", "drawdown_reduction_tiers-0-evil": "x",
            "drawdown_reduction_tiers-0-threshold_pct": "5", "drawdown_reduction_tiers-0-size_reduction_pct": "0",
            "other_field-0-threshold_pct": "3", "daily_loss_limit_enabled": "on"}
    assert fields.from_form("trading", form, TradingConfig()) == {
        "drawdown_reduction_tiers": [{"threshold_pct": 5, "size_reduction_pct": 0}]}


def test_tier_columns_take_any_number_the_model_takes():
    # The model takes 12.5 as a tier threshold: the table's inputs must not hold it to whole numbers.
    for spec in fields.tier_specs():
        assert (spec.kind, spec.step, spec.input_min, spec.input_max, spec.bounds) == ("number", "any", "0", "100",
                                                                                        "0 to 100")
