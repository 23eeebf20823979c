"""Backtests from Python — notebooks, scripts and the ``qsuite backtest`` CLI.

::

    from engine.backtest.api import backtest

    run = backtest("ma_crossover", symbols="AAPL", data="aapl.csv",
                   params={"fast": 10, "slow": 30}, commission=0.001)
    run.metrics             # KeyMetrics: total return, Sharpe, max drawdown, trades …
    run.performance         # every metric (engine.analytics.Performance)
    run.result              # fills, equity curve, denials (engine.backtest.runner)
    run.report("out.html")  # or fmt="csv" / "json" (engine.backtest.report)

**Data** — exactly one of:

- ``data`` a CSV or Parquet file, read and normalized by
  :class:`feeds.replay.ReplaySource` (its header mapping and cleaning rules). A file with
  a ``symbol`` column may hold many symbols; ``symbols`` picks them. A file without one
  holds a single symbol, named by ``symbols`` when one is given (else after the file).
- ``data`` a pandas ``DataFrame`` with ``ts, open, high, low, close`` (``volume`` and
  ``symbol`` optional; any case; ``ts`` may be the index): int UTC ns, datetimes (naive
  ones are UTC) or ISO text. It goes through the same normalizer as files.
- ``from_db`` an SQLAlchemy ``Engine``: the stored bars of each symbol
  (:func:`engine.persistence.bars.load_bars`), e.g. after ``qsuite backfill``.

``symbols`` is ``"A,B"`` or a list; None takes every symbol of a file or frame.
``start`` (inclusive) and ``end`` (exclusive) bound the bars' open times: ISO dates or
datetimes, ``date``/``datetime`` objects (naive = UTC) or int UTC ns.

Every input the run cannot use — a missing file, a symbol the data does not hold, no
bars in the range, negative cash, a commission of 1 or more, an unknown strategy or a
bad parameter — raises :class:`~engine.backtest.runner.BacktestError` with a message
that says what to change, before the run starts. An exception of the strategy's own
code during the run becomes a ``BacktestError`` too (chained to the original).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias, get_args

import msgspec

from engine.analytics import Performance
from engine.backtest import registry
from engine.backtest.analysis import performance_of
from engine.backtest.broker import FillModel, SizingMode
from engine.backtest.runner import BacktestConfig, BacktestError, BacktestResult, Progress, run
from engine.backtest.strategy import Strategy, StrategyError
from engine.errors import QSuiteError
from engine.intervals import NS, IntervalError, interval_ns
from engine.persistence.bars import BarRow

if TYPE_CHECKING:  # pandas and SQLAlchemy load only with the data that needs them
    import pandas as pd
    from sqlalchemy import Engine

    from engine.backtest.report import ReportFormat

Moment: TypeAlias = "str | date | datetime | int | None"
Data: TypeAlias = "str | Path | pd.DataFrame | None"
StrategySpec: TypeAlias = "str | type[Strategy[Any]]"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class KeyMetrics(msgspec.Struct, frozen=True, kw_only=True):
    """The figures a summary or a sweep row shows (all of them: :attr:`BacktestRun.performance`)."""

    total_return: float
    annualized_return: float | None
    sharpe: float | None
    sortino: float | None
    max_drawdown: float
    """Deepest drawdown, a positive fraction of the peak."""
    trades: int
    """Closed round trips."""
    win_rate: float | None
    profit_factor: float | None
    final_equity: float
    buy_and_hold_return: float | None
    """Total return of the equal-weight buy-and-hold basket of the run's symbols."""

    @classmethod
    def of(cls, p: Performance) -> KeyMetrics:
        stats = p.trade_stats
        return cls(
            total_return=p.total_return,
            annualized_return=p.annualized_return,
            sharpe=p.sharpe,
            sortino=p.sortino,
            max_drawdown=p.max_drawdown,
            trades=0 if stats is None else stats.count,
            win_rate=None if stats is None else stats.win_rate,
            profit_factor=None if stats is None else stats.profit_factor,
            final_equity=p.final_equity,
            buy_and_hold_return=None if p.benchmark is None else p.benchmark.total_return,
        )


