"""Reports of a backtest: one self-contained HTML page, CSV files, or one JSON document.

- **html**: one file that needs no network (plotly.js is inlined once, about 4.8 MB):
  the run's header (strategy, parameters, symbols, interval, period, cash, fill model,
  risk profile), every metric of :class:`~engine.analytics.Performance` formatted
  (returns in %, ratios to 2 decimals, durations in days/hours/minutes), equity against
  buy and hold with the drawdown below it, each traded symbol's closes with its entries
  and exits (the :data:`MAX_PRICE_CHARTS` symbols with the most fills), monthly returns
  as a heat-map table, the first :data:`MAX_TRADES_SHOWN` trades, and the risk denials.
  Every text is escaped; chart data is JSON that plotly escapes. Long runs are thinned
  to at most :data:`MAX_CHART_POINTS` points per line (each bucket's first, lowest and
  highest point, so peaks and troughs stay); the tables and exports are never thinned.
- **csv**: ``equity.csv``, ``trades.csv``, ``fills.csv``, ``metrics.csv`` and
  ``monthly.csv`` in ``path`` when it is a directory or has no suffix (created), else
  next to ``path`` (in its directory). Times are ISO 8601 UTC with the exact ``ts_ns``
  beside them; money is the exact ``Decimal``.
- **json**: one :class:`BacktestReport` document (msgspec; ``Decimal`` as strings).

The report shows time as UTC. It carries nothing of the machine or the wall clock, so
the same run gives the same files.
"""

from __future__ import annotations

import csv
import html
import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Final, Literal

import msgspec
import numpy as np
import plotly.graph_objects as go  # type: ignore[import-untyped]
import plotly.io as pio  # type: ignore[import-untyped]
from plotly.offline import get_plotlyjs  # type: ignore[import-untyped]
from plotly.subplots import make_subplots  # type: ignore[import-untyped]

from engine.analytics import Lot, Performance, Trade
from engine.backtest.analysis import trades_of
from engine.backtest.broker import Denial, Fill
from engine.backtest.runner import BacktestConfig, BacktestResult
from engine.intervals import NS

ReportFormat = Literal["html", "csv", "json"]
MAX_TRADES_SHOWN: Final = 500
MAX_PRICE_CHARTS: Final = 4
MAX_CHART_POINTS: Final = 5_000
REPORT_VERSION: Final = "qsuite.backtest-report.v1"
CSV_FILES: Final = ("equity.csv", "trades.csv", "fills.csv", "metrics.csv", "monthly.csv")
NONE: Final = "—"


class EquityPoint(msgspec.Struct, frozen=True, kw_only=True):
    ts: int
    """Close time of the timestamp's bars, UTC ns."""
    equity: Decimal
    """Cash plus positions at their close, exact."""


class BacktestReport(msgspec.Struct, frozen=True, kw_only=True):
    """The JSON report: the run's inputs, its performance and everything it did."""

    version: str = REPORT_VERSION
    config: BacktestConfig
    symbols: list[str]
    bars: int
    signals: int
    performance: Performance
    trades: list[Trade]
    """Closed round trips of every symbol, in the order they closed."""
    open_lots: list[Lot]
    """What is still open at the end, by symbol."""
    fills: list[Fill]
    denied: list[Denial]
    equity: list[EquityPoint]


class Metric(msgspec.Struct, frozen=True):
    key: str
    """A Performance field; ``trade_stats.<f>`` and ``benchmark.<f>`` for nested ones."""
    label: str
    value: Any
    """The raw value (float, int, bool, Decimal or None)."""
    display: str


