"""The normalizer: every source's bars and quotes into the one schema of :mod:`feeds.schema`.

:func:`normalize_bars` takes a source's raw frame (``ts``, ``open, high, low, close,
volume``; optionally ``adj_close``, ``dividend``, ``split``, ``flags``) and returns
:class:`NormalizeResult`: the clean bars (exactly ``BAR_FRAME_COLUMNS``, ``ts`` strictly
increasing), what it rejected and repaired (counted, never silent), and the gaps it saw.
Everything is vectorized; no Python loop runs per row.

Rules, checked in this order; a row is rejected for the first reason that applies:

======================  ======  ==========================================================
rule                    action  detail
======================  ======  ==========================================================
``bad_ts``              reject  ``ts`` missing, unparseable, NaT, or a DST-ambiguous or
                                nonexistent local time
``non_finite_price``    reject  NaN, ±inf or non-numeric text in ``open/high/low/close``
``negative_price``      reject  any price < 0
``zero_price``          reject  any price == 0
``non_finite_volume``   reject  volume ±inf
``negative_volume``     reject  volume < 0
``high_below_low``      reject  ``high < low``
``ohlc_outside_range``  reject  ``open`` or ``close`` outside ``[low·(1-tol), high·(1+tol)]``
                                (``tol = widen_tolerance``, 1 %): too far off to be a rounding
                                or feed-merge artefact
``misaligned_ts``       reject  intraday only: ``ts`` off the interval grid. The grid is
                                ``anchor_ns + k·interval`` when ``anchor_ns`` is given,
                                otherwise the phase most rows of that UTC day share (so NYSE
                                hourly bars at :30 are aligned). Rejected, not floored:
                                flooring would merge a stray row into a neighbour's bar
``bad_adj_close``       reject  ``adjust="adjust"`` only: ``adj_close`` NaN, inf or <= 0
``nan_volume``          repair  NaN volume → 0
``ohlc_widened``        repair  ``open``/``close`` within tolerance outside ``[low, high]``:
                                ``high``/``low`` widened to include them
``out_of_order``        repair  rows sorted by ``ts``; counts places where a row's ``ts`` is
                                earlier than the row before it
``duplicate``           repair  same ``ts`` more than once: the last row (input order) wins;
                                counts the rows dropped
======================  ======  ==========================================================

So ``len(bars) + sum(rejected) == len(raw) - repaired["duplicate"]`` always holds.

Timestamps: integer ``ts`` is UTC ns; tz-aware datetimes are converted to UTC; naive
datetimes (or ISO-8601 text without an offset) are a caller bug and raise ``ValueError``
unless ``tz`` names the zone they are in. Text that is not ISO-8601 at all is parsed
leniently (dateutil, slow). Daily and longer bars are stamped at the session's date,
00:00 UTC: the *local* date of a tz-aware datetime (a Tokyo session opening at 00:00 JST
keeps its date), the UTC date of an integer ``ts``.

Corporate actions: a bar whose ``dividend > 0`` or ``split`` is neither 0 nor 1 gets
:attr:`BarFlag.CORPORATE_ACTION`. With ``adjust="adjust"`` and an ``adj_close`` column,
``open/high/low/close`` are scaled by ``adj_close / close`` (volume unchanged; Yahoo's
volume is already split-adjusted) and every bar gets :attr:`BarFlag.ADJUSTED`; without an
``adj_close`` column prices stay raw and unflagged.

Gaps (reported as ``(start_ns, end_ns, missing)``: the first missing slot, the ``ts`` of
the next bar present, and how many slots are missing; nothing is filled in):

- intraday, ``continuous`` (24 h markets; the default when ``simulated``): every missing
  grid slot between two bars.
- intraday, exchange data: missing slots between two bars of the same UTC day that are
  less than 4 h apart. A longer silence is taken for a session break; lunch breaks
  shorter than 4 h (Tokyo, Hong Kong) are reported as gaps (false positives).
- ``1d``: weekdays missing between two bars; exchange holidays are false positives.
- longer intervals: no gap detection.

Observability: ``qsuite_feed_rows_rejected_total{reason}`` and
``qsuite_feed_rows_repaired_total{rule}``, plus one WARNING per call that rejected rows,
with the counts and a sample row. :func:`normalize_quote` counts
``qsuite_feed_quotes_rejected_total{reason}``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final, Literal, NamedTuple

import msgspec
import numpy as np
import pandas as pd
from loguru import logger

from engine.bus.events import Origin
from engine.persistence.models.market import BarFlag
from engine.stats import STATS, StatsRegistry
from feeds.schema import BAR_FRAME_COLUMNS, INTRADAY, NS, PRICE_COLUMNS, Quote, interval_ns
from feeds.source import SourceDataError

DAY_NS: Final = 86_400 * NS
SESSION_BREAK_NS: Final = 4 * 3_600 * NS
REJECT_REASONS: Final = (
    "bad_ts",
    "non_finite_price",
    "negative_price",
    "zero_price",
    "non_finite_volume",
    "negative_volume",
    "high_below_low",
    "ohlc_outside_range",
    "misaligned_ts",
    "bad_adj_close",
)
REPAIR_RULES: Final = ("nan_volume", "ohlc_widened", "out_of_order", "duplicate")
REQUIRED_COLUMNS: Final = ("ts", *PRICE_COLUMNS, "volume")
QUOTE_REJECT_REASONS: Final = (
    "bad_ts",
    "non_finite",
    "non_positive_price",
    "negative_size",
    "crossed",
)

_MISALIGNED = REJECT_REASONS.index("misaligned_ts") + 1
_BAD_ADJ = REJECT_REASONS.index("bad_adj_close") + 1
_NAT: Final = np.iinfo(np.int64).min


@dataclass(frozen=True, slots=True)
class NormalizeResult:
    """What :func:`normalize_bars` made of one raw frame."""

    bars: pd.DataFrame
    """Exactly ``BAR_FRAME_COLUMNS``; ``ts`` int64 UTC ns, strictly increasing."""
    rejected: dict[str, int]
    """Rows dropped, by reason (only reasons that occurred)."""
    repaired: dict[str, int]
    """Rows changed or merged, by rule (only rules that applied)."""
    gaps: list[tuple[int, int, int]]
    """``(first missing ts, ts of the next bar, missing slots)``, in time order."""


class QuoteRejected(NamedTuple):
    """A quote :func:`normalize_quote` refused, and why (one of ``QUOTE_REJECT_REASONS``)."""

    reason: str
    quote: Quote


def normalize_bars(
    raw: pd.DataFrame,
    *,
    symbol: str,
    interval: str,
    origin: Origin,
    simulated: bool = False,
    adjust: Literal["flag", "adjust"] = "flag",
    tz: str | None = None,
    anchor_ns: int | None = None,
    continuous: bool | None = None,
    widen_tolerance: float = 0.01,
    price_scale: float = 1.0,
    stats: StatsRegistry = STATS,
) -> NormalizeResult:
    """Normalize one symbol's raw bars (rules in the module docstring).

    ``tz`` is the zone of naive timestamps (the source declares it); ``anchor_ns`` fixes
    the intraday grid phase; ``continuous`` selects the 24 h gap rule (default:
    ``simulated``); ``price_scale`` multiplies every price (0.01 for symbols Yahoo
    quotes in a minor unit such as ``GBp``; see :mod:`feeds.exchanges`, dividends
    excluded: they only flag). Raises :class:`~feeds.source.SourceDataError` when a
    required column is missing, ``ValueError`` for naive timestamps without ``tz``,
    :class:`~feeds.schema.IntervalError` for an unknown interval.
    """
    step = interval_ns(interval)
    intraday = interval in INTRADAY
    frame = _with_ts_column(raw)
    missing = [name for name in REQUIRED_COLUMNS if name not in frame.columns]
    if missing:
        raise SourceDataError(
            f"{origin} bars of {symbol} lack column(s) {', '.join(missing)}; "
            f"got {', '.join(map(str, frame.columns)) or 'none'}"
        )
    ts, ts_ok = _timestamps(frame["ts"], tz=tz, daily=not intraday)
    prices = np.column_stack([_floats(frame[name]) for name in PRICE_COLUMNS]) * price_scale
    volume = _floats(frame["volume"])
    adj_close = _floats(frame["adj_close"]) * price_scale if "adj_close" in frame.columns else None

    code = _reject_codes(ts_ok, prices, volume, widen_tolerance)
    if intraday:
        _mark_misaligned(code, ts, step, anchor_ns)
    if adjust == "adjust" and adj_close is not None:
        code[(code == 0) & ~(np.isfinite(adj_close) & (adj_close > 0))] = _BAD_ADJ
    keep = code == 0
    rejected = _counts(code[~keep], REJECT_REASONS)

    ts, prices, volume = ts[keep], prices[keep], volume[keep]
    repaired: dict[str, int] = {}
    nan_volume = np.isnan(volume)
    repaired["nan_volume"] = int(nan_volume.sum())
    volume[nan_volume] = 0.0
    o, h, lo, c = prices.T
    high, low = np.maximum.reduce([h, o, c]), np.minimum.reduce([lo, o, c])
    repaired["ohlc_widened"] = int(((high != h) | (low != lo)).sum())
    prices = np.column_stack([o, high, low, c])

    flags = _flags(frame, keep, simulated)
    if adjust == "adjust" and adj_close is not None:
        prices *= (adj_close[keep] / c)[:, None]
        flags |= int(BarFlag.ADJUSTED)

    repaired["out_of_order"] = int((np.diff(ts) < 0).sum())
    order = np.argsort(ts, kind="stable")
    ts, prices, volume, flags = ts[order], prices[order], volume[order], flags[order]
    last = np.append(ts[1:] != ts[:-1], True) if len(ts) else np.zeros(0, dtype=bool)
    repaired["duplicate"] = int((~last).sum())
    ts, prices, volume, flags = ts[last], prices[last], volume[last], flags[last]

    bars = _bar_frame(symbol, interval, origin, ts, prices, volume, flags)
    gaps = _gaps(ts, step, interval, continuous=simulated if continuous is None else continuous)
    repaired = {rule: n for rule, n in repaired.items() if n}
    _report(stats, frame, code, rejected, repaired, symbol=symbol, interval=interval, origin=origin)
    return NormalizeResult(bars, rejected, repaired, gaps)


def normalize_quote(quote: Quote, *, stats: StatsRegistry = STATS) -> Quote | QuoteRejected:
    """``quote`` with float fields, or why it is refused: ``bad_ts`` (ts <= 0),
    ``non_finite``, ``non_positive_price`` (bid, ask or last <= 0), ``negative_size``,
    ``crossed`` (bid > ask; a locked quote, bid == ask, passes)."""
    values = [quote.bid, quote.ask, quote.last, quote.bid_size, quote.ask_size, quote.volume]
    reason = ""
    if not isinstance(quote.ts, int) or quote.ts <= 0:
        reason = "bad_ts"
    elif not all(isinstance(v, int | float) and math.isfinite(v) for v in values):
        reason = "non_finite"
    elif min(quote.bid, quote.ask, quote.last) <= 0:
        reason = "non_positive_price"
    elif min(quote.bid_size, quote.ask_size, quote.volume) < 0:
        reason = "negative_size"
    elif quote.bid > quote.ask:
        reason = "crossed"
    if reason:
        stats.counter(
            "qsuite_feed_quotes_rejected_total", "Quotes refused by the normalizer", reason=reason
        ).inc()
        logger.bind(component="feeds.normalizer", symbol=quote.symbol).warning(
            "Cannot accept quote of {} from {}: {} (bid {}, ask {}, last {})",
            quote.symbol,
            quote.origin,
            reason,
            quote.bid,
            quote.ask,
            quote.last,
        )
        return QuoteRejected(reason, quote)
    bid, ask, last, bid_size, ask_size, volume = (float(v) for v in values)
    return msgspec.structs.replace(
        quote,
        bid=bid,
        ask=ask,
        last=last,
        bid_size=bid_size,
        ask_size=ask_size,
        volume=volume,
    )


# -- input -----------------------------------------------------------------------------


def _with_ts_column(raw: pd.DataFrame) -> pd.DataFrame:
    if "ts" in raw.columns:
        return raw  # read by position only; no copy
    if raw.index.name == "ts" or isinstance(raw.index, pd.DatetimeIndex):
        return raw.rename_axis("ts").reset_index()
    return raw


def _floats(values: pd.Series) -> np.ndarray:
    """float64 copy; text that is not a number becomes NaN (then rejected or repaired)."""
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        values = pd.to_numeric(values, errors="coerce")
    return np.array(values.to_numpy(dtype="float64", na_value=np.nan), dtype=np.float64)


def _timestamps(values: pd.Series, *, tz: str | None, daily: bool) -> tuple[np.ndarray, np.ndarray]:
    """``(ts int64 UTC ns, valid mask)``; invalid entries hold a sentinel."""
    if pd.api.types.is_integer_dtype(values):
        ok = values.notna().to_numpy()
        ts = values.to_numpy(dtype="int64", na_value=0)
        return (ts - ts % DAY_NS if daily else ts), ok
    if pd.api.types.is_float_dtype(values):
        floats = values.to_numpy(dtype="float64", na_value=np.nan)
        ok = np.isfinite(floats)
        ts = np.where(ok, floats, 0).astype(np.int64)
        return (ts - ts % DAY_NS if daily else ts), ok
    stamps = values if pd.api.types.is_datetime64_any_dtype(values) else _parse(values)
    if stamps.dt.tz is None:
        if tz is None and stamps.notna().any():
            raise ValueError(
                "naive timestamps (no timezone) are ambiguous; the source must declare "
                "their zone (tz=...) or send tz-aware or UTC-ns timestamps"
            )
        if not daily:
            stamps = stamps.dt.tz_localize(tz or "UTC", ambiguous="NaT", nonexistent="NaT")
    if daily:
        # The session's own date, whatever zone it traded in.
        local = stamps.dt.tz_localize(None) if stamps.dt.tz is not None else stamps
        naive = local.dt.normalize()
    else:
        naive = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    ns = naive.dt.as_unit("ns").to_numpy(dtype="datetime64[ns]").view(np.int64)
    ok = ns != _NAT
    return np.where(ok, ns, 0), ok


def _parse(values: pd.Series) -> pd.Series:
    def parse(fmt: str) -> pd.Series:
        try:
            return pd.to_datetime(values, format=fmt, errors="coerce")
        except ValueError:  # mixed offsets (or offset and naive) in one column
            return pd.to_datetime(values, format=fmt, errors="coerce", utc=True)

    stamps = parse("ISO8601")
    if len(values) and stamps.isna().all() and values.notna().any():
        stamps = parse("mixed")  # not ISO-8601 at all: lenient, per-row parsing
    return stamps


# -- rules -----------------------------------------------------------------------------


def _reject_codes(
    ts_ok: np.ndarray, prices: np.ndarray, volume: np.ndarray, tolerance: float
) -> np.ndarray:
    """Per row: 0 if it passes, else 1 + the index of its first failing reason."""
    with np.errstate(invalid="ignore"):
        o, h, lo, c = prices.T
        outside = (
            (o < lo * (1 - tolerance))
            | (o > h * (1 + tolerance))
            | (c < lo * (1 - tolerance))
            | (c > h * (1 + tolerance))
        )
        conditions = [
            ~ts_ok,
            ~np.isfinite(prices).all(axis=1),
            (prices < 0).any(axis=1),
            (prices == 0).any(axis=1),
            np.isinf(volume),
            volume < 0,
            h < lo,
            outside,
        ]
    codes = list(range(1, len(conditions) + 1))
    return np.asarray(np.select(conditions, codes, default=0), dtype=np.int8)


def _mark_misaligned(code: np.ndarray, ts: np.ndarray, step: int, anchor_ns: int | None) -> None:
    candidates = np.flatnonzero(code == 0)
    if not len(candidates):
        return
    t = ts[candidates]
    phase = t % step
    if anchor_ns is not None:
        expected = np.full(len(t), anchor_ns % step, dtype=np.int64)
    elif (phase == phase[0]).all():
        return  # the usual case: one phase throughout
    else:
        # The phase most rows of each UTC day share (ties: the smallest phase).
        day = t // DAY_NS
        order = np.lexsort((phase, day))
        d, p = day[order], phase[order]
        starts = np.flatnonzero(np.concatenate([[True], (d[1:] != d[:-1]) | (p[1:] != p[:-1])]))
        counts = np.diff(np.concatenate([starts, [len(d)]]))
        run_day, run_phase = d[starts], p[starts]
        best = np.lexsort((run_phase, -counts, run_day))
        best = best[np.concatenate([[True], run_day[best][1:] != run_day[best][:-1]])]
        expected = run_phase[best][np.searchsorted(run_day[best], day)]
    code[candidates[phase != expected]] = _MISALIGNED


def _flags(frame: pd.DataFrame, keep: np.ndarray, simulated: bool) -> np.ndarray:
    if "flags" in frame.columns:
        given = pd.to_numeric(frame["flags"], errors="coerce").fillna(0).to_numpy()
        flags = given.astype(np.int64)[keep]
    else:
        flags = np.zeros(int(keep.sum()), dtype=np.int64)
    if simulated:
        flags |= int(BarFlag.SIMULATED)
    event = np.zeros(len(frame), dtype=bool)
    if "dividend" in frame.columns:
        event |= np.nan_to_num(_floats(frame["dividend"])) > 0
    if "split" in frame.columns:
        split = np.nan_to_num(_floats(frame["split"]))
        event |= (split > 0) & (split != 1)
    flags[event[keep]] |= int(BarFlag.CORPORATE_ACTION)
    return flags


def _gaps(
    ts: np.ndarray, step: int, interval: str, *, continuous: bool
) -> list[tuple[int, int, int]]:
    if len(ts) < 2:
        return []
    prev, nxt = ts[:-1], ts[1:]
    if interval in INTRADAY:
        missing = (nxt - prev) // step - 1
        found = missing > 0
        if not continuous:
            found &= (prev // DAY_NS == nxt // DAY_NS) & (nxt - prev < SESSION_BREAK_NS)
        starts = prev[found] + step
    elif interval == "1d":
        days_prev = (prev // DAY_NS).astype("datetime64[D]")
        days_next = (nxt // DAY_NS).astype("datetime64[D]")
        missing = np.busday_count(days_prev + 1, days_next)
        found = missing > 0
        first = np.busday_offset(days_prev[found] + 1, 0, roll="forward")
        starts = first.astype(np.int64) * DAY_NS
    else:
        return []
    return [
        (int(s), int(e), int(n)) for s, e, n in zip(starts, nxt[found], missing[found], strict=True)
    ]


# -- output ----------------------------------------------------------------------------


def _bar_frame(
    symbol: str,
    interval: str,
    origin: str,
    ts: np.ndarray,
    prices: np.ndarray,
    volume: np.ndarray,
    flags: np.ndarray,
) -> pd.DataFrame:
    index = pd.RangeIndex(len(ts))
    columns: dict[str, Any] = {
        "symbol": pd.Series(symbol, index=index, dtype="str"),
        "interval": pd.Series(interval, index=index, dtype="str"),
        "ts": ts.astype(np.int64),
        **{name: prices[:, i].astype(np.float64) for i, name in enumerate(PRICE_COLUMNS)},
        "volume": volume.astype(np.float64),
        "source": pd.Series(origin, index=index, dtype="str"),
        "flags": flags.astype(np.int64),
    }
    return pd.DataFrame(columns, columns=list(BAR_FRAME_COLUMNS))


def _counts(codes: np.ndarray, names: tuple[str, ...]) -> dict[str, int]:
    found = np.bincount(codes, minlength=len(names) + 1)
    return {name: int(found[i + 1]) for i, name in enumerate(names) if found[i + 1]}


def _report(
    stats: StatsRegistry,
    frame: pd.DataFrame,
    code: np.ndarray,
    rejected: dict[str, int],
    repaired: dict[str, int],
    *,
    symbol: str,
    interval: str,
    origin: str,
) -> None:
    for reason, n in rejected.items():
        stats.counter(
            "qsuite_feed_rows_rejected_total", "Bar rows refused by the normalizer", reason=reason
        ).inc(n)
    for rule, n in repaired.items():
        stats.counter(
            "qsuite_feed_rows_repaired_total", "Bar rows fixed by the normalizer", rule=rule
        ).inc(n)
    if not rejected:
        return
    first = int(np.flatnonzero(code)[0])
    sample = {str(name): frame[name].iloc[first] for name in frame.columns}
    logger.bind(component="feeds.normalizer", symbol=symbol).warning(
        "Cannot use {} of {} {} {} rows from {}: {}; e.g. row {} ({}): {}",
        sum(rejected.values()),
        len(frame),
        symbol,
        interval,
        origin,
        ", ".join(f"{reason}={n}" for reason, n in rejected.items()),
        first,
        REJECT_REASONS[code[first] - 1],
        sample,
    )
