"""How ``qsuite ctl`` prints a reply: typed views for the results people read most, and
a generic layout for the rest (lists of records as tables, column-wise series as rows,
scalars as ``key: value``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from engine.bus.commands import HealthReport, Result
from engine.bus.commands.analysis import AnalysisCatalog, IndicatorSnapshot
from engine.bus.commands.orders import OrderList, PositionList
from engine.bus.commands.venue import BookSnapshot


def _table(rows: list[dict[str, Any]]) -> None:
    if not rows:
        print("(none)")
        return
    headers = list(rows[0])
    cells = [[_cell(row.get(h)) for h in headers] for row in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    print("  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _stamp(row: dict[str, Any]) -> dict[str, Any]:
    """Nanosecond times (``ts``, ``as_of``, ``last_live_at`` …) shown as UTC times."""
    return {
        k: _time(v)
        if k in ("ts", "as_of", "run_at", "next_run", "last_run") and isinstance(v, int)
        else v
        for k, v in row.items()
    }


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value)


def _time(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M")


def render(result: Result) -> None:
    """A reply as a table: list fields as rows, columnar series as rows, the rest as key: value."""
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
        _table(ladder)
        return
    if isinstance(result, IndicatorSnapshot):
        when = "-" if result.as_of is None else _time(result.as_of)
        print(f"{result.symbol} {result.interval} as of {when}")
        _table(
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
            _table(
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
        _table(
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
                    "updated": _time(o.ts_updated),
                }
                for o in result.orders
            ]
        )
        return
    if isinstance(result, PositionList):
        _table(
            [
                {
                    "account": p.account,
                    "symbol": p.symbol,
                    "qty": p.qty,
                    "avg price": p.avg_price,
                    "mark": p.mark_price,
                    "unrealized": p.unrealized_pnl,
                    "realized": p.realized_pnl,
                }
                for p in result.positions
            ]
        )
        return
    data = msgspec.to_builtins(result)
    data.pop("type", None)
    if isinstance(result, HealthReport):
        _table(
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
            row["ts"] = _time(row["ts"])
        print(" ".join(f"{k}: {v}" for k, v in data.items() if k not in columns))
        _table(rows)
        return
    tables = {k: v for k, v in data.items() if isinstance(v, list) and v and isinstance(v[0], dict)}
    for key, value in data.items():
        if key in tables:
            continue
        if isinstance(value, dict):
            print(f"{key}:")
            for k, v in value.items():
                print(f"  {k} = {_cell(v)}")
        elif not (isinstance(value, list) and not value):
            print(f"{key}: {_cell(value)}")
    for rows in tables.values():
        _table([_stamp(r) for r in rows])
