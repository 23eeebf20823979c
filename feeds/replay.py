"""Replay: historical bar files (CSV or Parquet) through the same pipeline as live data.

:class:`ReplaySource` reads the file once, maps its header, runs every symbol through
:func:`feeds.normalizer.normalize_bars` (garbage rows are counted and logged there, never
raised) and then serves the clean bars: as a :class:`~feeds.source.MarketSource`
(``history``; name and origin ``replay``) and as a paced iterator (:meth:`replay`).

Header mapping: names are matched case-insensitively, with spaces, ``_`` and ``-`` alike;
see :data:`HEADER_SPELLINGS`. ``ts`` and ``open, high, low, close`` are required; a
missing ``volume`` reads as 0. A Parquet file's datetime index counts as a column.
Timestamps may be ISO-8601 text (with an offset, or naive in the source's ``tz``),
datetimes, or epoch numbers (s, ms, µs or ns, told apart by magnitude). Without a
``symbol`` column the file holds one symbol: ``symbol`` or else the file name up to its
type or first ``_`` (``aapl.csv`` → ``AAPL``, ``vod.l_1d.parquet`` → ``VOD.L``); with
one, ``symbol`` selects a symbol and rows naming none are counted as ``no_symbol``. A CSV
line with too many fields is skipped and counted as ``malformed_line``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Final, Literal

import numpy as np
import pandas as pd
from loguru import logger

from engine.bus.events import Origin
from engine.clock import Clock, LiveClock
from engine.persistence.bars import BarRow
from engine.stats import STATS, StatsRegistry
from feeds.normalizer import NormalizeResult, normalize_bars
from feeds.schema import Fundamentals, Quote, interval_ns
from feeds.source import SourceDataError, SymbolNotFound

ORIGIN: Final[Origin] = "replay"
HEADER_SPELLINGS: Final[dict[str, tuple[str, ...]]] = {
    "ts": ("ts", "timestamp", "datetime", "date", "time", "date time"),
    "open": ("open",),
    "high": ("high",),
    "low": ("low",),
    "close": ("close",),
    "adj_close": ("adj close", "adjclose", "adjusted close"),
    "volume": ("volume", "vol"),
    "symbol": ("symbol", "ticker"),
    "dividend": ("dividend", "dividends"),
    "split": ("split", "splits", "stock splits"),
}
REQUIRED: Final = ("ts", "open", "high", "low", "close")
SOURCE_COLUMNS: Final = ("ts", "open", "high", "low", "close", "volume", "flags")
_CSV: Final = re.compile(r"\.csv(\.(gz|bz2|zip|xz|zst))?$")
#: Epoch magnitude → factor to ns (ns, µs, ms, s).
_EPOCH_UNITS: Final = ((1e17, 1), (1e14, 10**3), (1e11, 10**6), (0.0, 10**9))


class ReplaySource:
    """Bars of one file, normalized, as a source and as a paced stream.

    ``tz`` is the zone of naive timestamps in the file; ``adjust`` is passed to the
    normalizer; ``clock`` and ``sleep`` pace :meth:`replay` (tests inject fakes).
    Raises :class:`~feeds.source.SourceDataError` for an unreadable file or header.
    """

    name: Origin = ORIGIN

    def __init__(
        self,
        path: str | Path,
        *,
        symbol: str | None = None,
        interval: str,
        tz: str = "UTC",
        adjust: Literal["flag", "adjust"] = "flag",
        clock: Clock | None = None,
        sleep: Callable[[float], object] = time.sleep,
        stats: StatsRegistry = STATS,
    ) -> None:
        interval_ns(interval)  # refuse unknown intervals up front
        self.path = Path(path)
        self.interval = interval
        self.tz = tz
        self._clock: Clock = clock or LiveClock()
        self._sleep = sleep
        self.malformed_lines = 0
        self.dropped: dict[str, int] = {}
        """Rows dropped before normalization: ``malformed_line``, ``no_symbol``."""
        raw = self._read(stats)
        self.results: dict[str, NormalizeResult] = {}
        """The normalizer's report per symbol (rejected, repaired, gaps)."""
        groups, orphans = _by_symbol(raw, symbol, self.path)
        self._count(stats, "no_symbol", orphans)
        for name, rows in groups:
            self.results[name] = normalize_bars(
                rows,
                symbol=name,
                interval=interval,
                origin=ORIGIN,
                adjust=adjust,
                tz=tz,
                stats=stats,
            )

    @property
    def symbols(self) -> list[str]:
        return list(self.results)

    # -- MarketSource ------------------------------------------------------------------

    def history(self, symbol: str, interval: str, start_ns: int, end_ns: int) -> pd.DataFrame:
        """Normalized bars of ``[start_ns, end_ns)``: ``ts``, OHLCV and ``flags``."""
        bars = self._bars(symbol, interval)
        inside = (bars["ts"] >= start_ns) & (bars["ts"] < end_ns)
        return bars.loc[inside, list(SOURCE_COLUMNS)].reset_index(drop=True)

    def quotes(self, symbols: Sequence[str]) -> list[Quote]:
        """Bar files hold no quotes: always empty."""
        return []

    def fundamentals(self, symbol: str) -> Fundamentals:
        """Nothing but the symbol is known (as of its last bar)."""
        bars = self._bars(symbol, self.interval)
        return Fundamentals(symbol=symbol, as_of=int(bars["ts"].iloc[-1]) if len(bars) else 0)

    # -- stream ------------------------------------------------------------------------

    def replay(self, speed: float | None = None) -> Iterator[BarRow]:
        """Every bar of the file in (ts, symbol) order. ``speed`` 1 keeps the recorded
        pace between bars, ``N`` is N times faster, ``None`` does not wait at all."""
        if speed is not None and not speed > 0:
            raise ValueError(f"replay speed must be positive or None, not {speed}")
        frames = [result.bars for result in self.results.values()]
        if not frames:
            return
        merged = pd.concat(frames, ignore_index=True).sort_values(["ts", "symbol"], kind="stable")
        first_ts: int | None = None
        started = 0.0
        for row in merged.itertuples(index=False, name=None):
            bar = BarRow(*row)
            if speed is not None:
                if first_ts is None:
                    first_ts, started = bar.ts, self._clock.monotonic()
                due = started + (bar.ts - first_ts) / 1e9 / speed
                wait = due - self._clock.monotonic()
                if wait > 0:
                    self._sleep(wait)
            yield bar

    # -- reading -----------------------------------------------------------------------

    def _bars(self, symbol: str, interval: str) -> pd.DataFrame:
        result = self.results.get(symbol)
        if result is None:
            raise SymbolNotFound(ORIGIN, symbol, f"not in {self.path.name}")
        if interval != self.interval:
            raise SymbolNotFound(
                ORIGIN, symbol, f"{self.path.name} holds {self.interval} bars, not {interval}"
            )
        return result.bars

    def _read(self, stats: StatsRegistry) -> pd.DataFrame:
        name = self.path.name.lower()
        try:
            if name.endswith((".parquet", ".pq")):
                raw = pd.read_parquet(self.path)
                if not isinstance(raw.index, pd.RangeIndex):
                    raw = raw.reset_index()
            elif _CSV.search(name):
                raw = pd.read_csv(
                    self.path,
                    dtype=str,
                    engine="python",
                    skipinitialspace=True,
                    on_bad_lines=self._malformed,
                )
            else:
                raise SourceDataError(
                    f"Cannot replay {self.path}: unsupported file type; use .csv or .parquet"
                )
        except (OSError, ValueError, pd.errors.ParserError) as exc:
            raise SourceDataError(f"Cannot read replay file {self.path}: {exc}") from exc
        self._count(stats, "malformed_line", self.malformed_lines)
        frame = _map_header(raw, self.path)
        frame["ts"] = _epoch_or_text(frame["ts"])
        if "volume" not in frame.columns:
            frame["volume"] = 0.0
        return frame

    def _count(self, stats: StatsRegistry, reason: str, rows: int) -> None:
        """Rows dropped before the normalizer sees them: counted like its rejections."""
        if not rows:
            return
        self.dropped[reason] = rows
        stats.counter(
            "qsuite_feed_rows_rejected_total", "Bar rows refused by the normalizer", reason=reason
        ).inc(rows)
        logger.bind(component="feeds.replay").warning(
            "Cannot use {} row(s) of {}: {}", rows, self.path.name, reason
        )

    def _malformed(self, line: list[str]) -> None:
        self.malformed_lines += 1
        return None


