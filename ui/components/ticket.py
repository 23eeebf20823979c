"""The manual order ticket of the Orders page, and the checks of an order's account,
symbol and quantity that the Algorithms page's start form makes too."""

from __future__ import annotations

from decimal import Decimal
from typing import Protocol

from nicegui import ui

from engine.bus.commands.orders import SubmitOrder
from engine.bus.events import TimeInForce
from engine.orders.requests import ACCOUNT, SYMBOL
from ui.components.format import parse_decimal
from ui.components.widgets import disabled, say

TIME_IN_FORCE: dict[str, TimeInForce] = {"day": "day", "gtc": "gtc", "ioc": "ioc", "fok": "fok"}
DEFAULT_ACCOUNT = "desk1"
"""The README's example account; the ticket's account field starts with it."""


class OrderSender(Protocol):
    async def submit_order(self, order: SubmitOrder) -> tuple[bool, str]: ...


def order_problems(account: str, symbol: str, qty: str) -> tuple[list[str], Decimal | None]:
    """What is wrong with an order's account, symbol and quantity (in words), and the
    quantity (None when it is not a number)."""
    problems = []
    if not ACCOUNT.match(account.strip()):
        problems.append("Account: up to 32 letters, digits, _ or -, not starting with _ or -")
    if not SYMBOL.match(symbol.strip()):
        problems.append("Symbol is required")
    quantity = parse_decimal(qty)
    if quantity is None or quantity <= 0:
        problems.append("Quantity must be a number greater than 0")
    return problems, quantity


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
    problems, quantity = order_problems(account, symbol, qty)
    limit = parse_decimal(price)
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


def order_ticket(bridge: OrderSender, symbol: str) -> ui.input:
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
                say(message, False, "; ".join(order))
                return
            with disabled(button):
                say(message, *await bridge.submit_order(order))

        button = ui.button("Send order", on_click=send).props('data-testid="ticket-send"')
        button.mark("ticket-send")
    return symbol_in
