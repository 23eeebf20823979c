"""The notebook API: bars from a CSV file, a DataFrame or the database give the same run
as the runner on those bars; every unusable input is a BacktestError that says why."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine

from app import database
from app.settings import load_settings
from engine.backtest.api import BacktestRun, KeyMetrics, backtest, to_ns
from engine.backtest.runner import BacktestConfig, BacktestError, run
from engine.backtest.strategy import Strategy, StrategyParams
from engine.bus.events import BarClosed
from engine.persistence.bars import BarRow, upsert_bars

DAY = 86_400 * 10**9
T0 = 1_577_836_800 * 10**9  # 2020-01-01 00:00 UTC: daily bars sit at midnight
PARAMS = {"fast": 5, "slow": 20}


def bars(n: int = 250, symbol: str = "AAA", seed: int = 1) -> list[BarRow]:
    rng, price, out = random.Random(seed), 100.0, []
    for i in range(n):
        open_ = price
        price *= math.exp(rng.gauss(0, 0.015))
        high, low = max(open_, price) * 1.003, min(open_, price) * 0.997
        out.append(BarRow(symbol, "1d", T0 + i * DAY, open_, high, low, price, 1e4, "replay", 0))
    return out


def frame(rows: list[BarRow], *, with_symbol: bool = True) -> pd.DataFrame:
    data = pd.DataFrame(rows, columns=list(BarRow._fields))
    columns = ["ts", "open", "high", "low", "close", "volume"]
    return data[(["symbol"] if with_symbol else []) + columns]


@pytest.fixture
def two() -> list[BarRow]:
    return bars(symbol="AAA", seed=1) + bars(symbol="BBB", seed=2)


@pytest.fixture
def csv_file(tmp_path: Path, two: list[BarRow]) -> Path:
    path = tmp_path / "two.csv"
    frame(two).to_csv(path, index=False)
    return path


@pytest.fixture
def db(tmp_path: Path, two: list[BarRow]) -> Iterator[Engine]:
    settings = load_settings(environ={"QSUITE__APP__DATA_DIR": str(tmp_path)})
    engine = database.open_database(settings)
    upsert_bars(engine, two)
    yield engine
    engine.dispose()


def direct(rows: list[BarRow], **config: Any) -> Any:
    return run(BacktestConfig(strategy="ma_crossover", params=PARAMS, **config), rows)


def test_backtest_when_csv_file_then_same_run_as_the_runner_on_its_bars(
    csv_file: Path, two: list[BarRow]
) -> None:
    result = backtest("ma_crossover", symbols="AAA,BBB", data=csv_file, params=PARAMS)

    expected = direct(two)
    assert result.result.symbols == ["AAA", "BBB"]
    assert result.result.fills == expected.fills and expected.fills
    assert result.result.equity == expected.equity
    assert result.performance.bars == len(expected.equity_ts)
    assert isinstance(result.metrics, KeyMetrics)
    assert result.metrics.final_equity == pytest.approx(float(expected.equity[-1]))


def test_backtest_when_symbols_select_then_only_those_run(csv_file: Path) -> None:
    result = backtest("ma_crossover", symbols=["BBB"], data=csv_file, params=PARAMS)

    assert result.result.symbols == ["BBB"]
    assert result.result.fills == direct(bars(symbol="BBB", seed=2)).fills


def test_backtest_when_file_has_no_symbol_column_then_named_by_the_one_symbol(
    tmp_path: Path,
) -> None:
    path = tmp_path / "prices.csv"
    frame(bars(symbol="X"), with_symbol=False).to_csv(path, index=False)

    result = backtest("ma_crossover", symbols="MSFT", data=path, params=PARAMS)

    assert result.result.symbols == ["MSFT"]
    assert result.result.fills == direct(bars(symbol="MSFT")).fills


def test_backtest_when_dataframe_then_same_as_the_file(csv_file: Path, two: list[BarRow]) -> None:
    from_file = backtest("ma_crossover", symbols="AAA,BBB", data=csv_file, params=PARAMS)

    from_frame = backtest("ma_crossover", symbols=None, data=frame(two), params=PARAMS)

    assert from_frame.result.fills == from_file.result.fills
    assert from_frame.result.equity == from_file.result.equity


def test_backtest_when_dataframe_has_datetime_index_and_capitals_then_read() -> None:
    rows = bars()
    data = frame(rows, with_symbol=False).rename(columns=str.capitalize)
    data.index = pd.to_datetime(data.pop("Ts"), utc=True)
    data.index.name = "Date"

    result = backtest("ma_crossover", symbols="AAA", data=data, params=PARAMS)

    assert result.result.fills == direct(rows).fills


def test_backtest_when_from_db_then_same_as_the_file(csv_file: Path, db: Engine) -> None:
    from_file = backtest("ma_crossover", symbols="AAA,BBB", data=csv_file, params=PARAMS)

    from_db = backtest("ma_crossover", symbols="AAA,BBB", from_db=db, params=PARAMS)

    assert from_db.result.fills == from_file.result.fills
    assert from_db.result.equity == from_file.result.equity


def test_backtest_when_start_and_end_then_only_bars_in_between(csv_file: Path, db: Engine) -> None:
    window = {"start": "2020-03-01", "end": datetime(2020, 6, 1, tzinfo=UTC)}

    from_file = backtest("ma_crossover", symbols="AAA", data=csv_file, params=PARAMS, **window)
    from_db = backtest("ma_crossover", symbols="AAA", from_db=db, params=PARAMS, **window)

    lo, hi = T0 + 60 * DAY, T0 + 152 * DAY  # 2020-03-01, 2020-06-01 (a leap year)
    expected = [b for b in bars() if lo <= b.ts < hi]
    assert from_file.result.bars == from_db.result.bars == len(expected) == 92
    assert from_file.result.equity == from_db.result.equity == direct(expected).equity


def test_backtest_when_repeated_then_identical(csv_file: Path) -> None:
    def once() -> BacktestRun:
        return backtest(
            "ma_crossover",
            symbols="AAA,BBB",
            data=csv_file,
            params=PARAMS,
            commission=0.001,
            slippage_bps=5,
        )

    first, second = once(), once()

    assert first.result.fills == second.result.fills
    assert first.result.equity == second.result.equity
    assert first.metrics == second.metrics


def test_backtest_when_fill_settings_given_then_applied(csv_file: Path) -> None:
    result = backtest(
        "ma_crossover",
        symbols="AAA",
        data=csv_file,
        params=PARAMS,
        sizing="fixed",
        qty=3,
        commission_per_share=0.5,
    )

    assert result.result.fills
    assert {f.qty for f in result.result.fills} == {3}
    assert all(f.commission == 3 * 0.5 for f in result.result.fills)


def test_report_when_asked_then_writes_the_file(csv_file: Path, tmp_path: Path) -> None:
    result = backtest("ma_crossover", symbols="AAA", data=csv_file, params=PARAMS)

    written = result.report(tmp_path / "out" / "report.json", fmt="json")

    assert written == [tmp_path / "out" / "report.json"]
    assert b'"total_return"' in written[0].read_bytes()


class QuietParams(StrategyParams, frozen=True, kw_only=True):
    boom: bool = False


class Quiet(Strategy[QuietParams]):
    """Buys once; raises on the tenth bar when ``boom``."""

    name = "test_api_quiet"
    params_type = QuietParams

    def on_bar(self, bar: BarClosed, ctx: Any) -> None:
        if bar.ts == T0:
            ctx.buy(bar.symbol, 1)
        if self.params.boom and bar.ts == T0 + 9 * DAY:
            raise ZeroDivisionError("the strategy's own bug")


def test_backtest_when_strategy_class_given_then_registered_and_run(csv_file: Path) -> None:
    result = backtest(Quiet, symbols="AAA", data=csv_file)

    assert result.result.config.strategy == "test_api_quiet"
    assert len(result.result.fills) == 1


def test_backtest_when_strategy_raises_then_backtest_error_chained(csv_file: Path) -> None:
    with pytest.raises(BacktestError, match="test_api_quiet failed: ZeroDivisionError") as info:
        backtest(Quiet, symbols="AAA", data=csv_file, params={"boom": True})

    assert isinstance(info.value.__cause__, ZeroDivisionError)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"data": "missing.csv"}, "no data file .*missing.csv"),
        ({"symbols": "AAA,ZZZ"}, "two.csv has no bars of ZZZ; it holds AAA, BBB"),
        ({"symbols": "ZZZ"}, "two.csv has no bars of ZZZ; it holds AAA, BBB"),
        (
            {"start": "2030-01-01"},
            "no 1d bars in .*two.csv from 2030-01-01 on; it holds 2020-01-01",
        ),
        ({"start": "2020-05-01", "end": "2020-05-01"}, "start 2020-05-01 is not before end"),
        ({"start": "May 1st"}, "start 'May 1st' is not a date like 2024-01-31"),
        ({"cash": -5}, "cash must be positive, not -5"),
        ({"cash": "lots"}, "cash must be a number, not 'lots'"),
        ({"commission": 1.0}, "commission must be at least 0 and below 1, not 1.0"),
        ({"fraction": 0}, "fraction must be above 0"),
        ({"sizing": "half"}, "sizing must be one of cash_fraction, fixed, all_cash"),
        ({"interval": "7m"}, "unknown interval '7m'"),
        ({"params": {"fast": 30, "slow": 10}}, "need 1 < fast < slow"),
        ({"params": {"speed": 3}}, "speed"),
        ({"strategy": "nope"}, "unknown strategy 'nope'"),
        ({"strategy": "missing.py:Thing"}, "no strategy file missing.py"),
        ({"symbols": ""}, "no symbols given"),
    ],
)
def test_backtest_when_input_bad_then_backtest_error(
    csv_file: Path, kwargs: dict[str, Any], message: str
) -> None:
    args: dict[str, Any] = {"symbols": "AAA", "data": csv_file, "params": PARAMS} | kwargs
    if isinstance(args["data"], str):
        args["data"] = csv_file.parent / args["data"]
    strategy = args.pop("strategy", "ma_crossover")

    with pytest.raises(BacktestError, match=message.replace("(", r"\(")):
        backtest(strategy, **args)


def test_backtest_when_dataframe_lacks_symbols_or_columns_then_backtest_error(
    two: list[BarRow],
) -> None:
    with pytest.raises(BacktestError, match="no symbol column, so it holds one symbol, not 2"):
        backtest("ma_crossover", symbols="AAA,BBB", data=frame(two, with_symbol=False))
    with pytest.raises(BacktestError, match="the DataFrame has no bars of CCC; it holds AAA, BBB"):
        backtest("ma_crossover", symbols="CCC", data=frame(two))
    with pytest.raises(BacktestError, match="close"):
        backtest("ma_crossover", symbols="AAA", data=frame(two).drop(columns="close"))


def test_backtest_when_from_db_symbol_unknown_or_range_empty_then_backtest_error(
    db: Engine,
) -> None:
    with pytest.raises(BacktestError, match="the database has no 1d bars of ZZZ; store them"):
        backtest("ma_crossover", symbols="ZZZ", from_db=db)
    with pytest.raises(
        BacktestError,
        match="no 1d bars of AAA in the database from 2031-01-01 on; it holds 2020-01-01 → ",
    ):
        backtest("ma_crossover", symbols="AAA", from_db=db, start=date(2031, 1, 1))
    with pytest.raises(BacktestError, match=r"either as data .* or from_db"):
        backtest("ma_crossover", symbols="AAA")


def test_to_ns_when_forms_differ_then_same_instant() -> None:
    midnight = T0
    assert to_ns("2020-01-01") == to_ns(date(2020, 1, 1)) == to_ns(datetime(2020, 1, 1))
    assert to_ns("2020-01-01T00:00:00+00:00") == to_ns(midnight) == midnight
    assert to_ns("2020-01-01T01:00+01:00") == midnight
    assert to_ns(None) is None
