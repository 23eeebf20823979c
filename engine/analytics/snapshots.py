"""Snapshots of the live account's performance: taken on a schedule, stored, read back
as an equity curve.

**Taking one** (:func:`take_snapshots`), per account that has a row in the order
ledger's ``positions`` table (flat ones included: their realized P&L counts):

- ``realized_pnl``: the sum of the account's positions' realized P&L (since inception,
  net of fees; the ledger keeps it per position, so fills stored before their
  ``realized_pnl`` column existed are still counted);
- ``unrealized_pnl``: over the open positions, ``qty * (mark - avg) = qty * mark - cost``
  with the ledger's stored cost basis (:class:`engine.orders.positions.Position`, as the
  ledger restores it); **a position without a mark adds 0** and increments
  ``marks_missing`` — the P&L of that snapshot is then incomplete, and says so;
- ``total_pnl = realized_pnl + unrealized_pnl`` (as stored, so the identity holds
  exactly in the table);
- ``gross_exposure = Σ |qty| * mark``, ``net_exposure = Σ qty * mark`` over the open
  positions with a mark;
- ``positions``: open positions; ``fills``: the account's fills so far.

Sums are exact (:data:`~engine.orders.positions.DECIMAL_CONTEXT`); each figure is then
rounded once (half even) to the ledger's 1e-10.

**Storing** (:func:`save_snapshots`): one row per ``(account, ts)``; saving a snapshot
again writes nothing. **Reading** (:func:`load_snapshots`): the newest ``limit`` at or
after ``since_ns``, oldest first.

**Performance** (:func:`account_performance`): the equity curve ``capital + total_pnl``
at the snapshot times through :func:`engine.analytics.analyze`. Snapshots are taken
around the clock, so the curve is annualized on calendar time (365.25 days over the
median spacing; rule 1 of :mod:`engine.analytics.curve`), not on an exchange calendar.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal, localcontext

import numpy as np
from sqlalchemy import Engine, Table, func, select
from sqlalchemy.dialects import postgresql, sqlite

from engine.analytics.curve import YEAR_SECONDS, EquityCurve
from engine.analytics.performance import Performance, analyze
from engine.bus.commands.analytics import (
    DEFAULT_CAPITAL,
    MAX_SNAPSHOTS,
    AccountPerformance,
    GetPerformance,
    PerformanceFigures,
    SnapshotRow,
)
from engine.intervals import NS
from engine.orders.ledger import OrderLedger
from engine.orders.positions import DECIMAL_CONTEXT, ZERO, Position, quantize_price
from engine.persistence.decimals import plain_decimal
from engine.persistence.models import Fill, Order, PerformanceSnapshot

Marks = Callable[[str], Decimal | None]
"""The mark of a symbol now, or None when there is none."""

_SNAPSHOTS: Table = PerformanceSnapshot.__table__  # type: ignore[assignment]
_FILLS: Table = Fill.__table__  # type: ignore[assignment]
_ORDERS: Table = Order.__table__  # type: ignore[assignment]
_FIGURES = ("realized_pnl", "unrealized_pnl", "total_pnl", "gross_exposure", "net_exposure")


def take_snapshots(engine: Engine, marks: Marks, ts: int) -> list[SnapshotRow]:
    """A snapshot of every account with positions, valued at ``marks`` (asked once per
    open symbol), stamped ``ts`` (UTC ns); by account. See the module docstring."""
    fills = fill_counts(engine)
    by_account: dict[str, list[Position]] = {}
    for position in OrderLedger(engine).positions():
        by_account.setdefault(position.account, []).append(position)
    known: dict[str, Decimal | None] = {}
    rows = []
    with localcontext(DECIMAL_CONTEXT):
        for account, held in by_account.items():
            realized = unrealized = gross = net = ZERO
            open_positions = missing = 0
            for position in held:
                realized += position.realized_pnl
                if position.is_flat:
                    continue
                open_positions += 1
                if position.symbol not in known:
                    known[position.symbol] = marks(position.symbol)
                mark = known[position.symbol]
                if mark is None:
                    missing += 1
                    continue
                unrealized += position.unrealized(mark)
                gross += abs(position.qty) * mark
                net += position.qty * mark
            realized, unrealized = quantize_price(realized), quantize_price(unrealized)
            rows.append(
                SnapshotRow(
                    ts=ts,
                    account=account,
                    realized_pnl=realized,
                    unrealized_pnl=unrealized,
                    total_pnl=realized + unrealized,
                    gross_exposure=quantize_price(gross),
                    net_exposure=quantize_price(net),
                    positions=open_positions,
                    fills=fills.get(account, 0),
                    marks_missing=missing,
                )
            )
    return rows


def fill_counts(engine: Engine) -> dict[str, int]:
    """Fills stored so far, by account."""
    f, o = _FILLS.c, _ORDERS.c
    query = (
        select(o.account, func.count(f.id))
        .join_from(_FILLS, _ORDERS, f.order_id == o.id)
        .group_by(o.account)
    )
    with engine.connect() as conn:
        return {account: count for account, count in conn.execute(query)}


def save_snapshots(engine: Engine, snapshots: Sequence[SnapshotRow]) -> int:
    """Store ``snapshots`` in one transaction; returns how many were new (a snapshot of
    an ``(account, ts)`` already stored is left as it is)."""
    if not snapshots:
        return 0
    values = [
        {
            "ts": s.ts,
            "account": s.account,
            **{name: getattr(s, name) for name in _FIGURES},
            "positions": s.positions,
            "fills": s.fills,
            "marks_missing": s.marks_missing,
        }
        for s in snapshots
    ]
    with engine.begin() as conn:
        insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        statement = insert(_SNAPSHOTS).on_conflict_do_nothing(
            index_elements=[_SNAPSHOTS.c.account, _SNAPSHOTS.c.ts]
        )
        return sum(
            conn.execute(
                statement.values(**row), execution_options={"preserve_rowcount": True}
            ).rowcount
            for row in values
        )


def load_snapshots(
    engine: Engine, account: str, since_ns: int | None = None, limit: int = MAX_SNAPSHOTS
) -> list[SnapshotRow]:
    """The newest ``limit`` snapshots of ``account`` taken at or after ``since_ns``,
    oldest first."""
    c = _SNAPSHOTS.c
    query = select(_SNAPSHOTS).where(c.account == account)
    if since_ns is not None:
        query = query.where(c.ts >= since_ns)
    query = query.order_by(c.ts.desc()).limit(limit)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        SnapshotRow(
            ts=row.ts,
            account=row.account,
            **{name: plain_decimal(Decimal(getattr(row, name))) for name in _FIGURES},
            positions=row.positions,
            fills=row.fills,
            marks_missing=row.marks_missing,
        )
        for row in reversed(rows)
    ]


def account_performance(
    snapshots: Sequence[SnapshotRow], *, capital: Decimal = DEFAULT_CAPITAL
) -> Performance | None:
    """The performance of the equity ``capital + total_pnl`` over ``snapshots`` (one
    account's, strictly increasing times); None with fewer than two. Raises
    ``ValueError`` for a capital that is not positive, snapshots of several accounts or
    out of order, or a curve that does not start positive (losses beyond the capital)."""
    if not capital.is_finite() or not capital > 0:
        raise ValueError(f"capital must be positive, not {capital}")
    if len({s.account for s in snapshots}) > 1:
        raise ValueError("account_performance takes the snapshots of one account")
    if len(snapshots) < 2:
        return None
    ts = tuple(s.ts for s in snapshots)
    with localcontext(DECIMAL_CONTEXT):
        equity = tuple(float(capital + s.total_pnl) for s in snapshots)
    spacing = float(np.median(np.diff(np.asarray(ts, dtype=np.int64)))) / NS
    per_year = YEAR_SECONDS / spacing if spacing > 0 else None
    return analyze(EquityCurve(ts=ts, equity=equity, periods_per_year=per_year))


def performance_figures(
    performance: Performance, snapshots: Sequence[SnapshotRow]
) -> PerformanceFigures:
    """The key figures of ``performance`` (of ``snapshots``) for the wire."""
    with localcontext(DECIMAL_CONTEXT):
        pnl = snapshots[-1].total_pnl - snapshots[0].total_pnl
    return PerformanceFigures(
        start_ts=performance.start_ts,
        end_ts=performance.end_ts,
        points=performance.bars,
        periods_per_year=performance.periods_per_year,
        initial_equity=performance.initial_equity,
        final_equity=performance.final_equity,
        pnl=pnl,
        total_return=performance.total_return,
        annualized_return=performance.annualized_return,
        annualized_volatility=performance.annualized_volatility,
        sharpe=performance.sharpe,
        sortino=performance.sortino,
        calmar=performance.calmar,
        max_drawdown=performance.max_drawdown,
        max_drawdown_start_ts=performance.max_drawdown_start_ts,
        max_drawdown_trough_ts=performance.max_drawdown_trough_ts,
        max_drawdown_end_ts=performance.max_drawdown_end_ts,
        max_drawdown_duration_s=performance.max_drawdown_duration_s,
        max_drawdown_recovered=performance.max_drawdown_recovered,
    )


def account_report(engine: Engine, command: GetPerformance) -> AccountPerformance:
    """``GetPerformance``: the account's newest ``limit`` snapshots since ``since_ns``
    and the performance over them. Raises ``ValueError`` as
    :func:`account_performance` does (an unknown account is no error: no snapshots)."""
    snapshots = load_snapshots(engine, command.account, command.since_ns, command.limit + 1)
    truncated = len(snapshots) > command.limit
    if truncated:
        snapshots = snapshots[1:]
    performance = account_performance(snapshots, capital=command.capital)
    return AccountPerformance(
        account=command.account,
        capital=command.capital,
        snapshots=snapshots,
        truncated=truncated,
        performance=None if performance is None else performance_figures(performance, snapshots),
    )
