"""Custom strategies in the execution process against the real venue, in compressed time:
a signal starts the strategy's algorithm once, cooldown and the day's maximum (reset
on the next UTC day), conditions on the signal and on an indicator, bad definitions
refused with the key named, a start the risk gate refuses alerted, edits audited."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest
from algo_world import SYMBOL, AlgoWorld, D
from sqlalchemy import select

from engine.algos.strategies import trigger_command_id
from engine.algos.strategy_store import DAY_NS
from engine.bus import topics
from engine.bus.commands.algos import (
    DeleteStrategy,
    EnableStrategy,
    ListAlgos,
    ListStrategies,
    SetStrategy,
    StrategyView,
)
from engine.bus.events import AlertRaised, AlgorithmTriggered, IndicatorUpdated, SignalRaised
from engine.errors import CommandError, ErrorCode
from engine.persistence.models import AuditEntry
from engine.risk.profile import RiskProfile


@pytest.fixture
def world(tmp_path: Path) -> AlgoWorld:
    w = AlgoWorld(tmp_path)
    w.quote(D(100))
    w.advance(6)  # the venue's first book snapshot reaches the engine
    return w


def define(world: AlgoWorld, name: str = "dip", **fields: Any) -> StrategyView:
    values: dict[str, Any] = {
        "name": name,
        "signal_rule": "rsi_cross",
        "symbol": SYMBOL,
        "algo_type": "twap",
        "algo_params": '{"duration_s": 60, "slices": 2}',
        "account": "acc",
        "side": "buy",
        "qty": D(100),
        "max_triggers_per_day": 10,
        "actor": "ops",
        "command_id": f"set-{name}",
    }
    values.update(fields)
    view = world.send(SetStrategy(**values))
    assert isinstance(view, StrategyView)
    return view


def signal(
    world: AlgoWorld,
    n: int = 1,
    *,
    kind: str = "oversold_entry",
    strength: float = 0.8,
    symbol: str = SYMBOL,
    simulated: bool = False,
) -> SignalRaised:
    """The analysis process raises signal number ``n`` (its event id: the same ``n``
    is the same event delivered again)."""
    now = world.clock.time_ns()
    event = SignalRaised(
        event_id=f"analysis:test:{n}",
        source="analysis",
        seq=n,
        ts_event=now,
        symbol=symbol,
        interval="1m",
        ts=now - now % (60 * 10**9),
        rule="rsi_cross",
        kind=kind,
        indicator="rsi_14",
        strength=strength,
        simulated=simulated,
    )
    world.ctx.deliver(topics.signal("rsi_cross", symbol), event)
    world.pump()
    return event


def indicator(world: AlgoWorld, key: str, forming: bool = False, **values: float) -> None:
    now = world.clock.time_ns()
    event = IndicatorUpdated(
        ts_event=now,
        symbol=SYMBOL,
        interval="1m",
        ts=now - now % (60 * 10**9),
        indicator=key,
        values=values,
        forming=forming,
    )
    world.ctx.deliver(topics.indicator(key, SYMBOL, "1m"), event)


def triggered(world: AlgoWorld) -> list[AlgorithmTriggered]:
    return world.events(AlgorithmTriggered)


def started(world: AlgoWorld) -> list[str]:
    return [a.algo_id for a in world.send(ListAlgos()).algos]


def strategy(world: AlgoWorld, name: str = "dip") -> StrategyView:
    (view,) = [s for s in world.send(ListStrategies()).strategies if s.name == name]
    return view


def refused(world: AlgoWorld, command: Any) -> CommandError:
    with pytest.raises(CommandError) as info:
        world.send(command)
    return info.value


def audit_log(world: AlgoWorld) -> list[tuple[str, str, str, str | None]]:
    t = AuditEntry.__table__.c
    query = select(t.action, t.target, t.result, t.detail).where(t.action.like("%Strategy"))
    with world.engine.connect() as conn:
        rows = conn.execute(query.order_by(t.id)).all()
    return [(r.action, r.target, r.result, r.detail) for r in rows]


def test_signal_when_strategy_matches_then_algorithm_started_and_triggered_published(
    world: AlgoWorld,
) -> None:
    define(world)

    raised = signal(world)

    (algo,) = world.send(ListAlgos()).algos
    assert (algo.algo_type, algo.symbol, algo.side, algo.qty) == ("twap", SYMBOL, "buy", 100)
    assert algo.strategy == "dip" and algo.state == "running"
    (event,) = triggered(world)
    assert (event.strategy, event.signal_rule, event.symbol) == ("dip", "rsi_cross", SYMBOL)
    assert (event.algo_id, event.algo_type) == (algo.algo_id, "twap")
    assert event.signal_event_id == raised.event_id == "analysis:test:1"
    assert [t for t, e in world.ctx.published if e is event] == ["exec.trigger.dip"]
    view = strategy(world)
    assert view.triggers_today == 1 and view.last_triggered_ns == world.clock.time_ns()
    world.advance(70, step=0.5)
    assert world.send(ListAlgos()).algos[0].state == "completed"


def test_signal_when_same_event_again_then_no_second_start(world: AlgoWorld) -> None:
    define(world)

    signal(world, 1)
    signal(world, 1)
    world.advance(1)
    signal(world, 1)

    assert len(started(world)) == 1 and len(triggered(world)) == 1
    assert strategy(world).triggers_today == 1


def test_signal_when_strategy_in_cooldown_then_skipped_until_it_passed(world: AlgoWorld) -> None:
    define(world, cooldown_s=60)

    signal(world, 1)
    world.advance(30, step=1)
    signal(world, 2)
    assert len(started(world)) == 1
    world.advance(31, step=1)
    signal(world, 3)

    assert len(started(world)) == 2
    assert [t.signal_event_id for t in triggered(world)] == ["analysis:test:1", "analysis:test:3"]


def test_signal_when_day_maximum_reached_then_skipped_until_the_next_utc_day(
    world: AlgoWorld,
) -> None:
    define(world, max_triggers_per_day=2)
    for n in range(1, 4):
        signal(world, n)
    assert len(started(world)) == 2 and strategy(world).triggers_today == 2

    to_midnight = DAY_NS - world.clock.time_ns() % DAY_NS
    world.advance(to_midnight / 1e9 + 1, step=20)  # the first two completed meanwhile
    assert strategy(world).triggers_today == 0
    signal(world, 4)
    signal(world, 5)
    signal(world, 6)

    assert len(started(world)) == 4
    assert strategy(world).triggers_today == 2
    assert [t.signal_event_id[-1] for t in triggered(world)] == ["1", "2", "4", "5"]


def test_signal_when_strategy_disabled_then_nothing_until_enabled(world: AlgoWorld) -> None:
    view = define(world, enabled=False)
    assert not view.enabled

    signal(world, 1)
    assert started(world) == []
    enabled = world.send(EnableStrategy(name="dip", enabled=True, actor="ops"))
    signal(world, 2)
    world.send(EnableStrategy(name="dip", enabled=False, actor="ops"))
    signal(world, 3)

    assert enabled.enabled and len(started(world)) == 1
    assert [t.signal_event_id for t in triggered(world)] == ["analysis:test:2"]


def test_signal_when_kind_or_strength_do_not_match_then_skipped(world: AlgoWorld) -> None:
    define(world, condition='{"kind": "oversold_entry", "min_strength": 0.5}')

    signal(world, 1, kind="overbought_entry", strength=0.9)
    signal(world, 2, kind="oversold_entry", strength=0.3)
    signal(world, 3, symbol="MSFT")  # another symbol: not this strategy's
    assert started(world) == []
    signal(world, 4, kind="oversold_entry", strength=0.5)

    assert [t.signal_event_id for t in triggered(world)] == ["analysis:test:4"]
    assert world.events(AlertRaised) == []


def test_signal_when_indicator_condition_then_latest_closed_value_decides(
    world: AlgoWorld,
) -> None:
    define(world, condition='{"indicator": "rsi_14", "below": 30}')
    define(world, "macd", condition='{"indicator": "macd_12_26_9.macdhist", "above": 0}')

    signal(world, 1)  # no value yet
    indicator(world, "rsi_14", value=45.0)
    indicator(world, "rsi_14", value=20.0, forming=True)  # a preview: ignored
    indicator(world, "macd_12_26_9", macd=1.0, macdsignal=2.0, macdhist=-1.0)
    signal(world, 2)
    assert started(world) == []
    indicator(world, "rsi_14", value=25.0)
    indicator(world, "macd_12_26_9", macd=2.0, macdsignal=1.5, macdhist=0.5)
    signal(world, 3)

    assert sorted((t.strategy, t.signal_event_id) for t in triggered(world)) == [
        ("dip", "analysis:test:3"),
        ("macd", "analysis:test:3"),
    ]


def test_signal_when_real_only_then_simulated_signals_skipped(world: AlgoWorld) -> None:
    define(world, "any_market")
    define(world, "real", condition='{"real_only": true}')

    signal(world, 1, simulated=True)
    signal(world, 2, simulated=False)

    assert sorted((t.strategy, t.signal_event_id[-1]) for t in triggered(world)) == [
        ("any_market", "1"),
        ("any_market", "2"),
        ("real", "2"),
    ]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"algo_type": "martingale"}, "unknown algorithm 'martingale'"),
        ({"algo_params": '{"slices": 0, "duration_s": 60}'}, "twap parameters: slices"),
        ({"algo_params": '{"duration_s": 60, "colour": "red"}'}, "twap parameters"),
        ({"algo_params": "[1]"}, "algo_params must be a JSON object"),
        ({"condition": '{"colour": "red"}'}, "unknown condition key 'colour'"),
        ({"condition": '{"min_strength": 2}'}, "min_strength must be from 0 to 1"),
        ({"condition": '{"below": 30}'}, "condition below needs an indicator"),
        ({"condition": '{"indicator": "rsi_14"}'}, "rsi_14 needs below and/or above"),
        ({"condition": '{"indicator": "rsi_14", "below": "low"}'}, "below must be a number"),
        ({"condition": '{"real_only": "yes"}'}, "real_only must be true or false"),
        ({"condition": "{"}, "condition is not JSON"),
        ({"account": "_venue"}, "account '_venue' is not valid"),
        ({"qty": D(0)}, "qty must be positive"),
        ({"qty": D("10.5")}, "not a multiple of AAPL's lot 1"),
        ({"signal_rule": "RSI cross"}, "signal rule 'RSI cross' must match"),
    ],
)
def test_set_when_definition_bad_then_invalid_named_and_audited(
    world: AlgoWorld, fields: dict[str, Any], expected: str
) -> None:
    values: dict[str, Any] = {
        "name": "bad",
        "signal_rule": "rsi_cross",
        "symbol": SYMBOL,
        "algo_type": "twap",
        "algo_params": '{"duration_s": 60}',
        "account": "acc",
        "side": "buy",
        "qty": D(100),
        "actor": "ops",
    }
    values.update(fields)

    error = refused(world, SetStrategy(**values))

    assert error.code == ErrorCode.INVALID and expected in error.message
    assert world.send(ListStrategies()).strategies == []
    ((action, target, result, detail),) = audit_log(world)
    assert (action, target, result) == ("SetStrategy", "bad", "denied")
    assert detail is not None and expected in detail


def test_signal_when_risk_refuses_the_start_then_alert_and_nothing_started(
    tmp_path: Path,
) -> None:
    world = AlgoWorld(tmp_path, profile=RiskProfile(account="acc", max_parent_qty=D(50)))
    world.quote(D(100))
    world.advance(6)
    define(world)

    signal(world, 1)

    assert started(world) == [] and triggered(world) == []
    (alert,) = [a for a in world.events(AlertRaised) if a.kind == "strategy.start_failed"]
    assert "Cannot start twap for strategy dip on rsi_cross" in alert.message
    assert "max_parent_qty" in alert.message
    assert (alert.symbol, alert.account, alert.details["strategy"]) == (SYMBOL, "acc", "dip")
    assert alert.details["code"] == ErrorCode.DENIED
    assert strategy(world).triggers_today == 0  # a refused start is not a trigger
    world.advance(1)
    signal(world, 2)  # the loop goes on
    assert len([a for a in world.events(AlertRaised) if a.kind == "strategy.start_failed"]) == 2


def test_strategies_when_edited_then_audited_and_survive_a_restart(world: AlgoWorld) -> None:
    define(world, max_triggers_per_day=1)
    signal(world, 1)
    define(world, max_triggers_per_day=1, qty=D(200))  # replaced: the day's count stays
    world.send(EnableStrategy(name="dip", enabled=False, actor="ops"))
    world.send(EnableStrategy(name="dip", enabled=True, actor="ops"))
    world.kill_execution()
    world.start_execution()

    view = strategy(world)
    signal(world, 2)

    assert (view.qty, view.enabled, view.triggers_today) == (200, True, 1)
    assert len(started(world)) == 1
    deleted = world.send(DeleteStrategy(name="dip", actor="ops"))
    assert deleted.name == "dip" and world.send(ListStrategies()).strategies == []
    assert world.send(ListAlgos()).algos[0].strategy == ""  # the algorithm stays
    assert refused(world, DeleteStrategy(name="dip", actor="ops")).code == ErrorCode.NOT_FOUND
    assert refused(world, EnableStrategy(name="nope", enabled=True)).code == ErrorCode.NOT_FOUND
    assert [(a, r) for a, _, r, _ in audit_log(world)] == [
        ("SetStrategy", "ok"),
        ("SetStrategy", "ok"),
        ("DisableStrategy", "ok"),
        ("EnableStrategy", "ok"),
        ("DeleteStrategy", "ok"),
        ("DeleteStrategy", "denied"),
        ("EnableStrategy", "denied"),
    ]


def test_trigger_command_id_when_long_then_64_characters_and_stable() -> None:
    event = SignalRaised(
        event_id="analysis:0123abcd:123456",
        ts_event=1,
        symbol=SYMBOL,
        interval="1m",
        ts=0,
        rule="rsi_cross",
        kind="oversold_entry",
        indicator="rsi_14",
        strength=0.5,
    )
    short = trigger_command_id("dip", event)
    long = trigger_command_id("x" * 64, event)

    assert short == "strategy:dip:analysis:0123abcd:123456"
    assert len(long) == 64 and long == trigger_command_id("x" * 64, event)
    assert long != trigger_command_id("x" * 64, msgspec.structs.replace(event, event_id="other"))
