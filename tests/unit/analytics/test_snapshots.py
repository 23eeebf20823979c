"""Performance snapshots: the P&L and exposure arithmetic over a real ledger (SQLite in
tmp), missing marks, storage round trips, and the performance of a snapshot series."""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from ledger_fills import T0, trade
from sqlalchemy import Engine, insert

from app.database import make_engine, upgrade
from engine.analytics.curve import YEAR_SECONDS
from engine.analytics.snapshots import (
    account_performance,
    account_report,
    load_snapshots,
    performance_figures,
    save_snapshots,
    take_snapshots,
)
from engine.bus.commands.analytics import GetPerformance, SnapshotRow
from engine.orders.ledger import OrderLedger
from engine.persistence.models import Position as PositionRow

D = Decimal
S = 1_000_000_000
FIVE_MIN = 300 * S


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'qsuite.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


def fixed(marks: dict[str, str]) -> tuple[list[str], object]:
    asked: list[str] = []

    def mark(symbol: str) -> Decimal | None:
        asked.append(symbol)
        return D(marks[symbol]) if symbol in marks else None

    return asked, mark


def row(ts: int, total: str, account: str = "acme") -> SnapshotRow:
    return SnapshotRow(
        ts=ts,
        account=account,
        realized_pnl=D(total),
        unrealized_pnl=D(0),
        total_pnl=D(total),
        gross_exposure=D(0),
        net_exposure=D(0),
        positions=0,
        fills=0,
        marks_missing=0,
    )


def figures(s: SnapshotRow) -> tuple[object, ...]:
    return (
        s.account,
        s.realized_pnl,
        s.unrealized_pnl,
        s.total_pnl,
        s.gross_exposure,
        s.net_exposure,
        s.positions,
        s.fills,
        s.marks_missing,
    )


# --- taking snapshots ----------------------------------------------------------------


def test_take_snapshots_when_marked_then_exact_pnl_on_the_cost_basis_and_exposure(
    db: Engine,
) -> None:
    ledger = OrderLedger(db, fee_of=lambda f: D("0.5"))
    trade(ledger, "acme", "AAPL", "buy", "10", "100")
    trade(ledger, "acme", "AAPL", "buy", "5", "101")
    trade(ledger, "acme", "AAPL", "sell", "3", "102")  # realizes 5 on an avg of 100.333…
    trade(ledger, "acme", "MSFT", "sell", "7", "50.25")  # short
    asked, marks = fixed({"AAPL": "103.5", "MSFT": "50"})

    (snapshot,) = take_snapshots(db, marks, T0 + S)  # type: ignore[arg-type]

    assert snapshot.ts == T0 + S
    # realized: 5 - 4 fees of 0.5; unrealized: AAPL 12 * 103.5 - cost 1204 (not the
    # rounded average, which gives 38.0000000004) + MSFT -7 * 50 + 351.75
    assert figures(snapshot) == (
        "acme",
        D("3"),
        D("39.75"),
        D("42.75"),
        D("1592"),  # 12 * 103.5 + 7 * 50
        D("892"),  # 12 * 103.5 - 7 * 50
        2,
        4,
        0,
    )
    assert sorted(asked) == ["AAPL", "MSFT"]


def test_take_snapshots_when_a_mark_is_missing_then_unrealized_zero_for_it_and_counted(
    db: Engine,
) -> None:
    ledger = OrderLedger(db, fee_of=lambda f: D("0.5"))
    trade(ledger, "acme", "AAPL", "buy", "10", "100")
    trade(ledger, "beta", "AAPL", "buy", "1", "104")
    trade(ledger, "beta", "TSLA", "buy", "2", "250")
    trade(ledger, "gamma", "MSFT", "buy", "4", "50")
    trade(ledger, "gamma", "MSFT", "sell", "4", "51")  # flat: realized only
    asked, marks = fixed({"AAPL": "103.5"})

    snapshots = take_snapshots(db, marks, T0)  # type: ignore[arg-type]

    assert [figures(s) for s in snapshots] == [
        ("acme", D("-0.5"), D("35"), D("34.5"), D("1035"), D("1035"), 1, 1, 0),
        # TSLA has no mark: no unrealized P&L, no exposure, counted
        ("beta", D("-1"), D("-0.5"), D("-1.5"), D("103.5"), D("103.5"), 2, 2, 1),
        ("gamma", D("3"), D("0"), D("3"), D("0"), D("0"), 0, 2, 0),
    ]
    assert sorted(asked) == ["AAPL", "TSLA"]  # once per open symbol, never for flat ones


def test_take_snapshots_when_products_are_finer_than_the_ledger_then_rounded_once(
    db: Engine,
) -> None:
    trade(OrderLedger(db), "acme", "XYZ", "buy", "3", "1")
    _asked, marks = fixed({"XYZ": "1.00000000005"})

    (snapshot,) = take_snapshots(db, marks, T0)  # type: ignore[arg-type]

    # 3 * 1.00000000005 - 3 = 1.5e-10, half even to 2e-10
    assert snapshot.unrealized_pnl == snapshot.total_pnl == D("2E-10")
    assert snapshot.gross_exposure == D("3.0000000002")


