"""Registry: names, validated parameters, keys, the catalogue."""

from __future__ import annotations

import re

import msgspec
import numpy as np
import pytest

from engine.bus import topics
from engine.indicators import (
    Indicator,
    IndicatorError,
    IndicatorParams,
    IndicatorRegistry,
    Period,
    default_registry,
)
from engine.indicators.base import Array, IndicatorStream
from engine.indicators.builtins import BUILTINS, RsiIndicator
from engine.stats import StatsRegistry


@pytest.fixture
def registry() -> IndicatorRegistry:
    return default_registry(stats=StatsRegistry())


def test_default_registry_holds_the_issue_builtins(registry: IndicatorRegistry) -> None:
    required = {"sma", "ema", "rsi", "macd", "bbands", "atr", "stoch", "obv", "roc", "mom"}
    assert required | {"stddev", "natr"} <= set(registry.names())


def test_list_describes_params_outputs_and_warmup(registry: IndicatorRegistry) -> None:
    infos = {info.name: info for info in registry.list()}
    macd = infos["macd"]
    assert macd.outputs == ["macd", "macdsignal", "macdhist"]
    assert macd.inputs == ["close"]
    assert macd.source == "builtin"
    assert macd.default_key == "macd_12_26_9"
    assert macd.warmup == 33
    fast = macd.params[0]
    assert (fast.name, fast.type, fast.default, fast.ge, fast.le) == (
        "fastperiod",
        "int",
        12,
        2,
        100_000,
    )
    bb = infos["bbands"].params[1]
    assert (bb.name, bb.type, bb.gt) == ("nbdevup", "float", 0.0)
    assert infos["obv"].params == [] and infos["obv"].default_key == "obv"
    assert infos["atr"].inputs == ["high", "low", "close"]
    # the catalogue crosses the control plane as msgpack/JSON
    assert msgspec.json.decode(msgspec.json.encode(registry.list()))[0]["name"] == "atr"


def test_create_when_fast_not_below_slow_then_error_names_both(registry: IndicatorRegistry) -> None:
    with pytest.raises(IndicatorError) as err:
        registry.create("macd", fastperiod=26, slowperiod=12)
    assert str(err.value) == "macd: fastperiod (26) must be < slowperiod (12)"


def test_create_when_several_problems_then_lists_them_all(registry: IndicatorRegistry) -> None:
    with pytest.raises(IndicatorError) as err:
        registry.create("bbands", timeperiod=-5, nbdevup=0.0, colour="red")
    problems = err.value.problems
    assert (
        problems[0]
        == "bbands: unknown parameter 'colour' (parameters: timeperiod, nbdevup, nbdevdn)"
    )
    assert "bbands: timeperiod (-5) is invalid: expected `int` >= 2" in problems
    assert "bbands: nbdevup (0.0) is invalid: expected `float` > 0.0" in problems
    assert len(problems) == 3


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"timeperiod": 0}, "expected `int` >= 2"),
        ({"timeperiod": 14.5}, "expected `int`, got `float`"),
        ({"timeperiod": True}, "expected `int`, got `bool`"),
        ({"timeperiod": "14"}, "expected `int`, got `str`"),
        ({"timeperiod": 10**6}, "expected `int` <= 100000"),
    ],
)
def test_create_when_bad_period_then_indicator_error(
    registry: IndicatorRegistry, params: dict[str, object], fragment: str
) -> None:
    with pytest.raises(IndicatorError, match=re.escape(fragment)):
        registry.create("rsi", **params)


def test_create_when_unknown_name_then_error_lists_known(registry: IndicatorRegistry) -> None:
    with pytest.raises(IndicatorError) as err:
        registry.create("vwap")
    assert str(err.value).startswith("unknown indicator 'vwap'; known: atr, bbands, ema, macd")


def test_indicator_error_is_a_value_error(registry: IndicatorRegistry) -> None:
    with pytest.raises(ValueError):
        registry.create("rsi", timeperiod=-1)


@pytest.mark.parametrize("cls", BUILTINS, ids=lambda c: c.name)
def test_key_round_trips_and_is_a_topic_part(registry: IndicatorRegistry, cls: type) -> None:
    indicator = registry.create(cls.name)  # type: ignore[attr-defined]
    assert registry.from_key(indicator.key).params == indicator.params
    topic = topics.indicator(indicator.key, "BP.L", "1m")
    assert topics.parse(topic) == ("ind", indicator.key, ("BP~L", "1m"))


