"""The venue's simulated liquidity: market makers that quote around the feed's price,
and a flow of market trades that follows the feed's prints.

Market maker (account ``_mm``): on every quote of the feed it keeps ``levels`` price
levels per side, ``spacing`` ticks apart, from the quote's bid (rounded down to the tick)
and ask (rounded up; at least one tick above the bid), each showing ``size`` lots. A
level the market moved away from is cancelled; a level hit by a trade is topped up after
``refill_s`` (the next quote at or after it). Scenarios scale it (see
:data:`SCENARIO_EFFECTS`): thin and wide when illiquid, half depth and double spacing
when volatile; a switch to ``flash_crash`` sweeps the bid side at once (a seller takes
every market-maker bid), after which the book refills as quotes follow the recovery.

Flow (account ``_flow``): every trade the feed prints becomes an IOC order of the same
size on the printed side, limited at the printed price, so the venue's tape and volume
follow the market (VWAP and POV need that volume) and resting client orders at the
printed price or better trade with it.

Nothing here is persisted or reported to a session: after a restart the market makers
quote again on the next quote.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from engine.bus.events import Event, OrderCancelled, OrderFilled, Side
from engine.venue.book import OrderBook

MM_ACCOUNT = "_mm"
FLOW_ACCOUNT = "_flow"
INTERNAL_ACCOUNTS = frozenset((MM_ACCOUNT, FLOW_ACCOUNT))


@dataclass(frozen=True, slots=True)
class ScenarioEffect:
    depth: float
    """Multiplier of the size of every level."""
    spacing: int
    """Multiplier of the ticks between levels."""
    sweep: bool = False
    """On switching in: sell into every market-maker bid at once."""


SCENARIO_EFFECTS: dict[str, ScenarioEffect] = {
    "calm": ScenarioEffect(1.0, 1),
    "trending_up": ScenarioEffect(1.0, 1),
    "trending_down": ScenarioEffect(1.0, 1),
    "gap_open": ScenarioEffect(1.0, 1),
    "volatile": ScenarioEffect(0.5, 2),
    "illiquid": ScenarioEffect(0.1, 5),
    "flash_crash": ScenarioEffect(0.3, 3, sweep=True),
}


@dataclass(frozen=True, slots=True)
class LiquidityParams:
    levels: int
    spacing_ticks: int
    size_lots: int
    """Lots per level in a calm market."""
    refill_ns: int


class MarketMaker:
    """The market maker of one book (see the module docstring)."""

    def __init__(self, book: OrderBook, params: LiquidityParams, scenario: str = "calm") -> None:
        self.book = book
        self.params = params
        self.scenario = scenario
        self._quotes: dict[tuple[Side, int], tuple[str, int]] = {}
        """(side, price ticks) → (client order id, lots quoted)."""
        self._hit_at: dict[tuple[Side, int], int] = {}
        self._n = 0
        self._bid: int | None = None
        self._ask: int | None = None

    @property
    def effect(self) -> ScenarioEffect:
        return SCENARIO_EFFECTS.get(self.scenario, SCENARIO_EFFECTS["calm"])

    def set_scenario(self, scenario: str, ts: int) -> list[Event]:
        """Switch scenario; re-quote at once (and sweep on a flash crash)."""
        if scenario == self.scenario:
            return []
        self.scenario = scenario
        events: list[Event] = []
        if self.effect.sweep:
            events += self._sweep_bids(ts)
        if self._bid is not None and self._ask is not None:
            events += self._requote(self._bid, self._ask, ts)
        return events

    def quote(self, bid: float, ask: float, ts: int) -> list[Event]:
        """The feed's quote moved: keep the ladder around it."""
        tick = float(self.book.tick_size)
        if not (math.isfinite(bid) and math.isfinite(ask)) or bid <= 0 or ask <= 0:
            return []
        bid_t = math.floor(bid / tick + 1e-9)
        ask_t = math.ceil(ask / tick - 1e-9)
        if ask_t <= bid_t:
            ask_t = bid_t + 1
        if bid_t < 1:
            return []
        self._bid, self._ask = bid_t, ask_t
        return self._requote(bid_t, ask_t, ts)

    def on_events(self, events: list[Event], ts: int) -> None:
        """Note fills and cancels of the market maker's orders (from any operation)."""
        for event in events:
            if isinstance(event, (OrderFilled, OrderCancelled)) and event.account == MM_ACCOUNT:
                for key, (cid, _) in list(self._quotes.items()):
                    if cid == event.client_order_id:
                        if isinstance(event, OrderFilled):
                            self._hit_at.setdefault(key, ts)
                            if event.leaves_qty == 0:
                                del self._quotes[key]
                        else:
                            del self._quotes[key]
                        break

    # --- internals ---------------------------------------------------------------------

    def _targets(self, bid_t: int, ask_t: int) -> dict[tuple[Side, int], int]:
        effect = self.effect
        step = self.params.spacing_ticks * effect.spacing
        size = max(1, round(self.params.size_lots * effect.depth))
        out: dict[tuple[Side, int], int] = {}
        for k in range(self.params.levels):
            if bid_t - k * step >= 1:
                out[("buy", bid_t - k * step)] = size
            out[("sell", ask_t + k * step)] = size
        return out

    def _requote(self, bid_t: int, ask_t: int, ts: int) -> list[Event]:
        targets = self._targets(bid_t, ask_t)
        events: list[Event] = []
        for key, (cid, size) in list(self._quotes.items()):
            state = self.book.order(MM_ACCOUNT, cid)
            gone = state is None or state.leaves_qty == 0
            if key not in targets or gone or size != targets[key]:  # moved, or rescaled
                if not gone:
                    events += self._track(self.book.cancel(MM_ACCOUNT, cid, ts=ts), ts)
                self._quotes.pop(key, None)
                self._hit_at.pop(key, None)
        for key, size in targets.items():
            quoted = self._quotes.get(key)
            if quoted is not None:
                events += self._refill(key, quoted[0], size, ts)
                continue
            side, price = key
            if (side == "buy" and self._crosses_ask(price)) or (
                side == "sell" and self._crosses_bid(price)
            ):
                continue  # never trade against others by quoting: wait for the market
            cid = self._next_id()
            events += self._track(self.book.submit(MM_ACCOUNT, cid, side, size, price, ts=ts), ts)
            state = self.book.order(MM_ACCOUNT, cid)
            if state is not None and state.leaves_qty > 0:
                self._quotes[key] = (cid, size)
        return events

    def _refill(self, key: tuple[Side, int], cid: str, size: int, ts: int) -> list[Event]:
        """A level hit at least ``refill_ns`` ago goes back to full size (a replace with a
        higher quantity: its priority goes to the back, as a real refill's would)."""
        state = self.book.order(MM_ACCOUNT, cid)
        hit = self._hit_at.get(key)
        if state is None or state.leaves_qty >= size or hit is None:
            return []
        if ts - hit < self.params.refill_ns:
            return []
        self._hit_at.pop(key, None)
        new = self._next_id()
        events = self._track(
            self.book.replace(MM_ACCOUNT, cid, new, state.cum_qty + size, ts=ts), ts
        )
        if self.book.order(MM_ACCOUNT, new) is not None:
            self._quotes[key] = (new, size)
        return events

    def _crosses_ask(self, price: int) -> bool:
        best = self.book.best_ask()
        return best is not None and price >= best

    def _crosses_bid(self, price: int) -> bool:
        best = self.book.best_bid()
        return best is not None and price <= best

    def _sweep_bids(self, ts: int) -> list[Event]:
        lots = 0
        for (side, _), (cid, _) in self._quotes.items():
            state = self.book.order(MM_ACCOUNT, cid)
            if side == "buy" and state is not None:
                lots += state.leaves_qty
        if lots <= 0:
            return []
        events = self.book.submit(
            FLOW_ACCOUNT, f"sweep-{self._next_id()}", "sell", lots, order_type="market", ts=ts
        )
        return self._track(events, ts)

    def _track(self, events: list[Event], ts: int) -> list[Event]:
        self.on_events(events, ts)
        return events

    def _next_id(self) -> str:
        self._n += 1
        return f"mm-{self._n}"


class Flow:
    """Replays the feed's trade prints as IOC orders (see the module docstring)."""

    def __init__(self, book: OrderBook) -> None:
        self.book = book
        self._n = 0

    def trade(self, price: float, size: float, aggressor: str, ts: int) -> list[Event]:
        tick, lot = float(self.book.tick_size), float(self.book.lot_size)
        if not (math.isfinite(price) and math.isfinite(size)) or price <= 0 or size <= 0:
            return []
        lots = max(1, round(size / lot))
        side: Side
        if aggressor in ("buy", "sell"):
            side = "buy" if aggressor == "buy" else "sell"
        else:
            bid, ask = self.book.best_bid(), self.book.best_ask()
            mid = (bid + ask) / 2 * tick if bid is not None and ask is not None else price
            side = "buy" if price >= mid else "sell"
        ticks = math.ceil(price / tick - 1e-9) if side == "buy" else math.floor(price / tick + 1e-9)
        if ticks < 1:
            return []
        self._n += 1
        return self.book.submit(
            FLOW_ACCOUNT, f"flow-{self._n}", side, lots, ticks, tif="ioc", ts=ts
        )
