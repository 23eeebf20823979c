"""What the risk gate knows and how it learns it: exposure, P&L, plans, halts, outbox.

:class:`RiskTracker` is the state half of :class:`~engine.risk.gate.RiskGate` (the gate
adds the checks). The caller reports facts — ``on_submitted``, ``on_modified``,
``on_fill``, ``on_done``, ``on_mark``, ``on_market_volume``, ``on_parent_accepted`` /
``on_parent_done`` — and operator actions — ``halt`` / ``resume``. What follows from
them (daily-loss states, runaway algorithms, halts) is published through the outbox
(:meth:`RiskTracker.drain`): events with their topics and working orders to cancel.

Daily P&L is realized + unrealized since the account's first event of the UTC day (the
day rolls over at 00:00 UTC, seen in any timestamp). An account's loss state only
escalates during a day (ACTIVE → REDUCING → HALTED); it returns to ACTIVE at the next
day or when a human resumes the account (and escalates again at once if the loss still
is beyond a threshold — raise the limit first). A HALTED account's risk-increasing
working orders are handed out for cancelling.

Kill switch: :meth:`RiskTracker.halt` on ``global``, ``account``, ``symbol`` or ``algo``
denies risk-increasing orders in that scope (risk-reducing ones and cancels pass) and
hands out all the scope's working orders for cancelling.
:meth:`RiskTracker.resume` needs an actor and a reason; resuming an algorithm also
re-enables one the runaway check disabled.

Bad updates (non-finite or non-positive prices or quantities) are counted in
``counters["bad_updates"]``, logged and ignored, never raised.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from decimal import (
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
    getcontext,
    setcontext,
)
from typing import Any

import msgspec
from loguru import logger

from engine.bus import topics
from engine.bus.events import AlertSeverity, Event, RiskStateChanged, Side
from engine.errors import CommandError, ConfigError, ErrorCode
from engine.orders.positions import Position
from engine.risk.alerts import AlertBook
from engine.risk.decision import HALT_SCOPES, CancelRequest, HaltScope, RiskOrder
from engine.risk.profile import RiskProfile, for_account
from engine.risk.state import (
    DAY_NS,
    NO_EXPOSURE,
    ZERO,
    AccountState,
    HaltRecord,
    Plan,
    SymbolExposure,
    TradingState,
    Working,
    as_decimal,
)
from engine.risk.status import HaltView, RiskStatus, account_status
from engine.risk.window import NS, RateWindow, RollingSum

_STATE_RANK = {"ACTIVE": 0, "REDUCING": 1, "HALTED": 2}
ACTOR = "risk"
"""The actor of the gate's own state changes."""


class GateSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Settings of the gate itself (limits of accounts are in their profiles)."""

    max_orders_per_s: float | None = 100.0
    """Submits and modifies per second of the whole engine; None: no engine limit."""
    participation_window_s: float = 300.0
    """Window of market volume for the participation check, seconds."""
    alert_interval_s: float = 60.0
    """A repeating alert goes out at most once per this many seconds (with its count)."""

    def __post_init__(self) -> None:
        rate = self.max_orders_per_s
        if rate is not None and not (isinstance(rate, (int, float)) and rate > 0):
            raise ConfigError("risk.max_orders_per_s", f"must be > 0 or unset, not {rate!r}")
        for name in ("participation_window_s", "alert_interval_s"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and value > 0):
                raise ConfigError(f"risk.{name}", f"must be > 0 seconds, not {value!r}")


class Outbox(msgspec.Struct, kw_only=True):
    """What the gate decided on its own since the last :meth:`RiskTracker.drain`."""

    events: list[tuple[str, Event]] = []
    """(topic, event) to publish, in order."""
    cancels: list[CancelRequest] = []
    """Working orders the caller must cancel."""


class RiskTracker:
    """State of the risk gate (see the module docstring)."""

    def __init__(
        self,
        profiles: Iterable[RiskProfile] = (),
        *,
        settings: GateSettings | None = None,
        default_profile: RiskProfile | None = None,
    ) -> None:
        self.settings = settings or GateSettings()
        self.default_profile = default_profile
        #: Arithmetic of the gate: wide enough that sums and products of ledger-sized
        #: values are exact; invalid operations raise (and deny) instead of giving NaN.
        self._ctx = Context(
            prec=80, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow]
        )
        self._accounts: dict[str, AccountState] = {}
        self._holders: dict[str, list[AccountState]] = {}
        self._working: dict[tuple[str, str], Working] = {}
        self._algo_open: dict[str, int] = {}
        self._refs: dict[str, tuple[Decimal, int]] = {}
        self._values: dict[str, Decimal] = {}
        self._volumes: dict[str, RollingSum] = {}
        self._plans: dict[str, Plan] = {}
        self._halts: dict[tuple[str, str], HaltRecord] = {}
        self._disabled: dict[str, HaltRecord] = {}
        rate = self.settings.max_orders_per_s
        self._rate = None if rate is None else RateWindow(rate)
        self._alerts = AlertBook(int(self.settings.alert_interval_s * NS))
        self._outbox = Outbox()
        self.counters: dict[str, int] = {"checks": 0, "allowed": 0, "denied": 0}
        self._log = logger.bind(component="risk")
        for profile in profiles:
            self.set_profile(profile)

    # --- profiles ----------------------------------------------------------------------

    def set_profile(self, profile: RiskProfile) -> None:
        """Use ``profile`` for its account from now on (what the gate knows is kept)."""
        if not isinstance(profile, RiskProfile):
            raise TypeError(f"not a RiskProfile: {profile!r}")
        self._account(profile.account).set_profile(profile)

    def remove_profile(self, account: str) -> None:
        """Forget the account's profile: its orders are denied (``no_risk_profile``)."""
        state = self._accounts.get(account)
        if state is not None:
            state.limits = None
            state.allowed = None

    def profile(self, account: str) -> RiskProfile | None:
        state = self._accounts.get(account)
        return None if state is None or state.limits is None else state.limits.profile

    # --- facts -------------------------------------------------------------------------

    def on_submitted(self, order: RiskOrder, now_ns: int) -> None:
        """``order`` was sent (call right after its allowed check): it works now and
        counts for throttles, duplicates and its algorithm's runaway window."""
        with self._decimal():
            self._add_working(order, now_ns, count=True)

    def restore_working(self, order: RiskOrder, *, filled: Decimal = ZERO) -> None:
        """After a restart: ``order`` is working with ``filled`` done (no throttle,
        duplicate or runaway accounting)."""
        with self._decimal():
            w = self._add_working(order, 0, count=False)
            if w is not None and filled > 0:
                self._fill_working(w, filled)

    def on_modified(self, orig_client_order_id: str, order: RiskOrder, now_ns: int) -> None:
        """The venue replaced ``orig_client_order_id`` by ``order`` (new id, whole new
        quantity and price)."""
        with self._decimal():
            w = self._working.pop((order.account, orig_client_order_id), None)
            if w is None:
                self._bad("modify of unknown order", orig_client_order_id)
                return
            acct = self._accounts[w.account]
            sx = acct.symbols[w.symbol]
            sx.remove_order(w)
            self._move_leaves(sx, w, -w.leaves)
            increase = max(order.qty - w.qty, ZERO)
            w.client_order_id, w.qty, w.price = order.client_order_id, order.qty, order.price
            self._working[(w.account, w.client_order_id)] = w
            sx.add_order(w)
            self._move_leaves(sx, w, w.leaves)
            self._revalue_one(acct, sx, w.symbol)
            self._count_flow(acct, w.algo_id, now_ns)
            plan = self._plans.get(w.algo_id) if w.algo_id else None
            if plan is not None and increase > 0:
                plan.submitted.add(now_ns, increase)

    def on_fill(
        self,
        account: str,
        symbol: str,
        side: Side,
        qty: Decimal,
        price: Decimal,
        *,
        ts_ns: int,
        client_order_id: str = "",
        algo_id: str = "",
        fee: Decimal = ZERO,
    ) -> None:
        """A fill of ``account`` (of its working order ``client_order_id`` when given):
        position, realized P&L, the symbol's valuation, the algorithm's runaway window,
        the loss state of everyone holding the symbol."""
        with self._decimal():
            q, p = as_decimal(qty), as_decimal(price)
            if q is None or p is None or side not in ("buy", "sell"):
                self._bad("fill", f"{account} {side} {qty} {symbol} at {price}")
                return
            acct = self._account(account)
            self._roll_day(acct, ts_ns)
            sx = self._exposure_of(acct, symbol)
            w = self._working.get((account, client_order_id)) if client_order_id else None
            if w is not None and w.symbol == symbol and w.side == side:
                self._fill_working(w, q)
                algo_id = algo_id or w.algo_id
            before = sx.position.realized_pnl
            sx.position = sx.position.apply_fill(side, q, p, fee=fee, ts=ts_ns)
            sx.qty = sx.position.qty
            acct.realized += sx.position.realized_pnl - before
            self._revalue_symbol(symbol, p, ts_ns)
            plan = self._plans.get(algo_id) if algo_id else None
            if plan is not None:
                plan.filled.add(ts_ns, q)
                factor = acct.limits.fill_factor if acct.limits is not None else None
                filled = plan.filled.total(ts_ns)
                if factor is not None and filled > factor * plan.qty:
                    self._disable_algo(
                        plan,
                        ts_ns,
                        f"algorithm {algo_id} filled {filled} within "
                        f"{Decimal(plan.filled.window_ns) / NS} s, more than {factor} x its "
                        f"plan of {plan.qty}",
                    )

    def on_done(self, account: str, client_order_id: str) -> None:
        """The order left the book (cancelled, rejected, expired, fully filled)."""
        with self._decimal():
            w = self._working.pop((account, client_order_id), None)
            if w is None:
                return
            acct = self._accounts[account]
            sx = acct.symbols[w.symbol]
            sx.remove_order(w)
            self._move_leaves(sx, w, -w.leaves)
            self._forget_algo_order(w)
            self._revalue_one(acct, sx, w.symbol)

    on_cancelled = on_done

    def on_mark(self, symbol: str, price: Decimal | float, ts_ns: int) -> None:
        """A reference price of ``symbol`` (e.g. a quote's mid) at ``ts_ns``: the collar's
        reference and the valuation of positions (older marks than the last are
        ignored)."""
        with self._decimal():
            p = as_decimal(price)
            if p is None or p >= Decimal("1e18"):
                self._bad("mark", f"{symbol} {price}")
                return
            ref = self._refs.get(symbol)
            if ref is not None and ts_ns < ref[1]:
                return
            self._refs[symbol] = (p, ts_ns)
            self._revalue_symbol(symbol, p, ts_ns)

    def on_market_volume(self, symbol: str, qty: Decimal | float, ts_ns: int) -> None:
        """``qty`` of ``symbol`` traded in the market at ``ts_ns`` (participation)."""
        with self._decimal():
            q = as_decimal(qty)
            if q is None or q >= Decimal("1e18"):
                self._bad("market volume", f"{symbol} {qty}")
                return
            volume = self._volumes.get(symbol)
            if volume is None:
                window = int(self.settings.participation_window_s * NS)
                volume = self._volumes[symbol] = RollingSum(window)
            volume.add(ts_ns, q)

    def on_parent_accepted(self, order: RiskOrder, now_ns: int) -> None:
        """The algorithm ``order.algo_id`` starts on the parent ``order`` (its plan)."""
        acct = self._profiled(order.account)
        window = acct.limits.runaway_ns if acct is not None and acct.limits else 60 * NS
        self._plans[order.algo_id] = Plan(
            order.account, order.algo_id, order.symbol, order.qty, window
        )

    def on_parent_done(self, algo_id: str) -> None:
        """The algorithm finished: its plan is forgotten (its later children are denied)."""
        self._plans.pop(algo_id, None)

    def seed_position(
        self,
        account: str,
        symbol: str,
        *,
        qty: Decimal,
        avg_price: Decimal,
        realized_today: Decimal = ZERO,
        ts_ns: int,
    ) -> None:
        """After a restart: the account holds ``qty`` (negative short) at ``avg_price``
        and realized ``realized_today`` since 00:00 UTC. The day's P&L continues from
        that realized amount; unrealized P&L counts from the seed on."""
        with self._decimal():
            acct = self._account(account)
            self._roll_day(acct, ts_ns)
            sx = self._exposure_of(acct, symbol)
            unrealized = acct.unrealized
            realized = sx.position.realized_pnl
            sx.position = Position.from_avg(
                account,
                symbol,
                qty=qty,
                avg_price=avg_price,
                realized_pnl=realized + realized_today,
            )
            sx.qty = qty
            acct.realized += realized_today
            value = self._values.setdefault(symbol, avg_price)
            acct.revalue(sx, value)
            acct.day_base += acct.unrealized - unrealized
            self._evaluate_loss(acct, ts_ns)  # a loss realized before the restart counts

    # --- kill switch -------------------------------------------------------------------

    def halt(
        self, scope: HaltScope, key: str = "", *, actor: str = "", reason: str = "", now_ns: int
    ) -> list[CancelRequest]:
        """Halt ``scope`` (``key``: the account, symbol or algo id; "" for global). All
        the scope's working orders are returned and also queued in the outbox: cancel
        them from one place (the outbox). New risk-reducing orders still pass."""
        _check_scope(scope, key)
        record = HaltRecord(scope=scope, key=key, actor=actor, reason=reason, since_ns=now_ns)
        self._halts[(scope, key)] = record
        self._state_changed(scope, key, "HALTED", "kill_switch", actor, reason, now_ns)
        with self._decimal():
            return self._cancel_increasing(
                lambda w: _in_scope(w, scope, key), "kill_switch", everything=True
            )

    def resume(
        self, scope: HaltScope, key: str = "", *, actor: str, reason: str, now_ns: int
    ) -> bool:
        """Lift the halt of ``scope`` (and for an algorithm its runaway disable, for an
        account its daily-loss state). Raises ``CommandError(invalid)`` without an actor
        or a reason. False when nothing was halted."""
        _check_scope(scope, key)
        if not (isinstance(actor, str) and actor.strip()):
            raise CommandError(ErrorCode.INVALID, "resume needs the actor (who resumes)")
        if not (isinstance(reason, str) and reason.strip()):
            raise CommandError(ErrorCode.INVALID, "resume needs a reason")
        changed = self._halts.pop((scope, key), None) is not None
        if scope == "algo":
            changed = self._disabled.pop(key, None) is not None or changed
        acct = self._accounts.get(key) if scope == "account" else None
        if acct is not None and acct.loss_state != "ACTIVE":
            acct.loss_state = "ACTIVE"
            changed = True
        if changed:
            self._state_changed(scope, key, "ACTIVE", "resumed", actor, reason, now_ns)
        if acct is not None:
            with self._decimal():
                self._evaluate_loss(acct, now_ns)
        return changed

    def restore_halt(self, record: HaltRecord, *, runaway: bool = False) -> None:
        """After a restart: a kill-switch halt in force (``runaway``: an algorithm the
        runaway check disabled), as stored; no events."""
        if runaway:
            self._disabled[record.key] = record
        else:
            self._halts[(record.scope, record.key)] = record

    def halts(self) -> list[HaltRecord]:
        """Kill-switch halts and disabled algorithms in force."""
        return [*self._halts.values(), *self._disabled.values()]

    def _disable_algo(self, plan: Plan, now: int, message: str) -> None:
        algo = plan.algo_id
        if algo in self._disabled:
            return
        self._disabled[algo] = HaltRecord(
            scope="algo", key=algo, actor=ACTOR, reason=f"runaway: {message}", since_ns=now
        )
        self._state_changed("algo", algo, "HALTED", "runaway", ACTOR, message, now, plan.account)
        self._cancel_increasing(lambda w: w.algo_id == algo, "runaway", everything=True)

    # --- daily loss --------------------------------------------------------------------

    def _roll_day(self, acct: AccountState, now: int) -> None:
        day = now // DAY_NS
        if day <= acct.day:
            return
        first = acct.day < 0
        acct.day = day
        acct.day_base = acct.realized + acct.unrealized
        if not first and acct.loss_state != "ACTIVE":
            acct.loss_state = "ACTIVE"
            self._state_changed(
                "account", acct.account, "ACTIVE", "day_start", ACTOR, "a new UTC day", now
            )

    def _evaluate_loss(self, acct: AccountState, now: int) -> None:
        lim = acct.limits
        if lim is None or lim.loss is None:
            return
        lost = acct.day_base - acct.realized - acct.unrealized
        state: TradingState
        if lost >= lim.loss_halted:  # type: ignore[operator]
            state = "HALTED"
        elif lost >= lim.loss_reducing:  # type: ignore[operator]
            state = "REDUCING"
        else:
            return
        if _STATE_RANK[state] <= _STATE_RANK[acct.loss_state]:
            return
        acct.loss_state = state
        message = (
            f"{acct.account} lost {lost} today: {lost / lim.loss:.0%} of its daily loss "
            f"limit {lim.loss}"
        )
        self._state_changed("account", acct.account, state, "daily_loss", ACTOR, message, now)
        if state == "HALTED":
            account = acct.account
            self._cancel_increasing(lambda w: w.account == account, "daily_loss", everything=False)

    # --- internals ---------------------------------------------------------------------

    def _decimal(self) -> _DecimalScope:
        return _DecimalScope(self._ctx)

    def _account(self, account: str) -> AccountState:
        state = self._accounts.get(account)
        if state is None:
            state = self._accounts[account] = AccountState(account)
        return state

    def _profiled(self, account: str) -> AccountState | None:
        state = self._accounts.get(account)
        if state is not None and state.limits is not None:
            return state
        if self.default_profile is None:
            return None
        state = self._account(account)
        state.set_profile(for_account(self.default_profile, account))
        return state

    def exposure(self, account: str, symbol: str) -> SymbolExposure:
        """The account's exposure in ``symbol`` (read-only; an empty one if none)."""
        state = self._accounts.get(account)
        if state is None:
            return NO_EXPOSURE
        return state.symbols.get(symbol, NO_EXPOSURE)

    def _halt_for(self, order: RiskOrder) -> HaltRecord | None:
        halts = self._halts
        return (
            halts.get(("global", ""))
            or halts.get(("account", order.account))
            or halts.get(("symbol", order.symbol))
            or (halts.get(("algo", order.algo_id)) if order.algo_id else None)
        )

    def account_state(self, account: str) -> AccountState | None:
        """What the gate tracks of ``account`` (read-only)."""
        return self._accounts.get(account)

    def working_orders(self, account: str | None = None) -> Iterator[Working]:
        """The working orders the gate tracks (of ``account``)."""
        return (w for w in self._working.values() if account is None or w.account == account)

    def _exposure_of(self, acct: AccountState, symbol: str) -> SymbolExposure:
        sx = acct.symbols.get(symbol)
        if sx is None:
            sx = acct.symbol(symbol)
            self._holders.setdefault(symbol, []).append(acct)
        return sx

    def _add_working(self, order: RiskOrder, now: int, *, count: bool) -> Working | None:
        key = (order.account, order.client_order_id)
        if key in self._working:
            return None
        acct = self._account(order.account)
        sx = self._exposure_of(acct, order.symbol)
        w = Working(
            order.account,
            order.symbol,
            order.client_order_id,
            order.side,
            order.qty,
            order.price,
            order.algo_id,
        )
        self._working[key] = w
        sx.add_order(w)
        self._move_leaves(sx, w, w.qty)
        if w.algo_id:
            self._algo_open[w.algo_id] = self._algo_open.get(w.algo_id, 0) + 1
        if order.symbol not in self._values:
            value = order.price if order.price is not None else self._refs.get(order.symbol)
            if isinstance(value, tuple):
                value = value[0]
            if value is not None:
                self._values[order.symbol] = value
        self._revalue_one(acct, sx, order.symbol)
        if count:
            self._count_flow(acct, w.algo_id, now)
            lim = acct.limits
            if lim is not None and lim.dup_ns is not None and (lim.dup_all or not w.algo_id):
                acct.recent.add((order.symbol, order.side, order.qty, order.price), now, lim.dup_ns)
            plan = self._plans.get(w.algo_id) if w.algo_id else None
            if plan is not None:
                plan.submitted.add(now, order.qty)
        return w

    def _count_flow(self, acct: AccountState, algo_id: str, now: int) -> None:
        if self._rate is not None:
            self._rate.add(now)
        if acct.rate is not None:
            acct.rate.add(now)
        if algo_id:
            window = acct.algo_rate(algo_id)
            if window is not None:
                window.add(now)

    def _fill_working(self, w: Working, qty: Decimal) -> None:
        acct = self._accounts[w.account]
        sx = acct.symbols[w.symbol]
        done = min(qty, w.leaves)
        w.filled += qty
        self._move_leaves(sx, w, -done)
        if w.leaves <= 0:
            self._working.pop((w.account, w.client_order_id), None)
            sx.remove_order(w)
            self._forget_algo_order(w)

    def _move_leaves(self, sx: SymbolExposure, w: Working, qty: Decimal) -> None:
        if w.side == "buy":
            sx.buys += qty
        else:
            sx.sells += qty

    def _forget_algo_order(self, w: Working) -> None:
        if w.algo_id:
            left = self._algo_open.get(w.algo_id, 0) - 1
            if left > 0:
                self._algo_open[w.algo_id] = left
            else:
                self._algo_open.pop(w.algo_id, None)

    def _revalue_one(self, acct: AccountState, sx: SymbolExposure, symbol: str) -> None:
        value = self._values.get(symbol)
        if value is not None:
            acct.revalue(sx, value)

    def _revalue_symbol(self, symbol: str, price: Decimal, now: int) -> None:
        self._values[symbol] = price
        for acct in self._holders.get(symbol, ()):
            acct.revalue(acct.symbols[symbol], price)
            self._roll_day(acct, now)
            self._evaluate_loss(acct, now)

    def _cancel_increasing(
        self, selected: Any, reason: str, *, everything: bool
    ) -> list[CancelRequest]:
        cancels = []
        for w in self._working.values():
            if not selected(w):
                continue
            if not everything:
                sx = self._accounts[w.account].symbols[w.symbol]
                pos = sx.qty
                if w.side == "buy":
                    increasing = pos >= 0 or sx.buys > -pos
                else:
                    increasing = pos <= 0 or sx.sells > pos
                if not increasing:
                    continue
            cancels.append(
                CancelRequest(
                    account=w.account,
                    symbol=w.symbol,
                    client_order_id=w.client_order_id,
                    algo_id=w.algo_id,
                    reason=reason,
                )
            )
        self._outbox.cancels.extend(cancels)
        return cancels

    def _state_changed(
        self,
        scope: HaltScope,
        key: str,
        state: TradingState,
        reason: str,
        actor: str,
        message: str,
        now: int,
        account: str = "",
    ) -> None:
        self._emit(
            topics.risk_state(),
            RiskStateChanged(
                ts_event=now,
                scope=scope,
                key=key,
                state=state,
                reason=reason,
                actor=actor,
                message=message,
            ),
        )
        severity: AlertSeverity = (
            "critical" if state == "HALTED" else "warning" if state == "REDUCING" else "info"
        )
        what = "trading" if scope == "global" else f"{scope} {key}"
        kind = "risk.daily_loss_limit" if reason == "daily_loss" else f"risk.{reason}"
        self._alert(
            now,
            severity,
            kind,
            f"{what} is {state} ({reason}, {actor or 'unknown'}): {message}",
            account=key if scope == "account" else account,
            symbol=key if scope == "symbol" else "",
            algo_id=key if scope == "algo" else "",
        )
        self._log.bind(scope=scope, key=key).warning(
            "Risk state of {} is {}: {} by {}: {}", what, state, reason, actor, message
        )

    def _alert(
        self,
        now: int,
        severity: AlertSeverity,
        kind: str,
        message: str,
        *,
        account: str = "",
        symbol: str = "",
        algo_id: str = "",
    ) -> bool:
        event = self._alerts.raise_(
            now, severity, kind, message, account=account, symbol=symbol, algo_id=algo_id
        )
        if event is None:
            return False
        self._emit(topics.alert(severity), event)
        return True

    def _emit(self, topic: str, event: Event) -> None:
        self._outbox.events.append((topic, event))

    def _bad(self, what: str, detail: str) -> None:
        self.counters["bad_updates"] = self.counters.get("bad_updates", 0) + 1
        self._log.warning("Cannot apply {} to the risk state: {}; ignored", what, detail)

    def drain(self) -> Outbox:
        """Events to publish and orders to cancel since the last call, in order."""
        out, self._outbox = self._outbox, Outbox()
        return out

    def acknowledge_alert(self, account: str, kind: str | None = None) -> int:
        """Close the account's open alert of ``kind`` (all for None) in the status."""
        return self._alerts.acknowledge(account, kind)

    # --- status ------------------------------------------------------------------------

    def status(self, now_ns: int) -> RiskStatus:
        """A JSON-able snapshot: halts, accounts with state, P&L and limit usage, rules."""
        with self._decimal():
            accounts = [
                account_status(
                    acct,
                    halted=self._halts.get(("global", ""))
                    or self._halts.get(("account", acct.account)),
                    algo_open=self._algo_open,
                    alerts=self._alerts.open_alerts(acct.account),
                    now_ns=now_ns,
                )
                for _, acct in sorted(self._accounts.items())
            ]
        halts = [_halt_view(r) for r in self._halts.values()]
        return RiskStatus(
            ts=now_ns,
            halts=halts,
            disabled_algos=[_halt_view(r) for r in self._disabled.values()],
            accounts=accounts,
            rules=self._rule_views(),
            counters=dict(self.counters),
        )

    def _rule_views(self) -> list[Any]:
        return []


class _DecimalScope:
    """``with``: the gate's decimal context for the block (cheaper than localcontext)."""

    __slots__ = ("_ctx", "_saved")

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def __enter__(self) -> None:
        self._saved = getcontext()
        setcontext(self._ctx)

    def __exit__(self, *exc: object) -> None:
        setcontext(self._saved)


def _check_scope(scope: str, key: str) -> None:
    if scope not in HALT_SCOPES:
        raise CommandError(
            ErrorCode.INVALID, f"scope must be one of {', '.join(HALT_SCOPES)}, not {scope!r}"
        )
    if (scope == "global") != (not key):
        raise CommandError(
            ErrorCode.INVALID,
            "a global halt takes no key" if scope == "global" else f"name the {scope} to halt",
        )


def _in_scope(w: Working, scope: str, key: str) -> bool:
    if scope == "global":
        return True
    if scope == "account":
        return w.account == key
    if scope == "symbol":
        return w.symbol == key
    return w.algo_id == key


def _halt_view(r: HaltRecord) -> HaltView:
    return HaltView(scope=r.scope, key=r.key, actor=r.actor, reason=r.reason, since_ns=r.since_ns)