@dataclass(frozen=True)
class BacktestRun:
    """One finished backtest: what it did and how it performed."""

    result: BacktestResult
    performance: Performance

    @property
    def metrics(self) -> KeyMetrics:
        return KeyMetrics.of(self.performance)

    def report(self, path: str | Path, fmt: ReportFormat = "html") -> list[Path]:
        """Write the ``fmt`` report at ``path`` (csv: a folder); the files written."""
        from engine.backtest.report import write_report  # plotly loads only for reports

        return write_report(self.result, self.performance, Path(path), fmt=fmt)


def backtest(
    strategy: StrategySpec,
    *,
    symbols: str | Sequence[str] | None,
    interval: str = "1d",
    data: Data = None,
    from_db: Engine | None = None,
    start: Moment = None,
    end: Moment = None,
    cash: float | int | str | Decimal = 100_000,
    commission: float = 0.0,
    commission_per_share: float = 0.0,
    slippage_bps: float = 0.0,
    sizing: SizingMode = "cash_fraction",
    fraction: float = 1.0,
    qty: float | int | str | Decimal = 1,
    allow_short: bool = False,
    params: dict[str, Any] | None = None,
    progress: Progress | None = None,
) -> BacktestRun:
    """Run ``strategy`` (a registered name, ``file.py:ClassName`` or a Strategy class)
    over the bars of ``symbols`` (module docstring); fill model and sizing as in
    :class:`~engine.backtest.broker.FillModel`. Raises :class:`BacktestError`."""
    config = make_config(
        strategy,
        interval=interval,
        cash=cash,
        commission=commission,
        commission_per_share=commission_per_share,
        slippage_bps=slippage_bps,
        sizing=sizing,
        fraction=fraction,
        qty=qty,
        allow_short=allow_short,
        params=params,
    )
    bars = load(symbols, interval=interval, data=data, from_db=from_db, start=start, end=end)
    return execute(config, bars, progress=progress)


def execute(
    config: BacktestConfig, bars: Sequence[BarRow], *, progress: Progress | None = None
) -> BacktestRun:
    """Run ``config`` over loaded ``bars`` and measure it; the strategy's own exceptions
    become :class:`BacktestError`."""
    try:
        result = run(config, bars, progress=progress)
    except QSuiteError:
        raise
    except Exception as exc:
        raise BacktestError(f"strategy {config.strategy} failed: {exc!r}") from exc
    try:
        performance = performance_of(result)
    except ValueError as exc:
        raise BacktestError(f"cannot measure the run: {exc}") from None
    return BacktestRun(result, performance)


def make_config(
    strategy: StrategySpec,
    *,
    interval: str = "1d",
    cash: float | int | str | Decimal = 100_000,
    commission: float = 0.0,
    commission_per_share: float = 0.0,
    slippage_bps: float = 0.0,
    sizing: SizingMode = "cash_fraction",
    fraction: float = 1.0,
    qty: float | int | str | Decimal = 1,
    allow_short: bool = False,
    params: dict[str, Any] | None = None,
) -> BacktestConfig:
    """The run's configuration, checked (strategy known, cash positive, fill model
    valid); raises :class:`BacktestError`. Parameters are checked by the run."""
    spec = strategy_spec(strategy)
    try:
        interval_ns(interval)
    except IntervalError as exc:
        raise BacktestError(str(exc)) from None
    amount = _decimal("cash", cash)
    if not (amount.is_finite() and amount > 0):
        raise BacktestError(f"cash must be positive, not {cash}")
    if sizing not in get_args(SizingMode):
        raise BacktestError(
            f"sizing must be one of {', '.join(get_args(SizingMode))}, not {sizing!r}"
        )
    try:
        fills = FillModel(
            commission=float(commission),
            commission_per_share=float(commission_per_share),
            slippage_bps=float(slippage_bps),
            sizing=sizing,
            fraction=float(fraction),
            qty=_decimal("qty", qty),
            allow_short=bool(allow_short),
        )
    except (TypeError, ValueError) as exc:
        raise BacktestError(f"fill model: {exc}") from None
    return BacktestConfig(
        strategy=spec, params=dict(params or {}), interval=interval, cash=amount, fills=fills
    )


