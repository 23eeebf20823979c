"""Custom strategies in the database (``custom_strategies``): their definition, validated
when stored (see :mod:`engine.algos.strategies` for what a strategy means), and their
trigger counters. One writer: the execution process; every edit is audited."""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any

import msgspec
from sqlalchemy import Connection, Engine, Table, delete, insert, select, update

from app.database import writer
from engine.algos.base import ParentSpec
from engine.algos.registry import REGISTRY, UnknownAlgorithmError
from engine.bus.events import Side, SignalRaised
from engine.errors import CommandError, ErrorCode
from engine.orders import requests
from engine.persistence.decimals import plain_decimal
from engine.persistence.models.algos import CustomStrategy
from engine.risk.store import audit

NS = 1_000_000_000
DAY_NS = 86_400 * NS
CONDITION_KEYS = ("kind", "min_strength", "indicator", "below", "above", "real_only")
NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
"""Strategy and signal rule names (the signal registry's pattern)."""
INDICATOR = re.compile(r"^[A-Za-z0-9_\-=^~]{1,64}(\.[A-Za-z0-9_]{1,64})?$")

_TABLE: Table = CustomStrategy.__table__  # type: ignore[assignment]


class Condition(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The parsed condition of a strategy (see the module docstring)."""

    kind: str | None = None
    min_strength: float | None = None
    indicator: str | None = None
    below: float | None = None
    above: float | None = None
    real_only: bool = False

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> Condition:
        """Validate a condition object; ``CommandError(invalid)`` naming the key."""
        for key in raw:
            if key not in CONDITION_KEYS:
                raise _invalid(
                    f"unknown condition key {key!r}; allowed: {', '.join(CONDITION_KEYS)}"
                )
        kind = raw.get("kind")
        if kind is not None and not (isinstance(kind, str) and kind):
            raise _invalid(f'condition kind must be a text such as "oversold_entry", not {kind!r}')
        strength = _number(raw, "min_strength")
        if strength is not None and not 0 <= strength <= 1:
            raise _invalid(f"condition min_strength must be from 0 to 1, not {strength}")
        indicator = raw.get("indicator")
        if indicator is not None and not (
            isinstance(indicator, str) and INDICATOR.match(indicator)
        ):
            raise _invalid(
                'condition indicator must name an indicator as published, e.g. "rsi_14" or '
                f'"macd_12_26_9.macdhist" for one output, not {indicator!r}'
            )
        below, above = _number(raw, "below"), _number(raw, "above")
        if indicator is None:
            for key in ("below", "above"):
                if raw.get(key) is not None:
                    raise _invalid(
                        f'condition {key} needs an indicator, e.g. "indicator": "rsi_14"'
                    )
        elif below is None and above is None:
            raise _invalid(f"condition indicator {indicator} needs below and/or above")
        if below is not None and above is not None and above >= below:
            raise _invalid(f"condition above {above} and below {below} leave no value between")
        real_only = raw.get("real_only", False)
        if not isinstance(real_only, bool):
            raise _invalid(f"condition real_only must be true or false, not {real_only!r}")
        return cls(
            kind=kind,
            min_strength=strength,
            indicator=indicator,
            below=below,
            above=above,
            real_only=real_only,
        )

    def to_dict(self) -> dict[str, Any]:
        value: dict[str, Any] = msgspec.to_builtins(self)
        return value

    def refuses(self, signal: SignalRaised, value: float | None) -> str:
        """Why the condition does not hold for ``signal`` ("" when it holds); ``value``
        is the indicator's latest value (None: none yet)."""
        if self.real_only and signal.simulated:
            return "the signal is simulated (real_only)"
        if self.kind is not None and signal.kind != self.kind:
            return f"kind {signal.kind} is not {self.kind}"
        if self.min_strength is not None and not signal.strength >= self.min_strength:
            return f"strength {signal.strength:.3f} is below {self.min_strength}"
        if self.indicator is None:
            return ""
        if value is None:
            return f"no value of {self.indicator} for {signal.symbol} {signal.interval} yet"
        if self.below is not None and not value < self.below:
            return f"{self.indicator} {value:g} is not below {self.below:g}"
        if self.above is not None and not value > self.above:
            return f"{self.indicator} {value:g} is not above {self.above:g}"
        return ""


class Strategy(msgspec.Struct, kw_only=True):
    """One row of ``custom_strategies``, its condition parsed."""

    id: int = 0
    name: str
    signal_rule: str
    symbol: str | None
    condition: Condition
    algo_type: str
    algo_params: dict[str, Any]
    account: str
    side: Side
    qty: Decimal
    cooldown_s: int
    max_triggers_per_day: int
    enabled: bool
    last_triggered_ns: int | None = None
    trigger_day: int = 0
    """UTC day number (days since 1970) that ``triggers_today`` counts."""
    triggers_today: int = 0

    def today(self, now_ns: int) -> int:
        """Starts on the UTC day of ``now_ns``."""
        return self.triggers_today if self.trigger_day == now_ns // DAY_NS else 0

    def waits(self, now_ns: int) -> str:
        """Why it may not start now (cooldown, the day's maximum); "" when it may."""
        last = self.last_triggered_ns
        if last is not None and now_ns - last < self.cooldown_s * NS:
            left = (last + self.cooldown_s * NS - now_ns) / NS
            return f"in its cooldown for {left:.0f} s more"
        if self.today(now_ns) >= self.max_triggers_per_day:
            return f"started {self.max_triggers_per_day} time(s) today already (the maximum)"
        return ""

    def count(self, now_ns: int) -> None:
        """Count a start at ``now_ns`` (cooldown and the day's maximum follow it)."""
        self.triggers_today = self.today(now_ns) + 1
        self.trigger_day, self.last_triggered_ns = now_ns // DAY_NS, now_ns

    def definition(self) -> dict[str, Any]:
        """What the operator defined, JSON-able (audit payloads)."""
        return {
            "name": self.name,
            "signal_rule": self.signal_rule,
            "symbol": self.symbol,
            "condition": self.condition.to_dict(),
            "algo_type": self.algo_type,
            "algo_params": self.algo_params,
            "account": self.account,
            "side": self.side,
            "qty": str(self.qty),
            "cooldown_s": self.cooldown_s,
            "max_triggers_per_day": self.max_triggers_per_day,
            "enabled": self.enabled,
        }


class StrategyStore:
    """``custom_strategies``: validated definitions, their trigger counters, and an
    in-memory copy of every row (this process is the table's only writer); every edit is
    audited in its transaction, a refused one in a transaction of its own."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._writer = writer(engine)
        self._rows: dict[str, Strategy] = {}

    def load(self) -> list[str]:
        """Read every stored strategy; returns one sentence per row that was not loaded
        (it never triggers until set again)."""
        problems: list[str] = []
        rows: dict[str, Strategy] = {}
        with self._engine.connect() as conn:
            for row in conn.execute(select(_TABLE).order_by(_TABLE.c.name)).mappings():
                try:
                    rows[row["name"]] = _strategy(row)
                except (CommandError, ValueError, TypeError) as exc:
                    message = exc.message if isinstance(exc, CommandError) else str(exc)
                    problems.append(
                        f"strategy {row['name']} cannot be loaded: {message}; it does not "
                        "trigger until set again (`qsuite ctl strategy set`)"
                    )
        self._rows = rows
        return problems

    def all(self) -> list[Strategy]:
        return [self._rows[name] for name in sorted(self._rows)]

    def get(self, name: str) -> Strategy:
        strategy = self._rows.get(name)
        if strategy is None:
            raise CommandError(
                ErrorCode.NOT_FOUND, f"no strategy {name}; `qsuite ctl strategy list` lists them"
            )
        return strategy

    def matching(self, rule: str, symbol: str) -> list[Strategy]:
        """The enabled strategies of ``rule`` for ``symbol``, by name."""
        return [
            s
            for s in self.all()
            if s.enabled and s.signal_rule == rule and s.symbol in (None, symbol)
        ]

    def validate(
        self,
        *,
        name: str,
        signal_rule: str,
        symbol: str | None,
        condition: dict[str, Any],
        algo_type: str,
        algo_params: dict[str, Any],
        account: str,
        side: Side,
        qty: Decimal,
        cooldown_s: int,
        max_triggers_per_day: int,
        enabled: bool,
        now_ns: int,
    ) -> Strategy:
        """A checked definition (not stored); ``CommandError(invalid)`` naming what is
        wrong. The parameters are parsed by the algorithm for a sample parent."""
        if not NAME.match(name):
            raise _invalid(f"strategy name {name!r} must match {NAME.pattern}")
        if not NAME.match(signal_rule):
            raise _invalid(
                f"signal rule {signal_rule!r} must match {NAME.pattern} (e.g. rsi_cross)"
            )
        if symbol is not None:
            requests.check_symbol(symbol)
        requests.check_account(account)
        requests.check_amount(qty, "qty")
        if side not in ("buy", "sell"):
            raise _invalid(f"side must be buy or sell, not {side!r}")
        if cooldown_s < 0:
            raise _invalid(f"cooldown_s must be 0 or more, not {cooldown_s}")
        if max_triggers_per_day < 1:
            raise _invalid(f"max_triggers_per_day must be 1 or more, not {max_triggers_per_day}")
        parsed = Condition.parse(condition)
        try:
            cls = REGISTRY.get(algo_type)
        except UnknownAlgorithmError as exc:
            raise _invalid(str(exc)) from None
        sample = ParentSpec(
            algo_id=f"{algo_type}-strategy-check",
            account=account,
            symbol=symbol or "ANY",
            side=side,
            qty=qty,
            start_ns=now_ns,
        )
        try:
            cls.parse(sample, algo_params)
        except Exception as exc:  # a plugin's parse may raise anything: it is refused
            raise _invalid(f"{algo_type} parameters: {exc}") from None
        return Strategy(
            name=name,
            signal_rule=signal_rule,
            symbol=symbol,
            condition=parsed,
            algo_type=algo_type,
            algo_params=algo_params,
            account=account,
            side=side,
            qty=qty,
            cooldown_s=cooldown_s,
            max_triggers_per_day=max_triggers_per_day,
            enabled=enabled,
        )

    def save(self, strategy: Strategy, *, actor: str, command_id: str | None) -> Strategy:
        """Insert or replace (by name) a validated strategy; a replaced one keeps its
        trigger counters (saving again does not reset the day's maximum)."""
        t = _TABLE.c
        values = {
            "signal_rule": strategy.signal_rule,
            "symbol": strategy.symbol,
            "condition": strategy.condition.to_dict(),
            "algo_type": strategy.algo_type,
            "algo_params": strategy.algo_params,
            "account": strategy.account,
            "side": strategy.side,
            "qty": strategy.qty,
            "cooldown_s": strategy.cooldown_s,
            "max_triggers_per_day": strategy.max_triggers_per_day,
            "enabled": strategy.enabled,
        }
        with self._writer.begin() as conn:
            row = conn.execute(
                select(t.id, t.last_triggered_ns, t.trigger_day, t.triggers_today).where(
                    t.name == strategy.name
                )
            ).one_or_none()
            if row is None:
                new_id = conn.execute(
                    insert(_TABLE).values(name=strategy.name, **values).returning(t.id)
                ).scalar_one()
                saved = msgspec.structs.replace(strategy, id=new_id)
            else:
                conn.execute(update(_TABLE).where(t.id == row.id).values(**values))
                saved = msgspec.structs.replace(
                    strategy,
                    id=row.id,
                    last_triggered_ns=row.last_triggered_ns,
                    trigger_day=row.trigger_day,
                    triggers_today=row.triggers_today,
                )
            audit(conn, actor, "SetStrategy", strategy.name, command_id, saved.definition(), "ok")
        self._rows[saved.name] = saved
        return saved

    def set_enabled(
        self, name: str, enabled: bool, *, actor: str, command_id: str | None
    ) -> Strategy:
        strategy = self.get(name)
        action = "EnableStrategy" if enabled else "DisableStrategy"
        with self._writer.begin() as conn:
            conn.execute(update(_TABLE).where(_TABLE.c.id == strategy.id).values(enabled=enabled))
            audit(conn, actor, action, name, command_id, {"enabled": enabled}, "ok")
        strategy.enabled = enabled
        return strategy

    def delete(self, name: str, *, actor: str, command_id: str | None) -> Strategy:
        """Remove a strategy; the algorithms it started stay (without their strategy)."""
        strategy = self.get(name)
        with self._writer.begin() as conn:
            conn.execute(delete(_TABLE).where(_TABLE.c.id == strategy.id))
            audit(conn, actor, "DeleteStrategy", name, command_id, strategy.definition(), "ok")
        del self._rows[name]
        return strategy

    def denied(
        self, action: str, name: str, *, actor: str, command_id: str | None, payload: Any, why: str
    ) -> None:
        """Audit a refused edit (in a transaction of its own)."""
        with self._writer.begin() as conn:
            audit(conn, actor, action, name, command_id, payload, "denied", why)

    def record_trigger(self, strategy: Strategy, now_ns: int) -> None:
        """Count a start: in memory at once, then in the database."""
        strategy.count(now_ns)
        with self._writer.begin() as conn:
            _write_counters(conn, strategy)


def _invalid(message: str) -> CommandError:
    return CommandError(ErrorCode.INVALID, message)


def _number(raw: dict[str, Any], key: str) -> float | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _invalid(f"condition {key} must be a number, not {value!r}")
    return float(value)


def _strategy(row: Any) -> Strategy:
    missing = [k for k in ("account", "side", "qty") if row[k] is None]
    if missing:
        raise ValueError(f"it has no {', '.join(missing)}")
    return Strategy(
        id=row["id"],
        name=row["name"],
        signal_rule=row["signal_rule"],
        symbol=row["symbol"],
        condition=Condition.parse(dict(row["condition"] or {})),
        algo_type=row["algo_type"],
        algo_params=dict(row["algo_params"] or {}),
        account=row["account"],
        side=row["side"],
        qty=plain_decimal(row["qty"]),
        cooldown_s=row["cooldown_s"],
        max_triggers_per_day=row["max_triggers_per_day"],
        enabled=bool(row["enabled"]),
        last_triggered_ns=row["last_triggered_ns"],
        trigger_day=row["trigger_day"],
        triggers_today=row["triggers_today"],
    )


def _write_counters(conn: Connection, strategy: Strategy) -> None:
    conn.execute(
        update(_TABLE)
        .where(_TABLE.c.id == strategy.id)
        .values(
            last_triggered_ns=strategy.last_triggered_ns,
            trigger_day=strategy.trigger_day,
            triggers_today=strategy.triggers_today,
        )
    )
