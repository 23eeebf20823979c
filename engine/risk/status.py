"""The gate's snapshot for operators: states, usage of every limit, open alerts, halts.

JSON-able with ``msgspec.json.encode`` (Decimals become strings). Built by
:meth:`engine.risk.gate.RiskGate.status`.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from engine.bus.commands.risk import (
    AccountStatus,
    AlertView,
    HaltView,
    LimitUsage,
    RiskStatus,
    RuleView,
)
from engine.risk.alerts import OpenAlert
from engine.risk.state import ZERO, AccountState, HaltRecord, TradingState

__all__ = [
    "AccountStatus",
    "AlertView",
    "HaltView",
    "LimitUsage",
    "RiskStatus",
    "RuleView",
    "account_status",
]


def account_status(
    acct: AccountState,
    *,
    halted: HaltRecord | None,
    algo_open: Mapping[str, int],
    alerts: list[OpenAlert],
    now_ns: int,
) -> AccountStatus:
    """The status of one account: its state (``halted``: a kill-switch halt of it or of
    everything), P&L, the usage of its stateful limits, its open alerts."""
    lim = acct.limits
    state: TradingState = "HALTED" if halted else acct.loss_state
    state_reason = "kill_switch" if halted else "" if state == "ACTIVE" else "daily_loss"
    usage: list[LimitUsage] = []

    def add(name: str, limit: Decimal | int | None, observed: Decimal, key: str = "") -> None:
        if limit is not None:
            value = Decimal(limit)
            usage.append(
                LimitUsage(
                    limit=name,
                    limit_value=value,
                    observed=observed,
                    usage=float(observed / value),
                    key=key,
                )
            )

    if lim is not None:
        symbols = list(acct.symbols.items())
        if symbols:
            key, sx = max(symbols, key=lambda kv: kv[1].exposure())
            add("max_position_qty", lim.pos_qty, sx.exposure(), key)
            key, sx = max(symbols, key=lambda kv: kv[1].notional)
            add("max_position_notional", lim.pos_notional, sx.notional, key)
            key, sx = max(symbols, key=lambda kv: len(kv[1].orders))
            add("max_open_orders_per_symbol", lim.open_symbol, Decimal(len(sx.orders)), key)
        add("max_gross_notional", lim.gross, acct.gross)
        add("daily_loss_limit", lim.loss, max(-acct.day_pnl, ZERO))
        if acct.rate is not None:
            rate = acct.rate
            add("max_orders_per_s", Decimal(repr(rate.rate)), rate.observed_rate(now_ns, 0))
        algos = {w.algo_id for sx in acct.symbols.values() for w in sx.orders.values()}
        algos.discard("")
        if algos and lim.open_algo is not None:
            algo = max(algos, key=lambda a: algo_open.get(a, 0))
            add("max_open_orders_per_algo", lim.open_algo, Decimal(algo_open.get(algo, 0)), algo)
    return AccountStatus(
        account=acct.account,
        state=state,
        state_reason=state_reason,
        profile_version=0 if lim is None else lim.version,
        day_pnl=acct.day_pnl,
        realized_pnl=acct.realized,
        unrealized_pnl=acct.unrealized,
        gross_notional=acct.gross,
        working_orders=sum(len(sx.orders) for sx in acct.symbols.values()),
        limits=usage,
        alerts=[
            AlertView(
                kind=a.kind,
                severity=a.severity,
                message=a.message,
                count=a.count,
                first_ns=a.first_ns,
                last_ns=a.last_ns,
                symbol=a.symbol,
                algo_id=a.algo_id,
            )
            for a in alerts
        ],
    )