def write_report(
    result: BacktestResult, performance: Performance, path: Path, *, fmt: ReportFormat
) -> list[Path]:
    """Write the ``fmt`` report of ``result`` (whose performance is ``performance``, from
    :func:`engine.backtest.analysis.performance_of`) at ``path``; the files written.
    Raises ``ValueError`` for an unknown format or a performance of another run."""
    if len(performance.ts) != len(result.equity_ts):
        raise ValueError(
            f"the performance has {len(performance.ts)} points and the run "
            f"{len(result.equity_ts)}: it is not this run's"
        )
    path = Path(path)
    if fmt == "csv":
        folder = path if path.is_dir() or not path.suffix else path.parent
        folder.mkdir(parents=True, exist_ok=True)
        return _write_csv(result, performance, folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "html":
        path.write_text(render_html(result, performance), encoding="utf-8")
    elif fmt == "json":
        path.write_bytes(msgspec.json.format(msgspec.json.encode(document(result, performance))))
    else:
        raise ValueError(f"unknown report format {fmt!r}; use html, csv or json")
    return [path]


def document(result: BacktestResult, performance: Performance) -> BacktestReport:
    """The JSON report of ``result``."""
    trips = trades_of(result)
    return BacktestReport(
        config=result.config,
        symbols=result.symbols,
        bars=result.bars,
        signals=result.signals,
        performance=performance,
        trades=list(performance.trades),
        open_lots=[lot for symbol in sorted(trips) for lot in trips[symbol].open_lots],
        fills=result.fills,
        denied=result.denied,
        equity=[
            EquityPoint(ts=t, equity=e)
            for t, e in zip(result.equity_ts, result.equity, strict=True)
        ],
    )


# --- formatting ---------------------------------------------------------------------------


def pct(x: float | None) -> str:
    return NONE if x is None else f"{x * 100:.2f}%"


def ratio(x: float | None) -> str:
    return NONE if x is None else f"{x:.2f}"


def money(x: float | Decimal | None) -> str:
    return NONE if x is None else f"{x:,.2f}"


def price(x: Decimal) -> str:
    """4 decimals, or 8 significant digits below 1 (a fill price carries many more)."""
    return f"{x:,.4f}" if abs(x) >= 1 else f"{x:.8g}"


def utc(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns // NS, UTC).strftime("%Y-%m-%d %H:%M")


def duration(seconds: float) -> str:
    """``3d 4h``, ``5h 30m``, ``45s``: the two largest units that are not zero."""
    rest, parts = round(seconds), []
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return " ".join(parts[:2]) or "0s"


_KINDS: Final[dict[str, Callable[[Any], str]]] = {
    "pct": pct,
    "ratio": ratio,
    "money": money,
    "time": lambda v: NONE if v is None else utc(v) + " UTC",
    "duration": lambda v: duration(v),
    "int": lambda v: NONE if v is None else f"{v:,}",
    "bool": lambda v: NONE if v is None else ("yes" if v else "no"),
}
_METRICS: Final = (
    ("start_ts", "First bar close", "time"),
    ("end_ts", "Last bar close", "time"),
    ("bars", "Bars", "int"),
    ("periods_per_year", "Periods per year", "ratio"),
    ("risk_free_rate", "Risk-free rate (annual)", "pct"),
    ("initial_equity", "Initial equity", "money"),
    ("final_equity", "Final equity", "money"),
    ("total_return", "Total return", "pct"),
    ("annualized_return", "Annualized return", "pct"),
    ("annualized_volatility", "Annualized volatility", "pct"),
    ("sharpe", "Sharpe ratio", "ratio"),
    ("sortino", "Sortino ratio", "ratio"),
    ("calmar", "Calmar ratio", "ratio"),
    ("max_drawdown", "Max drawdown", "pct"),
    ("max_drawdown_start_ts", "Max drawdown peak", "time"),
    ("max_drawdown_trough_ts", "Max drawdown trough", "time"),
    ("max_drawdown_end_ts", "Max drawdown end", "time"),
    ("max_drawdown_duration_s", "Max drawdown duration", "duration"),
    ("max_drawdown_duration_bars", "Max drawdown duration (bars)", "int"),
    ("max_drawdown_recovered", "Max drawdown recovered", "bool"),
    ("realized_pnl", "Realized P&L", "money"),
    ("unrealized_pnl", "Unrealized P&L", "money"),
    ("exposure", "Exposure (share of bars)", "pct"),
    ("trade_stats.count", "Trades", "int"),
    ("trade_stats.wins", "Winning trades", "int"),
    ("trade_stats.losses", "Losing trades", "int"),
    ("trade_stats.win_rate", "Win rate", "pct"),
    ("trade_stats.net_pnl", "Net P&L of trades", "money"),
    ("trade_stats.fees", "Fees of trades", "money"),
    ("trade_stats.gross_profit", "Gross profit", "money"),
    ("trade_stats.gross_loss", "Gross loss", "money"),
    ("trade_stats.profit_factor", "Profit factor", "ratio"),
    ("trade_stats.best", "Best trade", "money"),
    ("trade_stats.worst", "Worst trade", "money"),
    ("trade_stats.average", "Average trade", "money"),
    ("trade_stats.average_win", "Average win", "money"),
    ("trade_stats.average_loss", "Average loss", "money"),
    ("benchmark.total_return", "Buy & hold total return", "pct"),
    ("benchmark.annualized_return", "Buy & hold annualized return", "pct"),
    ("benchmark.max_drawdown", "Buy & hold max drawdown", "pct"),
    ("benchmark.excess_return", "Excess return over buy & hold", "pct"),
)


def metrics(performance: Performance) -> list[Metric]:
    """Every scalar of ``performance`` (and of its trade stats and benchmark), labelled
    and formatted; what does not exist (no fills, no benchmark) is None and ``—``."""
    rows = []
    for key, label, kind in _METRICS:
        value: Any = performance
        for part in key.split("."):
            value = getattr(value, part) if value is not None else None
        rows.append(Metric(key, label, value, _KINDS[kind](value)))
    return rows


# --- csv ----------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _write_rows(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        writer.writerows([_cell(v) for v in row] for row in rows)
    return path


def _write_csv(result: BacktestResult, performance: Performance, folder: Path) -> list[Path]:
    bench = performance.benchmark.equity if performance.benchmark else None
    symbols = result.symbols
    equity_rows = (
        [
            _iso(t),
            t,
            e,
            performance.drawdown[i],
            None if bench is None else bench[i],
            *(None if math.isnan(c) else c for c in (result.closes[s][i] for s in symbols)),
        ]
        for i, (t, e) in enumerate(zip(result.equity_ts, result.equity, strict=True))
    )
    trade_header = ["symbol", "side", "qty", "entry_time", "entry_ts_ns", "entry_price"]
    trade_header += ["exit_time", "exit_ts_ns", "exit_price", "gross_pnl", "fees", "pnl"]
    trade_rows = (
        [
            *(t.symbol, t.side, t.qty, _iso(t.entry_ts), t.entry_ts, t.entry_price),
            *(_iso(t.exit_ts), t.exit_ts, t.exit_price, t.gross_pnl, t.fees, t.pnl),
        ]
        for t in performance.trades
    )
    fill_rows = (
        [_iso(f.ts), f.ts, f.order_id, f.symbol, f.side, f.qty, f.price, f.commission]
        for f in result.fills
    )
    equity_header = ["time", "ts_ns", "equity", "drawdown", "buy_and_hold"]
    return [
        _write_rows(
            folder / "equity.csv", equity_header + [f"close_{s}" for s in symbols], equity_rows
        ),
        _write_rows(folder / "trades.csv", trade_header, trade_rows),
        _write_rows(
            folder / "fills.csv",
            ["time", "ts_ns", "order_id", "symbol", "side", "qty", "price", "commission"],
            fill_rows,
        ),
        _write_rows(
            folder / "metrics.csv",
            ["metric", "label", "value", "display"],
            ([m.key, m.label, m.value, m.display] for m in metrics(performance)),
        ),
        _write_rows(
            folder / "monthly.csv",
            ["year", "month", "return"],
            ([m.year, m.month, m.ret] for m in performance.monthly_returns),
        ),
    ]


def _iso(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns // NS, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- html ---------------------------------------------------------------------------------

_CSS: Final = """
body{font-family:system-ui,sans-serif;margin:24px auto;max-width:1200px;color:#1f2937}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #e5e7eb}
table{border-collapse:collapse;font-size:.85rem}td,th{padding:3px 8px;text-align:right;
border-bottom:1px solid #f1f5f9;white-space:nowrap}th{background:#f8fafc}td.l,th.l{text-align:left}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(360px,1fr));gap:0 24px}
.note{color:#6b7280;font-size:.85rem}
"""
_MONTHS: Final = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)


def esc(value: Any) -> str:
    """``value`` as text safe inside HTML elements and quoted attributes."""
    return html.escape(str(value), quote=True)


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], left: int = 1) -> str:
    def cells(tag: str, values: Sequence[str]) -> str:
        return "".join(
            f"<{tag}{' class=l' if i < left else ''}>{v}</{tag}>" for i, v in enumerate(values)
        )

    body = "".join(f"<tr>{cells('td', row)}</tr>" for row in rows)
    return f"<table><thead><tr>{cells('th', header)}</tr></thead><tbody>{body}</tbody></table>"


