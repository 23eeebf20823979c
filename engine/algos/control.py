"""The operator's side of the algorithm engine: the commands of
:mod:`engine.bus.commands.algos`, served by the execution process
(``qsuite ctl algo start|pause|resume|modify|cancel|list|show|tca|kinds``).

Every mutating command is idempotent by ``command_id`` (the control plane's journal; a
``StartAlgo`` also finds the parent its command made in the database). Illegal
operations for the parent's state (resume a completed algorithm, modify a cancelled
one) answer ``conflict`` and change nothing.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec

from engine.algos.engine import AlgoEngine
from engine.algos.registry import REGISTRY
from engine.algos.store import Parent
from engine.bus.commands.algos import (
    AlgoDetail,
    AlgoKind,
    AlgoKinds,
    AlgoList,
    AlgoTca,
    AlgoView,
    CancelAlgo,
    ChildRow,
    GetAlgoTca,
    ListAlgoKinds,
    ListAlgos,
    ModifyAlgo,
    PauseAlgo,
    ResumeAlgo,
    ShowAlgo,
    StartAlgo,
)
from engine.errors import CommandError, ErrorCode
from engine.orders import requests
from engine.persistence.decimals import plain_decimal
from engine.service import ServiceContext


class AlgoControl:
    def __init__(self, algos: AlgoEngine) -> None:
        self.algos = algos

    def start(self, ctx: ServiceContext) -> None:
        for command, handler in (
            (StartAlgo, self._start),
            (PauseAlgo, self._pause),
            (ResumeAlgo, self._resume),
            (ModifyAlgo, self._modify),
            (CancelAlgo, self._cancel),
            (ListAlgos, self._list),
            (ShowAlgo, self._show),
            (GetAlgoTca, self._tca),
            (ListAlgoKinds, self._kinds),
        ):
            ctx.register_command(command, handler)

    def _start(self, cmd: StartAlgo) -> AlgoView:
        requests.check_account(cmd.account)
        requests.check_symbol(cmd.symbol)
        qty = requests.check_amount(cmd.qty, "qty")
        row = self.algos.create(
            algo_type=cmd.algo_type,
            account=cmd.account,
            symbol=cmd.symbol,
            side=cmd.side,
            qty=qty,
            params=_json_object(cmd.params, "params"),
            start_at_ns=cmd.start_at_ns,
            command_id=cmd.command_id,
            actor=cmd.actor or "unknown",
        )
        return self._view(row)

    def _pause(self, cmd: PauseAlgo) -> AlgoView:
        return self._view(self.algos.pause(cmd.algo_id, cmd.reason, cmd.actor or "unknown"))

    def _resume(self, cmd: ResumeAlgo) -> AlgoView:
        return self._view(self.algos.resume(cmd.algo_id, cmd.actor or "unknown"))

    def _modify(self, cmd: ModifyAlgo) -> AlgoView:
        changes = _json_object(cmd.params, "params")
        if cmd.qty is None and not changes:
            raise CommandError(ErrorCode.INVALID, "nothing to change: give --qty or --set")
        qty = None if cmd.qty is None else requests.check_amount(cmd.qty, "qty")
        return self._view(self.algos.modify(cmd.algo_id, qty, changes, cmd.actor or "unknown"))

    def _cancel(self, cmd: CancelAlgo) -> AlgoView:
        return self._view(self.algos.cancel(cmd.algo_id, cmd.reason, cmd.actor or "unknown"))

    def _list(self, cmd: ListAlgos) -> AlgoList:
        rows = self.algos.store.recent(
            state=cmd.state, active_only=cmd.active_only, limit=cmd.limit
        )
        live = self.algos.live
        return AlgoList(
            algos=[self._view(live[r.algo_id].row if r.algo_id in live else r) for r in rows]
        )

    def _show(self, cmd: ShowAlgo) -> AlgoDetail:
        row, _ = self.algos.view(cmd.algo_id)
        slices = {s.client_order_id: s for s in self.algos.store.slices(cmd.algo_id)}
        children = [
            ChildRow(
                client_order_id=child.client_order_id,
                slice_index=slices[child.client_order_id].slice_index
                if child.client_order_id in slices
                else -1,
                qty=plain_decimal(child.qty),
                price=plain_decimal(child.price),
                status=child.status,
                filled_qty=plain_decimal(child.filled_qty),
                avg_price=plain_decimal(child.avg_price),
                ts_created=child.ts_created,
            )
            for child in self.algos.port.children(cmd.algo_id)
        ]
        return AlgoDetail(algo=self._view(row), children=children)

    def _tca(self, cmd: GetAlgoTca) -> AlgoTca:
        return self.algos.tca(cmd.algo_id)

    def _kinds(self, _cmd: ListAlgoKinds) -> AlgoKinds:
        return AlgoKinds(
            kinds=[
                AlgoKind(
                    kind=info.kind,
                    version=info.version,
                    description=info.description,
                    params_schema=msgspec.json.encode(info.params).decode(),
                )
                for info in REGISTRY.describe()
            ]
        )

    def _view(self, row: Parent) -> AlgoView:
        live = self.algos.live.get(row.algo_id)
        if live is not None:
            filled, working, children = live.filled, live.working_qty, live.slices
            avg = live.notional / live.filled if live.filled > 0 else None
            expected = self.algos.expected(live)
        else:
            filled, avg, working, expected = row.filled_qty, row.avg_price, None, None
            children = self.algos.store.next_slice(row.algo_id)
        return AlgoView(
            algo_id=row.algo_id,
            algo_type=row.algo_type,
            account=row.account,
            symbol=row.symbol,
            side=row.side,
            qty=row.qty,
            state=row.state,
            reason=row.reason,
            params=msgspec.json.encode(row.params).decode(),
            filled=plain_decimal(filled),
            avg_price=None if avg is None else plain_decimal(avg),
            working=plain_decimal(working) if working is not None else Decimal(0),
            children=children,
            expected=expected,
            ts_created=row.ts_created,
            ts_started=row.ts_started,
            ts_finished=row.ts_finished,
            strategy=row.strategy,
        )


def _json_object(text: str, what: str) -> dict[str, Any]:
    try:
        value = msgspec.json.decode(text or "{}")
    except msgspec.DecodeError as exc:
        raise CommandError(ErrorCode.INVALID, f"{what} are not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise CommandError(ErrorCode.INVALID, f"{what} must be a JSON object, like {{}}")
    return value
