"""Parameter sweeps: one strategy over every combination of a grid, on the same bars.

::

    from engine.backtest.sweep import sweep

    rows = sweep("ma_crossover", {"fast": [5, 10, 20], "slow": [30, 50]},
                 symbols="AAPL", data="aapl.csv", metric="sharpe", workers=2)
    rows[0].params, rows[0].sharpe   # the best combination first

The bars are loaded once (the data arguments of :func:`engine.backtest.api.backtest`)
and sent once to each worker process of a ``ProcessPoolExecutor`` through its
initializer; a task carries only its combination. ``workers=1`` runs in this process.
Each run is deterministic, so the rows do not depend on ``workers``.

Rows are sorted by ``metric``, best first: descending, except ``max_drawdown`` (the
shallowest first); rows without the metric (an undefined ratio, a failed combination)
come last; ties keep the grid's order (``itertools.product`` of the grid's lists in the
order given). A combination that cannot run — bad parameters such as ``fast >= slow``,
or the strategy raising — is reported in its row's ``error``, never raised.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

import msgspec

from engine.backtest import registry
from engine.backtest.api import Data, KeyMetrics, Moment, StrategySpec, execute, load, make_config
from engine.backtest.broker import SizingMode
from engine.backtest.runner import BacktestConfig, BacktestError
from engine.backtest.strategy import Strategy, StrategyError
from engine.persistence.bars import BarRow

if TYPE_CHECKING:
    from sqlalchemy import Engine

METRICS: Final = (
    "sharpe",
    "sortino",
    "total_return",
    "annualized_return",
    "max_drawdown",
    "win_rate",
    "profit_factor",
    "trades",
    "final_equity",
)
"""What a sweep can be sorted by (fields of :class:`SweepRow`)."""
LOWER_IS_BETTER: Final = frozenset({"max_drawdown"})
SweepProgress = Callable[[int, int], None]
"""``progress(combinations done, combinations in all)``."""


class SweepRow(msgspec.Struct, frozen=True, kw_only=True):
    """One combination: its parameters and key metrics, or why it could not run."""

    params: dict[str, Any]
    """The grid's values of this combination (the fixed parameters are not repeated)."""
    total_return: float | None = None
    annualized_return: float | None = None
    sharpe: float | None = None
    sortino: float | None = None
    max_drawdown: float | None = None
    trades: int | None = None
    win_rate: float | None = None
    profit_factor: float | None = None
    final_equity: float | None = None
    error: str | None = None
    """Why the combination did not run (its metrics are then None)."""


def sweep(
    strategy: StrategySpec,
    grid: dict[str, Sequence[Any]],
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
    metric: str = "sharpe",
    workers: int = 2,
    progress: SweepProgress | None = None,
) -> list[SweepRow]:
    """Run every combination of ``grid`` (parameter → values, over the fixed ``params``)
    and return the rows sorted by ``metric`` (module docstring). Bad data, settings, grid
    or metric raise :class:`BacktestError` before anything runs."""
    if metric not in METRICS:
        raise BacktestError(f"unknown metric {metric!r}; use one of {', '.join(METRICS)}")
    if not isinstance(workers, int) or workers < 1:
        raise BacktestError(f"workers must be a whole number of at least 1, not {workers!r}")
    combos = combinations(grid)
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
    job = _Job(config, bars, _portable(strategy))
    rows: list[SweepRow | None] = [None] * len(combos)
    if workers == 1 or len(combos) == 1:
        for i, combo in enumerate(combos):
            rows[i] = job.evaluate(combo)
            if progress is not None:
                progress(i + 1, len(combos))
    else:
        with ProcessPoolExecutor(
            max_workers=min(workers, len(combos)), initializer=_start_worker, initargs=(job,)
        ) as pool:
            futures = {pool.submit(_evaluate, combo): i for i, combo in enumerate(combos)}
            for done, future in enumerate(as_completed(futures), start=1):
                rows[futures[future]] = future.result()
                if progress is not None:
                    progress(done, len(combos))
    return ranked([row for row in rows if row is not None], metric)


def combinations(grid: dict[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of ``grid``, in ``itertools.product`` order; a single value
    counts as a list of one. Raises :class:`BacktestError` for an empty grid or list."""
    if not grid:
        raise BacktestError("the grid is empty: give at least one parameter with values")
    names, values = [], []
    for name, options in grid.items():
        listed = list(options) if isinstance(options, list | tuple | range) else [options]
        if not listed:
            raise BacktestError(f"grid parameter {name} has no values")
        names.append(name)
        values.append(listed)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*values)]


def ranked(rows: list[SweepRow], metric: str) -> list[SweepRow]:
    """``rows`` best first by ``metric`` (module docstring); stable for ties."""
    sign = 1.0 if metric in LOWER_IS_BETTER else -1.0

    def key(row: SweepRow) -> tuple[bool, float]:
        value = getattr(row, metric)
        return (value is None, 0.0 if value is None else sign * float(value))

    return sorted(rows, key=key)


# --- the work of one combination, in a worker or here ---------------------------------------


@dataclass(frozen=True)
class _Job:
    config: BacktestConfig
    bars: list[BarRow]
    strategy: type[Strategy[Any]] | None
    """The class to register in a worker that did not import it (None: by name/file)."""

    def evaluate(self, combo: dict[str, Any]) -> SweepRow:
        config = msgspec.structs.replace(self.config, params={**self.config.params, **combo})
        try:
            metrics = execute(config, self.bars).metrics
        except BacktestError as exc:
            return SweepRow(params=combo, error=str(exc))
        except Exception as exc:  # user code: one bad combination must not stop the sweep
            return SweepRow(params=combo, error=f"{type(exc).__name__}: {exc}")
        return SweepRow(params=combo, **_fields(metrics))


_JOB: _Job | None = None
"""The worker process's job, set once by :func:`_start_worker`."""


def _start_worker(job: _Job) -> None:
    global _JOB
    _JOB = job
    if job.strategy is not None:  # a spawned worker: make the class known by its name
        try:
            known: type[Strategy[Any]] | None = registry.get(job.strategy.name)
        except StrategyError:
            known = None
        if known is not job.strategy:
            registry.register(job.strategy)


def _evaluate(combo: dict[str, Any]) -> SweepRow:
    if _JOB is None:
        raise RuntimeError(f"sweep worker {os.getpid()} was not initialized")
    return _JOB.evaluate(combo)


def _portable(strategy: StrategySpec) -> type[Strategy[Any]] | None:
    """The class to send to workers: a registered strategy's, unless it loads from a file."""
    if isinstance(strategy, type):
        return strategy
    if ":" in strategy and strategy.split(":", 1)[0].endswith(".py"):
        return None
    return registry.get(strategy)


def _fields(metrics: KeyMetrics) -> dict[str, Any]:
    values = msgspec.structs.asdict(metrics)
    return {name: values[name] for name in SweepRow.__struct_fields__ if name in values}
