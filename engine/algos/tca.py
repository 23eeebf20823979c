"""Transaction cost analysis of one parent order (pure arithmetic, live or final).

- **Arrival price**: the mid of the venue's book when the parent started running.
- **Implementation shortfall** (bps of arrival): how much worse the average fill is than
  the arrival price — ``(avg - arrival) / arrival`` for a buy, the opposite for a sell;
  positive is a cost.
- **Interval VWAP**: the volume-weighted price of every trade on the venue while the
  parent ran (its own included); **slippage vs VWAP** is signed like the shortfall.
- **Participation**: filled / market volume over the same interval; **fill rate**:
  filled / parent quantity; **duration**: start to end (or to now while it runs).
"""

from __future__ import annotations

from decimal import Decimal

from engine.bus.commands.algos import AlgoTca
from engine.bus.events import Side

ZERO = Decimal(0)
BPS = Decimal(10_000)


def analyse(
    *,
    algo_id: str,
    side: Side,
    qty: Decimal,
    filled: Decimal,
    notional: Decimal,
    arrival_price: Decimal | None,
    market_volume: Decimal,
    market_notional: Decimal,
    start_ns: int,
    end_ns: int,
    children: int,
    final: bool,
) -> AlgoTca:
    """The TCA of a parent that filled ``filled`` for ``notional`` (sum of qty * price)."""
    avg = notional / filled if filled > 0 else None
    vwap = market_notional / market_volume if market_volume > 0 else None
    return AlgoTca(
        algo_id=algo_id,
        final=final,
        side=side,
        qty=qty,
        filled=filled,
        fill_rate=float(filled / qty) if qty > 0 else 0.0,
        avg_price=avg,
        arrival_price=arrival_price,
        shortfall_bps=signed_bps(side, avg, arrival_price),
        interval_vwap=vwap,
        slippage_vs_vwap_bps=signed_bps(side, avg, vwap),
        market_volume=market_volume,
        participation=float(filled / market_volume) if market_volume > 0 else None,
        duration_s=max(end_ns - start_ns, 0) / 1e9,
        children=children,
    )


def signed_bps(side: Side, price: Decimal | None, benchmark: Decimal | None) -> float | None:
    """How much worse ``price`` is than ``benchmark`` for ``side``, in bps of the
    benchmark (positive: a cost); None without both."""
    if price is None or benchmark is None or benchmark <= 0:
        return None
    sign = 1 if side == "buy" else -1
    return float(sign * (price - benchmark) / benchmark * BPS)
