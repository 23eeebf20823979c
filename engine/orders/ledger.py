"""The order ledger: orders, fills and positions in the database (one writer: execution).

Write side — every method is one transaction:

- :meth:`OrderLedger.record_intent` inserts a ``pending_new`` order *before* it is sent
  (write-ahead intent). A restarted process finds it among the open orders and
  reconciles it (the venue deduplicates a resend on ``client_order_id``). Recording the
  same intent again is a no-op.
- :meth:`OrderLedger.apply` applies one execution report: it loads the order (by the
  report's ids — its current id or the id it had before its last replace, stored in
  ``orig_client_order_id`` — else by ``venue_order_id``, which survives replaces) with its
  applied ``exec_ids``, runs :mod:`engine.orders.lifecycle`, and writes only an ``applied``
  transition. A fill is inserted, the order updated and the position moved in the same
  transaction; the fill is checked first (``venue_exec_id`` is unique) and inserted under
  a savepoint, so a replayed fill — also one that loses a race to the unique index — is
  dropped without error and without moving the position.
- :meth:`OrderLedger.apply_plan` applies a :class:`~engine.orders.reconcile.ReconcilePlan`
  in one transaction; applying it again changes nothing.

Read side, to restore after a restart: :meth:`~OrderLedger.open_orders` (with their
``exec_ids`` and exact notional rebuilt from the fills), :meth:`~OrderLedger.order`,
:meth:`~OrderLedger.find_order`, :meth:`~OrderLedger.orders`,
:meth:`~OrderLedger.exec_ids`, :meth:`~OrderLedger.positions`.

On SQLite the write transactions begin ``IMMEDIATE`` (they read, then write). Positions
are stored with their average price and their signed cost basis (``cost_basis``,
quantized to the column's 1e-10), and restored from the cost basis, so a restarted
ledger realizes P&L on the same cost as the one that wrote it (a row written before the
column existed holds 0 there and is restored from its average price). The ledger also
keeps the exact cost basis of the positions it wrote in memory and uses it while the
stored row still agrees with it: SQLite stores ``Numeric`` as a 64-bit float (see
:mod:`engine.orders.positions` for the precision this buys).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal, localcontext
from typing import Any

import msgspec
from sqlalchemy import Connection, Engine, Row, Table, exists, func, or_, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite

from app.database import writer
from engine.bus.events import OrderFilled, OrderRejected, OrderReplaced, PositionChanged
from engine.orders.lifecycle import (
    OPEN_STATUSES,
    ApplyResult,
    ExecutionReport,
    OrderState,
    apply_report,
)
from engine.orders.positions import DECIMAL_CONTEXT, ZERO, Position, quantize_price
from engine.orders.reconcile import ReconcilePlan
from engine.persistence.models import Fill, Order
from engine.persistence.models import Position as PositionRow

_ORDERS: Table = Order.__table__  # type: ignore[assignment]
_FILLS: Table = Fill.__table__  # type: ignore[assignment]
_POSITIONS: Table = PositionRow.__table__  # type: ignore[assignment]
_ROWCOUNT = {"preserve_rowcount": True}
_FILL_ID_NAMESPACE = uuid.UUID("6f1d64c8-8f5e-4d8a-9a43-5b0f2f7c1e21")

FeeModel = Callable[[OrderFilled], Decimal]


class Recorded(msgspec.Struct, frozen=True, kw_only=True):
    """What the ledger did with one execution report."""

    result: ApplyResult
    """``applied`` (written), ``ignored`` (duplicate, nothing written) or ``refused``."""
    reason: str = ""
    """The lifecycle's reason or hint; ``unknown_order`` when no order matched."""
    order: OrderState | None = None
    """The order after the report (unchanged unless applied); None when unknown."""
    position_changed: PositionChanged | None = None
    """For an applied fill: the position after it, to publish."""