def _text(value: Any) -> str:
    """A parameter or setting: a number as it is, anything else as JSON (strings quoted)."""
    return str(value) if isinstance(value, Decimal) else msgspec.json.encode(value).decode()


def _header(result: BacktestResult, performance: Performance) -> str:
    config = result.config
    params = ", ".join(f"{k}={_text(v)}" for k, v in sorted(config.params.items()))
    fills = msgspec.structs.asdict(config.fills)
    risk = {} if config.risk is None else msgspec.structs.asdict(config.risk)
    limits = ", ".join(f"{k}={_text(v)}" for k, v in risk.items() if v is not None)
    rows = [
        ("Strategy", config.strategy),
        ("Parameters", params or "defaults"),
        ("Symbols", ", ".join(result.symbols)),
        ("Interval", config.interval),
        ("Period (bar closes, UTC)", f"{utc(performance.start_ts)} → {utc(performance.end_ts)}"),
        ("Bars", f"{result.bars:,} ({len(result.equity_ts):,} timestamps)"),
        ("Initial cash", money(config.cash)),
        ("Fill model", ", ".join(f"{k}={_text(v)}" for k, v in fills.items())),
        ("Risk profile", limits or "none"),
        (
            "Signals · fills · risk denials",
            f"{result.signals} · {len(result.fills)} · {len(result.denied)}",
        ),
    ]
    body = "".join(f"<tr><th class=l>{esc(k)}</th><td class=l>{esc(v)}</td></tr>" for k, v in rows)
    return f'<h1>Backtest report — {esc(config.strategy)}</h1><table id="run">{body}</table>'


