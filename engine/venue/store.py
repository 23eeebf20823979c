"""The simulated venue's write-ahead records (``venue_orders``, ``venue_client_ids``,
``venue_executions``); the venue process is their one writer.

:meth:`VenueStore.record` stores the client-facing events of one request in one
transaction *before* the venue sends them (a report is never ahead of the record); a
venue killed between the two re-sends nothing, and the client reconciles with a status
request, which :meth:`VenueStore.statuses` answers from these rows. After a restart
:meth:`VenueStore.open_orders` gives every resting order in time priority, to put back
into the books.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, Table, func, insert, select, update

from engine.bus.events import (
    Event,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderReplaced,
)
from engine.persistence.models import (
    SimulatedInstrument,
    VenueClientId,
    VenueExecution,
    VenueOrder,
)
from engine.venue.protocol import OrderStatus

_ORDERS: Table = VenueOrder.__table__  # type: ignore[assignment]
_IDS: Table = VenueClientId.__table__  # type: ignore[assignment]
_EXECS: Table = VenueExecution.__table__  # type: ignore[assignment]
OPEN = ("accepted", "partially_filled")


class VenueStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._priority = 0

    def next_priority(self) -> int:
        """A new time-priority rank, above every stored one."""
        self._priority += 1
        return self._priority

    def load(self) -> tuple[list[Any], set[tuple[str, str]]]:
        """Open orders (rows, by priority) and every known ``(account, client_order_id)``;
        also moves :meth:`next_priority` past the stored ranks."""
        with self.engine.connect() as conn:
            top = conn.execute(select(func.max(_ORDERS.c.priority))).scalar()
            self._priority = max(self._priority, int(top or 0))
            rows = conn.execute(
                select(_ORDERS).where(_ORDERS.c.status.in_(OPEN)).order_by(_ORDERS.c.priority)
            ).all()
            ids = {(r.account, r.client_order_id) for r in conn.execute(select(_IDS)).all()}
        return list(rows), ids

    def record(self, items: Sequence[tuple[str, Event]], priorities: dict[str, int]) -> None:
        """Store the client-facing events of one operation — ``(session, event)`` pairs:
        accepts, fills, cancels, replaces of client orders — in one transaction.
        ``priorities`` gives the rank of each venue order id that (re)entered the queue."""
        if not items:
            return
        with self.engine.begin() as conn:
            for session, event in items:
                _apply(conn, session, event, priorities)

    def instrument(self, symbol: str, defaults: dict[str, Any]) -> Any:
        """The ``simulated_instruments`` row of ``symbol``, created from ``defaults``
        (tick_size, lot_size, base_liquidity, volatility) when it has none."""
        table: Table = SimulatedInstrument.__table__  # type: ignore[assignment]
        with self.engine.begin() as conn:
            row = conn.execute(select(table).where(table.c.symbol == symbol)).first()
            if row is None:
                conn.execute(insert(table).values(symbol=symbol, **defaults))
                row = conn.execute(select(table).where(table.c.symbol == symbol)).one()
        return row

    def find_instrument(self, symbol: str) -> Any:
        """The ``simulated_instruments`` row of ``symbol``, or None."""
        table: Table = SimulatedInstrument.__table__  # type: ignore[assignment]
        with self.engine.connect() as conn:
            return conn.execute(select(table).where(table.c.symbol == symbol)).first()

    def update_instrument(self, symbol: str, values: dict[str, Any]) -> Any:
        """Change a ``simulated_instruments`` row (it must exist); returns the new row."""
        table: Table = SimulatedInstrument.__table__  # type: ignore[assignment]
        with self.engine.begin() as conn:
            if values:
                conn.execute(update(table).where(table.c.symbol == symbol).values(**values))
            return conn.execute(select(table).where(table.c.symbol == symbol)).one()

    def statuses(
        self, session: str, client_ids: Iterable[tuple[str, str]], open_orders: bool
    ) -> list[OrderStatus]:
        """The venue's view of the orders named by ``(account, client_order_id)`` (any id
        an order has had; unknown ones answer ``status="unknown"``) and, if
        ``open_orders``, every open order of ``session``; each with all its fills."""
        wanted = list(client_ids)
        with self.engine.connect() as conn:
            found: dict[str, Any] = {}
            unknown: list[tuple[str, str]] = []
            for account, cid in wanted:
                vid = conn.execute(
                    select(_IDS.c.venue_order_id).where(
                        _IDS.c.account == account, _IDS.c.client_order_id == cid
                    )
                ).scalar()
                if vid is None:
                    unknown.append((account, cid))
                    continue
                row = conn.execute(select(_ORDERS).where(_ORDERS.c.venue_order_id == vid)).first()
                if row is not None:
                    found[vid] = row
            if open_orders:
                for row in conn.execute(
                    select(_ORDERS).where(_ORDERS.c.session == session, _ORDERS.c.status.in_(OPEN))
                ):
                    found.setdefault(row.venue_order_id, row)
            fills: dict[str, list[Any]] = {vid: [] for vid in found}
            if found:
                for f in conn.execute(
                    select(_EXECS)
                    .where(_EXECS.c.venue_order_id.in_(list(found)))
                    .order_by(_EXECS.c.ts, _EXECS.c.exec_id)
                ):
                    fills[f.venue_order_id].append(f)
        out = [
            _status(row, fills[vid])
            for vid, row in sorted(found.items(), key=lambda kv: kv[1].priority)
        ]
        out += [_unknown(account, cid) for account, cid in unknown]
        return out


def _apply(conn: Connection, session: str, event: Event, priorities: dict[str, int]) -> None:
    if isinstance(event, OrderAccepted):
        conn.execute(
            insert(_ORDERS).values(
                venue_order_id=event.venue_order_id,
                session=session,
                account=event.account,
                client_order_id=event.client_order_id,
                symbol=event.symbol,
                side=event.side,
                order_type=event.order_type,
                tif=event.tif,
                qty=event.qty,
                price=event.price,
                cum_qty=Decimal(0),
                leaves_qty=event.qty,
                status="accepted",
                priority=priorities.get(event.venue_order_id, 0),
                ts_created=event.ts_event,
                ts_updated=event.ts_event,
            )
        )
        conn.execute(
            insert(_IDS).values(
                account=event.account,
                client_order_id=event.client_order_id,
                venue_order_id=event.venue_order_id,
            )
        )
    elif isinstance(event, OrderFilled):
        conn.execute(
            insert(_EXECS).values(
                exec_id=event.exec_id,
                venue_order_id=event.venue_order_id,
                client_order_id=event.client_order_id,
                account=event.account,
                symbol=event.symbol,
                side=event.side,
                trade_id=event.trade_id,
                qty=event.qty,
                price=event.price,
                liquidity=event.liquidity,
                leaves_qty=event.leaves_qty,
                cum_qty=event.cum_qty,
                ts=event.ts_event,
            )
        )
        conn.execute(
            update(_ORDERS)
            .where(_ORDERS.c.venue_order_id == event.venue_order_id)
            .values(
                cum_qty=event.cum_qty,
                leaves_qty=event.leaves_qty,
                status="filled" if event.leaves_qty == 0 else "partially_filled",
                ts_updated=event.ts_event,
            )
        )
    elif isinstance(event, OrderCancelled):
        conn.execute(
            update(_ORDERS)
            .where(_ORDERS.c.venue_order_id == event.venue_order_id)
            .values(leaves_qty=Decimal(0), status="cancelled", ts_updated=event.ts_event)
        )
    elif isinstance(event, OrderReplaced):
        values: dict[str, Any] = {
            "client_order_id": event.client_order_id,
            "qty": event.qty,
            "price": event.price,
            "leaves_qty": event.leaves_qty,
            "ts_updated": event.ts_event,
        }
        if event.venue_order_id in priorities:
            values["priority"] = priorities[event.venue_order_id]
        conn.execute(
            update(_ORDERS).where(_ORDERS.c.venue_order_id == event.venue_order_id).values(values)
        )
        conn.execute(
            insert(_IDS).values(
                account=event.account,
                client_order_id=event.client_order_id,
                venue_order_id=event.venue_order_id,
            )
        )


def _status(row: Any, fills: list[Any]) -> OrderStatus:
    return OrderStatus(
        account=row.account,
        client_order_id=row.client_order_id,
        venue_order_id=row.venue_order_id,
        symbol=row.symbol,
        side=row.side,
        order_type=row.order_type,
        tif=row.tif,
        qty=plain_decimal(row.qty),
        price=None if row.price is None else plain_decimal(row.price),
        cum_qty=plain_decimal(row.cum_qty),
        leaves_qty=plain_decimal(row.leaves_qty),
        status=row.status,
        fills=[
            OrderFilled(
                ts_event=f.ts,
                venue="",
                account=f.account,
                client_order_id=f.client_order_id,
                venue_order_id=f.venue_order_id,
                symbol=f.symbol,
                side=f.side,
                exec_id=f.exec_id,
                trade_id=f.trade_id,
                qty=plain_decimal(f.qty),
                price=plain_decimal(f.price),
                liquidity=f.liquidity,
                leaves_qty=plain_decimal(f.leaves_qty),
                cum_qty=plain_decimal(f.cum_qty),
            )
            for f in fills
        ],
    )


def _unknown(account: str, client_order_id: str) -> OrderStatus:
    zero = Decimal(0)
    return OrderStatus(
        account=account,
        client_order_id=client_order_id,
        venue_order_id="",
        symbol="",
        side="buy",
        order_type="limit",
        tif="day",
        qty=zero,
        price=None,
        cum_qty=zero,
        leaves_qty=zero,
        status="unknown",
    )


def plain_decimal(value: Any) -> Decimal:
    """A stored decimal without the column's trailing zeros (``100.5000000000`` →
    ``100.5``, ``100.0000000000`` → ``100``)."""
    d = value if isinstance(value, Decimal) else Decimal(str(value))
    return d.quantize(Decimal(1)) if d == d.to_integral_value() else d.normalize()