class OrderLedger:
    """Orders, fills and positions of the execution process.

    ``engine``: the process's database engine. ``fee_of``: the fee of a fill (charged
    to realized P&L and stored with the fill); no fees when None.
    """

    def __init__(self, engine: Engine, *, fee_of: FeeModel | None = None) -> None:
        self._engine = engine
        self._writer = writer(engine)
        self._fee_of = fee_of
        self._exact: dict[tuple[str, str], Position] = {}

    # -- write side ----------------------------------------------------------------------

    def record_intent(
        self, order: OrderState, *, also: Callable[[Connection], None] | None = None
    ) -> bool:
        """Store a ``pending_new`` order before sending it; False if it is already stored
        (the same ``client_order_id``: a retried intent), which changes nothing.
        ``also`` writes more in the same transaction (an algorithm's slice), only when
        the order is new."""
        if order.status != "pending_new":
            raise ValueError(f"an intent is pending_new, not {order.status}")
        with self._writer.begin() as conn:
            insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
            statement = (
                insert(_ORDERS)
                .values(**_order_values(order), ts_created=order.ts_created)
                .on_conflict_do_nothing(index_elements=[_ORDERS.c.client_order_id])
            )
            new = bool(conn.execute(statement, execution_options=_ROWCOUNT).rowcount)
            if new and also is not None:
                also(conn)
            return new

    def apply(self, report: ExecutionReport) -> Recorded:
        """Apply one execution report (see the module docstring); never raises for a
        duplicate or illegal report — ``result`` says what happened."""
        return self.apply_all([report])[0]

    def apply_plan(self, plan: ReconcilePlan) -> list[Recorded]:
        """Apply a reconciliation plan's reports, in order, in one transaction."""
        return self.apply_all(plan.reports())

    def apply_all(self, reports: Iterable[ExecutionReport]) -> list[Recorded]:
        """Apply ``reports`` in order, in one transaction."""
        exact: dict[tuple[str, str], Position] = {}
        with self._writer.begin() as conn:
            recorded = [self._apply(conn, report, exact) for report in reports]
        self._exact.update(exact)  # only once committed
        return recorded

    # -- read side -----------------------------------------------------------------------

    def order(self, client_order_id: str) -> OrderState | None:
        """The order whose current id is ``client_order_id``, whatever its status."""
        with self._engine.connect() as conn:
            row = conn.execute(
                select(_ORDERS).where(_ORDERS.c.client_order_id == client_order_id)
            ).first()
            return None if row is None else _load_state(conn, row)

    def find_order(self, client_order_id: str) -> OrderState | None:
        """The order whose current id is ``client_order_id``, else the one that had it
        before its last replace (what an operator may still call it)."""
        with self._engine.connect() as conn:
            row = conn.execute(
                select(_ORDERS).where(_ORDERS.c.client_order_id == client_order_id)
            ).first()
            if row is None:
                row = conn.execute(
                    select(_ORDERS)
                    .where(_ORDERS.c.orig_client_order_id == client_order_id)
                    .order_by(_ORDERS.c.id.desc())
                    .limit(1)
                ).first()
            return None if row is None else _load_state(conn, row)

    def orders(
        self, account: str | None = None, *, open_only: bool = False, limit: int = 100
    ) -> list[OrderState]:
        """The newest ``limit`` orders (open ones only with ``open_only``), newest first."""
        query = select(_ORDERS)
        if open_only:
            query = query.where(_ORDERS.c.status.in_(sorted(OPEN_STATUSES)))
        if account is not None:
            query = query.where(_ORDERS.c.account == account)
        with self._engine.connect() as conn:
            rows = conn.execute(query.order_by(_ORDERS.c.id.desc()).limit(limit)).all()
            fills = _fills_of(conn, [row.id for row in rows])
        return [_state(row, fills.get(row.id, ())) for row in rows]

    def open_orders(self, account: str | None = None) -> list[OrderState]:
        """Orders still open (``pending_new``, ``accepted``, ``partially_filled``), oldest
        first, each with its applied ``exec_ids``: what to reconcile after a restart."""
        query = select(_ORDERS).where(_ORDERS.c.status.in_(sorted(OPEN_STATUSES)))
        if account is not None:
            query = query.where(_ORDERS.c.account == account)
        with self._engine.connect() as conn:
            rows = conn.execute(query.order_by(_ORDERS.c.id)).all()
            fills = _fills_of(conn, [row.id for row in rows])
        return [_state(row, fills.get(row.id, ())) for row in rows]

    def children(self, algo_id: str) -> list[OrderState]:
        """Every order of the algorithm ``algo_id`` (its child orders), oldest first, with
        their exact notional."""
        query = select(_ORDERS).where(_ORDERS.c.algo_id == algo_id).order_by(_ORDERS.c.id)
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
            fills = _fills_of(conn, [row.id for row in rows])
        return [_state(row, fills.get(row.id, ())) for row in rows]

    def exec_ids(self, client_order_id: str) -> frozenset[str]:
        """Execution ids applied to the order whose current id is ``client_order_id``."""
        order = self.order(client_order_id)
        return frozenset() if order is None else order.exec_ids

    def position(self, account: str, symbol: str) -> Position:
        """The stored position (flat if none)."""
        with self._engine.connect() as conn:
            return _load_position(conn, account, symbol, lock=False)

    def positions(self, account: str | None = None) -> list[Position]:
        """Every stored position (flat ones included), by account and symbol."""
        query = select(_POSITIONS)
        if account is not None:
            query = query.where(_POSITIONS.c.account == account)
        query = query.order_by(_POSITIONS.c.account, _POSITIONS.c.symbol)
        with self._engine.connect() as conn:
            return [_position(row) for row in conn.execute(query)]

    def realized_since(self, ts_ns: int) -> dict[tuple[str, str], Decimal]:
        """Realized P&L (fees included) of the fills at or after ``ts_ns``, by account
        and symbol (e.g. today's, for the risk gate's daily loss after a restart)."""
        f, o = _FILLS.c, _ORDERS.c
        query = (
            select(o.account, o.symbol, func.sum(f.realized_pnl))
            .join_from(_FILLS, _ORDERS, f.order_id == o.id)
            .where(f.ts >= ts_ns)
            .group_by(o.account, o.symbol)
        )
        with self._engine.connect() as conn:
            return {
                (account, symbol): quantize_price(Decimal(total or 0))
                for account, symbol, total in conn.execute(query)
            }

    # -- internals -----------------------------------------------------------------------

    def _apply(
        self,
        conn: Connection,
        report: ExecutionReport,
        exact: dict[tuple[str, str], Position],
    ) -> Recorded:
        row = _find_order(conn, report)
        if row is None:
            return Recorded(result="refused", reason="unknown_order")
        before = _load_state(conn, row)
        transition = apply_report(before, report)
        after = transition.state
        if not transition.applied:
            return Recorded(result=transition.result, reason=transition.reason, order=before)
        changed = None
        if isinstance(report, OrderFilled):
            if _fill_stored(conn, report.exec_id):
                return Recorded(result="ignored", reason="duplicate_exec_id", order=before)
            fee = self._fee_of(report) if self._fee_of else ZERO
            current, moved = self._next_position(conn, before, report, fee, exact)
            realized = moved.realized_pnl - current.realized_pnl
            if not _insert_fill(conn, row.id, report, fee, realized):
                return Recorded(result="ignored", reason="duplicate_exec_id", order=before)
            changed = self._store_moved(conn, moved, report, exact)
        conn.execute(update(_ORDERS).where(_ORDERS.c.id == row.id).values(**_order_values(after)))
        return Recorded(
            result="applied", reason=transition.reason, order=after, position_changed=changed
        )

    def _next_position(
        self,
        conn: Connection,
        order: OrderState,
        fill: OrderFilled,
        fee: Decimal,
        exact: dict[tuple[str, str], Position],
    ) -> tuple[Position, Position]:
        """The position (locked) before and after ``fill``."""
        key = (order.account, order.symbol)
        stored = _load_position(conn, *key, lock=True)
        known = exact.get(key) or self._exact.get(key)
        current = (
            known if known is not None and _stored_form(known) == _stored_form(stored) else stored
        )
        return current, current.apply_fill(
            order.side, fill.qty, fill.price, fee=fee, ts=fill.ts_event
        )

    @staticmethod
    def _store_moved(
        conn: Connection,
        moved: Position,
        fill: OrderFilled,
        exact: dict[tuple[str, str], Position],
    ) -> PositionChanged:
        _write_position(conn, moved)
        exact[(moved.account, moved.symbol)] = moved
        return PositionChanged(
            ts_event=fill.ts_event,
            account=moved.account,
            symbol=moved.symbol,
            qty=moved.qty,
            avg_price=moved.avg_price,
            realized_pnl=moved.realized_pnl,
            unrealized_pnl=moved.unrealized(fill.price),
            mark_price=fill.price,
            exec_id=fill.exec_id,
        )