def _metrics_html(performance: Performance) -> str:
    rows = metrics(performance)
    half = (len(rows) + 1) // 2
    parts = [
        _table(["Metric", "Value"], ([esc(m.label), esc(m.display)] for m in chunk))
        for chunk in (rows[:half], rows[half:])
    ]
    return f'<div class=grid id="metrics">{"".join(parts)}</div>'


def _monthly_html(performance: Performance) -> str:
    by_year: dict[int, dict[int, float | None]] = {}
    for m in performance.monthly_returns:
        by_year.setdefault(m.year, {})[m.month] = m.ret
    rets = [abs(m.ret) for m in performance.monthly_returns if m.ret is not None]
    scale = max(rets, default=0.0) or 1.0

    def cell(r: float | None) -> str:
        if r is None:
            return ""
        alpha = min(abs(r) / scale, 1.0) * 0.6
        color = f"rgba(22,163,74,{alpha:.2f})" if r >= 0 else f"rgba(220,38,38,{alpha:.2f})"
        return f'<span style="background:{color};padding:2px 4px">{esc(pct(r))}</span>'

    rows = []
    for year, months in sorted(by_year.items()):
        known = [r for r in months.values() if r is not None]
        total = math.prod(1 + r for r in known) - 1 if len(known) == len(months) else None
        rows.append([esc(year), *(cell(months.get(m)) for m in range(1, 13)), esc(pct(total))])
    return _table(["Year", *_MONTHS, "Year"], rows)


