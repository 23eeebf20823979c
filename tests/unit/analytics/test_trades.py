"""Round trips (FIFO, exact Decimal) and trade statistics against hand-computed values."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.analytics import Fill, Trade, round_trips, trade_stats
from engine.orders.positions import Position

D = Decimal


def fill(side: str, qty: str, price: str, *, fee: str = "0", ts: int = 0, symbol: str = "AAPL"):
    return Fill(symbol=symbol, side=side, qty=D(qty), price=D(price), fee=D(fee), ts=ts)  # type: ignore[arg-type]


def summary(trade: Trade) -> tuple[str, Decimal, Decimal, Decimal, Decimal, Decimal]:
    return (trade.side, trade.qty, trade.entry_price, trade.exit_price, trade.fees, trade.pnl)


def replay(fills: list[Fill]) -> Position:
    position = Position(account="acc", symbol="AAPL")
    for f in sorted(fills, key=lambda f: f.ts):
        position = position.apply_fill(f.side, f.qty, f.price, fee=f.fee, ts=f.ts)
    return position


# -- matching -----------------------------------------------------------------------------


def test_round_trips_when_long_opened_and_closed_then_one_trade_net_of_fees() -> None:
    result = round_trips(
        [fill("buy", "10", "100", fee="1", ts=1), fill("sell", "10", "110", fee="1", ts=2)]
    )
    (trade,) = result.trades
    # gross (110 - 100) * 10 = 100; fees 1 + 1 = 2; pnl 98
    assert (trade.gross_pnl, trade.fees, trade.pnl) == (100, 2, 98)
    assert (trade.side, trade.qty, trade.entry_ts, trade.exit_ts) == ("long", 10, 1, 2)
    assert result.open_lots == ()


def test_round_trips_when_short_then_gain_when_price_falls() -> None:
    (loss,) = round_trips([fill("sell", "10", "50", ts=1), fill("buy", "10", "55", ts=2)]).trades
    # short: -(55 - 50) * 10 = -50
    assert (loss.side, loss.gross_pnl, loss.pnl) == ("short", -50, -50)
    (win,) = round_trips([fill("sell", "10", "50", ts=1), fill("buy", "10", "45", ts=2)]).trades
    assert win.pnl == 50


def test_round_trips_when_partial_closes_with_fees_then_entry_fee_split_pro_rata() -> None:
    fills = [
        fill("buy", "10", "100", fee="3", ts=1),
        fill("sell", "4", "105", fee="1", ts=2),
        fill("sell", "6", "95", fee="1.5", ts=3),
    ]
    first, second = round_trips(fills).trades
    # first: gross (105 - 100) * 4 = 20; fees 3 * 4/10 = 1.2 entry + 1 exit = 2.2; pnl 17.8
    assert summary(first) == ("long", 4, 100, 105, D("2.2"), D("17.8"))
    # second: gross (95 - 100) * 6 = -30; fees 3 - 1.2 = 1.8 entry + 1.5 exit = 3.3; -33.3
    assert summary(second) == ("long", 6, 100, 95, D("3.3"), D("-33.3"))
    # the live average-cost position realizes the same once flat: 20 - 30 - (3 + 1 + 1.5)
    assert first.pnl + second.pnl == replay(fills).realized_pnl == D("-15.5")


def test_round_trips_when_two_lots_then_oldest_closes_first() -> None:
    fills = [
        fill("buy", "5", "100", ts=1),
        fill("buy", "5", "110", ts=2),
        fill("sell", "7", "120", ts=3),
    ]
    result = round_trips(fills)
    # FIFO: 5 of the lot at 100 (gross 20 * 5 = 100), then 2 of the lot at 110 (10 * 2 = 20)
    assert [summary(t) for t in result.trades] == [
        ("long", 5, 100, 120, 0, 100),
        ("long", 2, 110, 120, 0, 20),
    ]
    ((lot_side, lot_qty, lot_price, lot_ts),) = [
        (lot.side, lot.qty, lot.price, lot.ts) for lot in result.open_lots
    ]
    assert (lot_side, lot_qty, lot_price, lot_ts) == ("long", 3, 110, 2)
    # average cost (avg 105) realizes (120 - 105) * 7 = 105, FIFO 120; at a mark of 100
    # both total 90: FIFO 120 + 3 * (100 - 110), average cost 105 + 3 * (100 - 105)
    position = replay(fills)
    assert position.realized_pnl == 105
    assert position.realized_pnl + position.unrealized(D(100)) == 120 + 3 * (100 - 110) == 90


def test_round_trips_when_flip_long_to_short_then_closes_and_opens_the_rest() -> None:
    fills = [
        fill("buy", "10", "100", fee="2", ts=1),
        fill("sell", "15", "120", fee="3", ts=2),
        fill("buy", "5", "110", fee="1", ts=3),
    ]
    long_trade, short_trade = round_trips(fills).trades
    # long 10: gross (120 - 100) * 10 = 200; fees 2 entry + 3 * 10/15 = 2 exit; pnl 196
    assert summary(long_trade) == ("long", 10, 100, 120, 4, 196)
    # short 5 opened by the flip at 120 carrying fee 3 - 2 = 1: gross -(110 - 120) * 5 = 50,
    # fees 1 + 1 = 2; pnl 48
    assert summary(short_trade) == ("short", 5, 120, 110, 2, 48)
    assert (short_trade.entry_ts, short_trade.exit_ts) == (2, 3)
    # average cost: 200 + 50 - (2 + 3 + 1) = 244 = 196 + 48
    assert replay(fills).realized_pnl == 244


def test_round_trips_when_fill_open_after_flip_then_lot_holds_its_fee_share() -> None:
    result = round_trips([fill("buy", "10", "100", ts=1), fill("sell", "15", "120", fee="3", ts=2)])
    (lot,) = result.open_lots
    # the 5 left of the 15 carry 3 - 3 * 10/15 = 1 of the fee
    assert (lot.side, lot.qty, lot.price, lot.fee) == ("short", 5, 120, 1)


def test_round_trips_when_fee_share_not_terminating_then_shares_sum_exactly() -> None:
    fills = [
        fill("buy", "1", "10", ts=1),
        fill("buy", "2", "10", ts=2),
        fill("sell", "3", "11", fee="1", ts=3),
    ]
    first, second = round_trips(fills).trades
    # 1 * 1/3 = 0.3333333333 (rounded to 1e-10); the last part takes the rest 0.6666666667
    assert (first.fees, second.fees) == (D("0.3333333333"), D("0.6666666667"))
    assert first.fees + second.fees == 1
    assert first.pnl + second.pnl == replay(fills).realized_pnl == 2


def test_round_trips_when_fills_out_of_order_then_sorted_by_time() -> None:
    (trade,) = round_trips([fill("sell", "1", "12", ts=2), fill("buy", "1", "10", ts=1)]).trades
    assert (trade.side, trade.pnl) == ("long", 2)


def test_round_trips_when_no_fills_then_empty() -> None:
    assert round_trips([]).trades == () and round_trips([]).open_lots == ()


def test_round_trips_when_two_symbols_then_value_error() -> None:
    with pytest.raises(ValueError, match="one symbol"):
        round_trips([fill("buy", "1", "10"), fill("sell", "1", "10", symbol="MSFT")])


def test_fill_when_qty_not_positive_then_value_error() -> None:
    with pytest.raises(ValueError, match="positive"):
        fill("buy", "0", "10")


# -- statistics ---------------------------------------------------------------------------


def trades_with(*pnls: str) -> list[Trade]:
    return [
        Trade(
            symbol="AAPL",
            side="long",
            qty=D(1),
            entry_ts=i,
            exit_ts=i + 1,
            entry_price=D(100),
            exit_price=D(100) + D(pnl),
            gross_pnl=D(pnl) + D("0.5"),
            fees=D("0.5"),
            pnl=D(pnl),
        )
        for i, pnl in enumerate(pnls)
    ]


def test_trade_stats_when_mixed_then_hand_computed() -> None:
    stats = trade_stats(trades_with("30", "-10", "20", "-5", "0"))
    # 5 trades, 2 wins (30, 20), 2 losses (-10, -5), one breakeven (neither)
    assert (stats.count, stats.wins, stats.losses) == (5, 2, 2)
    assert stats.win_rate == 0.4  # 2 / 5
    assert stats.net_pnl == 35  # 30 - 10 + 20 - 5 + 0
    assert stats.fees == D("2.5")  # 5 * 0.5
    assert (stats.gross_profit, stats.gross_loss) == (50, 15)  # 30 + 20, 10 + 5
    assert stats.profit_factor == pytest.approx(3.3333333333333335)  # 50 / 15
    assert (stats.best, stats.worst) == (30, -10)
    assert stats.average == 7  # 35 / 5
    assert (stats.average_win, stats.average_loss) == (25, D("-7.5"))  # 50 / 2, -15 / 2


def test_trade_stats_when_all_winners_then_profit_factor_none() -> None:
    stats = trade_stats(trades_with("10", "20"))
    assert (stats.win_rate, stats.profit_factor, stats.average_loss) == (1.0, None, None)
    assert (stats.average_win, stats.gross_loss) == (15, 0)  # (10 + 20) / 2


def test_trade_stats_when_all_losers_then_profit_factor_zero() -> None:
    stats = trade_stats(trades_with("-10", "-20"))
    assert (stats.win_rate, stats.profit_factor, stats.average_win) == (0.0, 0.0, None)
    assert (stats.average_loss, stats.worst, stats.best) == (-15, -20, -10)


def test_trade_stats_when_no_trades_then_none_not_nan() -> None:
    stats = trade_stats([])
    assert (stats.count, stats.net_pnl, stats.gross_profit, stats.gross_loss) == (0, 0, 0, 0)
    assert stats.win_rate is stats.profit_factor is stats.best is stats.worst is None
    assert stats.average is stats.average_win is stats.average_loss is None


def test_trade_stats_when_average_not_terminating_then_rounded_to_1e_10() -> None:
    # (1 + 1 + 0) / 3 = 0.666…
    assert trade_stats(trades_with("1", "1", "0")).average == D("0.6666666667")


# -- properties ---------------------------------------------------------------------------

prices = st.integers(1, 100_000).map(lambda ticks: ticks * D("0.01"))
quantities = st.integers(1, 10_000).map(lambda n: D(n) / 100)
fees = st.integers(-50, 500).map(lambda n: D(n) / 1000)
fill_lists = st.lists(
    st.tuples(st.sampled_from(["buy", "sell"]), quantities, prices, fees), max_size=40
)


@settings(max_examples=300, deadline=None)
@given(raw=fill_lists, mark=prices)
def test_round_trips_when_random_fills_then_agree_with_live_position(
    raw: list[tuple[str, Decimal, Decimal, Decimal]], mark: Decimal
) -> None:
    fills = [fill(side, str(q), str(p), fee=str(f), ts=i) for i, (side, q, p, f) in enumerate(raw)]
    result = round_trips(fills)
    position = replay(fills)
    closed = sum((t.pnl for t in result.trades), D(0))
    open_fees = sum((lot.fee for lot in result.open_lots), D(0))
    marked = sum((lot.sign * lot.qty * (mark - lot.price) for lot in result.open_lots), D(0))
    assert closed - open_fees + marked == position.realized_pnl + position.unrealized(mark)
    assert sum((lot.sign * lot.qty for lot in result.open_lots), D(0)) == position.qty
    assert len({lot.side for lot in result.open_lots}) <= 1
    all_fees = sum((f.fee for f in fills), D(0))
    assert sum((t.fees for t in result.trades), D(0)) + open_fees == all_fees
    if position.is_flat:
        assert closed == position.realized_pnl
    for t in result.trades:
        sign = 1 if t.side == "long" else -1
        assert t.gross_pnl == sign * (t.exit_price - t.entry_price) * t.qty
        assert t.pnl == t.gross_pnl - t.fees and t.entry_ts <= t.exit_ts
