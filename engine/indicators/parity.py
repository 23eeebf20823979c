"""The parity check: streaming values equal batch values, for any indicator.

For built-ins and plugins alike (the tests run it on both; plugin authors can too)::

    report = check_parity(registry.create("rsi"), sample_bars("walk"), warm=50)
    assert report.ok, report

It runs the indicator in an :class:`~engine.indicators.bank.IndicatorBank` as the live
path does — :meth:`~IndicatorBank.warm` on the first ``warm`` bars, then
:meth:`~IndicatorBank.preview` and :meth:`~IndicatorBank.update` bar by bar — and
compares every streamed value with the batch value over the full array at the same
bar: both NaN, or within ``tol`` (absolute below 1, relative above). ``preview`` must
equal the ``update`` that follows it exactly.

:func:`sample_bars` makes the series that catch the usual mistakes: random walks with
jumps, flat stretches (zero variance, equal highs and lows), a constant series, a large
price level, and a spread that crosses and sits at zero (divisions by zero).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from engine.indicators.bank import IndicatorBank
from engine.indicators.base import INPUTS, Bar, Bars, Indicator
from engine.stats import StatsRegistry

SERIES = ("walk", "flat", "constant", "large", "spread")


def sample_bars(kind: str, n: int = 400, seed: int = 7) -> Bars:
    """A deterministic OHLCV series of ``kind`` (one of :data:`SERIES`)."""
    rng = np.random.default_rng(seed)
    steps = rng.normal(0.0, 1.0, n)
    if kind == "walk":
        close = 100.0 + np.cumsum(steps)
        close[n // 3 :] += 25.0  # gap up
        close[2 * n // 3 :] -= 40.0  # gap down
    elif kind == "flat":
        close = 100.0 + np.cumsum(steps)
        for start in (n // 5, n // 2):
            close[start : start + n // 6] = close[start]
    elif kind == "constant":
        close = np.full(n, 50.0)
    elif kind == "large":
        close = 1e6 + np.cumsum(steps * 1e3)
    elif kind == "spread":
        close = np.cumsum(steps) * 0.1
        close[n // 4 : n // 2] = 0.0
    else:
        raise ValueError(f"unknown series {kind!r}; use one of {', '.join(SERIES)}")
    spread = np.abs(rng.normal(0.0, 0.5, n)) * (np.abs(close).mean() / 100.0 + 0.01)
    flat = np.r_[kind == "constant", np.diff(close) == 0.0]
    spread[flat] = 0.0  # no range on a flat bar: highest high == lowest low
    high = close + spread
    low = close - spread * rng.uniform(0.2, 1.0, n)
    open_ = np.clip(close - np.r_[0.0, np.diff(close)] * 0.5, low, high)
    volume = rng.integers(100, 10_000, n).astype(np.float64)
    volume[flat] = 0.0
    ts = np.arange(n, dtype=np.int64) * 60_000_000_000
    return Bars.of(ts, open_, high, low, close, volume)


@dataclass
class ParityReport:
    """Where streaming and batch disagreed (empty lists: they agree)."""

    key: str
    checked: int = 0
    worst: float = 0.0
    """Largest difference seen (relative above 1, absolute below)."""
    mismatches: list[str] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.mismatches and not self.failures and self.checked > 0


def check_parity(
    indicator: Indicator, bars: Bars, warm: int, *, tol: float = 1e-9, limit: int = 10
) -> ParityReport:
    """Stream ``bars[warm:]`` after warming on ``bars[:warm]``; compare with batch."""
    bank = IndicatorBank("PARITY", "1m", [indicator], stats=StatsRegistry())
    report = ParityReport(indicator.key)
    batch = bank.batch(bars).get(indicator.key)
    bank.warm(bars[:warm])
    if batch is None:
        report.failures = dict(bank.failures)
        return report
    n = len(bars)
    streamed = {output: np.full(n, np.nan) for output in batch}
    previewed = {output: np.full(n, np.nan) for output in batch}
    columns = [bars.ts.tolist(), *(getattr(bars, f).tolist() for f in INPUTS)]
    for i, row in enumerate(zip(*columns, strict=True)):
        if i < warm:
            continue
        bar = Bar(*row)
        preview = bank.preview(bar).get(indicator.key, {})
        values = bank.update(bar).get(indicator.key, {})
        for output, value in values.items():
            streamed[output][i] = value
        for output, value in preview.items():
            previewed[output][i] = value
    for output, want in batch.items():
        got = streamed[output][warm:]
        want = want[warm:]
        report.checked += len(got)
        both_nan = np.isnan(got) & np.isnan(want)
        diff = np.where(both_nan, 0.0, np.abs(got - want) / np.maximum(1.0, np.abs(want)))
        bad = np.flatnonzero(~(diff <= tol))  # NaN on one side only counts as bad
        for j in bad[:limit]:
            i = warm + int(j)
            report.mismatches.append(f"bar {i} {output}: streamed {got[j]!r}, batch {want[j]!r}")
        if len(diff) and not math.isnan(diff.max()):
            report.worst = max(report.worst, float(np.nanmax(diff[diff <= tol], initial=0.0)))
        peeked = previewed[output][warm:]
        unequal = np.flatnonzero(~((peeked == got) | (np.isnan(peeked) & np.isnan(got))))
        for j in unequal[:limit]:
            report.mismatches.append(
                f"bar {warm + int(j)} {output}: preview {peeked[j]!r} != update {got[j]!r}"
            )
    report.failures = dict(bank.failures)
    return report
