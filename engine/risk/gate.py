"""The pre-trade risk gate: one synchronous check per order, in a documented order.

Every order request — manual, an algorithm's child, or a modify — goes through
:meth:`RiskGate.check` (parents of algorithms through :meth:`RiskGate.check_parent`,
modifies through :meth:`RiskGate.check_modify`) before it may be sent. Cancels are never
checked and never blocked. The gate never raises on an order and never reads a clock:
time comes in as ``now_ns`` (UTC ns); any failure inside denies (``risk_error``).

Check order (cheap and stateless first; the first failure is the decision):

1. input sanity — side, order type, ids; qty/price Decimal, finite, > 0, < 1e18, at
   most 10 decimal places, on the instrument's lot/tick grid when it is known
   (``invalid_order``, ``invalid_qty``, ``invalid_price``);
2. the account's profile (``no_risk_profile`` — fail closed);
3. trading state: algorithm disabled by runaway (``algo_disabled``); kill switch of
   global/account/symbol/algo (``halted``); the account's daily-loss state
   HALTED/REDUCING (``halted`` / ``reducing_only``). Risk-reducing orders pass 3;
4. compliance rules of stage ``pre`` (restricted list: ``restricted``);
5. reference price and collar (``no_reference``, ``stale_reference``,
   ``price_collar``); market orders always need a fresh reference (their value);
6. order size: ``max_order_qty`` / ``max_order_notional`` (parents: ``max_parent_*``)
   (``order_qty``, ``order_notional``);
7. throttle: engine, account and algorithm submits+modifies per second
   (``rate_limit``);
8. duplicates (``duplicate_order``);
9. open-order caps per symbol and per algorithm (``open_orders``);
10. exposure with working orders: per symbol qty and notional, gross notional
    (``position_qty``, ``position_notional``, ``gross_notional``);
11. participation of an algorithm's child in market volume (``participation``);
12. compliance rules of stage ``post`` (``short_sale``, ``wash_trade``,
    ``outside_trading_window``, a plugin's own codes; a raising rule:
    ``compliance_error``);
13. runaway: an algorithm's child needs its parent's plan (``unknown_algo``) and may not
    take the algorithm's submitted quantity in the window beyond
    ``runaway_submit_factor`` x plan (``runaway``: the algorithm is disabled).

Parents (``check_parent``) go through 1-6 (with the parent limits), 10 and 12. Steps
7-9, 11 and 13 are for orders that go to the venue.

Limits are inclusive: an order exactly at a limit passes, one lot over is denied.
A limit used beyond the profile's ``warning_level`` adds a :class:`NearBreach` to the
decision and raises a ``warning`` alert; a denial raises a ``critical`` one (alerts are
rate-limited per account and kind, see :mod:`engine.risk.alerts`).

State: the caller reports what happened — :meth:`on_submitted` (right after an allowed
check, before the next check), :meth:`on_modified`, :meth:`on_fill`, :meth:`on_done`
(cancelled, rejected, expired), :meth:`on_mark` (reference and valuation prices),
:meth:`on_market_volume`, :meth:`on_parent_accepted` / :meth:`on_parent_done`. What the
gate decides on its own (daily-loss states, runaway, halts) comes out of :meth:`drain`:
events to publish (``OrderDenied`` on ``risk.denied.<account>``, ``RiskStateChanged`` on
``risk.state``, ``AlertRaised`` on ``alert.<severity>``) and working orders to cancel.

Risk-reducing: a buy while short (a sell while long) whose quantity, with the working
orders on its side, does not exceed the position — it cannot flip it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, getcontext, setcontext
from typing import Any

from engine.bus import topics
from engine.risk.compliance import ComplianceRule, Violation
from engine.risk.decision import (
    Decision,
    NearBreach,
    OpenOrder,
    Reason,
    RiskOrder,
    denied_event,
)
from engine.risk.profile import INTEGER_DIGITS, RiskProfile
from engine.risk.sanity import fine_grid, order_problem
from engine.risk.state import (
    DAY_NS,
    HUNDRED,
    NO_EXPOSURE,
    ZERO,
    AccountState,
    HaltRecord,
    Limits,
    SymbolExposure,
    Working,
)
from engine.risk.status import RuleView
from engine.risk.tracker import GateSettings, Outbox, RiskTracker
from engine.risk.view import CheckView, Slot, is_reducing, slot
from engine.risk.window import NS, RateWindow
from engine.venue.instrument import InstrumentSpec

__all__ = ["GateSettings", "Outbox", "RiskGate"]

_MAX = Decimal(10) ** INTEGER_DIGITS
_QUANTUM = Decimal("1e-10")
_SHOWN = Decimal("1e-4")


def _near(limit: str, value: Decimal, observed: Decimal) -> NearBreach:
    return NearBreach(
        limit=limit, limit_value=value, observed=observed, usage=float(observed / value)
    )


def _seconds(ns: int) -> Decimal:
    return Decimal(ns) / NS


class RiskGate(RiskTracker):
    """The pre-trade risk gate (see the module docstring).

    ``profiles``: the accounts' profiles; ``default_profile``: used for accounts without
    one *only when given* (e.g. :data:`~engine.risk.profile.DEFAULT_PROFILE`), else such
    accounts are denied; ``rules``: configured compliance rules; ``instruments``: tick
    and lot sizes by symbol (prices and quantities off their grid are denied).
    """

    def __init__(
        self,
        profiles: Iterable[RiskProfile] = (),
        rules: Iterable[ComplianceRule[Any]] = (),
        *,
        settings: GateSettings | None = None,
        default_profile: RiskProfile | None = None,
        instruments: Mapping[str, InstrumentSpec] | None = None,
    ) -> None:
        super().__init__(profiles, settings=settings, default_profile=default_profile)
        self._instruments = dict(instruments or {})
        #: Symbols whose tick and lot have at most 10 decimal places: on their grid a
        #: price or quantity has at most 10 as well, so that check is skipped.
        self._coarse = {symbol for symbol, spec in self._instruments.items() if fine_grid(spec)}
        self._rules: list[ComplianceRule[Any]] = []
        self._pre: list[Slot] = []
        self._post: list[Slot] = []
        self.set_rules(rules)

    # --- compliance rules --------------------------------------------------------------

    def set_rules(self, rules: Iterable[ComplianceRule[Any]]) -> None:
        """Replace the compliance rules (names must be unique)."""
        rules = list(rules)
        names = [rule.name for rule in rules]
        if len(set(names)) != len(names):
            raise ValueError(f"compliance rule names must be unique: {sorted(names)}")
        self._rules = rules
        self._sort_rules()

    def enable_rule(self, name: str, enabled: bool = True) -> bool:
        """Enable or disable the rule ``name``; False when there is none."""
        for rule in self._rules:
            if rule.name == name:
                rule.enabled = enabled
                self._sort_rules()
                return True
        return False

    @property
    def rules(self) -> list[ComplianceRule[Any]]:
        return list(self._rules)

    def _sort_rules(self) -> None:
        slots = [slot(r) for r in self._rules if r.enabled]
        self._pre = [slot for slot in slots if slot[0].stage == "pre"]
        self._post = [slot for slot in slots if slot[0].stage != "pre"]

    # --- checks ------------------------------------------------------------------------

    def check(
        self, order: RiskOrder, now_ns: int, *, open_orders: Sequence[OpenOrder] | None = None
    ) -> Decision:
        """Whether ``order`` may be sent now. ``open_orders``: the account's resting
        orders at the venue (for the wash-trade rule); default: the gate's own record."""
        saved = getcontext()  # the hot path: _guarded inlined
        setcontext(self._ctx)
        try:
            return self._check(order, now_ns, open_orders, None, False)
        except Exception as exc:
            return self._failed(order, now_ns, exc)
        finally:
            setcontext(saved)

    def check_parent(
        self, order: RiskOrder, now_ns: int, *, open_orders: Sequence[OpenOrder] | None = None
    ) -> Decision:
        """Whether an algorithm (``order.algo_id``) may start on the parent ``order``.
        When allowed, call :meth:`on_parent_accepted` to register its plan."""
        return self._guarded(order, now_ns, open_orders, None, True)

    def check_modify(
        self,
        order: RiskOrder,
        now_ns: int,
        *,
        orig_client_order_id: str,
        open_orders: Sequence[OpenOrder] | None = None,
    ) -> Decision:
        """Whether the working order ``orig_client_order_id`` may become ``order`` (the
        whole new quantity and price under the replace request's id)."""
        old = self._working.get((order.account, orig_client_order_id))
        if old is None or old.symbol != order.symbol or old.side != order.side:
            known = "no working order" if old is None else "a different working order"
            with self._decimal():
                return self._deny(
                    order,
                    now_ns,
                    None,
                    Reason.UNKNOWN_ORDER,
                    "working_order",
                    message=f"{known} {orig_client_order_id} of {order.account} to modify",
                )
        return self._guarded(order, now_ns, open_orders, old, False)

    def check_cancel(self, account: str, client_order_id: str, now_ns: int) -> Decision:
        """A cancel is never blocked — not by throttles, halts or loss states (it only
        reduces risk). Here for a uniform call site; nothing is counted."""
        return Decision(allowed=True)

    def _guarded(
        self,
        order: RiskOrder,
        now_ns: int,
        open_orders: Sequence[OpenOrder] | None,
        old: Working | None,
        parent: bool,
    ) -> Decision:
        saved = getcontext()
        setcontext(self._ctx)
        try:
            return self._check(order, now_ns, open_orders, old, parent)
        except Exception as exc:
            return self._failed(order, now_ns, exc)
        finally:
            setcontext(saved)

    def _failed(self, order: RiskOrder, now_ns: int, exc: Exception) -> Decision:
        self._log.opt(exception=exc).error("Cannot check order: the risk gate failed; denied")
        try:
            return self._deny(
                order, now_ns, None, Reason.RISK_ERROR, "risk_gate", message=f"{exc!r}"
            )
        except Exception:
            self.counters["denied"] += 1
            return Decision(allowed=False, reason=Reason.RISK_ERROR, limit="risk_gate")

    def _check(
        self,
        order: RiskOrder,
        now: int,
        open_orders: Sequence[OpenOrder] | None,
        old: Working | None,
        parent: bool,
    ) -> Decision:
        self.counters["checks"] += 1
        symbol = order.symbol
        if type(symbol) is str:
            spec, places = self._instruments.get(symbol), symbol not in self._coarse
        else:
            spec, places = None, True
        problem = order_problem(order, parent, spec, places)
        if problem is not None:
            return self._deny(order, now, None, problem[0], problem[1], message=problem[2])
        acct = self._profiled(order.account)
        if acct is None:
            return self._deny(
                order,
                now,
                None,
                Reason.NO_RISK_PROFILE,
                "risk_profile",
                message=f"account {order.account} has no risk profile (configure one)",
            )
        lim: Limits = acct.limits  # type: ignore[assignment]
        if acct.day != now // DAY_NS:
            self._roll_day(acct, now)
        symbol, qty, price, algo = order.symbol, order.qty, order.price, order.algo_id
        buy = order.side == "buy"
        sx = acct.symbols.get(symbol, NO_EXPOSURE)
        pos, buys, sells, open_n = sx.qty, sx.buys, sx.sells, len(sx.orders)
        leaves = qty
        if old is not None:
            if old.side == "buy":
                buys -= old.leaves
            else:
                sells -= old.leaves
            open_n -= 1
            leaves = max(qty - old.filled, ZERO)
        reducing = is_reducing(buy, pos, buys, sells, leaves)
        warnings: list[NearBreach] = []

        # 3. trading state
        if algo and algo in self._disabled:
            rec = self._disabled[algo]
            return self._deny(
                order,
                now,
                lim,
                Reason.ALGO_DISABLED,
                "runaway",
                message=f"algorithm {algo} is disabled since {rec.reason}; a human must resume it",
            )
        if self._halts and not reducing:
            halt = self._halt_for(order)
            if halt is not None:
                return self._deny(
                    order,
                    now,
                    lim,
                    Reason.HALTED,
                    "kill_switch",
                    message=f"{_scope_name(halt)} halted by {halt.actor}: {halt.reason}; only "
                    "risk-reducing orders pass",
                )
        if lim.loss is not None:
            lost = acct.day_base - acct.realized - acct.unrealized
            if acct.loss_state != "ACTIVE" and not reducing:
                halted = acct.loss_state == "HALTED"
                return self._deny(
                    order,
                    now,
                    lim,
                    Reason.HALTED if halted else Reason.REDUCING_ONLY,
                    "daily_loss_limit",
                    lim.loss,
                    lost,
                    f"{order.account} is {acct.loss_state} after losing {lost} today (limit "
                    f"{lim.loss}); only risk-reducing orders pass",
                )
            if lost > lim.loss_warn:  # type: ignore[operator]
                warnings.append(_near("daily_loss_limit", lim.loss, lost))

        # 4. compliance, stage pre
        view = None
        if self._pre:
            view = CheckView(self, now, open_orders, order, sx, buys, sells, old)
            denied = self._run_rules(self._pre, order, view, now, lim)
            if denied is not None:
                return denied

        # 5. reference price and collar
        ref = self._refs.get(symbol)
        collar = lim.collar
        if collar is not None or price is None:
            limit = "price_collar_pct" if price is not None else "reference_price"
            if ref is None:
                return self._deny(
                    order,
                    now,
                    lim,
                    Reason.NO_REFERENCE,
                    limit,
                    message=f"no reference price for {symbol} (needed for the "
                    f"{'collar' if price is not None else 'value of a market order'}): no "
                    "quote of it has reached the order manager yet; is it on feed.watchlist?",
                )
            ref_price, ref_ts = ref
            if now - ref_ts > lim.ref_age_ns:
                return self._deny(
                    order,
                    now,
                    lim,
                    Reason.STALE_REFERENCE,
                    "max_reference_age_s",
                    _seconds(lim.ref_age_ns),
                    _seconds(now - ref_ts),
                    f"the reference price of {symbol} is {_text_s(now - ref_ts)} s old",
                )
            if price is not None and collar is not None:
                distance = abs(price - ref_price) * HUNDRED
                if distance > collar * ref_price:
                    return self._deny(
                        order,
                        now,
                        lim,
                        Reason.PRICE_COLLAR,
                        "price_collar_pct",
                        collar,
                        (distance / ref_price).quantize(_QUANTUM),
                        f"limit price {price} is more than {collar} % away from the reference "
                        f"{_shown(ref_price)}",
                    )
                if distance > lim.collar_warn * ref_price:  # type: ignore[operator]
                    warnings.append(_near("price_collar_pct", collar, distance / ref_price))
        value = price if price is not None else ref[0]  # type: ignore[index]

        # 6. size
        if parent:
            qty_name, qty_limit, qty_warn = "max_parent_qty", lim.parent_qty, lim.parent_qty_warn
            cash_name, cash_limit, cash_warn = (
                "max_parent_notional",
                lim.parent_notional,
                lim.parent_notional_warn,
            )
        else:
            qty_name, qty_limit, qty_warn = "max_order_qty", lim.order_qty, lim.order_qty_warn
            cash_name, cash_limit, cash_warn = (
                "max_order_notional",
                lim.order_notional,
                lim.order_notional_warn,
            )
        if qty_limit is not None:
            if qty > qty_limit:
                return self._deny(
                    order,
                    now,
                    lim,
                    Reason.ORDER_QTY,
                    qty_name,
                    qty_limit,
                    qty,
                    f"quantity {qty} is above {qty_name} {qty_limit}",
                )
            if qty > qty_warn:  # type: ignore[operator]
                warnings.append(_near(qty_name, qty_limit, qty))
        if cash_limit is not None:
            notional = qty * value
            if notional > cash_limit:
                return self._deny(
                    order,
                    now,
                    lim,
                    Reason.ORDER_NOTIONAL,
                    cash_name,
                    cash_limit,
                    notional,
                    f"notional {notional} is above {cash_name} {cash_limit}",
                )
            if notional > cash_warn:  # type: ignore[operator]
                warnings.append(_near(cash_name, cash_limit, notional))

        if not parent:
            # 7. throttle
            window = self._rate
            if window is not None and window.would_exceed(now):
                return self._throttled(order, now, lim, "engine_orders_per_s", window)
            window = acct.rate
            if window is not None and window.would_exceed(now):
                return self._throttled(order, now, lim, "max_orders_per_s", window)
            if algo:
                window = acct.algo_rate(algo)
                if window is not None and window.would_exceed(now):
                    return self._throttled(order, now, lim, "max_algo_orders_per_s", window)
            # 8. duplicates
            if old is None and lim.dup_ns is not None and (lim.dup_all or not algo):
                seen = acct.recent.seen_within((symbol, order.side, qty, price), now, lim.dup_ns)
                if seen is not None:
                    return self._deny(
                        order,
                        now,
                        lim,
                        Reason.DUPLICATE_ORDER,
                        "duplicate_window_s",
                        _seconds(lim.dup_ns),
                        _seconds(now - seen),
                        f"the same order ({order.side} {qty} {symbol} at "
                        f"{price if price is not None else 'market'}) was sent "
                        f"{_text_s(now - seen)} s ago",
                    )
            # 9. open orders
            cap = lim.open_symbol
            if cap is not None and open_n + 1 > cap:
                return self._deny(
                    order,
                    now,
                    lim,
                    Reason.OPEN_ORDERS,
                    "max_open_orders_per_symbol",
                    Decimal(cap),
                    Decimal(open_n + 1),
                    f"{open_n} orders are working in {symbol} (max_open_orders_per_symbol {cap})",
                )
            cap = lim.open_algo
            if algo and cap is not None:
                working = self._algo_open.get(algo, 0)
                if old is not None and old.algo_id == algo:
                    working -= 1
                if working + 1 > cap:
                    return self._deny(
                        order,
                        now,
                        lim,
                        Reason.OPEN_ORDERS,
                        "max_open_orders_per_algo",
                        Decimal(cap),
                        Decimal(working + 1),
                        f"{working} orders of {algo} are working (max_open_orders_per_algo {cap})",
                    )

        # 10. exposure
        denied = self._exposure_check(
            order, now, acct, sx, lim, buy, value, buys, sells, leaves, warnings
        )
        if denied is not None:
            return denied

        # 11. participation
        if algo and not parent and lim.participation is not None:
            volume = self._volumes.get(symbol)
            total = ZERO if volume is None else volume.total(now)
            window_s = self.settings.participation_window_s
            if total <= 0:
                return self._deny(
                    order,
                    now,
                    lim,
                    Reason.PARTICIPATION,
                    "max_participation",
                    lim.participation,
                    None,
                    f"no market volume of {symbol} in the last {window_s} s",
                )
            if qty > lim.participation * total:
                return self._deny(
                    order,
                    now,
                    lim,
                    Reason.PARTICIPATION,
                    "max_participation",
                    lim.participation,
                    (qty / total).quantize(_QUANTUM),
                    f"{qty} is more than {lim.participation} of the {total} {symbol} traded "
                    f"in the last {window_s} s",
                )
            if qty > lim.participation_warn * total:  # type: ignore[operator]
                warnings.append(_near("max_participation", lim.participation, qty / total))

        # 12. compliance, stage post
        if self._post:
            if view is None:
                view = CheckView(self, now, open_orders, order, sx, buys, sells, old)
            denied = self._run_rules(self._post, order, view, now, lim)
            if denied is not None:
                return denied

        # 13. runaway
        if algo and not parent:
            plan = self._plans.get(algo)
            if plan is None or plan.account != order.account:
                return self._deny(
                    order,
                    now,
                    lim,
                    Reason.UNKNOWN_ALGO,
                    "algo_plan",
                    message=f"algorithm {algo} has no accepted parent order of "
                    f"{order.account} (check_parent, then on_parent_accepted)",
                )
            factor = lim.submit_factor
            if factor is not None:
                extra = qty if old is None else max(qty - old.qty, ZERO)
                submitted = plan.submitted.total(now) + extra
                cap_qty = factor * plan.qty
                if submitted > cap_qty:
                    message = (
                        f"algorithm {algo} would have submitted {submitted} within "
                        f"{_text_s(plan.submitted.window_ns)} s, more than {factor} x its "
                        f"plan of {plan.qty}"
                    )
                    self._disable_algo(plan, now, message)
                    return self._deny(
                        order,
                        now,
                        lim,
                        Reason.RUNAWAY,
                        "runaway_submit_factor",
                        cap_qty,
                        submitted,
                        message,
                    )

        self.counters["allowed"] += 1
        if not warnings:
            allowed = acct.allowed
            if allowed is None:
                allowed = acct.allowed = Decision(allowed=True, profile_version=lim.version)
            return allowed  # type: ignore[return-value]
        return self._allowed_with_warnings(order, now, lim, warnings)

    def _throttled(
        self, order: RiskOrder, now: int, lim: Limits, name: str, window: RateWindow
    ) -> Decision:
        return self._deny(
            order,
            now,
            lim,
            Reason.RATE_LIMIT,
            name,
            _dec(window.rate),
            window.observed_rate(now),
            f"{window.count(now) + 1} orders within {_text_s(window.span_ns)} s is above "
            f"{name} {window.rate}",
        )

    def _exposure_check(
        self,
        order: RiskOrder,
        now: int,
        acct: AccountState,
        sx: SymbolExposure,
        lim: Limits,
        buy: bool,
        value: Decimal,
        buys: Decimal,
        sells: Decimal,
        leaves: Decimal,
        warnings: list[NearBreach],
    ) -> Decision | None:
        """Step 10; ``buys``/``sells`` are the working quantities without the order a
        modify replaces, ``leaves`` what the order adds."""
        pos = sx.qty
        if buy:
            side_exposure, other = pos + buys + leaves, sells - pos
        else:
            side_exposure, other = sells + leaves - pos, pos + buys
        symbol = order.symbol
        if lim.pos_qty is not None:
            if side_exposure > lim.pos_qty:
                return self._deny(
                    order,
                    now,
                    lim,
                    Reason.POSITION_QTY,
                    "max_position_qty",
                    lim.pos_qty,
                    side_exposure,
                    f"{'long' if buy else 'short'} exposure in {symbol} would be "
                    f"{side_exposure} with working orders (max_position_qty {lim.pos_qty})",
                )
            if side_exposure > lim.pos_qty_warn:  # type: ignore[operator]
                warnings.append(_near("max_position_qty", lim.pos_qty, side_exposure))
        price = self._values.get(symbol, value)
        if lim.pos_notional is not None:
            notional = side_exposure * price
            if notional > lim.pos_notional:
                return self._deny(
                    order,
                    now,
                    lim,
                    Reason.POSITION_NOTIONAL,
                    "max_position_notional",
                    lim.pos_notional,
                    notional,
                    f"{'long' if buy else 'short'} exposure in {symbol} would be worth "
                    f"{notional} (max_position_notional {lim.pos_notional})",
                )
            if notional > lim.pos_notional_warn:  # type: ignore[operator]
                warnings.append(_near("max_position_notional", lim.pos_notional, notional))
        if lim.gross is not None:
            exposure = max(side_exposure, other, ZERO)
            gross = acct.gross - sx.notional + exposure * price
            if gross > lim.gross and exposure > sx.exposure():
                return self._deny(
                    order,
                    now,
                    lim,
                    Reason.GROSS_NOTIONAL,
                    "max_gross_notional",
                    lim.gross,
                    gross,
                    f"gross exposure would be {gross} (max_gross_notional {lim.gross})",
                )
            if gross > lim.gross_warn:  # type: ignore[operator]
                warnings.append(_near("max_gross_notional", lim.gross, gross))
        return None

    def _run_rules(
        self,
        rules: list[Slot],
        order: RiskOrder,
        view: CheckView,
        now: int,
        lim: Limits,
    ) -> Decision | None:
        for rule, accounts, check in rules:
            try:
                if accounts is None:
                    if not rule.applies(order):
                        continue
                elif accounts and order.account not in accounts:
                    continue
                violation = check(order, view)
                if violation is None:
                    continue
                if not isinstance(violation, Violation) or not isinstance(violation.reason, str):
                    raise TypeError(f"check returned {violation!r}, not a Violation or None")
            except Exception as exc:
                self.counters["compliance_errors"] = self.counters.get("compliance_errors", 0) + 1
                self._log.opt(exception=exc).bind(rule=rule.name).error(
                    "Compliance rule {} failed; the order is denied", rule.name
                )
                return self._deny(
                    order,
                    now,
                    lim,
                    Reason.COMPLIANCE_ERROR,
                    rule.name,
                    message=f"compliance rule {rule.name} failed: {exc!r}",
                )
            return self._deny(
                order,
                now,
                lim,
                violation.reason,
                rule.name,
                violation.limit_value,
                violation.observed,
                violation.message,
            )
        return None

    # --- decisions ---------------------------------------------------------------------

    def _deny(
        self,
        order: RiskOrder,
        now: int,
        lim: Limits | None,
        reason: str,
        limit: str,
        limit_value: Decimal | None = None,
        observed: Decimal | None = None,
        message: str = "",
    ) -> Decision:
        counters = self.counters
        counters["denied"] += 1
        key = f"denied.{reason}"
        counters[key] = counters.get(key, 0) + 1
        decision = Decision(
            allowed=False,
            reason=reason,
            limit=limit,
            limit_value=limit_value,
            observed=observed,
            message=message,
            profile_version=0 if lim is None else lim.version,
        )
        event = denied_event(order, decision, now)
        self._emit(_topic(topics.risk_denied, event.account), event)
        alert = self._alert(
            now,
            "critical",
            f"risk.{limit}",
            f"Denied {event.side} {event.qty} {event.symbol} ({event.client_order_id}) of "
            f"{event.account}: {reason}: {message}",
            account=event.account,
            symbol=event.symbol,
            algo_id=event.algo_id,
        )
        if alert:
            self._log.bind(
                account=event.account, symbol=event.symbol, algo_id=event.algo_id
            ).warning("Cannot submit order {}: {} ({})", event.client_order_id, reason, message)
        return decision

    def _allowed_with_warnings(
        self, order: RiskOrder, now: int, lim: Limits, warnings: list[NearBreach]
    ) -> Decision:
        for near in warnings:
            self._alert(
                now,
                "warning",
                f"risk.{near.limit}",
                f"{order.account} uses {near.usage:.0%} of {near.limit} {near.limit_value} "
                f"({near.observed}) with {order.client_order_id}",
                account=order.account,
                symbol=order.symbol,
                algo_id=order.algo_id,
            )
        return Decision(allowed=True, warnings=tuple(warnings), profile_version=lim.version)

    def _rule_views(self) -> list[Any]:
        return [
            RuleView(name=r.name, kind=r.kind, version=r.version, enabled=r.enabled)
            for r in self._rules
        ]


def _dec(value: float) -> Decimal:
    return Decimal(repr(value))


def _topic(builder: Any, key: str) -> str:
    try:
        return str(builder(key))
    except ValueError:
        return str(builder("invalid"))


def _scope_name(halt: HaltRecord) -> str:
    return "trading" if halt.scope == "global" else f"{halt.scope} {halt.key}"


def _shown(price: Decimal) -> Decimal:
    """A price as a message shows it: at most 4 decimals (a quote mid can have 14)."""
    exponent = price.as_tuple().exponent
    return price if isinstance(exponent, int) and exponent >= -4 else price.quantize(_SHOWN)


def _text_s(ns: int) -> str:
    return f"{ns / NS:.3f}".rstrip("0").rstrip(".")
