"""The price cache: the latest quote per symbol and the latest bar per (symbol, interval),
shared by every process on the machine.

The feed writes; the console, the engine processes and the CLI read the latest state
from here without asking the source, and without the writer being alive: the cache is
a :class:`diskcache.Cache` (SQLite in WAL mode plus files) in one directory, which any
number of processes may open at once.

Entries
-------
Each value is a msgspec msgpack document (never a pickle):

- ``quote/<symbol>`` → :class:`CachedQuote` (a :class:`feeds.schema.Quote`),
- ``bar/<symbol>/<interval>`` → :class:`CachedBar` (a
  :class:`engine.bus.events.BarClosed`, the same event the bus carries),

each with ``written_at`` (the writer's clock, UTC ns) so a reader can show how stale it
is, and the feed ``mode`` at write time (``live``, ``delayed``, ``cached`` or
``simulated``) so a reader knows what it is looking at.

Ordering
--------
Older data never overwrites newer: a put compares the stored entry's order key with the
new one inside one diskcache transaction (SQLite ``BEGIN IMMEDIATE``, so writers in
different processes are serialized), and keeps the newer. The order key of a quote is
its ``ts``; of a bar, ``(ts, ts_init)``, so a correction of the same bar published later
replaces it. An equal key overwrites (a re-put is idempotent). Writes that lose are
counted in ``qsuite_price_cache_stale_writes_total{kind}``.

An entry that cannot be decoded (a foreign or older document) reads as missing and is
counted in ``qsuite_price_cache_decode_errors_total``.

Size
----
``size_limit`` bytes (diskcache evicts the least recently stored entries beyond it).
diskcache persists its settings in the cache itself and the last process to open it
with a value wins: give every process the same value, or ``None`` in readers to keep
what is stored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Final

import diskcache
import msgspec

from engine.bus.events import BarClosed, FeedMode, QuoteUpdated
from engine.clock import Clock, LiveClock
from engine.stats import STATS, StatsRegistry
from feeds.schema import NS, Quote, quote_event

DEFAULT_SIZE_LIMIT: Final = 256 * 1024 * 1024
"""Bytes the cache may use before the oldest entries are evicted."""

_QUOTE = "quote/"
_BAR = "bar/"


class CachedQuote(msgspec.Struct, frozen=True, kw_only=True):
    """The latest quote of a symbol, as the feed stored it."""

    quote: Quote
    written_at: int
    """When the writer stored it (its clock), UTC ns."""
    mode: FeedMode
    """The feed's mode when it wrote this (``simulated`` means not a real market)."""

    def age_s(self, now_ns: int) -> float:
        """Seconds since it was written (never negative)."""
        return max(0, now_ns - self.written_at) / NS


class CachedBar(msgspec.Struct, frozen=True, kw_only=True):
    """The latest bar of a (symbol, interval), as the feed stored it."""

    bar: BarClosed
    written_at: int
    """When the writer stored it (its clock), UTC ns."""
    mode: FeedMode
    """The feed's mode when it wrote this."""

    def age_s(self, now_ns: int) -> float:
        """Seconds since it was written (never negative)."""
        return max(0, now_ns - self.written_at) / NS


_encode = msgspec.msgpack.Encoder().encode
_quote_decoder = msgspec.msgpack.Decoder(CachedQuote)
_bar_decoder = msgspec.msgpack.Decoder(CachedBar)


def quote_key(symbol: str) -> str:
    return _QUOTE + symbol


def bar_key(symbol: str, interval: str) -> str:
    return f"{_BAR}{symbol}/{interval}"