def test_keys_and_params_keys_are_canonical(registry: IndicatorRegistry) -> None:
    bb = registry.create("bbands", timeperiod=20, nbdevup=2, nbdevdn=2.5)
    assert bb.key == "bbands_20_2p0_2p5"
    assert bb.params_key == "nbdevdn=2.5,nbdevup=2.0,timeperiod=20"
    assert registry.create("rsi").key == "rsi_14"
    assert registry.create("rsi").params_key == "timeperiod=14"
    assert registry.create("obv").params_key == ""
    assert registry.from_key("bbands_20_2_2p5").key == "bbands_20_2p0_2p5"


@pytest.mark.parametrize(
    ("key", "fragment"),
    [
        ("rsi_x", "rsi: timeperiod ('x') is not a int"),
        ("rsi_14_3", "rsi: a key has 1 parameter(s): rsi_<timeperiod>"),
        ("rsi_1", "rsi: timeperiod (1) is invalid"),
        ("nothing_14", "unknown indicator in key 'nothing_14'; known: atr"),
    ],
)
def test_from_key_when_malformed_then_indicator_error(
    registry: IndicatorRegistry, key: str, fragment: str
) -> None:
    with pytest.raises(IndicatorError, match=re.escape(fragment)):
        registry.from_key(key)


def test_create_spec_from_key_or_table(registry: IndicatorRegistry) -> None:
    assert registry.create_spec("macd_5_35_5").key == "macd_5_35_5"
    assert registry.create_spec({"name": "stoch", "fastk_period": 14}).key == "stoch_14_3_3"
    with pytest.raises(IndicatorError, match="has no 'name'"):
        registry.create_spec({"timeperiod": 3})


class _SumParams(IndicatorParams, frozen=True, kw_only=True):
    timeperiod: Period
    scale: float = 1.0
    centred: bool = False
    mode: str = "plain"


class _SumIndicator(Indicator):
    name = "rolling_sum"
    Params = _SumParams

    @property
    def warmup(self) -> int:
        return int(self.params.timeperiod) - 1

    def batch(self, close: Array) -> tuple[Array, ...]:
        return (np.convolve(close, np.ones(self.params.timeperiod), "full")[: len(close)],)

    def stream(self, close: Array) -> IndicatorStream:
        raise NotImplementedError


def test_required_and_typed_params_of_a_custom_class(registry: IndicatorRegistry) -> None:
    registry.register(_SumIndicator, source="tests")
    with pytest.raises(IndicatorError, match="rolling_sum: parameter 'timeperiod' is required"):
        registry.create("rolling_sum")
    ind = registry.create("rolling_sum", timeperiod=3, scale=0.5, centred=True, mode="x-1")
    assert ind.key == "rolling_sum_3_0p5_true_x-1"
    assert registry.from_key(ind.key).params == ind.params
    with pytest.raises(IndicatorError, match="may only contain"):
        registry.create("rolling_sum", timeperiod=3, mode="a_b")
    info = registry.info("rolling_sum")
    assert info.default_key is None and info.params[0].required
    assert info.source == "tests"


def test_register_when_name_taken_then_error_unless_replace(registry: IndicatorRegistry) -> None:
    class Other(RsiIndicator):
        pass

    with pytest.raises(IndicatorError, match="rsi: already registered from builtin"):
        registry.register(Other, source="plugin.py")
    registry.register(Other, source="plugin.py", replace=True)
    assert registry.get("rsi") is Other


def test_register_when_class_malformed_then_lists_problems(registry: IndicatorRegistry) -> None:
    class Bad(Indicator):  # abstract on purpose
        name = "Bad Name"
        inputs = ("close", "bid")  # type: ignore[assignment]
        outputs = ("x", "x")

    with pytest.raises(IndicatorError) as err:
        registry.register(Bad)  # type: ignore[type-abstract]
    text = str(err.value)
    assert "name 'Bad Name' must match" in text
    assert "does not implement batch, stream, warmup" in text
    assert "inputs ('close', 'bid')" in text
    assert "outputs ('x', 'x') must be unique" in text


def test_register_when_param_type_unsupported_then_error(registry: IndicatorRegistry) -> None:
    class ListParams(IndicatorParams, frozen=True, kw_only=True):
        periods: list[int] = []

    class Lists(Indicator):
        name = "lists"
        Params = ListParams

    with pytest.raises(IndicatorError, match=r"Lists: Params: parameter type .* is not int"):
        registry.register(Lists)  # type: ignore[type-abstract]