def _find_order(conn: Connection, report: ExecutionReport) -> Row[Any] | None:
    """The order a report is about, locked for the transaction: by the ids it names
    (in order of preference; an order's current id before the id it had before its last
    replace), else by its venue order id."""
    ids: list[str]
    if isinstance(report, OrderRejected):
        ids = [report.client_order_id if report.request == "new" else report.orig_client_order_id]
    elif isinstance(report, OrderReplaced):
        ids = [report.orig_client_order_id, report.client_order_id]
    else:
        ids = [report.client_order_id]
    rows = conn.execute(
        select(_ORDERS)
        .where(or_(_ORDERS.c.client_order_id.in_(ids), _ORDERS.c.orig_client_order_id.in_(ids)))
        .order_by(_ORDERS.c.id)
        .with_for_update()
    ).all()
    by_id = {row.client_order_id: row for row in rows}
    by_orig = {row.orig_client_order_id: row for row in rows if row.orig_client_order_id}
    for client_order_id in ids:
        if client_order_id in by_id:
            return by_id[client_order_id]
    for client_order_id in ids:
        if client_order_id in by_orig:
            return by_orig[client_order_id]
    venue_order_id = getattr(report, "venue_order_id", "")
    if not venue_order_id:
        return None
    return conn.execute(
        select(_ORDERS)
        .where(_ORDERS.c.venue_order_id == venue_order_id, _ORDERS.c.account == report.account)
        .order_by(_ORDERS.c.id.desc())
        .limit(1)
        .with_for_update()
    ).first()


