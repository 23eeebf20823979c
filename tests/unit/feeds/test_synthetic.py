"""The synthetic market: determinism, self-consistent history, ticks that add up to the
bars, and what each scenario changes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.bus.events import QuoteUpdated, TradeReported
from engine.clock import FakeClock
from engine.persistence.models.market import BarFlag
from engine.stats import StatsRegistry
from feeds.normalizer import normalize_bars
from feeds.scenarios import SCENARIO_NAMES, SCENARIOS
from feeds.schema import NS, IntervalError, Quote
from feeds.source import MarketSource, SymbolNotFound
from feeds.synthetic import TICK_CATCHUP_BARS, SyntheticMarket

MIN = 60 * NS
DAY = 1440 * MIN
T0 = 1_699_920_000 * NS + 13 * 60 * MIN  # 13:00 UTC
START = {"AAA": 100.0, "BBB": 20.0}


def market(
    seed: int = 7, symbols: dict[str, float] | None = None, scenario: str = "calm"
) -> tuple[SyntheticMarket, FakeClock]:
    clock = FakeClock(T0)
    return SyntheticMarket(symbols or START, seed=seed, scenario=scenario, clock=clock), clock


def log_returns(bars: pd.DataFrame) -> np.ndarray:
    return np.diff(np.log(bars["close"].to_numpy()))


def live(m: SyntheticMarket, clock: FakeClock, minutes: int) -> tuple[list, list]:
    """Run the market minute by minute: (bars, tick events)."""
    bars, ticks = [], []
    for _ in range(minutes):
        clock.advance(60)
        ticks += m.ticks()
        bars += m.next_bars()
    return bars, ticks


# -- determinism and history -----------------------------------------------------------


def test_history_when_same_seed_then_identical_and_different_seed_then_different() -> None:
    (a, _), (b, _), (c, _) = market(7), market(7), market(8)
    frames = [x.history("AAA", "1m", T0 - DAY, T0) for x in (a, b, c)]
    pd.testing.assert_frame_equal(frames[0], frames[1])
    assert not frames[0]["close"].equals(frames[2]["close"])
    assert len(frames[0]) == 1440


def test_history_when_symbol_added_then_other_paths_unchanged() -> None:
    alone, _ = market(symbols={"AAA": 100.0})
    crowded, _ = market(symbols={"ZZZ": 5.0, "AAA": 100.0, "BBB": 20.0})
    pd.testing.assert_frame_equal(
        alone.history("AAA", "1m", T0 - DAY, T0), crowded.history("AAA", "1m", T0 - DAY, T0)
    )


def test_history_when_rerequested_in_any_order_then_same_ts_same_bar() -> None:
    fresh, _ = market()
    whole = fresh.history("AAA", "1m", T0 - 3 * DAY, T0)
    patchy, _ = market()
    parts = [
        patchy.history("AAA", "1m", T0 - DAY - 7 * MIN, T0),
        patchy.history("AAA", "1m", T0 - 3 * DAY, T0 - 2 * DAY + 5 * MIN),
        patchy.history("AAA", "1m", T0 - 2 * DAY, T0 - DAY),
    ]
    stitched = pd.concat(parts).drop_duplicates("ts").sort_values("ts", ignore_index=True)
    pd.testing.assert_frame_equal(stitched, whole)
    pd.testing.assert_frame_equal(patchy.history("AAA", "1m", T0 - 3 * DAY, T0), whole)


def test_history_when_asked_past_now_then_only_closed_bars() -> None:
    m, clock = market()
    clock.advance(90)  # 13:01:30: the 13:00 bar closed, 13:01 did not
    bars = m.history("AAA", "1m", T0 - 5 * MIN, T0 + DAY)
    assert bars["ts"].iloc[-1] == T0
    assert m.history("AAA", "1d", T0 - 2 * DAY, T0 + DAY)["ts"].iloc[-1] + DAY <= clock.time_ns()


def test_history_when_coarser_interval_then_aggregates_own_bars_exactly() -> None:
    m, _ = market()
    minutes = m.history("AAA", "1m", T0 - 2 * DAY, T0)
    for interval, width in (("5m", 5 * MIN), ("1h", 60 * MIN), ("1d", DAY)):
        coarse = m.history("AAA", interval, T0 - 2 * DAY, T0)
        assert len(coarse) and (coarse["ts"] % width == 0).all()
        inside = minutes[
            (minutes["ts"] >= coarse["ts"].iloc[0])
            & (minutes["ts"] < coarse["ts"].iloc[-1] + width)
        ]
        per_bin = {c: inside[c].to_numpy().reshape(len(coarse), -1) for c in inside.columns}
        assert (per_bin["ts"][:, 0] == coarse["ts"]).all()
        assert (per_bin["open"][:, 0] == coarse["open"]).all()
        assert (per_bin["close"][:, -1] == coarse["close"]).all()
        assert (per_bin["high"].max(axis=1) == coarse["high"]).all()
        assert (per_bin["low"].min(axis=1) == coarse["low"]).all()
        assert (per_bin["volume"].sum(axis=1) == coarse["volume"]).all()


def test_history_frame_is_raw_source_shape_and_normalizes_cleanly() -> None:
    m, _ = market()
    raw = m.history("AAA", "1m", T0 - DAY, T0)
    assert list(raw.columns) == ["ts", "open", "high", "low", "close", "volume", "flags"]
    assert raw["ts"].dtype == np.int64 and set(raw["flags"]) == {int(BarFlag.SIMULATED)}

    result = normalize_bars(
        raw, symbol="AAA", interval="1m", origin="synthetic", continuous=True, stats=StatsRegistry()
    )

    assert (result.rejected, result.repaired, result.gaps) == ({}, {}, [])
    assert (result.bars["flags"] == int(BarFlag.SIMULATED)).all()


def test_history_when_unknown_symbol_or_finer_interval_then_errors() -> None:
    m, _ = market()
    with pytest.raises(SymbolNotFound):
        m.history("NOPE", "1m", T0 - DAY, T0)
    five = SyntheticMarket(START, seed=1, interval="5m", clock=FakeClock(T0))
    with pytest.raises(IntervalError, match="not a multiple"):
        five.history("AAA", "1m", T0 - DAY, T0)


def test_path_when_started_then_opens_at_start_price() -> None:
    m, clock = market()
    clock.advance(60)
    first = m.next_bars()
    assert [row.symbol for row in first] == ["AAA", "BBB"]
    assert first[0].open == pytest.approx(100.0, rel=1e-3)
    assert first[1].open == pytest.approx(20.0, rel=1e-3)


def test_add_symbol_when_later_then_anchored_at_that_time_and_price() -> None:
    m, clock = market()
    m.switch("volatile", symbols=["BBB"])
    clock.advance(3 * 3600 + 15)
    m.next_bars()
    now = clock.time_ns()

    m.add_symbol("CCC", 42.0)
    m.add_symbol("BBB", 55.0)  # re-anchored at a newer price; keeps its scenario
    clock.advance(60)
    bars = {row.symbol: row for row in m.next_bars()}

    assert bars["CCC"].ts == now // MIN * MIN
    assert bars["CCC"].open == pytest.approx(42.0, rel=2e-3)
    assert bars["BBB"].open == pytest.approx(55.0, rel=5e-3)
    assert m.scenario_of("BBB") == "volatile" and m.scenario_of("CCC") == "calm"
    history = m.history("CCC", "1m", now - 3600 * NS, now)
    assert len(history) == 60 and history["close"].iloc[-1] == pytest.approx(42.0, rel=2e-2)


# -- live bars and ticks ---------------------------------------------------------------


def test_next_bars_when_live_then_same_as_history_and_no_repeats() -> None:
    m, clock = market()
    bars, _ = live(m, clock, 30)
    assert m.next_bars() == []
    frame = pd.DataFrame(bars)
    for symbol, rows in frame.groupby("symbol"):
        history = m.history(str(symbol), "1m", T0, clock.time_ns())
        assert rows["ts"].tolist() == history["ts"].tolist()
        assert rows[["open", "high", "low", "close", "volume"]].values.tolist() == (
            history[["open", "high", "low", "close", "volume"]].values.tolist()
        )
    assert set(frame["source"]) == {"synthetic"} and set(frame["flags"]) == {1}


def test_ticks_when_grouped_by_bar_then_aggregate_to_bars_exactly() -> None:
    m, clock = market(scenario="volatile")
    m.next_bars(T0 // MIN * MIN + MIN)  # skip the bar that was already open at the start
    m.ticks(T0 // MIN * MIN + MIN)
    clock.advance(60)
    bars, ticks = live(m, clock, 20)
    trades = [e for e in ticks if isinstance(e, TradeReported)]
    by_bar: dict[tuple[str, int], list[TradeReported]] = {}
    for trade in trades:
        by_bar.setdefault((trade.symbol, trade.ts_event // MIN * MIN), []).append(trade)

    assert len(bars) == len(by_bar) == 40
    for row in bars:
        group = by_bar[(row.symbol, row.ts)]
        prices = [t.price for t in group]
        assert (prices[0], prices[-1]) == (row.open, row.close)
        assert (max(prices), min(prices)) == (row.high, row.low)
        assert sum(t.size for t in group) == row.volume


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32), name=st.sampled_from(SCENARIO_NAMES))
def test_ticks_property_when_any_seed_and_scenario_then_bars_aggregate_them(
    seed: int, name: str
) -> None:
    m, clock = market(seed=seed, scenario=name)
    start = T0 // MIN * MIN + MIN
    m.next_bars(start)
    m.ticks(start)
    bars, ticks = live(m, clock, 4)
    trades: dict[tuple[str, int], list[TradeReported]] = {}
    for e in ticks:
        if isinstance(e, TradeReported):
            trades.setdefault((e.symbol, e.ts_event // MIN * MIN), []).append(e)
    for row in bars:
        prices = [t.price for t in trades[(row.symbol, row.ts)]]
        assert (prices[0], prices[-1], max(prices), min(prices)) == (
            row.open, row.close, row.high, row.low,
        )  # fmt: skip
        assert sum(t.size for t in trades[(row.symbol, row.ts)]) == row.volume
        assert row.low <= min(row.open, row.close) <= max(row.open, row.close) <= row.high


def test_ticks_when_emitted_then_quote_before_each_trade_at_the_touch() -> None:
    m, clock = market()
    _, ticks = live(m, clock, 10)
    assert [e.ts_event for e in ticks] == sorted(e.ts_event for e in ticks)
    pairs = list(zip(ticks[::2], ticks[1::2], strict=True))
    for quote, trade in pairs:
        assert isinstance(quote, QuoteUpdated) and isinstance(trade, TradeReported)
        assert quote.ts_event == trade.ts_event and quote.symbol == trade.symbol
        assert 0 < quote.bid < quote.ask
        assert trade.price == (quote.ask if trade.aggressor == "buy" else quote.bid)
        assert trade.size >= 1 and quote.simulated and trade.simulated
        assert quote.origin == trade.origin == "synthetic"


def test_ticks_when_called_again_then_nothing_twice() -> None:
    m, clock = market()
    clock.advance(150)
    first = m.ticks()
    assert m.ticks() == [] and first
    clock.advance(30)
    later = m.ticks()
    assert later and min(e.ts_event for e in later) > max(e.ts_event for e in first)


def test_quotes_and_fundamentals_when_asked_then_simulated() -> None:
    m, clock = market()
    clock.advance(125)
    quotes = m.quotes(["AAA", "NOPE"])
    assert [q.symbol for q in quotes] == ["AAA"]
    quote = quotes[0]
    assert isinstance(quote, Quote) and quote.simulated and quote.origin == "synthetic"
    assert 0 < quote.bid < quote.ask and quote.last in (quote.bid, quote.ask)
    assert quote.ts <= clock.time_ns()
    assert m.fundamentals("AAA").name == "AAA (simulated)"
    with pytest.raises(SymbolNotFound):
        m.fundamentals("NOPE")


def test_quotes_when_live_then_match_the_last_tick() -> None:
    m, clock = market()
    _, ticks = live(m, clock, 3)
    quote_event, trade = [e for e in ticks if e.symbol == "BBB"][-2:]
    assert isinstance(quote_event, QuoteUpdated) and isinstance(trade, TradeReported)

    (quote,) = m.quotes(["BBB"])

    assert (quote.ts, quote.bid, quote.ask, quote.last) == (
        trade.ts_event, quote_event.bid, quote_event.ask, trade.price,
    )  # fmt: skip
    assert quote.volume == quote_event.volume + trade.size


def test_ticks_when_stalled_then_only_recent_bars_replayed() -> None:
    m, clock = market()
    clock.advance(3600)
    ticks = m.ticks()
    oldest = min(e.ts_event for e in ticks)
    assert oldest >= (clock.time_ns() // MIN - TICK_CATCHUP_BARS + 1) * MIN


def test_history_when_older_than_max_history_then_clamped_at_a_day() -> None:
    m = SyntheticMarket(START, seed=1, clock=FakeClock(T0), max_history_days=2)
    bars = m.history("AAA", "1h", 0, T0)
    assert bars["ts"].iloc[0] == (T0 - 2 * DAY) // DAY * DAY


def test_market_implements_market_source() -> None:
    m, _ = market()
    source: MarketSource = m
    assert source.name == "synthetic"


# -- scenarios -------------------------------------------------------------------------


def test_scenario_table_when_loaded_then_covers_every_name() -> None:
    assert set(SCENARIOS) == set(SCENARIO_NAMES) == {
        "calm", "volatile", "trending_up", "trending_down", "flash_crash", "illiquid", "gap_open"
    }  # fmt: skip


def test_scenario_when_unknown_then_value_error_lists_known() -> None:
    m, _ = market()
    with pytest.raises(ValueError, match="unknown scenario 'panic'; use one of calm"):
        m.switch("panic")


def test_volatile_when_compared_to_calm_then_higher_realized_vol() -> None:
    calm, _ = market(scenario="calm")
    wild, _ = market(scenario="volatile")
    calm_vol = log_returns(calm.history("AAA", "1m", T0 - DAY, T0)).std()
    wild_vol = log_returns(wild.history("AAA", "1m", T0 - DAY, T0)).std()
    assert wild_vol > 3 * calm_vol


def test_illiquid_when_compared_to_calm_then_wider_spread_fewer_trades_smaller_sizes() -> None:
    stats = {}
    for name in ("calm", "illiquid"):
        m, clock = market(scenario=name)
        _, ticks = live(m, clock, 15)
        quotes = [e for e in ticks if isinstance(e, QuoteUpdated)]
        trades = [e for e in ticks if isinstance(e, TradeReported)]
        spread = np.mean([(q.ask - q.bid) / q.ask for q in quotes])
        stats[name] = (spread, len(trades), np.median([t.size for t in trades]))
    assert stats["illiquid"][0] > 10 * stats["calm"][0]
    assert stats["illiquid"][1] < stats["calm"][1] / 3
    assert stats["illiquid"][2] < stats["calm"][2] / 3


@pytest.mark.parametrize(("name", "sign"), [("trending_up", 1), ("trending_down", -1)])
def test_trending_when_switched_then_drift_has_the_sign(name: str, sign: int) -> None:
    symbols = {f"S{i}": 50.0 for i in range(5)}
    m, clock = market(symbols=symbols)
    effective = m.switch(name)
    clock.advance(86_400 + 120)
    for symbol in symbols:
        bars = m.history(symbol, "1m", effective, effective + DAY)
        move = np.log(bars["close"].iloc[-1] / bars["open"].iloc[0])
        assert sign * move > 0.02


def test_flash_crash_when_switched_then_drawdown_and_recovery() -> None:
    m, clock = market()
    clock.advance(30)
    effective = m.switch("flash_crash")
    assert effective == T0 + MIN and m.scenario == "flash_crash"
    clock.advance(3600)
    bars = m.history("AAA", "1m", T0, T0 + 60 * MIN)
    before = bars.loc[bars["ts"] < effective, "close"].iloc[-1]
    crash = bars[(bars["ts"] >= effective) & (bars["ts"] < effective + 10 * MIN)]
    after = bars.loc[bars["ts"] >= effective + 40 * MIN, "close"]
    assert crash["low"].min() <= before * 0.92
    assert abs(after.iloc[0] / before - 1) < 0.03


def test_gap_open_when_switched_then_jump_at_next_bar_only() -> None:
    m, clock = market()
    effective = m.switch("gap_open")
    clock.advance(3600)
    bars = m.history("AAA", "1m", T0 - 30 * MIN, T0 + 50 * MIN).set_index("ts")
    jumps = np.abs(bars["open"].to_numpy()[1:] / bars["close"].to_numpy()[:-1] - 1)
    at = list(bars.index).index(effective) - 1
    assert jumps[at] >= 0.045
    assert np.delete(jumps, at).max() < 0.005


@pytest.mark.parametrize("name", [n for n in SCENARIO_NAMES if n != "gap_open"])
def test_switch_when_continuous_scenario_then_no_jump_and_past_unchanged(name: str) -> None:
    m, clock = market()
    clock.advance(600)
    past = m.history("AAA", "1m", T0 - DAY, clock.time_ns())
    effective = m.switch(name)
    clock.advance(600)

    after = m.history("AAA", "1m", T0 - DAY, clock.time_ns())

    assert effective == T0 + 11 * MIN  # the bar after the one in progress
    pd.testing.assert_frame_equal(after.iloc[: len(past)], past)
    at = after.index[after["ts"] == effective][0]
    assert abs(after["open"][at] / after["close"][at - 1] - 1) < 0.01


def test_switch_when_unknown_symbol_then_nothing_changes() -> None:
    m, _ = market()
    with pytest.raises(SymbolNotFound):
        m.switch("volatile", symbols=["AAA", "NOPE"])
    assert m.scenario_of("AAA") == "calm"


def test_switch_when_symbols_given_then_only_those_change() -> None:
    (m, clock), (same, same_clock) = market(), market()
    m.switch("volatile", symbols=["BBB"])
    clock.advance(3600)
    same_clock.advance(3600)

    assert (m.scenario_of("AAA"), m.scenario_of("BBB"), m.scenario) == ("calm", "volatile", "calm")
    window = (T0 - DAY, T0 + 59 * MIN)
    pd.testing.assert_frame_equal(
        m.history("AAA", "1m", *window), same.history("AAA", "1m", *window)
    )
    assert not m.history("BBB", "1m", *window).equals(same.history("BBB", "1m", *window))
