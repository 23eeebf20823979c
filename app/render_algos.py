"""How ``qsuite ctl algo …`` and ``qsuite ctl strategy …`` print their replies: parents
as a table or a short block (with its children), TCA as ``key: value`` lines, algorithm
kinds and custom strategies as tables."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from app.render_table import cell, table, utc_time
from engine.bus.commands import Result
from engine.bus.commands.algos import (
    AlgoDetail,
    AlgoKinds,
    AlgoList,
    AlgoTca,
    AlgoView,
    StrategyList,
    StrategyView,
)


def _when(ts_ns: int | None) -> str:
    return "-" if ts_ns is None else utc_time(ts_ns)


def _share(part: Decimal, whole: Decimal) -> str:
    return f" ({part / whole:.0%})" if whole else ""


def _algo_list(result: AlgoList) -> None:
    table(
        [
            {
                "id": v.algo_id,
                "type": v.algo_type,
                "side": v.side,
                "qty": v.qty,
                "symbol": v.symbol,
                "state": v.state.upper(),
                "filled": v.filled,
                "avg": v.avg_price,
                "working": v.working,
                "children": v.children,
                "reason": v.reason or None,
            }
            for v in result.algos
        ]
    )


def _algo_view(v: AlgoView) -> None:
    print(
        f"{v.algo_id}: {v.algo_type} {v.side} {v.qty} {v.symbol} for {v.account}, "
        f"{v.state.upper()}" + (f" ({v.reason})" if v.reason else "")
    )
    print(
        f"filled: {v.filled} / {v.qty}{_share(v.filled, v.qty)}  avg: {cell(v.avg_price)}  "
        f"working: {v.working}  children: {v.children}"
        + ("" if v.expected is None else f"  expected by now: {v.expected}")
    )
    print(f"params: {v.params}")
    print(
        f"created: {utc_time(v.ts_created)}  started: {_when(v.ts_started)}  "
        f"finished: {_when(v.ts_finished)}"
    )
    if v.strategy:
        print(f"started by strategy: {v.strategy}")


def _algo_detail(result: AlgoDetail) -> None:
    _algo_view(result.algo)
    print()
    table(
        [
            {
                "slice": c.slice_index,
                "id": c.client_order_id,
                "qty": c.qty,
                "price": c.price,
                "status": c.status.upper(),
                "filled": c.filled_qty,
                "avg": c.avg_price,
                "created": utc_time(c.ts_created),
            }
            for c in result.children
        ]
    )


def _bps(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} bps"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _algo_tca(t: AlgoTca) -> None:
    lines: dict[str, Any] = {
        "algo": f"{t.algo_id} ({'final' if t.final else 'live, still running'})",
        "side": t.side,
        "qty": t.qty,
        "filled": t.filled,
        "fill rate": _percent(t.fill_rate),
        "avg price": t.avg_price,
        "arrival price": t.arrival_price,
        "shortfall vs arrival": _bps(t.shortfall_bps),
        "interval vwap": t.interval_vwap,
        "slippage vs vwap": _bps(t.slippage_vs_vwap_bps),
        "market volume": t.market_volume,
        "participation": _percent(t.participation),
        "duration": f"{t.duration_s:.1f}s",
        "children": t.children,
    }
    for key, value in lines.items():
        print(f"{key}: {cell(value)}")


def _algo_kinds(result: AlgoKinds) -> None:
    table(
        [{"kind": k.kind, "version": k.version, "description": k.description} for k in result.kinds]
    )


def _strategies(strategies: list[StrategyView]) -> None:
    table(
        [
            {
                "name": s.name,
                "enabled": "on" if s.enabled else "off",
                "rule": s.signal_rule,
                "symbol": s.symbol or "any",
                "when": None if s.condition in ("", "{}") else s.condition,
                "algo": s.algo_type,
                "params": s.algo_params,
                "account": s.account,
                "side": s.side,
                "qty": s.qty,
                "cooldown": f"{s.cooldown_s}s",
                "today": f"{s.triggers_today}/{s.max_triggers_per_day}",
                "last": _when(s.last_triggered_ns),
            }
            for s in strategies
        ]
    )


ALGO_RENDERERS: dict[type[Result], Callable[[Any], None]] = {
    AlgoList: _algo_list,
    AlgoView: _algo_view,
    AlgoDetail: _algo_detail,
    AlgoTca: _algo_tca,
    AlgoKinds: _algo_kinds,
    StrategyList: lambda result: _strategies(result.strategies),
    StrategyView: lambda result: _strategies([result]),
}
"""Each algorithm and strategy result type and how it is printed."""
