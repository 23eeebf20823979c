"""Orders and book page: the L2 ladder and tape of one symbol, the blotter, fills,
positions with P&L, and a manual order ticket.

Everything renders from the bridge's bounded view state on one timer (two redraws a
second at most), and each part only when its version moved. The blotter is an AG Grid
updated by transactions: only the rows that changed travel to the browser, while the
element's own ``rowData`` is kept in step quietly (it is what a reconnecting tab gets).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from nicegui import background_tasks, ui

from engine.bus.commands.orders import SubmitOrder
from engine.bus.events import OrderFilled, TimeInForce, TradePrinted
from engine.orders.requests import ACCOUNT, SYMBOL
from ui.trading_state import BookView, OrderView, PositionView, TradingView

LADDER_DEPTH = 10
SHOWN_FILLS = 20
SHOWN_TRADES = 15
TIME_IN_FORCE: dict[str, TimeInForce] = {"day": "day", "gtc": "gtc", "ioc": "ioc", "fok": "fok"}
DEFAULT_ACCOUNT = "desk1"
"""The README's example account; the ticket's account field starts with it."""
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
    {"name": "time", "label": "Time (UTC)", "field": "time", "align": "left"},
    {"name": "account", "label": "Account", "field": "account", "align": "left"},
    {"name": "symbol", "label": "Symbol", "field": "symbol", "align": "left"},
    {"name": "side", "label": "Side", "field": "side", "align": "left"},
    {"name": "qty", "label": "Qty", "field": "qty"},
    {"name": "price", "label": "Price", "field": "price"},
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


class TradingSource(Protocol):
    """What the page needs from the bridge (tests pass a fake)."""

    trading: TradingView
    sync_error: str

    def symbols(self) -> list[str]: ...

    def watch(self, symbol: str) -> None: ...

    async def sync(self, symbols: Iterable[str] = ()) -> None: ...

    async def submit_order(self, order: SubmitOrder) -> tuple[bool, str]: ...


def check_ticket(
    *,
    account: str,
    symbol: str,
    side: str,
    qty: str,
    price: str,
    order_type: str,
    tif: str,
) -> SubmitOrder | list[str]:
    """The order of a filled-in ticket, or what is wrong with it (in words)."""
    problems = []
    if not ACCOUNT.match(account.strip()):
        problems.append("Account: up to 32 letters, digits, _ or -, not starting with _ or -")
    if not SYMBOL.match(symbol.strip()):
        problems.append("Symbol is required")
    quantity = _decimal(qty)
    if quantity is None or quantity <= 0:
        problems.append("Quantity must be a number greater than 0")
    limit = _decimal(price)
    if order_type == "limit" and (limit is None or limit <= 0):
        problems.append("Price must be a number greater than 0 for a limit order")
    if order_type == "market" and price.strip():
        problems.append("A market order takes no price: leave Price empty")
    if problems:
        return problems
    assert quantity is not None
    return SubmitOrder(
        account=account.strip(),
        symbol=symbol.strip(),
        side="sell" if side == "sell" else "buy",
        qty=quantity,
        price=limit if order_type == "limit" else None,
        order_type="market" if order_type == "market" else "limit",
        tif=TIME_IN_FORCE.get(tif, "day"),
    )


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
            trades = _table(TRADE_COLUMNS, "trades")
        with ui.column().classes("gap-2 grow"):
            with ui.row().classes("items-start gap-4"):
                ticket_symbol = _ticket(bridge, selector.value or "")
                with ui.column().classes("gap-2"):
                    ui.label("Positions").classes("text-subtitle2")
                    positions = _table(POSITION_COLUMNS, "positions")
                    for column in ("realized", "unrealized"):
                        positions.add_slot(f"body-cell-{column}", PNL_CELL)
            ui.label("Fills").classes("text-subtitle2")
            fills = _table(FILL_COLUMNS, "fills")
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
    seen: dict[str, Any] = {}

    def changed(part: str, version: object) -> bool:
        if seen.get(part) == version:
            return False
        seen[part] = version
        return True

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
            _send_changed_rows(blotter, view, shown)
        problem.set_text(bridge.sync_error)

    selector.on_value_change(lambda e: follow(e.value))
    follow(selector.value)
    refresh()
    ui.timer(0.5, refresh)  # at most two redraws a second per tab


def _table(columns: list[dict[str, Any]], name: str) -> ui.table:
    table = ui.table(columns=columns, rows=[], row_key="key")
    table.props(f'dense flat bordered data-testid="{name}"').mark(name)
    return table


def _ticket(bridge: TradingSource, symbol: str) -> ui.input:
    """The order ticket; returns its symbol field (it follows the selected book)."""
    with ui.card().classes("w-72 gap-1").props('data-testid="ticket"'):
        ui.label("Order ticket").classes("text-subtitle2")
        account = ui.input("Account", value=DEFAULT_ACCOUNT).mark("ticket-account")
        symbol_in = ui.input("Symbol", value=symbol).mark("ticket-symbol")
        side = ui.toggle({"buy": "Buy", "sell": "Sell"}, value="buy").mark("ticket-side")
        qty = ui.input("Quantity").mark("ticket-qty")
        order_type = ui.select(["limit", "market"], value="limit", label="Type")
        order_type.mark("ticket-type")
        price = ui.input("Price").mark("ticket-price")
        tif = ui.select(list(TIME_IN_FORCE), value="day", label="Time in force")
        tif.mark("ticket-tif")
        for field in (account, symbol_in, qty, order_type, price, tif):
            field.classes("w-full")
        message = ui.label("").classes("text-caption").props('data-testid="ticket-message"')
        message.mark("ticket-message")

        async def send() -> None:
            order = check_ticket(
                account=account.value or "",
                symbol=symbol_in.value or "",
                side=side.value or "buy",
                qty=qty.value or "",
                price=price.value or "",
                order_type=order_type.value or "limit",
                tif=tif.value or "day",
            )
            if isinstance(order, list):
                _say(message, False, "; ".join(order))
                return
            button.disable()
            try:
                _say(message, *await bridge.submit_order(order))
            finally:
                button.enable()

        button = ui.button("Send order", on_click=send).props('data-testid="ticket-send"')
        button.mark("ticket-send")
    return symbol_in


def _say(label: ui.label, ok: bool, text: str) -> None:
    label.set_text(text)
    label.classes(
        add="text-positive" if ok else "text-negative",
        remove="text-negative" if ok else "text-positive",
    )


def _draw_ladder(ladder: ui.table, state: ui.badge, book: BookView | None) -> None:
    if book is None:
        state.set_text("NO BOOK YET")
        state.props("color=grey")
        ladder.rows = []
        return
    label = {"live": f"LIVE · seq {book.book_seq}", "stale": "STALE (gap): resyncing"}
    halted = " · HALTED" if book.halted else ""
    state.set_text(label.get(book.status, "WAITING FOR SNAPSHOT") + halted)
    state.props(f"color={BOOK_STATE_COLORS[book.status]}")
    bids, asks = book.ladder(LADDER_DEPTH)
    rows = [_level("ask", i, p, q) for i, (p, q) in reversed(list(enumerate(asks)))]
    rows += [_level("bid", i, p, q) for i, (p, q) in enumerate(bids)]
    ladder.rows = rows


def _level(side: str, i: int, price: Decimal, qty: Decimal) -> dict[str, Any]:
    size = _num(qty)
    return {
        "id": f"{side}-{i}",
        "side": side,
        "best": i == 0,
        "bid": size if side == "bid" else "",
        "price": _num(price, strip=False),  # at the book's tick: 100.00 above 99.99
        "ask": size if side == "ask" else "",
    }


def _send_changed_rows(grid: ui.aggrid, view: TradingView, shown: dict[str, int]) -> None:
    """Only added, changed and removed rows go to the browser (an AG Grid transaction)."""
    orders = view.blotter.orders
    add = [o for key, o in orders.items() if key not in shown]
    update = [o for key, o in orders.items() if key in shown and shown[key] != o.rev]
    remove = [key for key in shown if key not in orders]
    if not (add or update or remove):
        return
    for key in remove:
        del shown[key]
    for o in add + update:
        shown[o.key] = o.rev
    with grid.props.suspend_updates():  # the element's copy, for a tab that reconnects
        grid.options["rowData"] = [_order_row(o) for o in orders.values()]
    grid.run_grid_method(
        "applyTransaction",
        {
            "add": [_order_row(o) for o in add],
            "update": [_order_row(o) for o in update],
            "remove": [{"key": key} for key in remove],
        },
    )


def _order_row(o: OrderView) -> dict[str, Any]:
    return {
        "key": o.key,
        "ts": o.ts_created,
        "time": _clock(o.ts_created),
        "client_order_id": o.client_order_id,
        "account": o.account,
        "symbol": o.symbol,
        "side": o.side or "-",
        "type": o.order_type or "-",
        "tif": o.tif or "-",
        "qty": _num(o.qty),
        "price": _num(o.price) if o.price is not None else ("MKT" if o.order_type else "-"),
        "status": o.status,
        "filled": _num(o.filled_qty),
        "avg_price": _num(o.avg_price, places=4),
        "reason": o.reason,
    }


def _trade_row(t: TradePrinted) -> dict[str, Any]:
    return {
        "key": t.trade_id,
        "time": _clock(t.ts_event),
        "price": _num(t.price, strip=False),
        "qty": _num(t.qty),
        "aggressor": t.aggressor,
    }


def _fill_row(f: OrderFilled) -> dict[str, Any]:
    return {
        "key": f.exec_id,
        "time": _clock(f.ts_event),
        "account": f.account,
        "symbol": f.symbol,
        "side": f.side,
        "qty": _num(f.qty),
        "price": _num(f.price),
        "liquidity": f.liquidity,
        "order": f.client_order_id,
    }


def _position_row(p: PositionView) -> dict[str, Any]:
    return {
        "key": f"{p.account}/{p.symbol}",
        "account": p.account,
        "symbol": p.symbol,
        "qty": _num(p.qty),
        "avg": _num(p.avg_price, places=4),
        "mark": _num(p.mark_price, places=4),
        "realized": _num(p.realized_pnl, places=2, strip=False),
        "unrealized": _num(p.unrealized_pnl, places=2, strip=False),
    }


def _decimal(text: str) -> Decimal | None:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _num(value: Decimal | None, places: int | None = None, *, strip: bool = True) -> str:
    """A decimal as an operator reads it: no exponent, rounded to ``places``, without
    trailing zeros unless ``strip`` is off (money); "-" for none."""
    if value is None:
        return "-"
    if places is not None:
        value = value.quantize(Decimal(1).scaleb(-places))
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if strip and "." in text else text


def _clock(ts_ns: int) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(ts_ns / 1e9)) if ts_ns else "-"
