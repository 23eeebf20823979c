"""Manual trading end to end, as an operator does it: `qsuite ctl` orders against the
live simulated book that follows the feed, scenarios and halts that visibly change it,
and kill -9 of the venue and of the execution process that lose and duplicate nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from decimal import Decimal
from typing import Any

import pytest
from harness import Sandbox, clean_env, running, wait_until

from app.client import QSuiteClient

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]


def ctl(sandbox: Sandbox, *args: str, ok: bool = True) -> Any:
    out = subprocess.run(
        sandbox.command("ctl", *args, "--json"),
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
    )
    if ok:
        assert out.returncode == 0, f"ctl {' '.join(args)}: {out.stderr}"
        return json.loads(out.stdout)
    return out


def submit(sandbox: Sandbox, *args: str) -> Any:
    """``ctl order submit ARGS``, again while the risk gate refuses it for want of a fresh
    reference price: it fails closed until the order manager holds a quote younger than
    the profile's age limit, and a quote can be 40 s apart in the illiquid scenario."""

    def sent() -> Any:
        out = ctl(sandbox, "order", "submit", *args, ok=False)
        if out.returncode == 0:
            return json.loads(out.stdout)
        assert "_reference" in out.stderr, f"ctl order submit {' '.join(args)}: {out.stderr}"
        return None

    return wait_until(sent, 90, "a fresh reference price in the order manager", every_s=1)


def pid_of(client: QSuiteClient, process: str) -> int:
    state = {p.process: p for p in client.health().processes}[process]
    assert state.state == "up"
    return int(state.pid)


def kill_and_wait(client: QSuiteClient, process: str) -> None:
    old = pid_of(client, process)
    os.kill(old, signal.SIGKILL)
    wait_until(lambda: pid_of(client, process) != old, 60, f"{process} restarted")


def orders(sandbox: Sandbox) -> dict[str, Any]:
    return {o["client_order_id"]: o for o in ctl(sandbox, "order", "list", "--all")["orders"]}


def test_manual_orders_trade_on_the_live_book_and_survive_kills(sandbox: Sandbox) -> None:
    with running(sandbox, "run", "--headless"), QSuiteClient(sandbox.settings) as client:
        book = wait_until(lambda: ctl(sandbox, "book", "AAA"), 60, "a book that follows the feed")
        ask = Decimal(book["asks"][0][0])
        bid = Decimal(book["bids"][0][0])
        assert bid < ask

        wait_until(
            lambda: (
                "not connected"
                not in {p.process: p for p in client.health().processes}["execution"].detail
            ),
            60,
            "the order manager logged on to the venue",
        )
        took = submit(
            sandbox,
            "desk1",
            "AAA",
            "buy",
            "10",
            "--price",
            str(ask + 1),
            "--id",
            "cli-take",
        )
        assert took["status"] == "pending_new"
        # well below the market makers' ladder, yet inside the risk gate's default 5 %
        # price collar of desk1 (5 below a price near 100 sat on its edge)
        far = bid - Decimal(2)
        submit(
            sandbox,
            "desk1",
            "AAA",
            "buy",
            "7",
            "--price",
            str(far),
            "--id",
            "cli-rest",
        )
        wait_until(lambda: orders(sandbox)["cli-take"]["status"] == "filled", 30, "a fill")
        wait_until(lambda: orders(sandbox)["cli-rest"]["status"] == "accepted", 30, "resting")
        refused = ctl(
            sandbox, "order", "submit", "desk1", "AAA", "buy", "0", "--price", "1", ok=False
        )
        assert refused.returncode != 0 and "qty" in refused.stderr.lower()

        def position() -> Decimal:
            rows = ctl(sandbox, "positions", "--account", "desk1")["positions"]
            return sum((Decimal(r["qty"]) for r in rows if r["symbol"] == "AAA"), Decimal(0))

        wait_until(lambda: position() == 10, 30, "the position")

        kill_and_wait(client, "venue")
        kill_and_wait(client, "execution")
        rest = wait_until(lambda: orders(sandbox)["cli-rest"], 60, "orders after the kills")
        assert rest["status"] == "accepted" and Decimal(rest["filled_qty"]) == 0
        assert orders(sandbox)["cli-take"]["status"] == "filled"
        assert position() == 10  # no fill applied twice
        restored = wait_until(
            lambda: [
                lvl
                for lvl in ctl(sandbox, "book", "AAA", "--depth", "100")["bids"]
                if Decimal(lvl[0]) == far
            ],
            30,
            "the resting order back in the restarted venue's book",
        )
        assert Decimal(restored[0][1]) >= 7

        wait_until(
            lambda: (
                "not connected"
                not in {p.process: p for p in client.health().processes}["execution"].detail
            ),
            60,
            "the order manager logged on again",
        )
        ctl(sandbox, "order", "cancel", "cli-rest")
        wait_until(lambda: orders(sandbox)["cli-rest"]["status"] == "cancelled", 30, "cancel")

        def depth(book: Any) -> Decimal:
            return sum((Decimal(q) for _, q in book["bids"] + book["asks"]), Decimal(0))

        def gap(book: Any) -> Decimal:
            return Decimal(book["bids"][0][0]) - Decimal(book["bids"][1][0])

        # The restarted venue's market makers quote again around the feed's cached quote
        # or, failing that, on its next quote (a trade print, about every 5 s in a calm
        # market), so the calm book to compare with is the one with their ladder back;
        # read right after the restart it can be empty, and nothing is thinner than empty.
        calm = wait_until(
            lambda: (
                (b := ctl(sandbox, "book", "AAA"))
                and len(b["bids"]) >= 2
                and len(b["asks"]) >= 2
                and b
            ),
            90,
            "the market makers' ladder back after the venue restart",
        )
        ctl(sandbox, "scenario", "illiquid")
        thin = wait_until(
            lambda: (
                (b := ctl(sandbox, "book", "AAA"))
                and len(b["bids"]) >= 2
                and depth(b) < depth(calm) / 4
                and b
            ),
            30,
            "a thinner book in the illiquid scenario",
        )
        assert gap(thin) > gap(calm)

        halted = ctl(sandbox, "halt", "AAA", "--reason", "test")
        assert halted["halted"] and halted["symbols"] == ["AAA"]
        submit(
            sandbox,
            "desk1",
            "AAA",
            "buy",
            "1",
            "--price",
            str(far),
            "--id",
            "cli-halted",
        )
        wait_until(lambda: orders(sandbox)["cli-halted"]["status"] == "rejected", 30, "refused")
        assert orders(sandbox)["cli-halted"]["reason"] == "halted"
        ctl(sandbox, "halt", "AAA", "--resume")
