"""``qsuite backtest`` and ``qsuite report``: backtests and sweeps from the shell.

``qsuite backtest`` runs one strategy over bars from a file (``--data``, CSV or
Parquet) or from the database (``--from-db``, as stored by ``qsuite backfill``), prints
its key metrics (``--json`` for automation) and writes reports when asked
(``--report out.html|out.json|out/``, repeatable; the format follows the suffix, a
folder or a name without suffix gets the CSV files). With ``--sweep NAME=V1,V2,…``
(repeatable) it runs every combination on ``--workers`` processes instead and prints
them best first by ``--metric``.

``qsuite report`` runs the same backtest and writes its reports (``--html``, ``--json``,
``--csv``; at least one). It does not re-render a JSON report: that document holds the
run's inputs, metrics, trades, fills and equity but not each symbol's closes, which the
HTML draws the trades on; runs are deterministic, so running again gives the same report.

``--param NAME=VALUE`` and the values of ``--sweep`` are JSON when they parse as JSON
(``10``, ``0.5``, ``true``, ``"sma"``) and text otherwise (``ema``). A progress bar goes
to stderr when it is a terminal. Bad input exits 2 with the reason on stderr.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO

import msgspec

from app.ctl_verbs import assignment, decimal
from app.render_table import table, utc_time
from app.settings import Settings
from engine.intervals import INTERVAL_SECONDS

if TYPE_CHECKING:  # the backtest machinery loads only when a command runs
    from engine.backtest.api import BacktestRun, KeyMetrics
    from engine.backtest.report import ReportFormat
    from engine.backtest.sweep import SweepRow

SIZINGS: Final = ("cash_fraction", "fixed", "all_cash")
FORMATS: Final[dict[str, ReportFormat]] = {
    ".html": "html",
    ".htm": "html",
    ".json": "json",
    ".csv": "csv",
}


# --- arguments ------------------------------------------------------------------------------


def param(text: str) -> tuple[str, Any]:
    """``NAME=VALUE`` of ``--param``: the value as JSON when it parses, else as text."""
    name, value = assignment(text, "fast=10")
    return name, _value(value)


def grid_axis(text: str) -> tuple[str, list[Any]]:
    """``NAME=V1,V2,…`` (or ``NAME=[V1, V2]``) of ``--sweep``: each value as in --param."""
    name, values = assignment(text, "fast=5,10,20")
    listed = _value(values) if values.startswith("[") else None
    if not isinstance(listed, list):
        listed = [_value(v.strip()) for v in values.split(",")]
    if not listed or any(v == "" for v in listed):
        raise argparse.ArgumentTypeError(f"{text!r} has an empty value; like fast=5,10,20")
    return name, listed


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


def _value(text: str) -> Any:
    try:
        return msgspec.json.decode(text)
    except msgspec.DecodeError:
        return text


def add_parsers(sub: Any) -> None:
    bt = sub.add_parser(
        "backtest",
        help="backtest a strategy on a bar file or the stored bars; or sweep its parameters",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _run_args(bt)
    bt.add_argument(
        "--report",
        action="append",
        type=Path,
        default=[],
        metavar="PATH",
        help="write a report: out.html, out.json, or a folder for the CSV files (repeatable)",
    )
    bt.add_argument(
        "--sweep",
        action="append",
        type=grid_axis,
        default=[],
        metavar="NAME=V1,V2",
        help="sweep a parameter over these values (repeatable: every combination runs)",
    )
    bt.add_argument("--metric", default="sharpe", help="sort a sweep by (default sharpe)")
    bt.add_argument(
        "--workers", type=positive_int, default=2, help="processes of a sweep (default 2)"
    )
    bt.add_argument("--json", action="store_true", help="print the result as JSON")
    rp = sub.add_parser(
        "report",
        help="run a backtest and write its report (HTML, JSON and/or CSV)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _run_args(rp)
    rp.add_argument("--html", type=Path, metavar="FILE", help="the HTML report")
    rp.add_argument("--json", type=Path, metavar="FILE", help="the JSON report")
    rp.add_argument("--csv", type=Path, metavar="DIR", help="the CSV files, in this folder")


def _run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--strategy", required=True, help="a strategy name (ma_crossover …) or file.py:ClassName"
    )
    p.add_argument(
        "--param",
        action="append",
        type=param,
        default=[],
        metavar="NAME=VALUE",
        help="a strategy parameter (repeatable)",
    )
    p.add_argument("--symbols", help="A,B (default with --data: every symbol of the file)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, metavar="FILE", help="a CSV or Parquet bar file")
    source.add_argument(
        "--from-db", action="store_true", help="the bars stored in the database (qsuite backfill)"
    )
    source.add_argument(
        "--prints",
        type=Path,
        metavar="FILE",
        help="trade prints (ts, symbol, price, size[, aggressor]): orders go through the "
        "venue's matching engine; bars of --interval are built from them",
    )
    p.add_argument("--interval", default="1d", choices=list(INTERVAL_SECONDS))
    p.add_argument("--start", help="first bar open time, UTC date or datetime (inclusive)")
    p.add_argument("--end", help="UTC date or datetime (exclusive)")
    p.add_argument("--cash", type=decimal, default=decimal("100000"), help="default 100000")
    p.add_argument("--commission", type=float, default=0.0, help="fraction of notional, 0 ≤ c < 1")
    p.add_argument("--commission-per-share", type=float, default=0.0)
    p.add_argument("--slippage-bps", type=float, default=0.0, help="market orders, against you")
    p.add_argument("--sizing", choices=SIZINGS, default="cash_fraction")
    p.add_argument("--fraction", type=float, default=1.0, help="share of equity (cash_fraction)")
    p.add_argument("--qty", type=decimal, default=decimal("1"), help="units per order (fixed)")
    p.add_argument("--allow-short", action="store_true", help="sells may open short positions")


# --- running --------------------------------------------------------------------------------


class TextProgress:
    """A one-line ``[#####.....]`` bar redrawn in place on ``stream``."""

    def __init__(self, label: str, unit: str, stream: TextIO, width: int = 30) -> None:
        self.label, self.unit, self.stream, self.width = label, unit, stream, width
        self._drawn = False

    def __call__(self, done: int, total: int) -> None:
        filled = self.width * done // max(total, 1)
        bar = "#" * filled + "." * (self.width - filled)
        pct = 100 * done // max(total, 1)
        self.stream.write(f"\r{self.label} [{bar}] {pct:3d}% {done:,}/{total:,} {self.unit}")
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()


def run(args: argparse.Namespace, settings: Settings) -> int:
    """``qsuite backtest`` / ``qsuite report``: 0 done, 2 bad input (reason on stderr)."""
    from engine.backtest.runner import BacktestError

    name = f"qsuite {args.cmd}"
    reports = _reports(args)
    sweeping = args.cmd == "backtest" and bool(args.sweep)
    if sweeping and args.prints is not None:
        reports = "--sweep runs on bars (--data or --from-db), not --prints"
    if isinstance(reports, str) or (sweeping and reports):
        reason = reports if isinstance(reports, str) else "--report needs a single run, not --sweep"
        print(f"{name}: {reason}", file=sys.stderr)
        return 2
    kwargs = _data_kwargs(args)
    engine = None
    if args.from_db:
        from app.database import open_database

        engine = kwargs["from_db"] = open_database(settings)
    bar = TextProgress(args.strategy, "runs" if sweeping else "bars", sys.stderr)
    progress = bar if sys.stderr.isatty() else None
    try:
        if sweeping:
            return _sweep(args, kwargs, progress)
        started = time.perf_counter()
        if args.prints is not None:
            from engine.backtest.prints import backtest_prints

            kwargs.pop("data"), kwargs.pop("slippage_bps")  # prices come from the book
            result = backtest_prints(args.strategy, prints=args.prints, progress=progress, **kwargs)
        else:
            from engine.backtest.api import backtest

            result = backtest(args.strategy, progress=progress, **kwargs)
        bar.close()
        written = [str(p) for path, fmt in reports for p in result.report(path, fmt)]
        if args.cmd == "report":
            print("\n".join(written))
        else:
            _summary(result, written, time.perf_counter() - started, as_json=args.json)
        return 0
    except BacktestError as exc:
        bar.close()
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"{name}: cannot write the report: {exc}", file=sys.stderr)
        return 2
    finally:
        if engine is not None:
            engine.dispose()


