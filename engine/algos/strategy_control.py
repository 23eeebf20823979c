"""The operator's side of the custom strategies (:mod:`engine.algos.strategies`): the
commands ``SetStrategy``, ``EnableStrategy``, ``DeleteStrategy`` and ``ListStrategies``
of :mod:`engine.bus.commands.algos`, served by the execution process
(``qsuite ctl strategy set|enable|disable|delete|list``).

Every edit is validated, written with its ``audit_log`` entry in one transaction and
takes effect at once (the next signal sees it); a refused edit is audited as ``denied``.
``SetStrategy`` replaces a strategy of the same name but keeps its trigger counters.
"""

from __future__ import annotations

from typing import Any

import msgspec

from engine.algos.strategies import StrategyRunner
from engine.algos.strategy_store import Strategy
from engine.bus.commands.algos import (
    DeleteStrategy,
    EnableStrategy,
    ListStrategies,
    SetStrategy,
    StrategyList,
    StrategyView,
)
from engine.errors import CommandError, ErrorCode
from engine.service import ServiceContext


class StrategyControl:
    def __init__(self, runner: StrategyRunner) -> None:
        self.runner = runner
        self.store = runner.store

    def start(self, ctx: ServiceContext) -> None:
        for command, handler in (
            (SetStrategy, self._set),
            (EnableStrategy, self._enable),
            (DeleteStrategy, self._delete),
            (ListStrategies, self._list),
        ):
            ctx.register_command(command, handler)

    def _set(self, cmd: SetStrategy) -> StrategyView:
        actor = cmd.actor or "unknown"
        payload: dict[str, Any] = msgspec.to_builtins(cmd)
        try:
            strategy = self.store.validate(
                name=cmd.name,
                signal_rule=cmd.signal_rule,
                symbol=cmd.symbol,
                condition=_json_object(cmd.condition, "condition"),
                algo_type=cmd.algo_type,
                algo_params=_json_object(cmd.algo_params, "algo_params"),
                account=cmd.account,
                side=cmd.side,
                qty=cmd.qty,
                cooldown_s=cmd.cooldown_s,
                max_triggers_per_day=cmd.max_triggers_per_day,
                enabled=cmd.enabled,
                now_ns=self.runner.now(),
            )
            if strategy.symbol is not None:
                self._check_lot(strategy)
        except CommandError as exc:
            self._denied("SetStrategy", cmd.name, cmd, payload, exc)
            raise
        saved = self.store.save(strategy, actor=actor, command_id=cmd.command_id or None)
        return self._view(saved)

    def _enable(self, cmd: EnableStrategy) -> StrategyView:
        try:
            self.store.get(cmd.name)
        except CommandError as exc:
            action = "EnableStrategy" if cmd.enabled else "DisableStrategy"
            self._denied(action, cmd.name, cmd, {"enabled": cmd.enabled}, exc)
            raise
        strategy = self.store.set_enabled(
            cmd.name, cmd.enabled, actor=cmd.actor or "unknown", command_id=cmd.command_id or None
        )
        return self._view(strategy)

    def _delete(self, cmd: DeleteStrategy) -> StrategyView:
        try:
            self.store.get(cmd.name)
        except CommandError as exc:
            self._denied("DeleteStrategy", cmd.name, cmd, {}, exc)
            raise
        strategy = self.store.delete(
            cmd.name, actor=cmd.actor or "unknown", command_id=cmd.command_id or None
        )
        for live in self.runner.algos.live.values():  # as the database has it now (SET NULL)
            if live.row.strategy_id == strategy.id:
                live.row.strategy_id, live.row.strategy = None, ""
        return self._view(strategy)

    def _list(self, _cmd: ListStrategies) -> StrategyList:
        return StrategyList(strategies=[self._view(s) for s in self.store.all()])

    def _check_lot(self, strategy: Strategy) -> None:
        """The quantity must be a multiple of the symbol's lot when the venue has a book
        for it (else it is checked when the strategy triggers)."""
        assert strategy.symbol is not None
        try:
            market = self.runner.algos.board.known(strategy.symbol)
        except CommandError:
            return
        if strategy.qty % market.lot != 0:
            raise CommandError(
                ErrorCode.INVALID,
                f"qty {strategy.qty} is not a multiple of {strategy.symbol}'s lot {market.lot}",
            )

    def _denied(
        self, action: str, name: str, cmd: Any, payload: dict[str, Any], exc: CommandError
    ) -> None:
        self.store.denied(
            action,
            name,
            actor=cmd.actor or "unknown",
            command_id=cmd.command_id or None,
            payload=payload,
            why=exc.message,
        )

    def _view(self, strategy: Strategy) -> StrategyView:
        now = self.runner.now()
        return StrategyView(
            name=strategy.name,
            signal_rule=strategy.signal_rule,
            symbol=strategy.symbol,
            condition=msgspec.json.encode(strategy.condition.to_dict()).decode(),
            algo_type=strategy.algo_type,
            algo_params=msgspec.json.encode(strategy.algo_params).decode(),
            account=strategy.account,
            side=strategy.side,
            qty=strategy.qty,
            cooldown_s=strategy.cooldown_s,
            max_triggers_per_day=strategy.max_triggers_per_day,
            enabled=strategy.enabled,
            triggers_today=strategy.today(now),
            last_triggered_ns=strategy.last_triggered_ns,
        )


def _json_object(text: str, what: str) -> dict[str, Any]:
    try:
        value = msgspec.json.decode(text or "{}")
    except msgspec.DecodeError as exc:
        raise CommandError(ErrorCode.INVALID, f"{what} is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise CommandError(ErrorCode.INVALID, f"{what} must be a JSON object, like {{}}")
    return value
