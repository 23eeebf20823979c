"""How ``qsuite ctl`` prints a reply: typed views for the results people read most, and
a generic layout for the rest (lists of records as tables, column-wise series as rows,
scalars as ``key: value``)."""

from __future__ import annotations

from typing import Any

import msgspec

from app.render_algos import ALGO_RENDERERS
from app.render_analytics import ANALYTICS_RENDERERS
from app.render_table import cell, rounded, table, utc_time
from engine.bus.commands import HealthReport, Result
from engine.bus.commands.analysis import AnalysisCatalog, IndicatorSnapshot
from engine.bus.commands.orders import OrderList, PositionList
from engine.bus.commands.risk import AlertList, RiskStatus
from engine.bus.commands.venue import BookSnapshot


def _stamp(row: dict[str, Any]) -> dict[str, Any]:
    """Nanosecond times (``ts``, ``as_of``, ``last_live_at`` …) shown as UTC times."""
    return {
        k: utc_time(v)
        if k in ("ts", "as_of", "run_at", "next_run", "last_run") and isinstance(v, int)
        else v
        for k, v in row.items()
    }


def render(result: Result) -> None:
    """A reply as a table: list fields as rows, columnar series as rows, the rest as key: value."""
    renderer = ALGO_RENDERERS.get(type(result)) or ANALYTICS_RENDERERS.get(type(result))
    if renderer is not None:
        renderer(result)
        return
    if isinstance(result, BookSnapshot):
        state = "HALTED" if result.halted else "trading"
        print(
            f"{result.symbol} book #{result.book_seq} ({state}; tick {result.tick_size}, "
            f"lot {result.lot_size})"
        )
        ladder: list[dict[str, Any]] = []
        for i in range(max(len(result.bids), len(result.asks))):
            bid = result.bids[i] if i < len(result.bids) else None
            ask = result.asks[i] if i < len(result.asks) else None
            ladder.append(
                {
                    "bid qty": None if bid is None else bid[1],
                    "bid": None if bid is None else bid[0],
                    "ask": None if ask is None else ask[0],
                    "ask qty": None if ask is None else ask[1],
                }
            )
        table(ladder)
        return
    if isinstance(result, IndicatorSnapshot):
        when = "-" if result.as_of is None else utc_time(result.as_of)
        print(f"{result.symbol} {result.interval} as of {when}")
        table(
            [
                {
                    "indicator": s.indicator,
                    "values": " ".join(f"{o}={v[-1]:.6g}" for o, v in s.values.items() if v),
                }
                for s in result.series
            ]
        )
        return
    if isinstance(result, AnalysisCatalog):
        for title, entries in (("indicators", result.indicators), ("rules", result.rules)):
            print(f"{title}:")
            table(
                [
                    {
                        "name": e.name,
                        "params": " ".join(f"{p.name}={p.default}" for p in e.params),
                        "outputs": ",".join(e.outputs),
                        "source": e.source,
                    }
                    for e in entries
                ]
            )
        for key, why in result.disabled.items():
            print(f"disabled {key}: {why}")
        return
    if isinstance(result, OrderList):
        table(
            [
                {
                    "id": o.client_order_id,
                    "account": o.account,
                    "symbol": o.symbol,
                    "side": o.side,
                    "type": o.order_type,
                    "tif": o.tif,
                    "qty": o.qty,
                    "price": o.price,
                    "filled": o.filled_qty,
                    "avg": o.avg_price,
                    "status": o.status.upper(),
                    "reason": o.reason or None,
                    "updated": utc_time(o.ts_updated),
                }
                for o in result.orders
            ]
        )
        return
    if isinstance(result, PositionList):
        table(
            [
                {
                    "account": p.account,
                    "symbol": p.symbol,
                    "qty": p.qty,
                    "avg price": rounded(p.avg_price, 6),
                    "mark": rounded(p.mark_price, 4),
                    "unrealized": rounded(p.unrealized_pnl, 2),
                    "realized": rounded(p.realized_pnl, 2),
                }
                for p in result.positions
            ]
        )
        return
    if isinstance(result, RiskStatus):
        _risk_status(result)
        return
    if isinstance(result, AlertList):
        table(
            [
                {
                    "id": a.id,
                    "raised": utc_time(a.ts),
                    "severity": a.severity.upper(),
                    "kind": a.kind,
                    "account": a.account or None,
                    "symbol": a.symbol or None,
                    "acknowledged": a.acknowledged_by or None,
                    "message": a.message,
                }
                for a in result.alerts
            ]
        )
        return
    data = msgspec.to_builtins(result)
    data.pop("type", None)
    if isinstance(result, HealthReport):
        table(
            [
                {
                    "process": p.process,
                    "state": p.state.upper(),
                    "pid": p.pid or None,
                    "beat age": None if p.heartbeat_age_s is None else f"{p.heartbeat_age_s:.1f}s",
                    "restarts": p.restarts,
                    "version": p.version or None,
                    "detail": p.detail,
                }
                for p in result.processes
            ]
        )
        print(f"overall: {result.overall.upper()}")
        return
    columns = {
        k: v for k, v in data.items() if isinstance(v, list) and v and not isinstance(v[0], dict)
    }
    if "ts" in columns:  # a column-wise series (bars)
        length = len(columns["ts"])
        rows = [{k: v[i] for k, v in columns.items()} for i in range(length)]
        for row in rows:
            row["ts"] = utc_time(row["ts"])
        print(" ".join(f"{k}: {v}" for k, v in data.items() if k not in columns))
        table(rows)
        return
    tables = {k: v for k, v in data.items() if isinstance(v, list) and v and isinstance(v[0], dict)}
    for key, value in data.items():
        if key in tables:
            continue
        if isinstance(value, dict):
            print(f"{key}:")
            for k, v in value.items():
                print(f"  {k} = {cell(v)}")
        elif not (isinstance(value, list) and not value):
            print(f"{key}: {cell(value)}")
    for rows in tables.values():
        table([_stamp(r) for r in rows])


def _risk_status(status: RiskStatus) -> None:
    for halt in [*status.halts, *status.disabled_algos]:
        what = "ALL TRADING" if halt.scope == "global" else f"{halt.scope} {halt.key}"
        print(f"HALTED {what} since {utc_time(halt.since_ns)} by {halt.actor}: {halt.reason}")
    table(
        [
            {
                "account": a.account,
                "state": a.state + (f" ({a.state_reason})" if a.state_reason else ""),
                "profile": a.profile_version or "NONE: denied",
                "day p&l": a.day_pnl,
                "realized": a.realized_pnl,
                "unrealized": a.unrealized_pnl,
                "gross": a.gross_notional,
                "working": a.working_orders,
                "alerts": len(a.alerts),
            }
            for a in status.accounts
        ]
    )
    usage = [
        {
            "account": a.account,
            "limit": u.limit,
            "of": u.key or None,
            "used": u.observed,
            "limit value": u.limit_value,
            "usage": f"{u.usage:.0%}",
        }
        for a in status.accounts
        for u in a.limits
    ]
    if usage:
        print()
        table(usage)
    checks = status.counters
    print(
        f"\nchecks: {checks.get('checks', 0)}, allowed: {checks.get('allowed', 0)}, "
        f"denied: {checks.get('denied', 0)}; unacknowledged alerts: {status.unacknowledged}"
        + (" (qsuite ctl risk alerts)" if status.unacknowledged else "")
    )