def strategy_spec(strategy: StrategySpec) -> str:
    """The registry spelling of ``strategy``; a Strategy class is registered under its
    name. Raises :class:`BacktestError` for an unknown one."""
    if isinstance(strategy, type):
        if not issubclass(strategy, Strategy):
            raise BacktestError(f"{strategy.__name__} is not a Strategy class")
        name = getattr(strategy, "name", "")
        try:
            known: type[Strategy[Any]] | None = registry.get(name)
        except StrategyError:
            known = None
        if known is not strategy:
            try:
                registry.register(strategy)
            except ValueError as exc:
                raise BacktestError(str(exc)) from None
        return name
    try:
        registry.get(strategy)
    except StrategyError as exc:
        raise BacktestError(str(exc)) from None
    return strategy


# --- data ---------------------------------------------------------------------------------


def load(
    symbols: str | Sequence[str] | None,
    *,
    interval: str,
    data: Data = None,
    from_db: Engine | None = None,
    start: Moment = None,
    end: Moment = None,
) -> list[BarRow]:
    """The bars of ``symbols`` from a file, a frame or the database, within
    ``[start, end)`` (module docstring); raises :class:`BacktestError`."""
    wanted = _symbols(symbols)
    lo, hi = to_ns(start, "start"), to_ns(end, "end")
    if lo is not None and hi is not None and lo >= hi:
        raise BacktestError(f"start {_day(lo)} is not before end {_day(hi)}")
    if (data is None) == (from_db is None):
        raise BacktestError("give the bars either as data (a file or a DataFrame) or from_db")
    if from_db is not None:
        return _from_db(from_db, wanted, interval, lo, hi)
    if isinstance(data, str | Path):
        bars, where = _from_file(Path(data), wanted, interval), str(data)
    else:
        bars, where = _from_frame(data, wanted, interval), "the DataFrame"
    inside = [b for b in bars if (lo is None or b.ts >= lo) and (hi is None or b.ts < hi)]
    if not inside:
        raise BacktestError(
            f"no {interval} bars in {where}{_range(lo, hi)}; it holds "
            f"{_day(min(b.ts for b in bars))} → {_day(max(b.ts for b in bars))}"
        )
    return inside


def to_ns(value: Moment, name: str = "time") -> int | None:
    """UTC ns of an ISO date/datetime text, a ``date``/``datetime`` (naive = UTC) or ns."""
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    moment: Any = value
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise BacktestError(
                f"{name} {value!r} is not a date like 2024-01-31 or 2024-01-31T14:30"
            ) from None
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return (moment - _EPOCH) // timedelta(microseconds=1) * 1_000
    if isinstance(moment, date):
        return to_ns(datetime(moment.year, moment.month, moment.day, tzinfo=UTC))
    raise BacktestError(f"{name} must be a date, a datetime or UTC ns, not {value!r}")


def _symbols(symbols: str | Sequence[str] | None) -> list[str] | None:
    if symbols is None:
        return None
    items = symbols.split(",") if isinstance(symbols, str) else list(symbols)
    names = list(dict.fromkeys(s.strip() for s in items if s.strip()))
    if not names:
        raise BacktestError("no symbols given")
    return names


def _from_file(path: Path, wanted: list[str] | None, interval: str) -> list[BarRow]:
    from feeds.replay import ReplaySource
    from feeds.source import SourceDataError

    if not path.is_file():
        raise BacktestError(f"no data file {path}")
    one = wanted[0] if wanted is not None and len(wanted) == 1 else None
    try:
        # one symbol: names the bars of a file without a symbol column
        source = ReplaySource(path, symbol=one, interval=interval)
        if one is not None and source.results[one].bars.empty:
            source = ReplaySource(path, interval=interval)  # to say what it holds
    except (SourceDataError, ValueError) as exc:
        raise BacktestError(str(exc)) from None
    frames = {name: result.bars for name, result in source.results.items()}
    return _pick(frames, wanted, path.name)


