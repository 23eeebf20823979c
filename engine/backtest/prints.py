"""Backtests on trade prints from a file or a DataFrame (the notebook and CLI side of
:func:`engine.backtest.trades.run_trades`).

A prints file is CSV or Parquet with the columns ``ts`` (UTC: epoch ns, or ISO text /
datetimes), ``price``, ``size`` (or ``qty`` / ``volume``), optionally ``symbol`` (else
the one symbol given) and ``aggressor`` (``buy`` / ``sell``; else ``unknown``). Rows are
taken in time order; a row with a missing, non-finite or non-positive price or size is
refused with its line number rather than dropped silently.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from engine.backtest.analysis import performance_of
from engine.backtest.api import BacktestRun, Moment, make_config, to_ns
from engine.backtest.broker import SizingMode
from engine.backtest.runner import BacktestError, Progress
from engine.backtest.tape import TradePrint
from engine.backtest.trades import run_trades
from engine.errors import QSuiteError

SIZE_COLUMNS = ("size", "qty", "volume")
AGGRESSORS: dict[str, Literal["buy", "sell"]] = {"buy": "buy", "sell": "sell"}


def load_prints(
    data: str | Path | Any,
    *,
    symbols: str | Sequence[str] | None = None,
    start: Moment = None,
    end: Moment = None,
) -> list[TradePrint]:
    """The prints of ``data`` (a file path or a pandas DataFrame), time-ordered, of
    ``symbols`` (default: all), ``start <= ts < end``; raises :class:`BacktestError`."""
    import pandas as pd

    if isinstance(data, str | Path):
        path = Path(data)
        if not path.is_file():
            raise BacktestError(f"no prints file {path}")
        try:
            frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
        except Exception as exc:
            raise BacktestError(f"cannot read the prints file {path}: {exc}") from None
    elif isinstance(data, pd.DataFrame):
        frame = data
    else:
        raise BacktestError(f"prints must be a file path or a pandas DataFrame, not {type(data)}")
    columns = {str(c).strip().lower(): c for c in frame.columns}
    size = next((columns[c] for c in SIZE_COLUMNS if c in columns), None)
    if "ts" not in columns or "price" not in columns or size is None:
        raise BacktestError("a prints file needs the columns ts, price and size (or qty)")
    wanted = [symbols] if isinstance(symbols, str) else list(symbols or [])
    if "symbol" not in columns and len(wanted) != 1:
        raise BacktestError("the prints have no symbol column: name the one symbol they hold")
    stamps = _stamps(frame[columns["ts"]])
    lo, hi = to_ns(start, "start"), to_ns(end, "end")
    prints = []
    for i, (ts, price, qty) in enumerate(
        zip(stamps, frame[columns["price"]], frame[size], strict=True)
    ):
        if not (_positive(price) and _positive(qty)):
            raise BacktestError(
                f"prints line {i + 2}: price {price} and size {qty} must be positive"
            )
        symbol = str(frame[columns["symbol"]].iloc[i]) if "symbol" in columns else wanted[0]
        if (
            (wanted and symbol not in wanted)
            or (lo is not None and ts < lo)
            or (hi is not None and ts >= hi)
        ):
            continue
        aggressor = (
            str(frame[columns["aggressor"]].iloc[i]).lower() if "aggressor" in columns else ""
        )
        prints.append(
            TradePrint(
                symbol,
                ts,
                float(price),
                float(qty),
                AGGRESSORS.get(aggressor, "unknown"),
            )
        )
    if not prints:
        raise BacktestError("no prints in the data for these symbols and dates")
    missing = sorted(set(wanted) - {p.symbol for p in prints})
    if missing:
        raise BacktestError(f"no prints of {', '.join(missing)} in the data")
    return sorted(prints, key=lambda p: (p.ts, p.symbol))


def backtest_prints(
    strategy: Any,
    *,
    prints: str | Path | Any,
    symbols: str | Sequence[str] | None = None,
    interval: str = "1m",
    start: Moment = None,
    end: Moment = None,
    cash: float | int | str | Decimal = 100_000,
    commission: float = 0.0,
    commission_per_share: float = 0.0,
    sizing: SizingMode = "cash_fraction",
    fraction: float = 1.0,
    qty: float | int | str | Decimal = 1,
    allow_short: bool = False,
    params: dict[str, Any] | None = None,
    progress: Progress | None = None,
) -> BacktestRun:
    """Like :func:`engine.backtest.api.backtest`, on trade prints through the venue's
    matching engine (no slippage setting: prices come from the book)."""
    config = make_config(
        strategy,
        interval=interval,
        cash=cash,
        commission=commission,
        commission_per_share=commission_per_share,
        sizing=sizing,
        fraction=fraction,
        qty=qty,
        allow_short=allow_short,
        params=params,
    )
    tape = load_prints(prints, symbols=symbols, start=start, end=end)
    try:
        result = run_trades(config, tape, progress=progress)
    except QSuiteError:
        raise
    except Exception as exc:
        raise BacktestError(f"strategy {config.strategy} failed: {exc!r}") from exc
    return BacktestRun(result, performance_of(result))


def _stamps(column: Any) -> list[int]:
    import pandas as pd

    if pd.api.types.is_integer_dtype(column):
        return [int(v) for v in column]
    try:
        return [int(v) for v in pd.to_datetime(column, utc=True).astype("int64")]
    except (ValueError, TypeError) as exc:
        raise BacktestError(f"prints ts must be epoch ns or UTC datetimes: {exc}") from None


def _positive(value: Any) -> bool:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return False
    return math.isfinite(number) and number > 0
