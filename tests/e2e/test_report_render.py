"""The HTML backtest report in Debian's chromium: opened from disk with every network
request refused, its plotly charts draw, and the page logs no error."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import ConsoleMessage, Page, Request, Route, expect

from engine.backtest.analysis import performance_of
from engine.backtest.broker import FillModel
from engine.backtest.report import write_report
from engine.backtest.runner import BacktestConfig, run
from engine.persistence.bars import BarRow

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

DAY = 86_400 * 10**9
T0 = 1_600_000_000 * 10**9


def walk(n: int, seed: int, symbol: str) -> list[BarRow]:
    rng, price, bars = random.Random(seed), 100.0, []
    for i in range(n):
        open_ = price
        price *= math.exp(rng.gauss(0, 0.015))
        high, low = max(open_, price) * 1.003, min(open_, price) * 0.997
        bars.append(BarRow(symbol, "1d", T0 + i * DAY, open_, high, low, price, 1e4, "replay", 0))
    return bars


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    bars = walk(500, 1, "AAA") + walk(500, 2, "BBB")
    config = BacktestConfig(
        strategy="ma_crossover",
        params={"fast": 10, "slow": 30},
        fills=FillModel(fraction=0.5),  # half the equity per symbol: both trade
    )
    result = run(config, bars)
    assert {(f.symbol, f.side) for f in result.fills} == {
        (s, side) for s in ("AAA", "BBB") for side in ("buy", "sell")
    }
    path = tmp_path_factory.mktemp("report") / "report.html"
    write_report(result, performance_of(result), path, fmt="html")
    return path


def test_report_when_opened_offline_then_charts_render_without_errors(
    page: Page, report: Path, screenshot: Callable[[str], Path]
) -> None:
    errors: list[str] = []
    outside: list[str] = []

    def refuse_network(route: Route, request: Request) -> None:
        if request.url.startswith(("file:", "data:", "blob:")):
            route.continue_()
        else:
            outside.append(request.url)
            route.abort()

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    page.route("**/*", refuse_network)
    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    page.goto(report.as_uri())

    for chart in ("#equity-chart", "#prices-chart"):
        expect(page.locator(f"{chart}.js-plotly-plot svg.main-svg").first).to_be_visible()
    # strategy, buy & hold and drawdown; each symbol's closes, entries and exits
    expect(page.locator("#equity-chart .scatterlayer .trace")).to_have_count(3)
    expect(page.locator("#prices-chart .scatterlayer .trace")).to_have_count(6)
    expect(page.locator("#prices-chart .scatterlayer .trace .point").first).to_be_visible()
    expect(page.locator("h1")).to_contain_text("ma_crossover")
    expect(page.locator("#metrics")).to_contain_text("Sharpe ratio")
    screenshot("backtest-report.png")
    assert errors == []
    assert outside == []