def _insert_fill(
    conn: Connection, order_id: int, fill: OrderFilled, fee: Decimal, realized: Decimal
) -> bool:
    """Insert the fill (its exec id checked to be new); False when another writer
    stored it meanwhile."""
    try:
        with conn.begin_nested():  # a lost race rolls back to here, not the transaction
            conn.execute(
                _FILLS.insert().values(
                    fill_id=uuid.uuid5(_FILL_ID_NAMESPACE, f"{fill.venue}:{fill.exec_id}").hex,
                    order_id=order_id,
                    client_order_id=fill.client_order_id,
                    venue_exec_id=fill.exec_id,
                    qty=fill.qty,
                    price=fill.price,
                    fee=fee,
                    realized_pnl=quantize_price(realized),
                    liquidity=fill.liquidity,
                    ts=fill.ts_event,
                )
            )
    except sa_exc.IntegrityError:
        # another writer stored it after our check (the unique index decides)
        if _fill_stored(conn, fill.exec_id):
            return False
        raise
    return True


def _fill_stored(conn: Connection, exec_id: str) -> bool:
    stored = exists().where(_FILLS.c.venue_exec_id == exec_id)
    return bool(conn.execute(select(stored)).scalar_one())


def _write_position(conn: Connection, position: Position) -> None:
    values = {
        "account": position.account,
        "symbol": position.symbol,
        "qty": position.qty,
        "avg_price": position.avg_price,
        "realized_pnl": position.realized_pnl,
        "cost_basis": quantize_price(position.cost),
        "ts_updated": position.ts_updated,
    }
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = insert(_POSITIONS).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=[_POSITIONS.c.account, _POSITIONS.c.symbol],
        set_={
            name: statement.excluded[name] for name in values if name not in ("account", "symbol")
        },
    )
    conn.execute(statement)


