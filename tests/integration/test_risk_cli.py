"""The kill switch end to end, as an operator pulls it: `qsuite ctl risk halt` against the
running system cancels every working order within a second and blocks new ones; the
resume needs the admin role and a reason, and both are audited and alerted."""

from __future__ import annotations

import json
import subprocess
import time
from decimal import Decimal
from typing import Any

import pytest
from harness import Sandbox, clean_env, running, wait_until

from app.client import QSuiteClient
from engine.bus.commands.orders import ListOrders
from engine.bus.commands.risk import HaltTrading

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(240)]


def ctl(sandbox: Sandbox, *args: str, ok: bool = True, role: str = "admin") -> Any:
    out = subprocess.run(
        sandbox.command("--role", role, "--actor", "ops", "ctl", *args, "--json"),
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
    )
    if ok:
        assert out.returncode == 0, f"ctl {' '.join(args)}: {out.stderr}"
        return json.loads(out.stdout)
    return out


def statuses(client: QSuiteClient) -> dict[str, str]:
    listed = client.send(ListOrders(account="desk1", open_only=False, limit=100))
    return {o.client_order_id: o.status for o in listed.orders}


def test_kill_switch_cancels_everything_within_a_second_and_resume_needs_admin(
    sandbox: Sandbox,
) -> None:
    with running(sandbox, "run", "--headless"), QSuiteClient(sandbox.settings) as client:
        book = wait_until(lambda: ctl(sandbox, "book", "AAA"), 60, "a book that follows the feed")
        bid = Decimal(book["bids"][0][0])
        wait_until(
            lambda: (
                "not connected"
                not in {p.process: p for p in client.health().processes}["execution"].detail
            ),
            60,
            "the order manager logged on to the venue",
        )
        resting = [f"rest-{n}" for n in range(3)]
        for n, cid in enumerate(resting):
            price = (bid * Decimal("0.99") - n).quantize(Decimal("0.01"))
            ctl(sandbox, "order", "submit", "desk1", "AAA", "buy", "5", "--price", str(price),
                "--id", cid)  # fmt: skip
        wait_until(
            lambda: all(statuses(client).get(cid) == "accepted" for cid in resting),
            30,
            "the orders resting at the venue",
        )

        started = time.monotonic()
        halted = client.send(HaltTrading(reason="drill", actor="ops"))
        wait_until(
            lambda: all(statuses(client)[cid] == "cancelled" for cid in resting),
            5,
            "every working order cancelled",
            every_s=0.02,
        )
        elapsed = time.monotonic() - started

        assert sorted(halted.cancels) == resting
        assert elapsed < 1.0, f"the kill switch took {elapsed:.2f} s"
        denied = ctl(sandbox, "order", "submit", "desk1", "AAA", "buy", "1", "--price",
                     str(bid - 1), ok=False)  # fmt: skip
        assert denied.returncode != 0
        assert "halted" in denied.stderr and "drill" in denied.stderr
        status = ctl(sandbox, "risk", "status")
        assert [(h["scope"], h["actor"], h["reason"]) for h in status["halts"]] == [
            ("global", "ops", "drill")
        ]
        forbidden = ctl(sandbox, "risk", "resume", "--reason", "over", ok=False, role="operator")
        assert forbidden.returncode != 0 and "forbidden" in forbidden.stderr.lower()

        resumed = ctl(sandbox, "risk", "resume", "--reason", "drill over")

        assert resumed["changed"] and resumed["state"] == "ACTIVE"
        ctl(sandbox, "order", "submit", "desk1", "AAA", "buy", "1", "--price", str(bid - 1),
            "--id", "after")  # fmt: skip
        wait_until(lambda: statuses(client).get("after") == "accepted", 30, "trading again")
        assert ctl(sandbox, "risk", "status")["halts"] == []
        kinds = {a["kind"] for a in ctl(sandbox, "risk", "alerts")["alerts"]}
        assert {"risk.kill_switch", "risk.resumed"} <= kinds
