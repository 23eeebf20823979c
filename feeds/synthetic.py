"""The synthetic market: a deterministic, scenario-driven 24 h market that works offline.

It stands in for Yahoo when Yahoo is down (seeded from the last cached prices) and
drives the simulated venue: closed bars (:meth:`SyntheticMarket.next_bars`), the tape
between them (:meth:`~SyntheticMarket.ticks`: a quote then a trade, as bus events), raw
history (:meth:`~SyntheticMarket.history`, the :class:`~feeds.source.MarketSource`
side), quotes and fundamentals. Everything it makes is ``simulated`` with origin
``synthetic``; names read ``"<SYM> (simulated)"``.

The model, per bar of the market's interval (regimes in :mod:`feeds.scenarios`):
``n = 1 + Poisson(rate - 1)`` trades; the log price moves from the previous close to
the open by a ``1/n`` share of the bar's drift and variance (plus a gap jump), and from
open to close by the rest; high and low extend beyond ``max/min(open, close)`` by the
Brownian-bridge maximum (none with 1-2 trades, only the larger one with 3); volume is
``n`` lots of a lognormal size. Ticks are then drawn *inside* each bar so that the bar
aggregates them exactly: first trade = open, last = close, one trade at the high and one
at the low, every trade within ``[low, high]``, sizes summing to the volume. A buy
prints at the ask, a sell at the bid; each trade is preceded by its quote.

Determinism: a day of bars (a *block*; every intraday interval divides a day) draws from
``PCG64(SeedSequence([seed, symbol hash, bar seconds, day, stream]))``, so a symbol's
path does not depend on the other symbols, and the same ts always gives the same bar,
whatever range was asked for: each symbol's path is anchored at a bar (the close just
before it is the start price) and chained day by day forward and backward from there.
The anchor is ``anchor_ns`` (default: construction time) for the symbols given to the
constructor, ``at_ns`` (default: now) for :meth:`~SyntheticMarket.add_symbol`; pass the
time of the start price to get the same history across restarts. A :meth:`~SyntheticMarket.switch`
takes effect at the next bar not yet emitted; bars before it never change.

Other intervals are aggregated from the market's own bars (bins on the epoch grid; a
``1d`` bar is the UTC day; ``5d``/``1wk``/``1mo``/``3mo`` are fixed windows from the
epoch). History holds only closed bars and starts ``max_history_days`` before the anchor.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import pandas as pd

from engine.bus.events import Origin, QuoteUpdated, TradeReported
from engine.clock import Clock
from engine.persistence.bars import BarRow
from engine.persistence.models.market import BarFlag
from feeds.scenarios import BEFORE_TIME, DAY_NS, Regime, Scenario, bar_params, scenario
from feeds.schema import INTRADAY, Fundamentals, IntervalError, Quote, interval_ns
from feeds.source import SymbolNotFound

ORIGIN: Final[Origin] = "synthetic"
TICK_CATCHUP_BARS: Final = 5
""":meth:`SyntheticMarket.ticks` replays at most this many bars after a stall."""
_BARS, _TICKS, _JUMP = 0, 1, 2  # random streams
# Cache sizes: a few days of draws and a few bars of ticks per symbol (live use touches
# the current and previous day and the last few bars), plus room for history requests.
_CACHE_BLOCKS: Final = (64, 4)
_CACHE_TICKS: Final = (64, 2 * TICK_CATCHUP_BARS)
_SIMULATED: Final = int(BarFlag.SIMULATED)
RAW_COLUMNS: Final = ("ts", "open", "high", "low", "close", "volume", "flags")

TickEvent = QuoteUpdated | TradeReported


@dataclass(frozen=True, slots=True)
class _Draws:
    """One day of one symbol, relative to the log price at the day's start."""

    log_open: np.ndarray
    log_close: np.ndarray
    excess_high: np.ndarray
    excess_low: np.ndarray
    volume: np.ndarray
    trades: np.ndarray

    @property
    def total(self) -> float:
        return float(self.log_close[-1])


@dataclass(frozen=True, slots=True)
class _Bars:
    """Priced bars of a run of consecutive bar indices."""

    first_bar: int
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    trades: np.ndarray