def _load_position(conn: Connection, account: str, symbol: str, *, lock: bool) -> Position:
    query = select(_POSITIONS).where(_POSITIONS.c.account == account, _POSITIONS.c.symbol == symbol)
    row = conn.execute(query.with_for_update() if lock else query).first()
    return Position(account=account, symbol=symbol) if row is None else _position(row)


def _position(row: Row[Any]) -> Position:
    if row.qty and not row.cost_basis and row.avg_price:  # written before cost_basis existed
        return Position.from_avg(
            row.account,
            row.symbol,
            qty=row.qty,
            avg_price=row.avg_price,
            realized_pnl=row.realized_pnl,
            ts_updated=row.ts_updated,
        )
    return Position(
        account=row.account,
        symbol=row.symbol,
        qty=row.qty,
        cost=row.cost_basis if row.qty else ZERO,
        realized_pnl=row.realized_pnl,
        ts_updated=row.ts_updated,
    )


def _stored_form(position: Position) -> tuple[Decimal, Decimal, Decimal]:
    return position.qty, quantize_price(position.cost), quantize_price(position.realized_pnl)


def _order_values(order: OrderState) -> dict[str, Any]:
    return {
        "client_order_id": order.client_order_id,
        "orig_client_order_id": order.orig_client_order_id or None,
        "venue_order_id": order.venue_order_id or None,
        "account": order.account,
        "symbol": order.symbol,
        "side": order.side,
        "order_type": order.order_type,
        "tif": order.tif,
        "qty": order.qty,
        "price": order.price,
        "status": order.status,
        "filled_qty": order.filled_qty,
        "avg_price": order.avg_price,
        "algo_id": order.algo_id,
        "reject_reason": order.reject_reason,
        "ts_updated": order.ts_updated,
    }


_FillRow = tuple[str, Decimal, Decimal]


def _fills_of(conn: Connection, order_ids: Sequence[int]) -> dict[int, list[_FillRow]]:
    found: dict[int, list[_FillRow]] = {}
    if not order_ids:
        return found
    query = (
        select(_FILLS.c.order_id, _FILLS.c.venue_exec_id, _FILLS.c.qty, _FILLS.c.price)
        .where(_FILLS.c.order_id.in_(order_ids))
        .order_by(_FILLS.c.id)
    )
    for order_id, exec_id, qty, price in conn.execute(query):
        found.setdefault(order_id, []).append((exec_id, qty, price))
    return found


def _load_state(conn: Connection, row: Row[Any]) -> OrderState:
    return _state(row, _fills_of(conn, [row.id]).get(row.id, ()))


def _state(row: Row[Any], fills: Sequence[_FillRow]) -> OrderState:
    with localcontext(DECIMAL_CONTEXT):
        notional = sum((qty * price for _, qty, price in fills), ZERO)
    return msgspec.convert(
        {
            "client_order_id": row.client_order_id,
            "venue_order_id": row.venue_order_id or "",
            "account": row.account,
            "symbol": row.symbol,
            "side": row.side,
            "order_type": row.order_type,
            "tif": row.tif,
            "qty": row.qty,
            "price": row.price,
            "status": row.status,
            "filled_qty": row.filled_qty,
            "avg_price": row.avg_price,
            "notional": notional,
            "reject_reason": row.reject_reason,
            "algo_id": row.algo_id,
            "orig_client_order_id": row.orig_client_order_id or "",
            "exec_ids": frozenset(exec_id for exec_id, _, _ in fills),
            "ts_created": row.ts_created,
            "ts_updated": row.ts_updated,
        },
        OrderState,
    )