def test_take_snapshots_when_position_row_predates_the_cost_basis_then_uses_its_average(
    db: Engine,
) -> None:
    with db.begin() as conn:
        conn.execute(
            insert(PositionRow).values(
                account="old", symbol="AAPL", qty=D(-4), avg_price=D("99.5"),
                realized_pnl=D("12"), cost_basis=D(0), ts_updated=T0,
            )
        )  # fmt: skip
    _asked, marks = fixed({"AAPL": "100"})

    (snapshot,) = take_snapshots(db, marks, T0)  # type: ignore[arg-type]

    assert figures(snapshot) == ("old", D(12), D(-2), D(10), D(400), D(-400), 1, 0, 0)


def test_take_snapshots_when_no_positions_then_none(db: Engine) -> None:
    assert take_snapshots(db, lambda symbol: None, T0) == []


# --- storing ---------------------------------------------------------------------------


def test_save_snapshots_when_saved_again_then_written_once_and_loaded_oldest_first(
    db: Engine,
) -> None:
    series = [row(T0 + i * FIVE_MIN, str(i * 10)) for i in range(5)] + [row(T0, "7", "beta")]

    assert save_snapshots(db, series) == 6
    assert save_snapshots(db, series[:2]) == 0  # one row per (account, ts)

    assert load_snapshots(db, "acme") == series[:5]
    assert load_snapshots(db, "acme", since_ns=T0 + 2 * FIVE_MIN) == series[2:5]
    assert load_snapshots(db, "acme", limit=2) == series[3:5]  # the newest, oldest first
    assert load_snapshots(db, "nobody") == []
    assert save_snapshots(db, []) == 0


def test_load_snapshots_when_stored_then_decimals_without_the_column_scale(db: Engine) -> None:
    save_snapshots(db, [row(T0, "1.5")])

    (loaded,) = load_snapshots(db, "acme")

    assert str(loaded.total_pnl) == "1.5" and str(loaded.net_exposure) == "0"


# --- performance -----------------------------------------------------------------------

SERIES = [row(T0 + i * FIVE_MIN, total) for i, total in enumerate(["0", "1000", "-500", "2000"])]


def test_account_performance_when_hand_made_series_then_curve_on_capital_plus_total_pnl() -> None:
    performance = account_performance(SERIES, capital=D(100_000))

    assert performance is not None
    assert performance.equity == (100_000.0, 101_000.0, 99_500.0, 102_000.0)
    assert performance.periods_per_year == YEAR_SECONDS / 300  # calendar time: 105,192
    assert performance.total_return == pytest.approx(0.02, rel=1e-12)
    returns = [0.01, 99_500 / 101_000 - 1, 102_000 / 99_500 - 1]
    expected_sharpe = statistics.mean(returns) / statistics.stdev(returns) * (105_192**0.5)
    assert performance.sharpe == pytest.approx(expected_sharpe, rel=1e-9)
    assert performance.max_drawdown == pytest.approx(1 - 99_500 / 101_000, rel=1e-12)
    assert (
        performance.max_drawdown_start_ts,
        performance.max_drawdown_trough_ts,
        performance.max_drawdown_end_ts,
        performance.max_drawdown_recovered,
        performance.max_drawdown_duration_s,
    ) == (T0 + FIVE_MIN, T0 + 2 * FIVE_MIN, T0 + 3 * FIVE_MIN, True, 600.0)

    shown = performance_figures(performance, SERIES)
    assert (shown.points, shown.pnl, shown.final_equity) == (4, D(2000), 102_000.0)


def test_account_performance_when_fewer_than_two_snapshots_then_none() -> None:
    assert account_performance([], capital=D(1)) is None
    assert account_performance(SERIES[:1], capital=D(1)) is None


@pytest.mark.parametrize(
    ("series", "capital", "why"),
    [
        (SERIES, D(0), "capital must be positive"),
        (SERIES, D("NaN"), "capital must be positive"),
        ([SERIES[0], row(T0 + 1, "5", "beta")], D(1000), "one account"),
        ([SERIES[1], SERIES[0]], D(1000), "strictly increasing"),
        ([row(T0, "-1000"), row(T0 + 1, "0")], D(1000), "must start positive"),
    ],
)
def test_account_performance_when_input_unusable_then_value_error(
    series: list[SnapshotRow], capital: Decimal, why: str
) -> None:
    with pytest.raises(ValueError, match=why):
        account_performance(series, capital=capital)


def test_account_report_when_more_than_limit_then_newest_and_truncated(db: Engine) -> None:
    save_snapshots(db, SERIES)

    report = account_report(db, GetPerformance(account="acme", capital=D(100_000), limit=3))
    everything = account_report(db, GetPerformance(account="acme", capital=D(100_000)))
    alone = account_report(db, GetPerformance(account="acme", since_ns=T0 + 3 * FIVE_MIN))

    assert (report.snapshots, report.truncated) == (SERIES[1:], True)
    assert report.performance is not None and report.performance.pnl == D(1000)
    assert (everything.snapshots, everything.truncated) == (SERIES, False)
    assert everything.performance is not None and everything.performance.points == 4
    assert (alone.snapshots, alone.performance) == (SERIES[3:], None)
