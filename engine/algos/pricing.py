"""Child-order pricing shared by the execution algorithms.

One question: at what limit price should a child of ``side`` go out now, given the book
and how eager the algorithm is (:data:`Aggressiveness`)? The answer is a price on the
book's grid (the engine still rounds to the tick away from the market and enforces the
parent's limit; capping here keeps the algorithm's own view honest, e.g. when it compares
a working child's price with the one it would send now).
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Literal

from engine.algos.base import Market
from engine.bus.events import Side

Aggressiveness = Literal["passive", "touch", "cross"]
"""How eagerly a child is priced:

- ``passive``: join the own side's best (buy at the bid, sell at the ask) and wait to be
  hit;
- ``touch``: take the opposite best (buy at the ask, sell at the bid);
- ``cross``: a marketable limit a few ticks through the opposite best, to sweep several
  levels (buy at ask + n ticks, sell at bid - n ticks).
"""

AGGRESSIVENESS: tuple[Aggressiveness, ...] = ("passive", "touch", "cross")
"""Every :data:`Aggressiveness`, least eager first."""


def child_price(
    side: Side,
    market: Market,
    aggressiveness: Aggressiveness,
    *,
    limit: Decimal | None,
    cross_ticks: int = 5,
) -> Decimal | None:
    """The limit price of a child of ``side`` priced with ``aggressiveness``; None when the
    book offers no usable price (the caller waits for the next market event).

    - ``passive``: own best (buy: bid, sell: ask); with that side empty, one tick inside
      the opposite best (buy: ask - tick, sell: bid + tick) so the child still rests.
    - ``touch``: opposite best (buy: ask, sell: bid); with that side empty there is
      nothing to take, so the child joins the own best instead.
    - ``cross``: opposite best moved ``cross_ticks`` ticks through it (buy: ask + n·tick,
      sell: bid - n·tick); with the opposite side empty it joins the own best.

    An empty book (neither bid nor ask) gives None whatever the aggressiveness. The result
    is then capped by ``limit`` (buy: ``min(price, limit)``, sell: ``max(price, limit)``),
    so a child never asks for worse than the parent's limit, and put on the tick grid the
    way the engine rounds (buy down, sell up), so it can be compared with the price of a
    working child. A price that would fall to zero or below is replaced by the smallest
    one (one tick) for a sell, and by None for a buy (there is no positive price below the
    book to rest at).

    Raises :class:`ValueError` for a negative ``cross_ticks`` or an unknown
    ``aggressiveness``.
    """
    if cross_ticks < 0:
        raise ValueError(f"cross_ticks must be >= 0, not {cross_ticks}")
    if aggressiveness not in AGGRESSIVENESS:
        raise ValueError(f"unknown aggressiveness {aggressiveness!r}")
    buy = side == "buy"
    own, opposite = (market.bid, market.ask) if buy else (market.ask, market.bid)
    sign = 1 if buy else -1  # +: more eager for a buy (pay more), -: for a sell
    tick = market.tick
    price: Decimal | None
    if aggressiveness == "passive":
        price = own if own is not None else _step(opposite, -sign, tick)
    elif aggressiveness == "touch":
        price = opposite if opposite is not None else own
    else:
        price = _step(opposite, sign * cross_ticks, tick) if opposite is not None else own
    if price is None:
        return None
    if limit is not None:
        price = min(price, limit) if buy else max(price, limit)
    if tick > 0:
        steps = (price / tick).to_integral_value(ROUND_FLOOR if buy else ROUND_CEILING)
        price = int(steps) * tick
    if price <= 0:
        return None if buy else tick
    return price


def _step(price: Decimal | None, ticks: int, tick: Decimal) -> Decimal | None:
    return None if price is None else price + ticks * tick
