"""The match loop of a book: an incoming order against the opposite side.

:class:`Matcher` holds what matching needs besides the sides: the self-match policies,
the trade id counter and the event builder. :meth:`Matcher.take` is the hot path of a
marketable order: it works on the side's and the levels' fields directly, walks the
levels best first and each level from its head, and builds the fill events inline —
per match ``OrderFilled`` for the taker, ``OrderFilled`` for the maker and one
``TradePrinted`` (``aggressor`` = taker side), in that order, all at the level's price.

Self-match prevention per account (``cancel_newest`` cancels the incoming remainder;
``cancel_oldest`` cancels the resting order and matching goes on; ``cancel_both``
cancels both): :meth:`Matcher.take` cancels the resting side itself and tells the
caller to cancel the incoming remainder. Fills before the self-match stand.
:meth:`Matcher.fillable` is the all-or-nothing check of a FOK order, the policy
included (a FOK order blocked by its own resting order is killed and cancels nothing).

Trade ids are ``<prefix>-T<n>``, the two fills ``<prefix>-T<n>-t`` (taker) and
``<prefix>-T<n>-m`` (maker).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from engine.bus.events import Event, OrderFilled, Side, TradePrinted
from engine.errors import ConfigError
from engine.venue.ids import IdSequence
from engine.venue.instrument import Reason
from engine.venue.levels import BookOrder, BookSide
from engine.venue.reports import ReportBuilder

SelfMatchPolicy = Literal["cancel_newest", "cancel_oldest", "cancel_both"]
SELF_MATCH_POLICIES: frozenset[str] = frozenset(("cancel_newest", "cancel_oldest", "cancel_both"))
_MIN_KEY = -(1 << 63)
"""Below every level key: the limit of a market order."""


class Matcher:
    """Matches incoming orders of one book (see the module docstring). ``smp`` maps an
    account to its policy, other accounts get ``smp_default``; raises ``ConfigError``
    for an unknown policy."""

    __slots__ = ("build", "smp", "smp_default", "trades")

    def __init__(
        self,
        build: ReportBuilder,
        trades: IdSequence,
        smp: Mapping[str, str],
        smp_default: str,
    ) -> None:
        for account, policy in [*smp.items(), ("<default>", smp_default)]:
            if policy not in SELF_MATCH_POLICIES:
                raise ConfigError(
                    f"venue.self_match.{account}",
                    f"must be one of {sorted(SELF_MATCH_POLICIES)}, got {policy!r}",
                )
        self.build = build
        self.trades = trades
        self.smp = dict(smp)
        self.smp_default = smp_default

    def execute(
        self,
        order: BookOrder,
        own: BookSide,
        opposite: BookSide,
        events: list[Event],
        ts: int,
        deltas: bool,
        reports: bool,
    ) -> None:
        """Match an incoming order (new, or re-queued by a replace), then rest its
        remainder or cancel it, by precedence: ``self_match``, ``fok_unfilled`` (all or
        nothing: when the whole quantity cannot trade at once, nothing trades),
        ``no_liquidity`` (market), ``ioc_remainder``; a day/gtc limit remainder rests."""
        price, tif = order.price, order.tif
        limit_key = _MIN_KEY if price is None else price * opposite.sign
        keys = opposite.keys
        stopped = False
        if (
            keys
            and keys[-1] >= limit_key
            and (tif != "fok" or self.fillable(order, opposite, limit_key))
        ):
            stopped = self.take(order, opposite, limit_key, events, ts, deltas, reports)
        if not order.leaves:
            return
        if stopped:
            reason = Reason.SELF_MATCH
        elif tif == "fok":
            reason = Reason.FOK_UNFILLED
        elif price is None:
            reason = Reason.NO_LIQUIDITY
        elif tif == "ioc":
            reason = Reason.IOC_REMAINDER
        else:
            own.rest(order, deltas)
            return
        self.kill(order, reason, events, ts, reports)

    def take(
        self,
        taker: BookOrder,
        opposite: BookSide,
        limit_key: int,
        events: list[Event],
        ts: int,
        deltas: bool,
        reports: bool,
    ) -> bool:
        """Match ``taker`` against ``opposite`` down to ``limit_key`` (a level key of
        that side: ``price * sign``); True when a self-match stopped it (its remainder
        must then be cancelled). ``deltas``: record the touched levels; ``reports``:
        append the fill events to ``events``."""
        levels, keys, sign, touched = (
            opposite.levels,
            opposite.keys,
            opposite.sign,
            opposite.touched,
        )
        account, side = taker.account, taker.side
        remaining = taker.leaves
        trades = self.trades
        n = trades.next
        if reports:
            build = self.build
            pdec, qdec = build.pdec, build.qdec
            venue, symbol = build.venue, build.symbol
            maker_side: Side = "sell" if side == "buy" else "buy"
            head, base, tails = trades.head, trades.base, trades.tails
        stopped = False
        while keys:
            key = keys[-1]
            if key < limit_key:
                break
            price = key * sign
            level = levels[price]
            if deltas:
                touched[price] = level
            if reports:
                try:
                    px = pdec[price]
                except KeyError:
                    px = build.prices[price]
            maker = level.head
            level_qty = level.qty  # stored back once per level
            while maker is not None:
                nxt = maker.next
                if maker.account == account:
                    policy = self.smp.get(account, self.smp_default)
                    if policy == "cancel_newest":
                        stopped = True
                        break
                    level.head, level.qty = maker, level_qty
                    level.unlink(maker)  # the first maker left: it has no prev
                    level_qty = level.qty
                    self.kill(maker, Reason.SELF_MATCH, events, ts, reports)
                    maker = nxt
                    if policy == "cancel_both":
                        stopped = True
                        break
                    continue
                leaves = maker.leaves
                if leaves <= remaining:
                    fill = leaves
                    leaves = 0
                else:
                    fill = remaining
                    leaves -= fill
                remaining -= fill
                maker.leaves = leaves
                level_qty -= fill
                if reports:
                    try:
                        trade_id = head + tails[n - base]
                    except IndexError:
                        trade_id = trades.roll(n)
                        head, base, tails = trades.head, trades.base, trades.tails
                    taker_cum, maker_cum = taker.qty - remaining, maker.qty - leaves
                    try:
                        qty, taker_left, taker_cum_d = qdec[fill], qdec[remaining], qdec[taker_cum]
                        maker_left, maker_cum_d = qdec[leaves], qdec[maker_cum]
                    except KeyError:
                        qty, taker_left, taker_cum_d, maker_left, maker_cum_d = map(
                            build.lots.__getitem__, (fill, remaining, taker_cum, leaves, maker_cum)
                        )
                    events += (
                        OrderFilled(
                            ts_event=ts,
                            venue=venue,
                            account=account,
                            client_order_id=taker.client_order_id,
                            venue_order_id=taker.venue_order_id,
                            symbol=symbol,
                            side=side,
                            exec_id=trade_id + "-t",
                            trade_id=trade_id,
                            qty=qty,
                            price=px,
                            liquidity="taker",
                            leaves_qty=taker_left,
                            cum_qty=taker_cum_d,
                        ),
                        OrderFilled(
                            ts_event=ts,
                            venue=venue,
                            account=maker.account,
                            client_order_id=maker.client_order_id,
                            venue_order_id=maker.venue_order_id,
                            symbol=symbol,
                            side=maker_side,
                            exec_id=trade_id + "-m",
                            trade_id=trade_id,
                            qty=qty,
                            price=px,
                            liquidity="maker",
                            leaves_qty=maker_left,
                            cum_qty=maker_cum_d,
                        ),
                        TradePrinted(
                            ts_event=ts,
                            venue=venue,
                            symbol=symbol,
                            trade_id=trade_id,
                            price=px,
                            qty=qty,
                            aggressor=side,
                        ),
                    )
                n += 1
                if leaves:  # the taker is done, the maker rests on
                    break
                if nxt is not None:  # the maker is done: unlink it (it is the first)
                    nxt.prev = None
                    maker.next = None
                maker = nxt
                if not remaining:
                    break
            # the makers before ``maker`` have gone: it is the new head (None: no one left)
            level.head = maker
            level.qty = level_qty
            if maker is None:
                level.tail = None
                keys.pop()
                del levels[price]
            if stopped or not remaining:
                break
        trades.next = n
        if remaining != taker.leaves:
            taker.leaves = remaining
        return stopped

    def fillable(self, taker: BookOrder, opposite: BookSide, limit_key: int) -> bool:
        """Could ``taker`` trade its whole quantity now (self-match policy included)?"""
        levels, keys, sign = opposite.levels, opposite.keys, opposite.sign
        account = taker.account
        skip_own = self.smp.get(account, self.smp_default) == "cancel_oldest"
        need = taker.leaves
        for key in reversed(keys):
            if key < limit_key:
                return False
            maker = levels[key * sign].head
            while maker is not None:
                if maker.account != account:
                    need -= maker.leaves
                    if need <= 0:
                        return True
                elif not skip_own:
                    return False
                maker = maker.next
        return False

    def kill(
        self,
        order: BookOrder,
        reason: str,
        events: list[Event],
        ts: int,
        reports: bool,
        request_id: str = "",
    ) -> None:
        """Cancel the leaves of an order that does not rest (any more)."""
        cancelled = order.leaves
        order.cancelled = cancelled
        order.leaves = 0
        if reports:
            events.append(self.build.cancelled(order, cancelled, reason, request_id, ts))