def _trades_html(performance: Performance) -> str:
    trades = performance.trades
    rows = (
        [
            esc(i + 1),
            esc(t.symbol),
            esc(t.side),
            esc(t.qty),
            esc(utc(t.entry_ts)),
            esc(price(t.entry_price)),
            esc(utc(t.exit_ts)),
            esc(price(t.exit_price)),
            esc(money(t.fees)),
            esc(money(t.pnl)),
        ]
        for i, t in enumerate(trades[:MAX_TRADES_SHOWN])
    )
    header = ["#", "Symbol", "Side", "Qty", "Entry (UTC)", "Entry price", "Exit (UTC)"]
    header += ["Exit price", "Fees", "P&L"]
    note = (
        f"<p class=note>The first {MAX_TRADES_SHOWN:,} of {len(trades):,} trades; the CSV "
        "and JSON reports hold all of them.</p>"
        if len(trades) > MAX_TRADES_SHOWN
        else f"<p class=note>{len(trades):,} closed trade(s).</p>"
    )
    return note + _table(header, rows, left=3)


def _denials_html(result: BacktestResult) -> str:
    counts = Counter(d.reason for d in result.denied)
    if not counts:
        return f"<p id=denials>Risk denials: {len(result.denied)}.</p>"
    example = {d.reason: d.message for d in reversed(result.denied)}
    rows = ([esc(r), esc(n), esc(example[r])] for r, n in counts.most_common())
    return f"<p id=denials>Risk denials: {len(result.denied)}.</p>" + _table(
        ["Reason", "Count", "Example"], rows, left=1
    )


def _thin(values: np.ndarray, limit: int = MAX_CHART_POINTS) -> np.ndarray:
    """Indices of at most ``limit`` points: each bucket's first, lowest and highest."""
    n = len(values)
    if n <= limit:
        return np.arange(n)
    keep = [np.array([n - 1])]
    for bucket in np.array_split(np.arange(n), limit // 3):
        part = values[bucket]
        keep.append(bucket[[0, int(np.nanargmin(part)), int(np.nanargmax(part))]])
    return np.unique(np.concatenate(keep))


def _x(ts: Sequence[int] | np.ndarray) -> list[str]:
    return [str(t) for t in np.datetime_as_string(np.asarray(ts, dtype="datetime64[ns]"), "s")]


def _layout(fig: Any, height: int) -> Any:
    fig.update_layout(
        template="plotly_white",
        height=height,
        margin={"l": 60, "r": 20, "t": 30, "b": 30},
        legend={"orientation": "h", "y": 1.06, "x": 0},
        hovermode="x unified",
    )
    return fig


def _equity_figure(performance: Performance) -> Any:
    equity = np.asarray(performance.equity)
    keep = _thin(equity)
    x = _x(np.asarray(performance.ts)[keep])
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3])
    fig.add_trace(go.Scatter(x=x, y=equity[keep].tolist(), name="Strategy"), row=1, col=1)
    if performance.benchmark is not None:
        bench = np.asarray(performance.benchmark.equity)[keep].tolist()
        fig.add_trace(go.Scatter(x=x, y=bench, name="Buy & hold"), row=1, col=1)
    dd = (-100 * np.asarray(performance.drawdown)[keep]).tolist()
    fig.add_trace(
        go.Scatter(x=x, y=dd, name="Drawdown %", fill="tozeroy", line={"color": "#dc2626"}),
        row=2,
        col=1,
    )
    fig.update_yaxes(title_text="Equity", row=1, col=1)
    fig.update_yaxes(title_text="Drawdown %", row=2, col=1)
    return _layout(fig, 560)


