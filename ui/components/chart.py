"""The Dashboard's chart as Plotly figures (plain dicts, pure: tested without a page):
the candles of one series with indicator overlays (SMA, EMA, Bollinger), sub-panels
(volume, RSI, MACD) and the signals raised on its bars; the line saying why a chart is
empty or may be stale; the data badge; and the watchlist's sparklines.

A figure's ``uirevision`` is the series shown, so Plotly keeps the user's zoom and pan
across updates and resets them only when another symbol or interval is picked.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Collection, Sequence
from typing import Any

from ui.components.chart_series import Series, SignalMark

STUDIES = {
    "sma": "SMA",
    "ema": "EMA",
    "bbands": "Bollinger",
    "volume": "Volume",
    "rsi": "RSI",
    "macd": "MACD",
}
"""What the chart can show besides the candles (all on at first)."""
UP, DOWN, NEUTRAL = "#26a69a", "#ef5350", "#7e57c2"
LINE_COLORS = ["#1e88e5", "#fb8c00", "#8e24aa", "#00897b", "#6d4c41", "#3949ab"]
PANELS = {"volume": ("yaxis2", "Vol"), "rsi": ("yaxis3", "RSI"), "macd": ("yaxis4", "MACD")}
"""Sub-panel → its y axis (fixed, so a user's zoom of one panel stays with it)."""
PANEL_HEIGHT, GAP = 0.14, 0.03
CONFIG = {"displaylogo": False, "scrollZoom": True}
"""Never changes: NiceGUI redraws from scratch (losing the zoom) when the config does."""
BULLISH = ("bullish", "golden", "oversold")
BEARISH = ("bearish", "death", "overbought")
SPARK_W, SPARK_H = 80, 20


def chart_status(
    series: Series | None, symbol: str, interval: str, unreachable: str
) -> tuple[str, bool]:
    """The line above the chart: why it is empty or may be stale ("" when all is well),
    and whether that is a problem."""
    if series is not None and series.error:
        return series.error, True
    if series is None or not series.bars:
        if unreachable:
            return f"No bars for {symbol} {interval}: {unreachable}", True
        if series is not None and "bars" in series.loaded:
            return f"No bars yet for {symbol} {interval}", False
        return f"Loading {symbol} {interval}…", False
    if unreachable:
        return f"{unreachable} (the chart shows what arrived before)", True
    return "", False


def chart_figure(
    series: Series | None, studies: Collection[str] = tuple(STUDIES)
) -> dict[str, Any]:
    """The Plotly figure (a plain dict) of one series: candles, the chosen overlays and
    sub-panels, and signal markers; an empty chart saying so when there are no bars."""
    if series is None or not series.bars:
        what = f" for {series.symbol} {series.interval}" if series is not None else ""
        return {
            "data": [],
            "layout": {
                "uirevision": _revision(series),
                "xaxis": {"visible": False},
                "yaxis": {"visible": False},
                "annotations": [
                    {"text": f"No bars yet{what}", "showarrow": False, "font": {"size": 16}}
                ],
            },
            "config": CONFIG,
        }
    bars = list(series.bars.values())
    xs = [b.ts // 1_000_000 for b in bars]  # a date axis reads epoch milliseconds as UTC
    data: list[dict[str, Any]] = [
        {
            "type": "candlestick",
            "name": series.symbol,
            "x": xs,
            "open": [_n(b.open) for b in bars],
            "high": [_n(b.high) for b in bars],
            "low": [_n(b.low) for b in bars],
            "close": [_n(b.close) for b in bars],
            "increasing": {"line": {"color": UP}},
            "decreasing": {"line": {"color": DOWN}},
            "showlegend": False,
        }
    ]
    last_ts = bars[-1].ts
    colors = iter(LINE_COLORS * 4)
    for key in sorted(series.indicators, key=_natural):
        family = key.split("_", 1)[0]
        if family in ("sma", "ema") and family in studies:
            data.append(_line(series, key, "value", last_ts, _label(key), "y", next(colors)))
        elif family == "bbands" and family in studies:
            data += _bands(series, key, last_ts)
    data += _markers(series)
    panels = [p for p in PANELS if p in studies]
    if "volume" in panels:
        data.append(
            {
                "type": "bar",
                "name": "Volume",
                "x": xs,
                "y": [_n(b.volume) for b in bars],
                "marker": {"color": [UP if b.close >= b.open else DOWN for b in bars]},
                "yaxis": "y2",
                "showlegend": False,
            }
        )
    rsi = _first(series, "rsi")
    if "rsi" in panels and rsi:
        data.append(_line(series, rsi, "value", last_ts, _label(rsi), "y3", NEUTRAL))
    macd = _first(series, "macd")
    if "macd" in panels and macd:
        data.append(_line(series, macd, "macd", last_ts, "MACD", "y4", LINE_COLORS[0]))
        data.append(_line(series, macd, "macdsignal", last_ts, "MACD signal", "y4", LINE_COLORS[1]))
        x, y = _points(series, macd, "macdhist", last_ts)
        hist = {"type": "bar", "name": "Hist", "x": x, "y": y, "yaxis": "y4"}
        data.append(hist | {"marker": {"color": "#90a4ae"}, "showlegend": False})
    return {"data": data, "layout": _layout(series, panels), "config": CONFIG}


_FIGURES: deque[tuple[Series, int, tuple[str, ...], dict[str, Any]]] = deque(maxlen=8)
"""The latest figures built, shared by the tabs that show the same series (read only)."""


def shared_figure(series: Series | None, studies: tuple[str, ...]) -> dict[str, Any]:
    """The figure of ``series`` with ``studies``, built once for all the tabs showing it."""
    if series is None:
        return chart_figure(None)
    for shown, version, chosen, figure in _FIGURES:
        if shown is series and version == series.version and chosen == studies:
            return figure
    figure = chart_figure(series, studies)
    _FIGURES.append((series, series.version, studies, figure))
    return figure


def spark_points(values: Sequence[float], width: int = SPARK_W, height: int = SPARK_H) -> str:
    """An SVG polyline's ``points`` for a sparkline of ``values`` ("" for fewer than 2)."""
    values = [v for v in values if math.isfinite(v)]
    if len(values) < 2:
        return ""
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = (width - 2) / (len(values) - 1)
    inner = height - 2
    return " ".join(
        f"{1 + i * step:.1f},{1 + inner - (v - low) / span * inner:.1f}"
        for i, v in enumerate(values)
    )


def _layout(series: Series, panels: list[str]) -> dict[str, Any]:
    bottom = len(panels) * (PANEL_HEIGHT + GAP)
    layout: dict[str, Any] = {
        "uirevision": _revision(series),
        "margin": {"l": 60, "r": 20, "t": 40, "b": 40},
        "hovermode": "x",
        "legend": {"orientation": "h", "x": 0, "y": 1.0, "yanchor": "bottom"},
        "xaxis": {
            "type": "date",
            "rangeslider": {"visible": False},
            "anchor": "y",
            "title": {"text": "UTC"},
        },
        "yaxis": {"domain": [bottom, 1.0], "title": {"text": series.symbol}},
        "shapes": [],
    }
    for i, panel in enumerate(reversed(panels)):
        axis, title = PANELS[panel]
        low = i * (PANEL_HEIGHT + GAP)
        layout[axis] = {"domain": [low, low + PANEL_HEIGHT], "title": {"text": title}}
        if panel == "rsi":
            layout[axis]["range"] = [0, 100]
            for level in (30, 70):  # the usual oversold / overbought lines
                layout["shapes"].append(
                    {
                        "type": "line",
                        "xref": "paper",
                        "x0": 0,
                        "x1": 1,
                        "yref": "y3",
                        "y0": level,
                        "y1": level,
                        "line": {"dash": "dot", "width": 1, "color": "#9e9e9e"},
                    }
                )
    if panels:
        layout["xaxis"]["anchor"] = "y" + PANELS[panels[-1]][0].removeprefix("yaxis")
    return layout


def _line(
    series: Series, key: str, output: str, last_ts: int, name: str, axis: str, color: str
) -> dict[str, Any]:
    x, y = _points(series, key, output, last_ts)
    line = {"width": 1.2, "color": color}
    return {"type": "scatter", "mode": "lines", "name": name, "x": x, "y": y, "yaxis": axis} | {
        "line": line
    }


def _points(
    series: Series, key: str, output: str, last_ts: int
) -> tuple[list[int], list[float | None]]:
    """One indicator output by bar time; a forming preview, when newer than the last
    bar, extends it by one point."""
    points = [(ts, values.get(output, math.nan)) for ts, values in series.indicators[key].items()]
    preview = series.previews.get(key)
    if preview is not None and preview[0] > last_ts:
        points.append((preview[0], preview[1].get(output, math.nan)))
    return [ts // 1_000_000 for ts, _ in points], [_n(v) for _, v in points]


def _bands(series: Series, key: str, last_ts: int) -> list[dict[str, Any]]:
    name = _label(key)
    upper = _line(series, key, "upperband", last_ts, name, "y", "#90caf9")
    lower = _line(series, key, "lowerband", last_ts, f"{name} lower", "y", "#90caf9")
    middle = _line(series, key, "middleband", last_ts, f"{name} mid", "y", "#64b5f6")
    lower |= {"fill": "tonexty", "fillcolor": "rgba(144, 202, 249, 0.12)"}
    middle["line"] = middle["line"] | {"dash": "dot"}
    for trace in (upper, lower, middle):
        trace["legendgroup"] = key  # one legend entry shows or hides the three
    lower["showlegend"] = middle["showlegend"] = False
    return [upper, lower, middle]


def _markers(series: Series) -> list[dict[str, Any]]:
    """Signals on their bars: bullish below the low, bearish above the high, others at
    the close; a signal whose bar is not in the chart is left out."""
    groups: dict[str, list[tuple[int, float, SignalMark]]] = {"up": [], "down": [], "other": []}
    for mark in series.signals.values():
        bar = series.bars.get(mark.ts)
        if bar is None:
            continue
        if any(word in mark.kind for word in BULLISH):
            groups["up"].append((mark.ts, bar.low, mark))
        elif any(word in mark.kind for word in BEARISH):
            groups["down"].append((mark.ts, bar.high, mark))
        else:
            groups["other"].append((mark.ts, bar.close, mark))
    style = {
        "up": ("Bullish signals", "triangle-up", UP),
        "down": ("Bearish signals", "triangle-down", DOWN),
        "other": ("Other signals", "diamond", NEUTRAL),
    }
    traces = []
    for group, points in groups.items():
        if not points:
            continue
        name, symbol, color = style[group]
        traces.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": name,
                "x": [ts // 1_000_000 for ts, _, _ in points],
                "y": [_n(y) for _, y, _ in points],
                "text": [_signal_text(m) for _, _, m in points],
                "hoverinfo": "text+x",
                "marker": {"symbol": symbol, "size": 11, "color": color},
                "yaxis": "y",
            }
        )
    return traces


def _signal_text(mark: SignalMark) -> str:
    simulated = " · SIMULATED" if mark.simulated else ""
    return f"{mark.rule}: {mark.kind} (strength {mark.strength:.2f}){simulated}"


def _first(series: Series, family: str) -> str | None:
    keys = sorted((k for k in series.indicators if k.split("_", 1)[0] == family), key=_natural)
    return keys[0] if keys else None


def _label(key: str) -> str:
    """``sma_20`` → ``SMA 20``; ``bbands_20_2p0_2p0`` → ``BB 20 2.0 2.0``."""
    family, _, params = key.partition("_")
    name = {"bbands": "BB"}.get(family, family.upper())
    return f"{name} {params.replace('_', ' ').replace('p', '.')}".strip()


def _natural(key: str) -> list[tuple[int, int, str]]:
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in key.split("_")]


def _revision(series: Series | None) -> str:
    return f"{series.symbol}/{series.interval}" if series is not None else "none"


def _n(value: float) -> float | None:
    """Seven significant digits (a lighter message); None (a gap) for NaN."""
    return float(f"{value:.7g}") if math.isfinite(value) else None


def data_badge(series: Series | None) -> tuple[str, str]:
    """What the chart shows: simulated bars told apart, and the last bar's time."""
    if series is None or not series.bars:
        return "NO DATA", "grey"
    last = series.bars[next(reversed(series.bars))]
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(last.ts / 1e9))
    if last.simulated:
        return f"SIMULATED · {when}", "orange"
    return f"MARKET DATA · {when}", "positive"
