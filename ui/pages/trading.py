"""Orders and book page: the L2 ladder and tape of one symbol, the blotter, fills,
positions with P&L, and a manual order ticket.

Everything renders from the bridge's bounded view state on one timer (two redraws a
second at most), and each part only when its version moved. The blotter is an AG Grid
updated by transactions: only the rows that changed travel to the browser, while the
element's own ``rowData`` is kept in step quietly (it is what a reconnecting tab gets).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any, Protocol

from nicegui import background_tasks, ui

from engine.bus.events import OrderFilled, TradePrinted
from ui.components.format import clock, num
from ui.components.redraw import REDRAW_S, Changes, send_changed_rows
from ui.components.ticket import OrderSender, order_ticket
from ui.components.widgets import ORDER_COLUMNS, show_badge, table
from ui.trading_state import BookView, OrderView, PositionView, TradingView

LADDER_DEPTH = 10
SHOWN_FILLS = 20
SHOWN_TRADES = 15
BOOK_STATE_COLORS = {"live": "positive", "stale": "warning", "waiting": "grey"}

LADDER_COLUMNS = [
    {"name": "bid", "label": "Bid size", "field": "bid"},
    {"name": "price", "label": "Price", "field": "price", "align": "center"},
    {"name": "ask", "label": "Ask size", "field": "ask", "align": "left"},
]
# asks red above bids green; the best of each side stronger; "ladder-bid-0" is the best bid
LADDER_ROW = """
<q-tr :props="props" :data-testid="'ladder-' + props.row.id" :class="{
    'bg-green-1': props.row.side === 'bid' && !props.row.best,
    'bg-green-3 text-weight-bold': props.row.side === 'bid' && props.row.best,
    'bg-red-1': props.row.side === 'ask' && !props.row.best,
    'bg-red-3 text-weight-bold': props.row.side === 'ask' && props.row.best}">
  <q-td key="bid" :props="props">{{ props.row.bid }}</q-td>
  <q-td key="price" :props="props">{{ props.row.price }}</q-td>
  <q-td key="ask" :props="props">{{ props.row.ask }}</q-td>
