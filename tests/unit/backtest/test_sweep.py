"""Parameter sweeps: the same rows on one or two worker processes, best first, the bars
sent once per worker, and a combination that cannot run reported in its row."""

from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
from test_api import bars, frame

from engine.backtest import sweep as sweep_module
from engine.backtest.runner import BacktestError
from engine.backtest.strategy import Strategy, StrategyParams
from engine.backtest.sweep import SweepRow, combinations, ranked, sweep
from engine.bus.events import BarClosed

GRID = {"fast": [5, 10], "slow": [20, 40]}


@pytest.fixture(scope="module")
def csv_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sweep") / "two.csv"
    frame(bars(symbol="AAA", seed=3) + bars(symbol="BBB", seed=4)).to_csv(path, index=False)
    return path


def run_sweep(csv_file: Path, grid: dict[str, Any], **kwargs: Any) -> list[SweepRow]:
    return sweep("ma_crossover", grid, symbols="AAA,BBB", data=csv_file, **kwargs)


def test_sweep_when_two_workers_then_same_rows_as_one(csv_file: Path) -> None:
    one = run_sweep(csv_file, GRID, workers=1)
    two = run_sweep(csv_file, GRID, workers=2)

    assert len(one) == 4 and all(r.error is None for r in one)
    assert two == one
    assert sorted(r.params["fast"] * 100 + r.params["slow"] for r in one) == [520, 540, 1020, 1040]


def test_sweep_when_metric_given_then_sorted_best_first(csv_file: Path) -> None:
    by_sharpe = run_sweep(csv_file, GRID, workers=1)
    by_drawdown = run_sweep(csv_file, GRID, workers=1, metric="max_drawdown")

    sharpes = [r.sharpe or 0.0 for r in by_sharpe]
    assert None not in [r.sharpe for r in by_sharpe]
    assert sharpes == sorted(sharpes, reverse=True)
    drawdowns = [r.max_drawdown or 0.0 for r in by_drawdown]
    assert drawdowns == sorted(drawdowns)  # shallowest first
    assert all(r.trades is not None and r.total_return is not None for r in by_sharpe)


def test_sweep_when_combination_invalid_then_reported_in_its_row_and_last(
    csv_file: Path,
) -> None:
    rows = run_sweep(csv_file, {"fast": [10, 30], "slow": [20]}, workers=2)

    good, bad = rows
    assert good.params == {"fast": 10, "slow": 20} and good.error is None
    assert bad.params == {"fast": 30, "slow": 20}
    assert bad.error is not None and "need 1 < fast < slow, not fast=30 slow=20" in bad.error
    assert bad.sharpe is None and bad.trades is None


class FlakyParams(StrategyParams, frozen=True, kw_only=True):
    fail: bool = False


class Flaky(Strategy[FlakyParams]):
    name = "test_sweep_flaky"
    params_type = FlakyParams

    def on_bar(self, bar: BarClosed, ctx: Any) -> None:
        if self.params.fail:
            raise RuntimeError("user code broke")
        ctx.buy(bar.symbol, 1)


def test_sweep_when_strategy_raises_for_a_combination_then_error_in_words(
    csv_file: Path,
) -> None:
    rows = sweep(Flaky, {"fail": [True, False]}, symbols="AAA", data=csv_file, workers=2)

    assert [r.params for r in rows] == [{"fail": False}, {"fail": True}]
    assert rows[0].error is None and rows[0].final_equity is not None
    assert rows[1].error is not None and "RuntimeError('user code broke')" in rows[1].error


class FakePool:
    """Runs tasks inline, recording what the pool was given."""

    instances: list[FakePool] = []

    def __init__(self, max_workers: int, initializer: Any, initargs: tuple[Any, ...]) -> None:
        self.max_workers, self.initargs, self.tasks = max_workers, initargs, []
        initializer(*initargs)
        FakePool.instances.append(self)

    def __enter__(self) -> FakePool:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def submit(self, fn: Any, *args: Any) -> Future[Any]:
        self.tasks.append(args)
        future: Future[Any] = Future()
        future.set_result(fn(*args))
        return future


def test_sweep_when_pooled_then_bars_go_once_through_the_initializer(
    csv_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sweep_module, "ProcessPoolExecutor", FakePool)
    monkeypatch.setattr(FakePool, "instances", [])

    run_sweep(csv_file, {"fast": [5, 10, 15], "slow": [20]}, workers=2)

    (pool,) = FakePool.instances
    assert pool.max_workers == 2
    assert len(pool.initargs[0].bars) == 500
    assert pool.tasks == [
        ({"fast": 5, "slow": 20},),
        ({"fast": 10, "slow": 20},),
        ({"fast": 15, "slow": 20},),
    ]


@pytest.mark.parametrize(
    ("grid", "kwargs", "message"),
    [
        (GRID, {"metric": "luck"}, "unknown metric 'luck'; use one of sharpe"),
        (GRID, {"workers": 0}, "workers must be a whole number of at least 1"),
        ({}, {}, "the grid is empty"),
        ({"fast": []}, {}, "grid parameter fast has no values"),
        (GRID, {"symbols": "ZZZ"}, "two.csv has no bars of ZZZ"),
        (GRID, {"commission": 2}, "commission must be at least 0 and below 1"),
    ],
)
def test_sweep_when_input_bad_then_backtest_error_before_running(
    csv_file: Path, grid: dict[str, Any], kwargs: dict[str, Any], message: str
) -> None:
    args = {"symbols": "AAA", "data": csv_file} | kwargs

    with pytest.raises(BacktestError, match=message):
        sweep("ma_crossover", grid, **args)


def test_combinations_when_grid_then_product_in_order_and_scalars_as_one_value() -> None:
    assert combinations({"fast": [5, 10], "slow": 30, "type": ("sma", "ema")}) == [
        {"fast": 5, "slow": 30, "type": "sma"},
        {"fast": 5, "slow": 30, "type": "ema"},
        {"fast": 10, "slow": 30, "type": "sma"},
        {"fast": 10, "slow": 30, "type": "ema"},
    ]


def test_ranked_when_values_missing_then_last_and_ties_keep_order() -> None:
    rows = [
        SweepRow(params={"i": 0}, sharpe=None),
        SweepRow(params={"i": 1}, sharpe=1.0),
        SweepRow(params={"i": 2}, error="bad"),
        SweepRow(params={"i": 3}, sharpe=2.0),
        SweepRow(params={"i": 4}, sharpe=1.0),
    ]

    assert [r.params["i"] for r in ranked(rows, "sharpe")] == [3, 1, 4, 0, 2]