def _from_frame(frame: Any, wanted: list[str] | None, interval: str) -> list[BarRow]:
    import pandas as pd

    from feeds.normalizer import normalize_bars
    from feeds.source import SourceDataError

    if not isinstance(frame, pd.DataFrame):
        raise BacktestError(f"data must be a file path or a pandas DataFrame, not {type(frame)}")
    raw = frame.rename(columns=lambda c: str(c).strip().lower())
    if raw.index.name is not None:
        raw.index = raw.index.rename(str(raw.index.name).strip().lower())
    if "volume" not in raw.columns:
        raw = raw.assign(volume=0.0)
    if "symbol" in raw.columns:
        groups = {str(s): g.drop(columns="symbol") for s, g in raw.groupby("symbol", sort=True)}
    elif wanted is not None and len(wanted) > 1:
        raise BacktestError(
            f"the DataFrame has no symbol column, so it holds one symbol, not {len(wanted)}"
        )
    else:
        groups = {wanted[0] if wanted else "DATA": raw}
    frames: dict[str, Any] = dict.fromkeys(groups)
    try:
        for name in wanted or groups:
            if name in groups:
                frames[name] = normalize_bars(
                    groups[name], symbol=name, interval=interval, origin="replay", tz="UTC"
                ).bars
    except (SourceDataError, ValueError) as exc:
        raise BacktestError(f"the DataFrame: {exc}") from None
    return _pick(frames, wanted, "the DataFrame")


def _pick(frames: dict[str, Any], wanted: list[str] | None, where: str) -> list[BarRow]:
    """Every bar of the ``wanted`` symbols (all when None) of ``frames`` (symbol → bars;
    None: present but not read); a symbol without bars is refused."""
    missing = [s for s in wanted or frames if frames.get(s) is None or not len(frames[s])]
    if missing:
        held = [s for s in sorted(frames) if frames[s] is None or len(frames[s])]
        raise BacktestError(
            f"{where} has no bars of {', '.join(missing)}; it holds {', '.join(held) or 'none'}"
        )
    bars: list[BarRow] = []
    for name in wanted or frames:
        frame = frames[name]
        # tolist(): Python ints and floats, not numpy scalars, reach the events and reports
        columns = [frame[c].tolist() for c in BarRow._fields]
        bars.extend(BarRow(*row) for row in zip(*columns, strict=True))
    return bars


def _from_db(
    engine: Engine, wanted: list[str] | None, interval: str, lo: int | None, hi: int | None
) -> list[BarRow]:
    from engine.persistence.bars import load_bars

    if wanted is None:
        raise BacktestError("name the symbols to load from the database")
    bars: list[BarRow] = []
    for symbol in wanted:
        rows = load_bars(engine, symbol, interval, lo, hi)
        if not rows:
            first = load_bars(engine, symbol, interval, limit=1)
            if not first:
                raise BacktestError(
                    f"the database has no {interval} bars of {symbol}; store them first, "
                    f"e.g. qsuite backfill {symbol} --interval {interval} --start 2020-01-01"
                )
            last = load_bars(engine, symbol, interval, limit=1, newest=True)
            raise BacktestError(
                f"no {interval} bars of {symbol} in the database{_range(lo, hi)}; "
                f"it holds {_day(first[0].ts)} → {_day(last[0].ts)}"
            )
        bars.extend(rows)
    return bars


def _decimal(name: str, value: Any) -> Decimal:
    try:
        return value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        raise BacktestError(f"{name} must be a number, not {value!r}") from None


def _range(lo: int | None, hi: int | None) -> str:
    if lo is None and hi is None:
        return ""
    if hi is None:
        return f" from {_day(lo)} on"
    return f" before {_day(hi)}" if lo is None else f" from {_day(lo)} to {_day(hi)}"


def _day(ts: int | None) -> str:
    if ts is None:
        return "—"
    moment = datetime.fromtimestamp(ts // NS, UTC)
    return f"{moment:%Y-%m-%d}" if moment.hour == moment.minute == 0 else f"{moment:%Y-%m-%d %H:%M}"