</q-tr>
"""
TRADE_COLUMNS = [
    {"name": "time", "label": "Time (UTC)", "field": "time", "align": "left"},
    {"name": "price", "label": "Price", "field": "price"},
    {"name": "qty", "label": "Qty", "field": "qty"},
    {"name": "aggressor", "label": "Aggressor", "field": "aggressor", "align": "left"},
]
FILL_COLUMNS = [
    *ORDER_COLUMNS,
    {"name": "liquidity", "label": "Liquidity", "field": "liquidity", "align": "left"},
    {"name": "order", "label": "Order", "field": "order", "align": "left"},
]
POSITION_COLUMNS = [
    {"name": "account", "label": "Account", "field": "account", "align": "left"},
    {"name": "symbol", "label": "Symbol", "field": "symbol", "align": "left"},
    {"name": "qty", "label": "Qty", "field": "qty"},
    {"name": "avg", "label": "Avg price", "field": "avg"},
    {"name": "mark", "label": "Mark", "field": "mark"},
    {"name": "realized", "label": "Realized P&L", "field": "realized"},
    {"name": "unrealized", "label": "Unrealized P&L", "field": "unrealized"},
]
PNL_CELL = (
    '<q-td :props="props" :class="parseFloat(props.value) < 0 ? \'text-negative\' : '
    "(parseFloat(props.value) > 0 ? 'text-positive' : '')\">{{ props.value }}</q-td>"
)
STATUS_STYLE = (
    "p => ({color: {filled: '#2e7d32', partially_filled: '#1565c0', rejected: '#c62828', "
    "cancelled: '#757575', expired: '#757575'}[p.value] || 'inherit'})"
)
BLOTTER_COLUMNS: list[dict[str, Any]] = [
    {"field": "ts", "hide": True, "sort": "desc"},  # newest first, kept by AG Grid
    {"field": "time", "headerName": "Time (UTC)"},
    {"field": "client_order_id", "headerName": "Order"},
    {"field": "account", "headerName": "Account"},
    {"field": "symbol", "headerName": "Symbol"},
    {"field": "side", "headerName": "Side"},
    {"field": "type", "headerName": "Type"},
    {"field": "tif", "headerName": "TIF"},
    {"field": "qty", "headerName": "Qty"},
    {"field": "price", "headerName": "Price"},
    {"field": "status", "headerName": "Status", ":cellStyle": STATUS_STYLE},
    {"field": "filled", "headerName": "Filled"},
    {"field": "avg_price", "headerName": "Avg price"},
    {"field": "reason", "headerName": "Reason"},
]


class TradingSource(OrderSender, Protocol):
    """What the page needs from the bridge (tests pass a fake)."""

    trading: TradingView
    sync_error: str

    def symbols(self) -> list[str]: ...

    def watch(self, symbol: str) -> None: ...

    async def sync(self, symbols: Iterable[str] = ()) -> None: ...


def build(bridge: TradingSource) -> None:
    view = bridge.trading
    symbols = bridge.symbols()
    ui.label("Orders & book").classes("text-h5")
    with ui.row().classes("items-center gap-4"):
        selector = ui.select(symbols, value=symbols[0] if symbols else None, label="Symbol")
        selector.classes("w-40").props('data-testid="symbol"').mark("symbol")
        state = ui.badge("…").props('data-testid="book-state"').mark("book-state")
        problem = ui.label("").classes("text-caption text-negative").mark("sync-error")
    with ui.row().classes("w-full items-start gap-4 no-wrap"):
        with ui.column().classes("gap-2"):
            ladder = ui.table(columns=LADDER_COLUMNS, rows=[], row_key="id")
            ladder.props('dense flat bordered hide-bottom data-testid="ladder"').mark("ladder")
            ladder.add_slot("body", LADDER_ROW)
            ui.label("Trades").classes("text-subtitle2")
            trades = table(TRADE_COLUMNS, "trades")
        with ui.column().classes("gap-2 grow"):
            with ui.row().classes("items-start gap-4"):
                ticket_symbol = order_ticket(bridge, selector.value or "")
                with ui.column().classes("gap-2"):
                    ui.label("Positions").classes("text-subtitle2")
                    positions = table(POSITION_COLUMNS, "positions")
                    for column in ("realized", "unrealized"):
                        positions.add_slot(f"body-cell-{column}", PNL_CELL)
            ui.label("Fills").classes("text-subtitle2")
            fills = table(FILL_COLUMNS, "fills")
    ui.label("Orders").classes("text-subtitle2")
    shown: dict[str, int] = {o.key: o.rev for o in view.blotter.orders.values()}
    blotter = ui.aggrid(
        {
            "columnDefs": BLOTTER_COLUMNS,
            "rowData": [_order_row(o) for o in view.blotter.orders.values()],
            ":getRowId": "p => p.data.key",
            "defaultColDef": {"sortable": True, "resizable": True},
        }
    )
    blotter.classes("w-full h-96").props('data-testid="blotter"').mark("blotter")
    changed = Changes()

    def follow(symbol: str | None) -> None:
        if symbol:
            bridge.watch(symbol)
            ticket_symbol.set_value(symbol)
            background_tasks.create(bridge.sync([symbol]), name="trading-sync")  # a late tab

    def refresh() -> None:
        symbol = selector.value or ""
        book = view.books.get(symbol)
        if changed("book", (symbol, id(book), book and book.version)):
            _draw_ladder(ladder, state, book)
        if changed("tape", (symbol, id(book), book and book.tape_version)):
            tape = list(book.trades)[-SHOWN_TRADES:] if book else []
            trades.rows = [_trade_row(t) for t in reversed(tape)]
        if changed("fills", view.blotter.fills_version):
            fills.rows = [_fill_row(f) for f in reversed(list(view.blotter.fills)[-SHOWN_FILLS:])]
        if changed("positions", view.positions_version):
            ordered = sorted(view.positions.values(), key=lambda p: (p.account, p.symbol))
            positions.rows = [_position_row(p) for p in ordered]
        if changed("orders", view.blotter.version):
            send_changed_rows(blotter, view.blotter.orders, shown, _order_row)
        problem.set_text(bridge.sync_error)

    selector.on_value_change(lambda e: follow(e.value))
    follow(selector.value)
    refresh()
    ui.timer(REDRAW_S, refresh)


def _draw_ladder(ladder: ui.table, state: ui.badge, book: BookView | None) -> None:
    if book is None:
        show_badge(state, "NO BOOK YET", "grey")
        ladder.rows = []
        return
    label = {"live": f"LIVE · seq {book.book_seq}", "stale": "STALE (gap): resyncing"}
    halted = " · HALTED" if book.halted else ""
    text = label.get(book.status, "WAITING FOR SNAPSHOT") + halted
    show_badge(state, text, BOOK_STATE_COLORS[book.status])
    bids, asks = book.ladder(LADDER_DEPTH)
    rows = [_level("ask", i, p, q) for i, (p, q) in reversed(list(enumerate(asks)))]
    rows += [_level("bid", i, p, q) for i, (p, q) in enumerate(bids)]
    ladder.rows = rows


def _level(side: str, i: int, price: Decimal, qty: Decimal) -> dict[str, Any]:
    size = num(qty)
    return {
        "id": f"{side}-{i}",
        "side": side,
        "best": i == 0,
        "bid": size if side == "bid" else "",
        "price": num(price, strip=False),  # at the book's tick: 100.00 above 99.99
        "ask": size if side == "ask" else "",
    }


def _order_row(o: OrderView) -> dict[str, Any]:
    return {
        "key": o.key,
        "ts": o.ts_created,
        "time": clock(o.ts_created),
        "client_order_id": o.client_order_id,
        "account": o.account,
        "symbol": o.symbol,
        "side": o.side or "-",
        "type": o.order_type or "-",
        "tif": o.tif or "-",
        "qty": num(o.qty),
        "price": num(o.price) if o.price is not None else ("MKT" if o.order_type else "-"),
        "status": o.status,
        "filled": num(o.filled_qty),
        "avg_price": num(o.avg_price, places=4),
        "reason": o.reason,
    }


def _trade_row(t: TradePrinted) -> dict[str, Any]:
    return {
        "key": t.trade_id,
        "time": clock(t.ts_event),
        "price": num(t.price, strip=False),
        "qty": num(t.qty),
        "aggressor": t.aggressor,
    }


def _fill_row(f: OrderFilled) -> dict[str, Any]:
    return {
        "key": f.exec_id,
        "time": clock(f.ts_event),
        "account": f.account,
        "symbol": f.symbol,
        "side": f.side,
        "qty": num(f.qty),
        "price": num(f.price),
        "liquidity": f.liquidity,
        "order": f.client_order_id,
    }


def _position_row(p: PositionView) -> dict[str, Any]:
    return {
        "key": f"{p.account}/{p.symbol}",
        "account": p.account,
        "symbol": p.symbol,
        "qty": num(p.qty),
        "avg": num(p.avg_price, places=4),
        "mark": num(p.mark_price, places=4),
        "realized": num(p.realized_pnl, places=2, strip=False),
        "unrealized": num(p.unrealized_pnl, places=2, strip=False),
    }
