"""The rule registry: built-ins, creation with parameters, readable validation errors,
parameter schemas, plugins."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pytest
from talib import abstract

from engine.signals import (
    INTERFACE_VERSION,
    REGISTRY,
    IndicatorSpec,
    RuleInput,
    RuleParams,
    RuleParamsError,
    RuleRegistry,
    RuleSignal,
    SignalRule,
    UnknownRuleError,
    create,
    describe,
)
from engine.signals.base import SINGLE_OUTPUT
from engine.signals.rules import MaCrossRule, RsiCrossParams, RsiCrossRule

BUILTINS = ["bollinger_breakout", "ma_cross", "macd_cross", "macd_divergence", "rsi_cross"]


class _NoParams(RuleParams, frozen=True, kw_only=True):
    pass


class _Plugin(SignalRule[_NoParams]):
    name = "always_up"
    params_type = _NoParams
    kinds = ("up",)

    @property
    def required(self) -> Mapping[str, IndicatorSpec]:
        return {}

    @property
    def indicator(self) -> str:
        return "none"

    def on_bar(self, ctx: RuleInput) -> list[RuleSignal]:
        return [RuleSignal(kind="up", strength=1.0)]


def test_registry_when_loaded_then_has_the_five_builtins() -> None:
    assert REGISTRY.names() == BUILTINS
    assert [info.name for info in describe()] == BUILTINS


def test_create_when_params_given_then_overrides_defaults() -> None:
    rule = create("rsi_cross", lower=25)
    assert isinstance(rule, RsiCrossRule)
    assert rule.params == RsiCrossParams(period=14, lower=25.0, upper=70.0)


def test_create_when_params_are_strings_then_converts_them() -> None:
    # as they arrive from the CLI (`period=9`)
    assert create("rsi_cross", period="9", upper="75").params == RsiCrossParams(period=9, upper=75)


def test_create_when_name_unknown_then_error_lists_known_rules() -> None:
    with pytest.raises(UnknownRuleError, match="unknown signal rule 'rsi'; known: bollinger"):
        create("rsi")


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("ma_cross", {"fast": 200, "slow": 50}, "ma_cross: fast (200) must be < slow (50)"),
        ("macd_cross", {"fast": 26, "slow": 26}, "macd_cross: fast (26) must be < slow (26)"),
        (
            "rsi_cross",
            {"lower": 70, "upper": 30},
            "rsi_cross: thresholds must satisfy 0 < lower < upper < 100 (lower=70, upper=30)",
        ),
        (
            "rsi_cross",
            {"upper": 100},
            "rsi_cross: thresholds must satisfy 0 < lower < upper < 100 (lower=30, upper=100)",
        ),
        (
            "macd_divergence",
            {"window": 5, "lookback": 10},
            "macd_divergence: lookback (10) must be > 2 * window (5), "
            "or no divergence can ever be confirmed",
        ),
        ("rsi_cross", {"lowr": 20}, "rsi_cross: Object contains unknown field `lowr`"),
        ("rsi_cross", {"period": 1}, "rsi_cross: Expected `int` >= 2 - at `$.period`"),
        ("ma_cross", {"type": "wma"}, "ma_cross: Invalid enum value 'wma' - at `$.type`"),
        ("bollinger_breakout", {"nbdev": 0}, "bollinger_breakout: Expected `float` > 0.0"),
        (
            "bollinger_breakout",
            {"period": 5, "nbdev": 2},
            "bollinger_breakout: nbdev (2) must be < sqrt(period - 1) = 2: over 5 bars the "
            "close can never lie further from the mean",
        ),
    ],
)
def test_create_when_params_invalid_then_readable_error(
    name: str, params: dict[str, object], message: str
) -> None:
    with pytest.raises(RuleParamsError) as caught:
        create(name, **params)
    assert str(caught.value).startswith(message)


def test_rule_when_constructed_directly_then_validates_too() -> None:
    with pytest.raises(RuleParamsError, match=r"^ma_cross: fast \(200\) must be < slow \(50\)$"):
        MaCrossRule(fast=200, slow=50)
    assert isinstance(RuleParamsError("x"), ValueError)


def test_describe_when_listing_then_gives_kinds_and_param_schema() -> None:
    info = {i.name: i for i in describe()}["rsi_cross"]
    assert info.kinds == ["oversold_entry", "oversold_exit", "overbought_entry", "overbought_exit"]
    assert info.interface_version == INTERFACE_VERSION
    props = info.params["properties"]
    assert set(props) == {"period", "lower", "upper"}
    assert props["period"] == {
        "description": "RSI time period.",
        "type": "integer",
        "minimum": 2,
        "maximum": 100_000,
        "default": 14,
    }
    assert all(i.description and i.kinds for i in describe())
    for i in describe():
        assert all("description" in p and "default" in p for p in i.params["properties"].values())


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_required_when_given_to_talib_then_names_real_functions_and_outputs(
    name: str,
) -> None:
    # The specs are what the analysis process computes: TA-Lib must know them as they are
    # (a single output is ``value`` in QSuite, ``real`` in TA-Lib).
    prices = np.linspace(100.0, 120.0, 300)
    inputs = {"open": prices, "high": prices + 1, "low": prices - 1, "close": prices}
    inputs["volume"] = np.full(300, 1000.0)
    for spec in create(name).required.values():
        function = abstract.Function(spec.indicator.upper(), **spec.params_dict)
        assert dict(function.parameters).items() >= spec.params_dict.items()
        if spec.output == SINGLE_OUTPUT:
            assert function.output_names == ["real"]
        else:
            assert spec.output in function.output_names
        function.set_input_arrays(inputs)
        assert len(function.outputs) > 0


def test_register_when_plugin_then_creatable_and_listed() -> None:
    registry = RuleRegistry()
    registry.register(_Plugin)
    assert registry.names() == ["always_up"]
    assert isinstance(registry.create("always_up"), _Plugin)
    assert registry.describe()[0].kinds == ["up"]


def test_register_when_interface_version_differs_then_refuses() -> None:
    class Old(_Plugin):
        INTERFACE_VERSION = INTERFACE_VERSION + 1

    with pytest.raises(ValueError, match="written for interface version 2"):
        RuleRegistry().register(Old)


def test_register_when_name_taken_or_bad_then_refuses() -> None:
    class Clash(_Plugin):
        name = "rsi_cross"

    class Bad(_Plugin):
        name = "Bad Name"

    registry = RuleRegistry()
    registry.register(RsiCrossRule)
    with pytest.raises(ValueError, match="already registered"):
        registry.register(Clash)
    assert registry.register(Clash, replace=True) is Clash
    with pytest.raises(ValueError, match="must match"):
        registry.register(Bad)
