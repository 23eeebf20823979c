"""Positions in a real order ledger, the way the execution process writes them: an
intent, the venue's accept, then fills (for the analytics tests)."""

from __future__ import annotations

import itertools
from decimal import Decimal

from engine.bus.events import OrderAccepted, OrderFilled, Side
from engine.orders.ledger import OrderLedger
from engine.orders.lifecycle import new_order

T0 = 1_700_000_000 * 1_000_000_000
_ids = itertools.count(1)


def trade(
    ledger: OrderLedger,
    account: str,
    symbol: str,
    side: Side,
    qty: str,
    price: str,
    *,
    ts: int = T0,
) -> None:
    """One order of ``qty`` at ``price``, filled at once (one fill)."""
    n = next(_ids)
    cid, vid = f"c{n}", f"v{n}"
    order = new_order(
        cid,
        account=account,
        symbol=symbol,
        side=side,
        qty=Decimal(qty),
        price=Decimal(price),
        ts=ts,
    )
    ledger.record_intent(order)
    common = {
        "venue": "sim",
        "account": account,
        "client_order_id": cid,
        "venue_order_id": vid,
        "symbol": symbol,
        "side": side,
    }
    ledger.apply(
        OrderAccepted(
            ts_event=ts,
            **common,
            order_type="limit",
            tif="day",
            qty=Decimal(qty),
            price=Decimal(price),
        )
    )
    recorded = ledger.apply(
        OrderFilled(
            ts_event=ts,
            **common,
            exec_id=f"e{n}",
            trade_id=f"t{n}",
            qty=Decimal(qty),
            price=Decimal(price),
            liquidity="taker",
            leaves_qty=Decimal(0),
            cum_qty=Decimal(qty),
        )
    )
    assert recorded.result == "applied", recorded