@dataclass(frozen=True, slots=True)
class _Ticks:
    ts: np.ndarray
    price: np.ndarray
    size: np.ndarray
    buy: np.ndarray
    bid: np.ndarray
    ask: np.ndarray
    bid_size: np.ndarray
    ask_size: np.ndarray
    last_before: np.ndarray
    session_volume_before: np.ndarray


@dataclass(slots=True)
class _Path:
    key: int
    log_start: float
    """Log of the start price: the close just before the anchor bar."""
    anchor_bar: int
    earliest_ns: int
    """No bars before this (``max_history_days`` before the anchor, at a UTC midnight)."""
    regimes: list[Regime]
    starts: dict[int, float] = field(default_factory=dict)
    """Log price at the start of each computed day (block)."""


class SyntheticMarket:
    """A seeded, scenario-driven market of ``symbols`` (symbol → start price).

    ``seed`` is a non-negative int; ``interval`` (intraday) is the length of its own bars
    and ticks; ``clock`` gives "now" for defaults, history cut-off and switches.
    """

    name: Origin = ORIGIN

    def __init__(
        self,
        symbols: Mapping[str, float],
        *,
        seed: int,
        interval: str = "1m",
        scenario: str = "calm",
        clock: Clock,
        anchor_ns: int | None = None,
        max_history_days: int = 3650,
    ) -> None:
        if interval not in INTRADAY:
            raise IntervalError(
                f"the synthetic market needs an intraday interval, not {interval!r}"
            )
        if seed < 0:
            raise ValueError(f"seed must be a non-negative int, not {seed}")
        self.interval = interval
        self._step = interval_ns(interval)
        self._per_block = DAY_NS // self._step
        self._seed = seed
        self._clock = clock
        now = clock.time_ns()
        self.anchor_ns = (now if anchor_ns is None else anchor_ns) // self._step * self._step
        self._anchor_bar = self.anchor_ns // self._step
        self._history_ns = max_history_days * DAY_NS
        self._timeline = [self._regime(None, BEFORE_TIME, _scenario(scenario), self._anchor_bar)]
        self._paths: dict[str, _Path] = {}
        self._draw_cache: OrderedDict[tuple[str, int], _Draws] = OrderedDict()
        self._tick_cache: OrderedDict[tuple[str, int], _Ticks] = OrderedDict()
        self._bar_cursor = self._tick_cursor = now
        for symbol, price in symbols.items():
            self.add_symbol(symbol, price, at_ns=self.anchor_ns)

    # -- control -----------------------------------------------------------------------

    @property
    def symbols(self) -> list[str]:
        return list(self._paths)

    @property
    def scenario(self) -> str:
        """The market-wide scenario of the coming bars."""
        return self._timeline[-1].scenario.name

    def scenario_of(self, symbol: str) -> str:
        """The scenario of ``symbol``'s coming bars."""
        return self._path(symbol).regimes[-1].scenario.name

    def add_symbol(self, symbol: str, price: float, *, at_ns: int | None = None) -> None:
        """Trade ``symbol`` with ``price`` as the close just before ``at_ns`` (default:
        now), its anchor. Other symbols are unaffected. Adding a known symbol again
        re-anchors it (e.g. at a newer cached price) and keeps its scenario."""
        if not (math.isfinite(price) and price > 0):
            raise ValueError(f"start price of {symbol} must be positive and finite, not {price}")
        anchor = (self._clock.time_ns() if at_ns is None else at_ns) // self._step
        key = int.from_bytes(hashlib.blake2b(symbol.encode(), digest_size=8).digest(), "big")
        earliest = max(0, (anchor * self._step - self._history_ns) // DAY_NS) * DAY_NS
        path = _Path(key, math.log(price), anchor, earliest, [])
        known = self._paths.get(symbol)
        timeline = known.regimes if known else self._timeline
        path.regimes = [self._regime(path, r.start_bar, r.scenario, r.event_bar) for r in timeline]
        self._paths[symbol] = path
        self._forget(symbol, BEFORE_TIME)

    def switch(self, name: str, *, symbols: Iterable[str] | None = None) -> int:
        """Change the regime of ``symbols`` (default: the whole market) from the next bar
        not yet emitted; returns that bar's open time (UTC ns). Prices stay continuous,
        except for the jump of ``gap_open``."""
        new = _scenario(name)
        latest = max(self._clock.time_ns(), self._bar_cursor, self._tick_cursor)
        bar = max(latest // self._step + 1, self._anchor_bar)
        targets = list(self._paths) if symbols is None else list(symbols)
        paths = [self._path(symbol) for symbol in targets]  # all known, or nothing changes
        for symbol, path in zip(targets, paths, strict=True):
            # Never before the anchor: the path is chained backwards from there.
            start = max(bar, path.anchor_bar)
            kept = [r for r in path.regimes if r.start_bar < start]
            path.regimes = [*kept, self._regime(path, start, new, start)]
            self._forget(symbol, start)
        if symbols is None:
            kept = [r for r in self._timeline if r.start_bar < bar]
            self._timeline = [*kept, self._regime(None, bar, new, bar)]
        return bar * self._step

    # -- live --------------------------------------------------------------------------

    def next_bars(self, now_ns: int | None = None) -> list[BarRow]:
        """Bars of every symbol that closed since the last call (the first call: since
        construction) up to ``now_ns`` (default: the clock), in (ts, symbol) order."""
        now = self._clock.time_ns() if now_ns is None else now_ns
        first, stop = self._bar_cursor // self._step, now // self._step
        self._bar_cursor = max(self._bar_cursor, now)
        if stop <= first:
            return []
        rows: list[BarRow] = []
        for symbol, path in self._paths.items():
            bars = self._bars(symbol, path, first, stop)
            ts = (np.arange(first, stop, dtype=np.int64) * self._step).tolist()
            rows.extend(
                BarRow(symbol, self.interval, t, o, h, lo, c, v, ORIGIN, _SIMULATED)
                for t, o, h, lo, c, v in zip(
                    ts,
                    bars.open.tolist(),
                    bars.high.tolist(),
                    bars.low.tolist(),
                    bars.close.tolist(),
                    bars.volume.tolist(),
                    strict=True,
                )
            )
        rows.sort(key=lambda row: row.ts)  # stable: symbols keep their order within a ts
        return rows

    def ticks(self, now_ns: int | None = None) -> list[TickEvent]:
        """The tape since the last call up to ``now_ns``: for each trade a
        :class:`QuoteUpdated` then a :class:`TradeReported` at the trade's time, in time
        order. After a stall only the last :data:`TICK_CATCHUP_BARS` bars are replayed."""
        now = self._clock.time_ns() if now_ns is None else now_ns
        after = self._tick_cursor
        self._tick_cursor = max(after, now)
        first = max(after // self._step, now // self._step - TICK_CATCHUP_BARS + 1)
        found: list[tuple[int, int, TickEvent]] = []
        for symbol, path in self._paths.items():
            for bar in range(first, now // self._step + 1):
                ticks = self._ticks(symbol, path, bar)
                for i in np.flatnonzero((ticks.ts > after) & (ticks.ts <= now)).tolist():
                    quote, trade = _tick_events(symbol, ticks, i)
                    found.append((quote.ts_event, len(found), quote))
                    found.append((trade.ts_event, len(found), trade))
        found.sort(key=lambda item: (item[0], item[1]))
        return [event for _, _, event in found]

    # -- MarketSource ------------------------------------------------------------------

    def history(self, symbol: str, interval: str, start_ns: int, end_ns: int) -> pd.DataFrame:
        """Closed bars of ``[start_ns, end_ns)``: ``ts`` (int64 UTC ns), OHLCV and
        ``flags`` (always :attr:`BarFlag.SIMULATED`, so a synthetic bar cannot be stored
        unflagged). ``interval`` must be a multiple of the market's own interval."""
        path = self._path(symbol)
        width = interval_ns(interval)
        if width % self._step:
            raise IntervalError(
                f"the synthetic market makes {self.interval} bars; {interval} is not a multiple"
            )
        first = max(-(-start_ns // width), -(-path.earliest_ns // width)) * width
        stop = min(end_ns, self._clock.time_ns() - width + 1)
        if first >= stop:
            return pd.DataFrame({name: pd.Series(dtype=_dtype(name)) for name in RAW_COLUMNS})
        last = (stop - 1) // width * width
        bin_width = min(width, DAY_NS)
        days = range(first // DAY_NS, (last + width - 1) // DAY_NS + 1)
        anchor_day = path.anchor_bar // self._per_block
        # Days before the anchor chain backwards: walk them newest first, so each day's
        # draws serve both its start price and its bars.
        pieces: dict[int, list[np.ndarray]] = {}
        for day in [
            *(d for d in reversed(days) if d < anchor_day),
            *(d for d in days if d >= anchor_day),
        ]:
            bars = self._bars(symbol, path, day * self._per_block, (day + 1) * self._per_block)
            ts = (np.arange(len(bars.open), dtype=np.int64) + bars.first_bar) * self._step
            pieces[day] = _aggregate(ts, bars, bin_width)
        ordered = [pieces[day] for day in days]
        columns = [np.concatenate(parts) for parts in zip(*ordered, strict=True)]
        if width > DAY_NS:
            columns = _aggregate_columns(columns, width)
        keep = (columns[0] >= first) & (columns[0] < stop)
        columns = [col[keep] for col in columns]
        columns.append(np.full(len(columns[0]), _SIMULATED, dtype=np.int64))
        return pd.DataFrame(dict(zip(RAW_COLUMNS, columns, strict=True)))

    def quotes(self, symbols: Sequence[str]) -> list[Quote]:
        """The latest quote and trade of each known symbol at the clock's now."""
        now = self._clock.time_ns()
        out = []
        for symbol in symbols:
            path = self._paths.get(symbol)
            if path is None:
                continue
            bar = now // self._step
            ticks = self._ticks(symbol, path, bar)
            done = np.flatnonzero(ticks.ts <= now)
            if not len(done):
                ticks = self._ticks(symbol, path, bar - 1)
                done = np.arange(len(ticks.ts))
            i = int(done[-1])
            out.append(
                Quote(
                    symbol=symbol,
                    ts=int(ticks.ts[i]),
                    bid=float(ticks.bid[i]),
                    ask=float(ticks.ask[i]),
                    bid_size=float(ticks.bid_size[i]),
                    ask_size=float(ticks.ask_size[i]),
                    last=float(ticks.price[i]),
                    volume=float(ticks.session_volume_before[i] + ticks.size[i]),
                    origin=ORIGIN,
                    simulated=True,
                )
            )
        return out

    def fundamentals(self, symbol: str) -> Fundamentals:
        """A simulated instrument's master data: only its name says what it is."""
        self._path(symbol)
        return Fundamentals(
            symbol=symbol,
            as_of=self._clock.time_ns(),
            name=f"{symbol} (simulated)",
            exchange="SIM",
            currency="USD",
        )

    # -- the path ----------------------------------------------------------------------

    def _path(self, symbol: str) -> _Path:
        path = self._paths.get(symbol)
        if path is None:
            raise SymbolNotFound(ORIGIN, symbol, "not one of the simulated symbols")
        return path

    def _regime(self, path: _Path | None, start: int, new: Scenario, event: int) -> Regime:
        sign = 1.0
        if new.gap and path is not None:
            sign = 1.0 if self._generator(path, event, _JUMP).random() < 0.5 else -1.0
        return Regime(start, new, event, sign)

    def _generator(self, path: _Path, index: int, stream: int) -> np.random.Generator:
        entropy = [self._seed, path.key, self._step // 10**9, index, stream]
        return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy)))

    def _forget(self, symbol: str, bar: int) -> None:
        """Drop what a regime change from ``bar`` on invalidates."""
        block = bar // self._per_block if bar > BEFORE_TIME else BEFORE_TIME
        path = self._paths[symbol]
        path.starts = {j: v for j, v in path.starts.items() if j <= block}
        for key in [k for k in self._draw_cache if k[0] == symbol and k[1] >= block]:
            del self._draw_cache[key]
        for key in [k for k in self._tick_cache if k[0] == symbol and k[1] >= bar]:
            del self._tick_cache[key]

    def _draws(self, symbol: str, path: _Path, block: int) -> _Draws:
        key = (symbol, block)
        cached = self._draw_cache.get(key)
        if cached is not None:
            self._draw_cache.move_to_end(key)
            return cached
        size = self._per_block
        p = bar_params(path.regimes, block * size, size, self._step)
        gen = self._generator(path, block, _BARS)
        z = gen.standard_normal((3, size))
        u = gen.random((2, size))
        trades = 1 + gen.poisson(np.maximum(p.rate - 1, 0.0))
        share = (trades - 1) / trades
        var = p.vol**2
        gap = p.drift / trades + np.sqrt(var / trades) * z[0] + p.jump
        body = p.drift * share + np.sqrt(var * share) * z[1]
        log_close = np.cumsum(gap + body)
        # Excess of the Brownian-bridge max/min over the bar's endpoints.
        width = np.abs(body)
        up = (np.sqrt(body**2 - 2 * var * share * np.log1p(-u[0])) - width) / 2
        down = (np.sqrt(body**2 - 2 * var * share * np.log1p(-u[1])) - width) / 2
        up_wins = up >= down
        up = np.where((trades <= 2) | ((trades == 3) & ~up_wins), 0.0, up)
        down = np.where((trades <= 2) | ((trades == 3) & up_wins), 0.0, down)
        lots = trades * p.size_median * np.exp(p.size_sigma * z[2] / np.sqrt(trades))
        volume = np.maximum(trades, np.rint(lots)).astype(np.float64)
        draws = _Draws(log_close - body, log_close, up, down, volume, trades)
        self._draw_cache[key] = draws
        if len(self._draw_cache) > _CACHE_BLOCKS[0] + _CACHE_BLOCKS[1] * len(self._paths):
            self._draw_cache.popitem(last=False)
        return draws

    def _start(self, symbol: str, path: _Path, block: int) -> float:
        """Log price at the start of ``block``, chained from the anchor's block."""
        starts = path.starts
        if block in starts:
            return starts[block]
        anchor = path.anchor_bar // self._per_block
        if anchor not in starts:
            before = path.anchor_bar - anchor * self._per_block
            draws = self._draws(symbol, path, anchor)
            starts[anchor] = path.log_start - (
                float(draws.log_close[before - 1]) if before else 0.0
            )
        j = block
        if block > anchor:
            while j not in starts:
                j -= 1
            for i in range(j, block):
                starts[i + 1] = starts[i] + self._draws(symbol, path, i).total
        else:
            while j not in starts:
                j += 1
            for i in range(j, block, -1):
                starts[i - 1] = starts[i] - self._draws(symbol, path, i - 1).total
        return starts[block]

    def _bars(self, symbol: str, path: _Path, first: int, stop: int) -> _Bars:
        """Priced bars ``first … stop - 1``."""
        parts = []
        for block in range(first // self._per_block, (stop - 1) // self._per_block + 1):
            base = block * self._per_block
            lo, hi = max(first, base) - base, min(stop, base + self._per_block) - base
            d = self._draws(symbol, path, block)
            start = self._start(symbol, path, block)
            o, c = np.exp(start + d.log_open[lo:hi]), np.exp(start + d.log_close[lo:hi])
            top = np.maximum(d.log_open[lo:hi], d.log_close[lo:hi]) + d.excess_high[lo:hi]
            bottom = np.minimum(d.log_open[lo:hi], d.log_close[lo:hi]) - d.excess_low[lo:hi]
            high = np.maximum(np.exp(start + top), np.maximum(o, c))
            low = np.minimum(np.exp(start + bottom), np.minimum(o, c))
            parts.append((o, high, low, c, d.volume[lo:hi], d.trades[lo:hi]))
        o, h, lo_, c, v, n = (np.concatenate(col) for col in zip(*parts, strict=True))
        return _Bars(first, o, h, lo_, c, v, n)

    def _ticks(self, symbol: str, path: _Path, bar: int) -> _Ticks:
        key = (symbol, bar)
        cached = self._tick_cache.get(key)
        if cached is None:
            cached = self._tick_cache[key] = self._make_ticks(symbol, path, bar)
            if len(self._tick_cache) > _CACHE_TICKS[0] + _CACHE_TICKS[1] * len(self._paths):
                self._tick_cache.popitem(last=False)
        return cached

    def _make_ticks(self, symbol: str, path: _Path, bar: int) -> _Ticks:
        day_first = bar // self._per_block * self._per_block
        bars = self._bars(symbol, path, min(day_first, bar - 1), bar + 1)
        o, h, lo, c = (float(a[-1]) for a in (bars.open, bars.high, bars.low, bars.close))
        n, volume = int(bars.trades[-1]), int(bars.volume[-1])
        previous_close = float(bars.close[-2])
        session_before = float(bars.volume[day_first - bars.first_bar : -1].sum())
        p = bar_params(path.regimes, bar, 1, self._step)
        gen = self._generator(path, bar, _TICKS)

        ts = bar * self._step + np.sort(gen.integers(0, self._step, n))
        order = gen.permutation(np.arange(1, n - 1)) if n >= 3 else np.zeros(0, dtype=np.int64)
        # The model extends the high or low only where there are trades to carry it.
        high_at = int(order[0]) if len(order) and h > max(o, c) else -1
        low_at = int(order[-1]) if len(order) and lo < min(o, c) else -1
        anchors = {0: o, n - 1: c} | ({high_at: h} if high_at > 0 else {})
        anchors |= {low_at: lo} if low_at > 0 else {}
        where = np.array(sorted(anchors), dtype=np.float64)
        path_logs = np.interp(np.arange(n), where, np.log([anchors[int(k)] for k in where]))
        noise = gen.standard_normal(n) * float(p.vol[0]) / math.sqrt(n)
        price = np.clip(np.exp(path_logs + noise), lo, h)
        for at, value in anchors.items():
            price[at] = value
        size = 1.0 + gen.multinomial(volume - n, gen.dirichlet(np.full(n, 2.0)))
        move = np.diff(price, prepend=previous_close)
        buy = np.where(move == 0, gen.random(n) < 0.5, move > 0)
        spread = float(p.spread[0]) * (1 + 0.3 * np.abs(gen.standard_normal(n)))
        median, sigma = float(p.size_median[0]), float(p.size_sigma[0])
        depth_hit = size + np.rint(gen.lognormal(math.log(median), sigma, n))
        depth_other = np.maximum(1.0, np.rint(gen.lognormal(math.log(median), sigma, n)))
        return _Ticks(
            ts=ts,
            price=price,
            size=size,
            buy=buy,
            bid=np.where(buy, price * (1 - spread), price),
            ask=np.where(buy, price, price * (1 + spread)),
            bid_size=np.where(buy, depth_other, depth_hit),
            ask_size=np.where(buy, depth_hit, depth_other),
            last_before=np.concatenate([[previous_close], price[:-1]]),
            session_volume_before=session_before + np.cumsum(size) - size,
        )


def _scenario(name: str) -> Scenario:
    return scenario(name)


def _tick_events(symbol: str, ticks: _Ticks, i: int) -> tuple[QuoteUpdated, TradeReported]:
    ts = int(ticks.ts[i])
    quote = QuoteUpdated(
        ts_event=ts,
        symbol=symbol,
        bid=float(ticks.bid[i]),
        ask=float(ticks.ask[i]),
        bid_size=float(ticks.bid_size[i]),
        ask_size=float(ticks.ask_size[i]),
        last=float(ticks.last_before[i]),
        volume=float(ticks.session_volume_before[i]),
        origin=ORIGIN,
        simulated=True,
    )
    trade = TradeReported(
        ts_event=ts,
        symbol=symbol,
        price=float(ticks.price[i]),
        size=float(ticks.size[i]),
        aggressor="buy" if ticks.buy[i] else "sell",
        origin=ORIGIN,
        simulated=True,
    )
    return quote, trade


def _aggregate(ts: np.ndarray, bars: _Bars, width: int) -> list[np.ndarray]:
    return _aggregate_columns([ts, bars.open, bars.high, bars.low, bars.close, bars.volume], width)


def _aggregate_columns(columns: list[np.ndarray], width: int) -> list[np.ndarray]:
    """OHLCV of epoch-aligned bins of ``width`` ns (``columns``: ts, o, h, l, c, v)."""
    ts, o, h, lo, c, v = columns
    keys = ts // width * width
    if not len(keys):
        return columns
    starts = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
    ends = np.concatenate([starts[1:], [len(keys)]]) - 1
    return [
        keys[starts],
        o[starts],
        np.maximum.reduceat(h, starts),
        np.minimum.reduceat(lo, starts),
        c[ends],
        np.add.reduceat(v, starts),
    ]


def _dtype(name: str) -> str:
    return "int64" if name in ("ts", "flags") else "float64"