def _reports(args: argparse.Namespace) -> list[tuple[Path, ReportFormat]] | str:
    """(path, format) of each report asked for, or why they cannot be written."""
    if args.cmd == "report":
        asked: list[tuple[Path | None, ReportFormat]] = [
            (args.html, "html"),
            (args.json, "json"),
            (args.csv, "csv"),
        ]
        chosen = [(p, f) for p, f in asked if p is not None]
        return chosen or "name at least one report: --html FILE, --json FILE or --csv DIR"
    out: list[tuple[Path, ReportFormat]] = []
    for path in args.report:
        if path.is_dir() or str(path).endswith(("/", "\\")) or not path.suffix:
            out.append((path, "csv"))
        elif path.suffix.lower() in FORMATS:
            out.append((path, FORMATS[path.suffix.lower()]))
        else:
            return f"--report {path}: use .html, .json, or a folder for CSV files"
    return out


def _data_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "symbols": args.symbols,
        "interval": args.interval,
        "data": args.data,
        "start": args.start,
        "end": args.end,
        "cash": args.cash,
        "commission": args.commission,
        "commission_per_share": args.commission_per_share,
        "slippage_bps": args.slippage_bps,
        "sizing": args.sizing,
        "fraction": args.fraction,
        "qty": args.qty,
        "allow_short": args.allow_short,
        "params": dict(args.param),
    }


