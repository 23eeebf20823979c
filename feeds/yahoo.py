"""Yahoo Finance over yfinance: historical bars, latest quotes and fundamentals.

yfinance does the talking (the v8 chart API, quoteSummary, the v7 quote, the cookie and
crumb dance) over one :class:`~feeds.ratelimit.GatedSession`: every HTTP request of
this process waits its turn at the gate shared by all QSuite processes, with a short
connect timeout, and wire failures reach yfinance already typed (timeouts, refused
connections, 5xx → :class:`SourceUnavailable`; 429 → :class:`RateLimited`).
What yfinance then raises is mapped in :meth:`YahooSource._call` (delisted, no
timezone, 404 → :class:`SymbolNotFound`; unreadable answers → :class:`SourceDataError`).

yfinance keeps process-wide state, which this module sets once, for the first
:class:`YahooSource`: exceptions are raised, not logged and swallowed
(``yf.config.debug.hide_exceptions = False``); its own retries are off (the gate and
the feed's breaker decide); its timezone and cookie caches live in
``<state_dir>/yfinance``. Its data singleton uses the session of the latest ticker, so
keep one :class:`YahooSource` per process.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any, Final, TypeVar

import msgspec
import numpy as np
import pandas as pd
import yfinance as yf
from curl_cffi import requests as curl_requests
from loguru import logger
from yfinance import exceptions as yfe

from engine.bus.events import Origin
from engine.clock import Clock, LiveClock
from engine.stats import STATS, StatsRegistry
from feeds.exchanges import exchange_for_yahoo_code
from feeds.ratelimit import GatedSession, RequestGate
from feeds.schema import INTRADAY, NS, Fundamentals, Quote, interval_ns
from feeds.source import RateLimited, SourceDataError, SourceUnavailable, SymbolNotFound
from feeds.yahoo_chunks import (
    RAW_COLUMNS,
    clip_notice,
    day_ceil,
    empty_frame,
    plan_chunks,
    stitch,
    to_raw_frame,
)

__all__ = ["RAW_COLUMNS", "YahooSettings", "YahooSource"]

T = TypeVar("T")

#: Hosts yfinance can do without (it falls back to another cookie strategy), so a DNS
#: failure there (ad-blocking resolvers list them) is left for yfinance to handle.
_OPTIONAL_HOSTS: Final = frozenset({"fc.yahoo.com"})
_NOT_FOUND_HINTS: Final = ("delisted", "no data found", "not found")


class YahooSettings(msgspec.Struct, frozen=True, kw_only=True):
    """How the Yahoo source talks to Yahoo."""

    connect_timeout_s: float = 3.0
    """Give up connecting (DNS + TCP + TLS) after this long: offline fails fast."""
    read_timeout_s: float = 15.0
    """Give up on an answer after this long once connected."""
    min_interval_s: float = 0.5
    """Least time between the end of one request and the start of the next, across
    every process sharing the state dir."""
    backoff_base_s: float = 1.0
    """First backoff cap after a 429; doubles with every 429 in a row (full jitter)."""
    backoff_max_s: float = 300.0
    """Largest backoff cap."""
    max_wait_s: float = 10.0
    """A caller whose turn is further away than this (backing off) gets RateLimited
    at once instead of sleeping."""
    lock_timeout_s: float = 60.0
    """Longest wait for the cross-process lock before SourceUnavailable."""


class _NoRows(Exception):
    """Yahoo knows the symbol but has no prices in the range."""


_yf_configured = False


def _configure_yfinance(cache_dir: Path) -> None:
    global _yf_configured
    if _yf_configured:
        return
    yf.config.debug.hide_exceptions = False
    yf.config.network.retries = 0
    cache_dir.mkdir(parents=True, exist_ok=True)
    yf.set_tz_cache_location(str(cache_dir))
    _yf_configured = True


class YahooSource:
    """The Yahoo :class:`~feeds.source.MarketSource` (``name = "yahoo"``).

    Symbols are Yahoo's spelling (``VOD.L``; see :func:`feeds.exchanges.yahoo_symbol`).

    :meth:`history` frames have :data:`RAW_COLUMNS`:

    - ``ts`` int64, UTC ns of the bar's open; daily and longer bars at 00:00 UTC of
      the session's date (in the exchange's calendar);
    - ``open, high, low, close, volume`` float64, **as Yahoo sends them: not adjusted
      for dividends, already adjusted for splits** (Yahoo rewrites past prices when a
      split happens; ``auto_adjust`` is off);
    - ``adj_close`` float64: Yahoo's close adjusted for splits *and* dividends (equal
      to ``close`` for intraday bars); ``adj_close / close`` is the dividend factor the
      normalizer may apply to the other prices;
    - ``dividend`` float64: cash dividend per share going ex on that bar (0.0 if none);
    - ``split`` float64: split ratio taking effect on that bar, new shares per old
      (4.0 for a 4-for-1, 0.5 for a 1-for-2 reverse split; 0.0 if none).

    A range older than Yahoo keeps (see :mod:`feeds.yahoo_chunks`) is clipped: the
    frame holds what exists and ``frame.attrs["clipped"]`` says what was cut; an empty
    range (a weekend, a holiday) is an empty frame, not an error.

    :meth:`quotes` reads the chart's meta (one request per symbol): ``last`` is
    ``regularMarketPrice`` at ``regularMarketTime`` with ``regularMarketVolume``; the
    chart carries no book, so ``bid`` and ``ask`` are ``last`` with size 0 unless the
    meta has ``bid``/``ask``. :meth:`fundamentals` reads ``Ticker.info``;
    ``dividend_yield`` is a fraction (yfinance reports percent); ``exchange`` is
    QSuite's code (``NASDAQ``) when known, else Yahoo's (``NMS``); ``currency`` is
    Yahoo's spelling (``GBp`` is pence).
    """

    name: Origin = "yahoo"

    def __init__(
        self,
        state_dir: Path,
        settings: YahooSettings | None = None,
        *,
        clock: Clock | None = None,
        stats: StatsRegistry = STATS,
        gate: RequestGate | None = None,
        transport: Callable[..., Any] | None = None,
    ) -> None:
        s = settings or YahooSettings()
        self._clock: Clock = clock or LiveClock()
        self.gate = gate or RequestGate(
            state_dir,
            name=self.name,
            min_interval_s=s.min_interval_s,
            backoff_base_s=s.backoff_base_s,
            backoff_max_s=s.backoff_max_s,
            max_wait_s=s.max_wait_s,
            lock_timeout_s=s.lock_timeout_s,
            clock=self._clock,
            stats=stats,
        )
        self._session = GatedSession(
            self.gate,
            label="Yahoo",
            optional_hosts=_OPTIONAL_HOSTS,
            connect_timeout_s=s.connect_timeout_s,
            read_timeout_s=s.read_timeout_s,
            clock=self._clock,
            transport=transport,
        )
        _configure_yfinance(state_dir / "yfinance")
        self._log = logger.bind(component="feed.yahoo")

    def close(self) -> None:
        self._session.close()

    def history(self, symbol: str, interval: str, start_ns: int, end_ns: int) -> pd.DataFrame:
        """Bars of ``[start_ns, end_ns)`` (see the class docstring for the columns).

        Fetched oldest chunk first; an error in any chunk is raised (re-running a
        backfill is idempotent downstream, so nothing is half-kept here)."""
        interval_ns(interval)
        now = self._clock.time_ns()
        chunks = plan_chunks(interval, start_ns, end_ns, now)
        frames = [self._chunk(symbol, interval, a, b) for a, b in chunks]
        frame = stitch(frames)
        notice = clip_notice(interval, start_ns, end_ns, now)
        if notice:
            self._log.bind(symbol=symbol).warning("Cannot backfill all of {}: {}", symbol, notice)
            frame.attrs["clipped"] = notice
        return frame

    def quotes(self, symbols: Sequence[str]) -> list[Quote]:
        """Latest quotes; unknown symbols and unreadable answers are logged and left out,
        while :class:`SourceUnavailable` and :class:`RateLimited` end the whole call
        (the breaker must see them)."""
        out = []
        for symbol in symbols:
            try:
                out.append(self._quote(symbol))
            except (SymbolNotFound, SourceDataError) as exc:
                self._log.bind(symbol=symbol).warning("Cannot quote {}: {}", symbol, exc)
        return out

    def fundamentals(self, symbol: str) -> Fundamentals:
        """Instrument-master facts from ``Ticker.info``."""
        ticker = yf.Ticker(symbol, session=self._session)
        try:
            info = self._call(symbol, lambda: ticker.info)
        except _NoRows as exc:
            raise SymbolNotFound(self.name, symbol, "no quote") from exc
        if not isinstance(info, dict):
            raise SourceDataError(f"Cannot read Yahoo's info for {symbol}: {type(info).__name__}")
        if not any(k in info for k in ("quoteType", "longName", "shortName", "marketCap")):
            raise SymbolNotFound(self.name, symbol, "Yahoo's info is empty")
        code = _text(info.get("exchange"))
        venue = exchange_for_yahoo_code(code) if code else None
        dividend_pct = _num(info.get("dividendYield"))
        return Fundamentals(
            symbol=symbol,
            as_of=self._clock.time_ns(),
            name=_text(info.get("longName")) or _text(info.get("shortName")),
            exchange=venue.code if venue else code,
            currency=_text(info.get("currency")),
            sector=_text(info.get("sector")),
            industry=_text(info.get("industry")),
            market_cap=_num(info.get("marketCap")),
            pe_ratio=_num(info.get("trailingPE")),
            eps=_num(info.get("trailingEps")),
            dividend_yield=None if dividend_pct is None else dividend_pct / 100.0,
            beta=_num(info.get("beta")),
            week52_high=_num(info.get("fiftyTwoWeekHigh")),
            week52_low=_num(info.get("fiftyTwoWeekLow")),
        )

    def _chunk(self, symbol: str, interval: str, start_ns: int, end_ns: int) -> pd.DataFrame:
        daily = interval not in INTRADAY
        bounds: tuple[date | datetime, date | datetime]
        if daily:
            # A daily bar is stamped at its date's midnight UTC; Yahoo wants dates in the
            # exchange's calendar, which yfinance localizes.
            first, stop = day_ceil(start_ns), day_ceil(end_ns)
            if first >= stop:
                return empty_frame()
            bounds = (first, stop)
        else:
            bounds = (pd.Timestamp(start_ns, tz="UTC"), pd.Timestamp(end_ns, tz="UTC"))
        ticker = yf.Ticker(symbol, session=self._session)
        try:
            raw = self._call(
                symbol,
                lambda: ticker.history(
                    start=bounds[0],
                    end=bounds[1],
                    interval=interval,
                    auto_adjust=False,
                    actions=True,
                ),
            )
        except _NoRows:
            return empty_frame()
        frame = to_raw_frame(raw, daily=daily, symbol=symbol)
        keep = (frame["ts"] >= start_ns) & (frame["ts"] < end_ns)
        return frame[keep].reset_index(drop=True)

    def _quote(self, symbol: str) -> Quote:
        ticker = yf.Ticker(symbol, session=self._session)
        # The chart's meta carries the latest price even when the day has no bar yet.
        with contextlib.suppress(_NoRows):
            self._call(
                symbol,
                lambda: ticker.history(
                    period="1d", interval="1d", auto_adjust=False, actions=False
                ),
            )
        meta = self._call(symbol, lambda: ticker.history_metadata)
        last = _num(_meta(meta, "regularMarketPrice"))
        if last is None:
            raise SymbolNotFound(self.name, symbol, "no regularMarketPrice in the chart")
        bid, ask = _num(_meta(meta, "bid")) or last, _num(_meta(meta, "ask")) or last
        return Quote(
            symbol=symbol,
            ts=_ts_ns(_meta(meta, "regularMarketTime")) or self._clock.time_ns(),
            bid=bid,
            ask=ask,
            bid_size=_num(_meta(meta, "bidSize")) or 0.0,
            ask_size=_num(_meta(meta, "askSize")) or 0.0,
            last=last,
            volume=_num(_meta(meta, "regularMarketVolume")) or 0.0,
            origin="yahoo",
        )

    def _call(self, symbol: str, fn: Callable[[], T]) -> T:
        """Run a yfinance call; what it raises becomes an error of :mod:`feeds.source`."""
        try:
            return fn()
        except (SourceUnavailable, RateLimited):
            raise
        except yfe.YFRateLimitError as exc:
            raise RateLimited(f"Yahoo rate limited the request for {symbol}") from exc
        except yfe.YFPricesMissingError as exc:
            reason = exc.yahoo_reason
            if reason is None:
                raise _NoRows(symbol) from exc
            if "must be within" in reason:
                self._log.bind(symbol=symbol).warning("Cannot fetch {}: {}", symbol, reason)
                raise _NoRows(symbol) from exc
            if any(hint in reason.lower() for hint in _NOT_FOUND_HINTS):
                raise SymbolNotFound(self.name, symbol, reason) from exc
            raise SourceDataError(f"Yahoo refused the request for {symbol}: {reason}") from exc
        except yfe.YFTickerMissingError as exc:
            raise SymbolNotFound(self.name, symbol, exc.rationale) from exc
        except curl_requests.exceptions.HTTPError as exc:
            status = getattr(exc.response, "status_code", 0)
            if status == 404:
                raise SymbolNotFound(self.name, symbol, "HTTP 404") from exc
            raise SourceUnavailable(f"Yahoo answered HTTP {status} for {symbol}") from exc
        except curl_requests.exceptions.RequestException as exc:
            raise SourceUnavailable(f"Cannot reach Yahoo for {symbol}: {exc}") from exc
        except yfe.YFDataException as exc:
            if "CURRENTLY DOWN" in str(exc):
                raise SourceUnavailable("Yahoo Finance says it will be right back") from exc
            raise SourceDataError(f"Cannot read Yahoo's answer for {symbol}: {exc}") from exc
        except (
            yfe.YFException,
            ValueError,
            KeyError,
            TypeError,
            IndexError,
            AttributeError,
        ) as exc:
            self._log.bind(symbol=symbol).warning(
                "Cannot read Yahoo's answer for {}: {!r}", symbol, exc
            )
            raise SourceDataError(
                f"Cannot read Yahoo's answer for {symbol}: {type(exc).__name__}: {exc}"
            ) from exc


def _meta(meta: Any, key: str) -> Any:
    try:
        return meta[key]
    except (KeyError, TypeError):
        return None


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        return None
    out = float(value)
    return out if np.isfinite(out) else None


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _ts_ns(value: Any) -> int | None:
    if isinstance(value, pd.Timestamp):
        return int(value.as_unit("ns").value)
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return int(value * NS)
    return None
