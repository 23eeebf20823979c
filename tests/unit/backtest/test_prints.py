"""Backtests on a trade-print file through the venue's matching engine."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest

from engine.backtest.prints import backtest_prints, load_prints
from engine.backtest.runner import BacktestError

T0 = 1_700_000_000 * 10**9
SECOND = 10**9


def tape_csv(path: Path, n: int = 3000, seed: int = 2) -> Path:
    rng, price = random.Random(seed), 100.0
    lines = ["ts,symbol,price,size,aggressor"]
    for i in range(n):
        price *= math.exp(rng.gauss(0, 0.002))
        side = "buy" if rng.random() < 0.5 else "sell"
        lines.append(f"{T0 + i * 6 * SECOND},AAA,{price:.2f},{rng.randint(1, 50)},{side}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_backtest_prints_when_file_then_trades_in_the_book_and_measured(tmp_path: Path) -> None:
    path = tape_csv(tmp_path / "aaa_prints.csv")

    run = backtest_prints("ma_crossover", prints=path, params={"fast": 3, "slow": 8})

    assert run.result.bars > 100 and run.result.fills
    assert run.metrics.trades is not None and run.metrics.trades > 0
    again = backtest_prints("ma_crossover", prints=path, params={"fast": 3, "slow": 8})
    assert again.result.fills == run.result.fills  # deterministic


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("ts,price\n1,100\n", "needs the columns ts, price and size"),
        ("ts,price,size\n1,100,5\n", "no symbol column"),
        ("ts,symbol,price,size\n1,AAA,-3,5\n", "line 2: price -3"),
        ("ts,symbol,price,size\n1,AAA,100,5\n", "no prints of BBB"),
    ],
)
def test_load_prints_when_bad_then_refused_with_the_reason(
    tmp_path: Path, content: str, expected: str
) -> None:
    path = tmp_path / "prints.csv"
    path.write_text(content)
    symbols = ["AAA", "BBB"] if "BBB" in expected else None

    with pytest.raises(BacktestError, match=expected):
        load_prints(path, symbols=symbols)