def _sweep(args: argparse.Namespace, kwargs: dict[str, Any], progress: Any) -> int:
    from engine.backtest.runner import BacktestError
    from engine.backtest.sweep import sweep

    grid = dict(args.sweep)
    if len(grid) != len(args.sweep):
        raise BacktestError("each --sweep parameter may be given once")
    rows = sweep(
        args.strategy, grid, metric=args.metric, workers=args.workers, progress=progress, **kwargs
    )
    if progress is not None:
        progress.close()
    if args.json:
        data = {"metric": args.metric, "rows": msgspec.to_builtins(rows)}
        sys.stdout.write(msgspec.json.encode(data).decode() + "\n")
    else:
        _sweep_table(rows, list(grid))
    return 0


# --- output ---------------------------------------------------------------------------------


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.2f}%"


def _ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def _summary(run: BacktestRun, written: list[str], wall_s: float, *, as_json: bool) -> None:
    result, metrics = run.result, run.metrics
    config = result.config
    if as_json:
        data = {
            "strategy": config.strategy,
            "params": config.params,
            "symbols": result.symbols,
            "interval": config.interval,
            "start_ts": run.performance.start_ts,
            "end_ts": run.performance.end_ts,
            "bars": result.bars,
            "signals": result.signals,
            "fills": len(result.fills),
            "denied": len(result.denied),
            "metrics": metrics,
            "reports": written,
        }
        sys.stdout.write(msgspec.json.encode(msgspec.to_builtins(data)).decode() + "\n")
        return
    params = " ".join(f"{k}={_json(v)}" for k, v in sorted(config.params.items())) or "defaults"
    print(f"{config.strategy} ({params}) on {', '.join(result.symbols)}, {config.interval}")
    first, last = utc_time(run.performance.start_ts), utc_time(run.performance.end_ts)
    print(
        f"bar closes {first} → {last} UTC: "
        f"{result.bars:,} bars, {result.signals:,} signals, {len(result.fills):,} fills, "
        f"{len(result.denied):,} risk denials, {wall_s:.2f} s"
    )
    for label, value in _lines(metrics):
        print(f"  {label:<20} {value:>14}")
    for path in written:
        print(f"report: {path}")


def _lines(m: KeyMetrics) -> list[tuple[str, str]]:
    return [
        ("Total return", _pct(m.total_return)),
        ("Buy & hold return", _pct(m.buy_and_hold_return)),
        ("Annualized return", _pct(m.annualized_return)),
        ("Sharpe ratio", _ratio(m.sharpe)),
        ("Sortino ratio", _ratio(m.sortino)),
        ("Max drawdown", _pct(m.max_drawdown)),
        ("Trades (closed)", f"{m.trades:,}"),
        ("Win rate", _pct(m.win_rate)),
        ("Profit factor", _ratio(m.profit_factor)),
        ("Final equity", f"{m.final_equity:,.2f}"),
    ]


def _sweep_table(rows: list[SweepRow], names: list[str]) -> None:
    table(
        [
            {
                "#": rank,
                **{name: _json(row.params.get(name)) for name in names},
                "return": _pct(row.total_return),
                "annual": _pct(row.annualized_return),
                "sharpe": _ratio(row.sharpe),
                "sortino": _ratio(row.sortino),
                "max_dd": _pct(row.max_drawdown),
                "trades": "-" if row.trades is None else str(row.trades),
                "win_rate": _pct(row.win_rate),
                "pf": _ratio(row.profit_factor),
                "error": row.error or "",
            }
            for rank, row in enumerate(rows, start=1)
        ]
    )


def _json(value: Any) -> str:
    return value if isinstance(value, str) else msgspec.json.encode(value).decode()