class PriceCache:
    """Latest quotes and bars in a diskcache directory; see the module docstring.

    :param directory: the cache directory (created if missing), shared by processes.
    :param size_limit: bytes before eviction; ``None`` keeps the stored setting.
    :param timeout_s: how long an operation waits for another process's lock.
    :param clock: injected time (``written_at``).
    :param stats: the registry of this process's metrics.
    """

    def __init__(
        self,
        directory: Path,
        *,
        size_limit: int | None = DEFAULT_SIZE_LIMIT,
        timeout_s: float = 10.0,
        clock: Clock | None = None,
        stats: StatsRegistry = STATS,
    ) -> None:
        settings: dict[str, Any] = {}
        if size_limit is not None:
            if size_limit <= 0:
                raise ValueError("size_limit must be positive")
            settings["size_limit"] = size_limit
        self.directory = Path(directory)
        self._cache: diskcache.Cache | None = diskcache.Cache(
            str(self.directory), timeout=timeout_s, **settings
        )
        self._clock: Clock = clock if clock is not None else LiveClock()
        help_stale = "Price-cache writes ignored because the cache already held newer data"
        self._stale = {
            kind: stats.counter("qsuite_price_cache_stale_writes_total", help_stale, kind=kind)
            for kind in ("quote", "bar")
        }
        self._decode_errors = stats.counter(
            "qsuite_price_cache_decode_errors_total",
            "Price-cache entries that could not be decoded (read as missing)",
        )

    # -- writes ----------------------------------------------------------------------

    def put_quote(self, quote: Quote, *, mode: FeedMode | None = None) -> bool:
        """Store ``quote`` unless the cache holds a newer one; returns whether it was
        stored. ``mode`` defaults to ``simulated`` for simulated quotes, else ``live``."""
        return self.put_quotes([quote], mode=mode) == 1

    def put_quotes(self, quotes: Iterable[Quote], *, mode: FeedMode | None = None) -> int:
        """Store many quotes in one transaction; returns how many were stored."""
        cache = self._open()
        written_at = self._clock.time_ns()
        stored = 0
        with cache.transact(retry=True):
            for quote in quotes:
                key = quote_key(quote.symbol)
                current = self._decode(cache.get(key), _quote_decoder)
                if current is not None and current.quote.ts > quote.ts:
                    self._stale["quote"].inc()
                    continue
                entry = CachedQuote(quote=quote, written_at=written_at, mode=_mode(mode, quote))
                cache.set(key, _encode(entry))
                stored += 1
        return stored

    def put_bar(
        self, symbol: str, interval: str, bar: BarClosed, *, mode: FeedMode | None = None
    ) -> bool:
        """Store ``bar`` as the latest of ``(symbol, interval)`` unless a newer one is
        there (order key ``(ts, ts_init)``); returns whether it was stored."""
        if (bar.symbol, bar.interval) != (symbol, interval):
            raise ValueError(
                f"bar of {bar.symbol}/{bar.interval} cannot be stored as {symbol}/{interval}"
            )
        cache = self._open()
        key = bar_key(symbol, interval)
        entry = CachedBar(bar=bar, written_at=self._clock.time_ns(), mode=_mode(mode, bar))
        with cache.transact(retry=True):
            current = self._decode(cache.get(key), _bar_decoder)
            if current is not None and (current.bar.ts, current.bar.ts_init) > (
                bar.ts,
                bar.ts_init,
            ):
                self._stale["bar"].inc()
                return False
            cache.set(key, _encode(entry))
        return True

    # -- reads -----------------------------------------------------------------------

    def latest_quote(self, symbol: str) -> Quote | None:
        """The newest quote of ``symbol``, or ``None``."""
        entry = self.quote_entry(symbol)
        return None if entry is None else entry.quote

    def quote_entry(self, symbol: str) -> CachedQuote | None:
        """The newest quote of ``symbol`` with when and in which mode it was written."""
        return self._decode(self._open().get(quote_key(symbol)), _quote_decoder)

    def quotes(self, symbols: Iterable[str]) -> dict[str, Quote]:
        """Newest quotes of ``symbols``; symbols without one are left out."""
        return {symbol: entry.quote for symbol, entry in self.quote_entries(symbols).items()}

    def quote_entries(self, symbols: Iterable[str]) -> dict[str, CachedQuote]:
        """Like :meth:`quotes`, with the write time and mode of each."""
        out: dict[str, CachedQuote] = {}
        for symbol in symbols:
            entry = self.quote_entry(symbol)
            if entry is not None:
                out[symbol] = entry
        return out

    def snapshot(self) -> dict[str, CachedQuote]:
        """Every cached quote, by symbol, with the write time and mode of each."""
        cache = self._open()
        out: dict[str, CachedQuote] = {}
        for key in cache.iterkeys():
            if isinstance(key, str) and key.startswith(_QUOTE):
                entry = self._decode(cache.get(key), _quote_decoder)
                if entry is not None:
                    out[key[len(_QUOTE) :]] = entry
        return out

    def latest_bar(self, symbol: str, interval: str) -> BarClosed | None:
        """The newest bar of ``(symbol, interval)``, or ``None``."""
        entry = self.bar_entry(symbol, interval)
        return None if entry is None else entry.bar

    def bar_entry(self, symbol: str, interval: str) -> CachedBar | None:
        """The newest bar with when and in which mode it was written."""
        return self._decode(self._open().get(bar_key(symbol, interval)), _bar_decoder)

    # -- lifecycle -------------------------------------------------------------------

    def volume(self) -> int:
        """Bytes used on disk (what ``size_limit`` bounds)."""
        return int(self._open().volume())

    def close(self) -> None:
        """Close the cache; further calls raise ``RuntimeError``. Idempotent."""
        if self._cache is not None:
            self._cache.close()
            self._cache = None

    def __enter__(self) -> PriceCache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _open(self) -> diskcache.Cache:
        if self._cache is None:
            raise RuntimeError(f"price cache {self.directory} is closed")
        return self._cache

    def _decode(self, raw: Any, decoder: msgspec.msgpack.Decoder[Any]) -> Any:
        if raw is None:
            return None
        try:
            return decoder.decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError, TypeError):
            self._decode_errors.inc()
            return None


def cached_quotes(directory: Path) -> list[QuoteUpdated]:
    """The latest quote of every symbol in the price cache at ``directory`` as the events
    that carried them (none before a feed has written one): what a process that starts
    (or restarts) knows of the market before the next quote arrives."""
    with PriceCache(directory, size_limit=None) as cache:
        return [quote_event(entry.quote) for entry in cache.snapshot().values()]


def read_recent(
    recent_quotes: Callable[[], Iterable[QuoteUpdated]] | None, log: Any, purpose: str
) -> list[QuoteUpdated]:
    """What ``recent_quotes`` (e.g. :func:`cached_quotes` of the feed's cache) gives, or
    nothing — with a warning naming ``purpose`` — when there is none or it fails: a
    process starts without them and waits for the feed's next quotes."""
    if recent_quotes is None:
        return []
    try:
        return list(recent_quotes())
    except Exception as exc:  # an unreadable cache: the next quotes will do
        log.warning("No cached quotes {} ({}); waiting for quotes", purpose, exc)
        return []


def _mode(mode: FeedMode | None, item: Quote | BarClosed) -> FeedMode:
    if mode is not None:
        return mode
    return "simulated" if item.simulated else "live"
