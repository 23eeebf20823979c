"""Parent orders and their slices in the database: ``algo_orders`` and
``algo_executions`` (one writer: the execution process's algorithm engine).

The saga of a child, each step durable before the next:

1. :meth:`AlgoStore.record_slice` — the slice (parent, slice number, deterministic
   ``client_order_id`` ``<algo_id>-<slice>-<attempt>``, quantity, price) is written in
   the *same transaction* as the order ledger's ``pending_new`` intent (the ledger calls
   it through its ``also`` hook), so neither exists without the other;
2. the child is sent; the ledger follows it through the venue's execution reports;
3. how it ended (``filled``, ``cancelled``, ``rejected``) is recorded with the next
   periodic save (:meth:`AlgoStore.save`, one transaction for every parent's progress
   and the ended slices); the ledger holds the truth meanwhile.

After a crash the engine rebuilds each active parent from ``algo_orders`` (state,
parameters, market progress) and the ledger (its children's fills and working orders);
the next slice number is :meth:`AlgoStore.next_slice`, so a restarted engine never reuses
an id. The parent row is only written by state changes, modifications and the periodic
progress save (not per market event).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec
from sqlalchemy import Connection, Engine, Table, func, insert, select, update

from app.database import writer
from engine.bus.events import AlgoState, Side
from engine.persistence.decimals import plain_decimal
from engine.persistence.models import AlgoExecution, AlgoOrder
from engine.persistence.models.algos import CustomStrategy

_PARENTS: Table = AlgoOrder.__table__  # type: ignore[assignment]
_SLICES: Table = AlgoExecution.__table__  # type: ignore[assignment]
_STRATEGIES: Table = CustomStrategy.__table__  # type: ignore[assignment]
ACTIVE_STATES: tuple[AlgoState, ...] = ("pending", "running", "paused")
FINAL_STATES: tuple[AlgoState, ...] = ("completed", "cancelled", "failed")
_INTENT_OF_STATUS = {
    "filled": "filled",
    "cancelled": "cancelled",
    "expired": "cancelled",
    "rejected": "rejected",
}


class Parent(msgspec.Struct, kw_only=True):
    """One row of ``algo_orders``."""

    algo_id: str
    algo_type: str
    account: str
    symbol: str
    side: Side
    qty: Decimal
    params: dict[str, Any]
    state: AlgoState
    reason: str = ""
    filled_qty: Decimal = Decimal(0)
    avg_price: Decimal | None = None
    arrival_price: Decimal | None = None
    progress: dict[str, Any] = {}
    command_id: str | None = None
    strategy_id: int | None = None
    strategy: str = ""
    """The name of the custom strategy that started it ("" for the operator)."""
    ts_created: int
    ts_started: int | None = None
    ts_finished: int | None = None
    ts_updated: int


class Slice(msgspec.Struct, frozen=True, kw_only=True):
    """One row of ``algo_executions``."""

    algo_id: str
    slice_index: int
    attempt: int
    client_order_id: str
    qty: Decimal
    price: Decimal | None
    intent_state: str
    ts_created: int


def slice_id(algo_id: str, slice_index: int, attempt: int = 0) -> str:
    """The deterministic ``client_order_id`` of a child."""
    return f"{algo_id}-{slice_index}-{attempt}"


class AlgoStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._writer = writer(engine)

    # --- parents -------------------------------------------------------------------------

    def create(self, parent: Parent) -> Parent:
        """Insert a new parent; when its ``command_id`` made one already, that one is
        returned instead (a retried start)."""
        with self._writer.begin() as conn:
            if parent.command_id:
                existing = self._by(conn, _PARENTS.c.command_id == parent.command_id)
                if existing:
                    return existing[0]
            conn.execute(insert(_PARENTS).values(**_values(parent)))
        return parent

    def by_command(self, command_id: str) -> Parent | None:
        """The parent a ``StartAlgo`` command made, if any."""
        with self._engine.connect() as conn:
            found = self._by(conn, _PARENTS.c.command_id == command_id)
        return found[0] if found else None

    def get(self, algo_id: str) -> Parent | None:
        with self._engine.connect() as conn:
            found = self._by(conn, _PARENTS.c.id == algo_id)
        return found[0] if found else None

    def active(self) -> list[Parent]:
        """Pending, running and paused parents, oldest first."""
        with self._engine.connect() as conn:
            return self._by(conn, _PARENTS.c.state.in_(ACTIVE_STATES), newest_first=False)

    def recent(
        self, *, state: AlgoState | None = None, active_only: bool = False, limit: int = 50
    ) -> list[Parent]:
        """Parents, newest first."""
        condition: Any = True
        if state is not None:
            condition = _PARENTS.c.state == state
        elif active_only:
            condition = _PARENTS.c.state.in_(ACTIVE_STATES)
        with self._engine.connect() as conn:
            return self._by(conn, condition, limit=limit)

    def update(self, algo_id: str, **values: Any) -> None:
        """Write the given columns of the parent (``reason``, ``state``, ``qty``,
        ``params``, ``progress``, ``filled_qty``, ``avg_price``, ``ts_*`` …)."""
        if "algo_id" in values:
            raise ValueError("a parent's id never changes")
        with self._writer.begin() as conn:
            conn.execute(
                update(_PARENTS)
                .where(_PARENTS.c.id == algo_id)
                .values(**values, version=_PARENTS.c.version + 1)
            )

    # --- slices ----------------------------------------------------------------------------

    @staticmethod
    def record_slice(conn: Connection, row: Slice) -> None:
        """Insert a slice in the caller's transaction (the ledger's intent)."""
        conn.execute(
            insert(_SLICES).values(
                algo_id=row.algo_id,
                slice_index=row.slice_index,
                attempt=row.attempt,
                client_order_id=row.client_order_id,
                intent_state="sent",
                qty=row.qty,
                price=row.price,
                ts_created=row.ts_created,
                ts_updated=row.ts_created,
            )
        )

    def save(
        self,
        parents: list[tuple[str, dict[str, Any]]],
        settled: list[tuple[str, str, int]],
    ) -> None:
        """In one transaction: columns of parents (``(algo_id, values)``, as
        :meth:`update`) and how children ended (``(client_order_id, ledger status,
        ts)``)."""
        with self._writer.begin() as conn:
            for algo_id, values in parents:
                conn.execute(
                    update(_PARENTS)
                    .where(_PARENTS.c.id == algo_id)
                    .values(**values, version=_PARENTS.c.version + 1)
                )
            for client_order_id, status, ts in settled:
                intent = _INTENT_OF_STATUS.get(status)
                if intent is not None:
                    conn.execute(
                        update(_SLICES)
                        .where(_SLICES.c.client_order_id == client_order_id)
                        .values(intent_state=intent, ts_updated=ts)
                    )

    def next_slice(self, algo_id: str) -> int:
        with self._engine.connect() as conn:
            top = conn.execute(
                select(func.max(_SLICES.c.slice_index)).where(_SLICES.c.algo_id == algo_id)
            ).scalar_one()
        return 0 if top is None else int(top) + 1

    def slices(self, algo_id: str) -> list[Slice]:
        t = _SLICES.c
        query = (
            select(
                t.algo_id,
                t.slice_index,
                t.attempt,
                t.client_order_id,
                t.qty,
                t.price,
                t.intent_state,
                t.ts_created,
            )
            .where(t.algo_id == algo_id)
            .order_by(t.slice_index, t.attempt)
        )
        with self._engine.connect() as conn:
            return [
                Slice(
                    algo_id=r.algo_id,
                    slice_index=r.slice_index,
                    attempt=r.attempt,
                    client_order_id=r.client_order_id,
                    qty=plain_decimal(r.qty),
                    price=plain_decimal(r.price),
                    intent_state=r.intent_state,
                    ts_created=r.ts_created,
                )
                for r in conn.execute(query)
            ]

    # --- internals -------------------------------------------------------------------------

    def _by(
        self, conn: Connection, condition: Any, *, newest_first: bool = True, limit: int = 1000
    ) -> list[Parent]:
        t = _PARENTS.c
        order = t.ts_created.desc() if newest_first else t.ts_created
        query = (
            select(_PARENTS, _STRATEGIES.c.name.label("strategy_name"))
            .outerjoin(_STRATEGIES, _STRATEGIES.c.id == t.strategy_id)
            .where(condition)
            .order_by(order, t.id)
            .limit(limit)
        )
        return [_parent(row) for row in conn.execute(query)]


def _values(p: Parent) -> dict[str, Any]:
    return {
        "id": p.algo_id,
        "command_id": p.command_id or None,
        "strategy_id": p.strategy_id,
        "algo_type": p.algo_type,
        "account": p.account,
        "symbol": p.symbol,
        "side": p.side,
        "qty": p.qty,
        "params": p.params,
        "state": p.state,
        "reason": p.reason or None,
        "filled_qty": p.filled_qty,
        "avg_price": p.avg_price,
        "arrival_price": p.arrival_price,
        "progress": p.progress,
        "ts_created": p.ts_created,
        "ts_started": p.ts_started,
        "ts_finished": p.ts_finished,
        "ts_updated": p.ts_updated,
    }


def _parent(row: Any) -> Parent:
    return Parent(
        algo_id=row.id,
        algo_type=row.algo_type,
        account=row.account,
        symbol=row.symbol,
        side=row.side,
        qty=plain_decimal(row.qty),
        params=dict(row.params or {}),
        state=row.state,
        reason=row.reason or "",
        filled_qty=plain_decimal(row.filled_qty),
        avg_price=plain_decimal(row.avg_price),
        arrival_price=plain_decimal(row.arrival_price),
        progress=dict(row.progress or {}),
        command_id=row.command_id,
        strategy_id=row.strategy_id,
        strategy=row.strategy_name or "",
        ts_created=row.ts_created,
        ts_started=row.ts_started,
        ts_finished=row.ts_finished,
        ts_updated=row.ts_updated,
    )