def _price_symbols(result: BacktestResult) -> list[str]:
    counts = Counter(f.symbol for f in result.fills)
    return sorted(result.symbols, key=lambda s: (-counts[s], s))[:MAX_PRICE_CHARTS]


def _prices_figure(result: BacktestResult, symbols: list[str]) -> Any:
    fig = make_subplots(rows=len(symbols), cols=1, shared_xaxes=True, vertical_spacing=0.04)
    for row, symbol in enumerate(symbols, start=1):
        closes = np.asarray(result.closes[symbol], dtype=np.float64)
        keep = _thin(closes)
        x = _x(np.asarray(result.equity_ts)[keep])
        fig.add_trace(
            go.Scatter(x=x, y=closes[keep].tolist(), name=f"{symbol} close", line={"width": 1}),
            row=row,
            col=1,
        )
        fig.update_yaxes(title_text=symbol, row=row, col=1)
        for role, fills in _entries_exits(result.fills, symbol).items():
            if not fills:
                continue
            fig.add_trace(
                go.Scatter(
                    x=_x([f.ts for f in fills]),
                    y=[float(f.price) for f in fills],
                    mode="markers",
                    name=f"{symbol} {role}",
                    text=[f"{role} {f.side} {f.qty} @ {f.price}" for f in fills],
                    marker={
                        "size": 9,
                        "color": "#16a34a" if role == "entry" else "#ea580c",
                        "symbol": [
                            "triangle-up" if f.side == "buy" else "triangle-down" for f in fills
                        ],
                    },
                ),
                row=row,
                col=1,
            )
    return _layout(fig, 140 + 240 * len(symbols))


def _entries_exits(fills: Sequence[Fill], symbol: str) -> dict[str, list[Fill]]:
    """A fill that grows the position (or opens it) is an entry; one that shrinks, closes
    or flips it is an exit."""
    held = Decimal(0)
    roles: dict[str, list[Fill]] = {"entry": [], "exit": []}
    for fill in sorted((f for f in fills if f.symbol == symbol), key=lambda f: f.ts):
        signed = fill.qty if fill.side == "buy" else -fill.qty
        roles["entry" if held == 0 or (held > 0) == (signed > 0) else "exit"].append(fill)
        held += signed
    return roles


def _chart(fig: Any, div_id: str) -> str:
    return str(
        pio.to_html(
            fig,
            include_plotlyjs=False,
            full_html=False,
            div_id=div_id,
            default_height=f"{fig.layout.height}px",
            config={"displaylogo": False, "responsive": True},
        )
    )


def render_html(result: BacktestResult, performance: Performance) -> str:
    """The HTML report (module docstring): one page, no network."""
    symbols = _price_symbols(result)
    more = len(result.symbols) - len(symbols)
    prices_note = (
        f"<p class=note>The {len(symbols)} symbols with the most fills of "
        f"{len(result.symbols)}; ▲ buy, ▼ sell; green entry, orange exit.</p>"
        if more
        else "<p class=note>▲ buy, ▼ sell; green entry, orange exit.</p>"
    )
    return "".join(
        [
            "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>",
            f"<title>Backtest report — {esc(result.config.strategy)}</title>",
            f"<style>{_CSS}</style>",
            f'<script type="text/javascript">{get_plotlyjs()}</script></head><body>',
            _header(result, performance),
            "<h2>Metrics</h2>",
            _metrics_html(performance),
            "<h2>Equity and drawdown</h2>",
            _chart(_equity_figure(performance), "equity-chart"),
            "<h2>Trades on price</h2>",
            prices_note,
            _chart(_prices_figure(result, symbols), "prices-chart"),
            "<h2>Monthly returns</h2>",
            _monthly_html(performance),
            "<h2>Trades</h2>",
            _trades_html(performance),
            "<h2>Risk denials</h2>",
            _denials_html(result),
            "</body></html>",
        ]
    )
