"""A backtest's performance (the shared analytics fed from the run) and its reports:
one self-contained, escaped HTML page, CSV files with their row counts, a JSON document
that round-trips."""

from __future__ import annotations

import csv
import re
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
from test_backtest import DAY, T0, walk

from engine.analytics import BenchmarkComparison, Performance, TradeStats
from engine.backtest.analysis import performance_of, trades_of
from engine.backtest.broker import FillModel
from engine.backtest.registry import register
from engine.backtest.report import (
    CSV_FILES,
    MAX_CHART_POINTS,
    MAX_TRADES_SHOWN,
    BacktestReport,
    _thin,
    document,
    duration,
    esc,
    metrics,
    pct,
    ratio,
    render_html,
    write_report,
)
from engine.backtest.runner import BacktestConfig, BacktestResult, run
from engine.backtest.strategy import Strategy, StrategyParams
from engine.bus.events import BarClosed
from engine.risk.profile import RiskProfile

EVIL = "<script>alert('x')</script>"


class LabelledParams(StrategyParams, frozen=True, kw_only=True):
    label: str = ""
    """Free text the report shows (the escaping test puts markup in it)."""


@register
class InAndOut(Strategy[LabelledParams]):
    """Buys 10 on every 10th bar of each symbol and sells them five bars later; tries an
    order of 1,000 two bars after that (which a risk limit can deny)."""

    name = "test_report_in_and_out"
    params_type = LabelledParams

    def on_bar(self, bar: BarClosed, ctx: Any) -> None:
        day = (bar.ts - T0) // DAY
        if day % 10 == 0:
            ctx.buy(bar.symbol, 10)
        elif day % 10 == 5:
            ctx.close(bar.symbol)
        elif day % 10 == 7 and ctx.position(bar.symbol) == 0:
            ctx.buy(bar.symbol, 1000)


def backtest(*symbols: str, n: int = 120, **config: Any) -> BacktestResult:
    bars = [b for i, s in enumerate(symbols) for b in walk(n, seed=i + 1, symbol=s)]
    return run(BacktestConfig(strategy="test_report_in_and_out", **config), bars)


@pytest.fixture(scope="module")
def result() -> BacktestResult:
    return backtest(
        "AAA",
        "BBB",
        params={"label": EVIL},
        fills=FillModel(sizing="fixed", commission=0.001),
        risk=RiskProfile(account="backtest", max_order_qty=Decimal(100)),
    )


@pytest.fixture(scope="module")
def performance(result: BacktestResult) -> Performance:
    return performance_of(result)


class Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.scripts: list[dict[str, str | None]] = []
        self.links: list[dict[str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if found.get("id"):
            self.ids.add(str(found["id"]))
        if tag == "script":
            self.scripts.append(found)
        if tag in ("link", "img", "iframe"):
            self.links.append(found)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(text: str) -> Page:
    page = Page()
    page.feed(text)
    page.close()
    return page


# --- performance_of / trades_of -----------------------------------------------------------


def test_performance_of_when_run_then_curve_fills_and_marks_are_the_runs(
    result: BacktestResult, performance: Performance
) -> None:
    assert performance.ts == tuple(result.equity_ts)
    assert performance.equity == tuple(float(e) for e in result.equity)
    assert performance.periods_per_year == 252.0  # the run's 1d interval
    assert performance.trade_stats is not None and performance.trade_stats.count > 0
    assert performance.realized_pnl is not None and performance.unrealized_pnl is not None
    # P&L from the fills, with commissions as fees and the last closes as marks, is what
    # the broker's equity says, exactly
    pnl = performance.realized_pnl + performance.unrealized_pnl
    assert pnl == result.equity[-1] - result.config.cash
    assert (
        performance.trade_stats.fees == sum((t.fees for t in performance.trades), Decimal(0))
        and performance.trade_stats.fees > 0
    )


def test_performance_of_when_two_symbols_then_benchmark_is_the_equal_weight_basket(
    result: BacktestResult, performance: Performance
) -> None:
    growth = [result.closes[s][-1] / result.closes[s][0] for s in ("AAA", "BBB")]

    assert performance.benchmark is not None
    assert performance.benchmark.total_return == pytest.approx(sum(growth) / 2 - 1, rel=1e-12)
    assert performance.benchmark.equity[0] == float(result.config.cash)


def test_performance_of_when_one_symbol_then_benchmark_is_its_buy_and_hold() -> None:
    one = backtest("AAA", n=60)

    bench = performance_of(one).benchmark

    assert bench is not None
    assert bench.total_return == pytest.approx(one.closes["AAA"][-1] / one.closes["AAA"][0] - 1)


def test_trades_of_when_run_then_round_trips_of_every_symbol(
    result: BacktestResult, performance: Performance
) -> None:
    trips = trades_of(result)

    assert set(trips) == {"AAA", "BBB"}
    closed = sorted((t for r in trips.values() for t in r.trades), key=lambda t: t.exit_ts)
    assert sorted(closed, key=lambda t: (t.exit_ts, t.symbol)) == sorted(
        performance.trades, key=lambda t: (t.exit_ts, t.symbol)
    )
    assert all(t.symbol == s for s, r in trips.items() for t in r.trades)


# --- metrics and formatting ---------------------------------------------------------------


def test_metrics_when_performance_then_every_scalar_field_is_reported(
    performance: Performance,
) -> None:
    series = {"ts", "equity", "drawdown", "monthly_returns", "trades"}
    expected = [f.name for f in msgspec.structs.fields(Performance) if f.name not in series]
    expected.remove("trade_stats")
    expected.remove("benchmark")
    expected += [f"trade_stats.{f.name}" for f in msgspec.structs.fields(TradeStats)]
    expected += [f"benchmark.{f.name}" for f in msgspec.structs.fields(BenchmarkComparison)]
    expected.remove("benchmark.equity")  # a series: the equity chart

    assert sorted(m.key for m in metrics(performance)) == sorted(expected)


@pytest.mark.parametrize(
    ("formatted", "expected"),
    [
        (pct(0.123456), "12.35%"),
        (pct(-0.5), "-50.00%"),
        (pct(None), "—"),
        (ratio(1.23456), "1.23"),
        (duration(0), "0s"),
        (duration(45), "45s"),
        (duration(5 * 3600 + 30 * 60 + 7), "5h 30m"),
        (duration(3 * 86400 + 4 * 3600), "3d 4h"),
        (duration(368 * 86400), "368d"),
    ],
)
def test_format_when_value_then_human_readable(formatted: str, expected: str) -> None:
    assert formatted == expected


def test_esc_when_markup_then_escaped() -> None:
    assert esc(EVIL) == "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;"
    assert esc('a" onload="x') == "a&quot; onload=&quot;x"


def test_thin_when_series_long_then_bounded_and_keeps_the_extremes() -> None:
    values = [float(i % 97) for i in range(50_000)]
    values[12_345], values[40_000] = -5.0, 500.0

    keep = _thin(np.asarray(values))

    assert len(keep) <= MAX_CHART_POINTS
    assert {0, 12_345, 40_000, 49_999} <= set(keep.tolist())


# --- html ---------------------------------------------------------------------------------


def test_html_when_written_then_one_self_contained_page_with_metrics_and_charts(
    result: BacktestResult, performance: Performance, tmp_path: Path
) -> None:
    path = tmp_path / "out" / "report.html"

    written = write_report(result, performance, path, fmt="html")

    assert written == [path] and sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == [
        "report.html"
    ]
    text = path.read_text(encoding="utf-8")
    page = parse(text)
    assert page.scripts and all(s.get("src") is None for s in page.scripts)
    assert page.links == []
    assert not re.search(r"<script[^>]*\bsrc=", text)
    assert {"run", "metrics", "equity-chart", "prices-chart", "denials"} <= page.ids
    shown = "".join(page.text)
    assert "test_report_in_and_out" in shown
    for metric in metrics(performance):
        assert metric.label in shown and metric.display in shown
    assert f"Risk denials: {len(result.denied)}." in shown and result.denied
    assert "Buy & hold" in text and "Drawdown %" in text
    assert "AAA" in shown and "BBB" in shown


def test_html_when_text_has_markup_then_escaped(
    result: BacktestResult, performance: Performance
) -> None:
    text = render_html(result, performance)

    assert "<script>alert(" not in text
    assert "label=&quot;&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&quot;" in text


def test_html_when_many_trades_then_the_first_ones_and_a_note(
    result: BacktestResult, performance: Performance
) -> None:
    many = msgspec.structs.replace(performance, trades=performance.trades * 200)

    text = render_html(result, many)

    rows = re.findall(r"<tr><td class=l>(\d+)</td>", text)
    assert rows[-1] == str(MAX_TRADES_SHOWN)
    assert f"The first {MAX_TRADES_SHOWN} of {len(many.trades):,} trades" in text


def test_html_when_same_run_then_same_bytes(
    result: BacktestResult, performance: Performance
) -> None:
    assert render_html(result, performance) == render_html(result, performance_of(result))


# --- csv and json -------------------------------------------------------------------------


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def test_csv_when_written_then_every_file_with_its_header_and_rows(
    result: BacktestResult, performance: Performance, tmp_path: Path
) -> None:
    written = write_report(result, performance, tmp_path / "csv", fmt="csv")

    assert [p.name for p in written] == list(CSV_FILES)
    assert all(p.parent == tmp_path / "csv" for p in written)
    files = {p.name: rows(p) for p in written}
    equity = files["equity.csv"]
    assert len(equity) == len(result.equity_ts)
    header = ["time", "ts_ns", "equity", "drawdown", "buy_and_hold", "close_AAA", "close_BBB"]
    assert list(equity[0]) == header
    assert [Decimal(r["equity"]) for r in equity] == result.equity
    assert len(files["trades.csv"]) == len(performance.trades) > 0
    assert performance.trade_stats is not None
    assert sum(Decimal(r["pnl"]) for r in files["trades.csv"]) == performance.trade_stats.net_pnl
    assert len(files["fills.csv"]) == len(result.fills)
    assert [r["order_id"] for r in files["fills.csv"]] == [f.order_id for f in result.fills]
    assert [r["metric"] for r in files["metrics.csv"]] == [m.key for m in metrics(performance)]
    assert len(files["monthly.csv"]) == len(performance.monthly_returns)
    assert list(files["monthly.csv"][0]) == ["year", "month", "return"]


def test_csv_when_path_is_a_file_name_then_written_next_to_it(
    result: BacktestResult, performance: Performance, tmp_path: Path
) -> None:
    written = write_report(result, performance, tmp_path / "report.csv", fmt="csv")

    assert {p.parent for p in written} == {tmp_path}


def test_json_when_written_then_round_trips(
    result: BacktestResult, performance: Performance, tmp_path: Path
) -> None:
    path = tmp_path / "report.json"

    write_report(result, performance, path, fmt="json")

    raw = path.read_bytes()
    decoded = msgspec.json.decode(raw, type=BacktestReport)
    assert decoded == document(result, performance)
    assert decoded.performance == performance
    assert decoded.config == result.config and decoded.fills == result.fills
    assert [p.equity for p in decoded.equity] == result.equity
    assert {"version", "config", "performance", "trades", "fills", "equity"} <= set(
        msgspec.json.decode(raw)
    )


def test_write_report_when_format_unknown_then_value_error(
    result: BacktestResult, performance: Performance, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="unknown report format 'pdf'"):
        write_report(result, performance, tmp_path / "r.pdf", fmt="pdf")  # type: ignore[arg-type]


def test_write_report_when_performance_of_another_run_then_value_error(
    performance: Performance, tmp_path: Path
) -> None:
    other = backtest("AAA", n=30)

    with pytest.raises(ValueError, match="not this run's"):
        write_report(other, performance, tmp_path / "r.html", fmt="html")