def _key(name: object) -> str:
    return re.sub(r"[\s_\-]+", " ", str(name).strip().lower())


def _map_header(raw: pd.DataFrame, path: Path) -> pd.DataFrame:
    found = {_key(column): column for column in reversed(list(raw.columns))}
    mapping: dict[object, str] = {}
    for field, spellings in HEADER_SPELLINGS.items():
        column = next((found[s] for s in spellings if s in found), None)
        if column is not None and column not in mapping:
            mapping[column] = field
    missing = [field for field in REQUIRED if field not in mapping.values()]
    if missing:
        accepted = "; ".join(f"{field}: {', '.join(HEADER_SPELLINGS[field])}" for field in REQUIRED)
        raise SourceDataError(
            f"Cannot replay {path.name}: no column for {', '.join(missing)}. "
            f"Found {', '.join(map(str, raw.columns)) or 'no columns'}; "
            f"accepted (any case): {accepted}"
        )
    return raw[list(mapping)].rename(columns=mapping)


def _epoch_or_text(ts: pd.Series) -> pd.Series:
    """Epoch numbers as Int64 UTC ns (the unit told by magnitude); anything else as is."""
    if pd.api.types.is_datetime64_any_dtype(ts):
        return ts
    if pd.api.types.is_numeric_dtype(ts):
        numbers = ts
    else:
        text = ts.astype("string").str.strip()
        integral = text.str.fullmatch(r"-?\d+").fillna(False).astype(bool)
        if integral.sum() * 2 <= text.notna().sum():
            return ts  # dates as text: the normalizer parses them
        numbers = text.where(integral).astype("Int64")  # exact, unlike a float detour
    values = numbers.to_numpy(dtype="float64", na_value=np.nan)
    if not np.isfinite(values).any():
        return ts
    magnitude = float(np.nanmedian(np.abs(values[np.isfinite(values)])))
    scale = next(s for limit, s in _EPOCH_UNITS if magnitude >= limit)
    if pd.api.types.is_integer_dtype(numbers):
        return numbers.astype("Int64") * scale
    return pd.Series(np.round(values * scale), index=ts.index)  # float epochs: NaN stays


def _symbol_of(path: Path) -> str:
    """``vod.l_1d.csv`` → ``VOD.L``: the file name without its type, up to the first ``_``."""
    stem = re.sub(r"\.(csv(\.\w+)?|parquet|pq)$", "", path.name, flags=re.IGNORECASE)
    return stem.split("_")[0].upper()


def _by_symbol(
    raw: pd.DataFrame, symbol: str | None, path: Path
) -> tuple[list[tuple[str, pd.DataFrame]], int]:
    """Each symbol's rows, and how many rows name no symbol at all."""
    if "symbol" not in raw.columns:
        return [(symbol or _symbol_of(path), raw)], 0
    names = raw["symbol"].astype("string").str.strip().replace("", pd.NA)
    if symbol is not None:
        return [(symbol, raw[(names == symbol).fillna(False)].drop(columns="symbol"))], 0
    groups = [
        (str(name), raw[(names == name).fillna(False)].drop(columns="symbol"))
        for name in names.dropna().unique()
    ]
    return groups, int(names.isna().sum())
