"""Execution algorithms through the real processes: a TWAP started over the control
plane works the live simulated book, its progress is on the bus, the execution process
is killed (-9) mid-run and the restarted one finishes it without a duplicate child or
an overfill; an iceberg is paused, resumed, modified and cancelled; TCA at the end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from decimal import Decimal
from typing import Any

import pytest
import zmq
from harness import Sandbox, clean_env, running, wait_until

from app.client import QSuiteClient
from engine.bus import topics
from engine.bus.commands.algos import (
    CancelAlgo,
    GetAlgoTca,
    ModifyAlgo,
    PauseAlgo,
    ResumeAlgo,
    ShowAlgo,
    StartAlgo,
)
from engine.bus.commands.orders import GetPositions
from engine.bus.commands.risk import SetRiskProfile
from engine.bus.commands.venue import GetBook
from engine.bus.events import AlgoProgress
from engine.bus.subscriber import Subscriber

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]

ACCOUNT = "algo1"


def execution(client: QSuiteClient) -> Any:
    return {p.process: p for p in client.health().processes}["execution"]


def logged_on(client: QSuiteClient) -> bool:
    state = execution(client)
    return state.state == "up" and "not connected" not in state.detail


def show(client: QSuiteClient, algo_id: str) -> Any:
    return client.send(ShowAlgo(algo_id=algo_id))


def test_twap_survives_kill_9_and_iceberg_is_controlled(sandbox: Sandbox) -> None:
    with (
        running(sandbox, "run", "--headless"),
        QSuiteClient(sandbox.settings, role="admin") as client,
    ):
        wait_until(lambda: client.send(GetBook(symbol="AAA")).asks, 60, "a book")
        wait_until(lambda: logged_on(client), 60, "the order manager on the venue")
        client.send(
            SetRiskProfile(account=ACCOUNT, changes={"max_participation": "none"}, actor="t")
        )
        ctx = zmq.Context()
        try:
            with Subscriber(ctx, sandbox.settings.bus.xpub, [topics.ALGOS], hwm=10_000) as sub:
                twap = wait_until(
                    lambda: client.send(
                        StartAlgo(
                            algo_type="twap",
                            account=ACCOUNT,
                            symbol="AAA",
                            side="buy",
                            qty=Decimal(600),
                            params='{"duration_s": 40, "slices": 8, "aggressiveness": "cross"}',
                            command_id="it-twap",
                        )
                    ),
                    30,
                    "the TWAP started (the gate needs a fresh reference price)",
                )
                wait_until(lambda: show(client, twap.algo_id).algo.filled >= 150, 60, "fills")
                old_pid = int(execution(client).pid)

                os.kill(old_pid, signal.SIGKILL)

                wait_until(lambda: int(execution(client).pid) != old_pid, 60, "a restart")
                done = wait_until(
                    lambda: (d := show(client, twap.algo_id)).algo.state == "completed" and d,
                    120,
                    "the TWAP finished after the restart",
                )
                progress = drain(sub, AlgoProgress)
        finally:
            ctx.term()

        assert done.algo.filled == 600
        ids = [c.client_order_id for c in done.children]
        assert len(ids) == len(set(ids)) and sum(c.filled_qty for c in done.children) == 600
        assert all(c.status in ("filled", "cancelled", "rejected") for c in done.children)
        (position,) = client.send(GetPositions(account=ACCOUNT)).positions
        assert position.qty == 600  # no child filled twice, none lost
        assert any(p.algo_id == twap.algo_id and p.filled > 0 for p in progress)
        tca = client.send(GetAlgoTca(algo_id=twap.algo_id))
        assert tca.final and tca.fill_rate == 1.0 and tca.arrival_price is not None

        wait_until(lambda: logged_on(client), 60, "the order manager back on the venue")
        bid = Decimal(client.send(GetBook(symbol="AAA")).bids[0][0])
        ice = client.send(
            StartAlgo(
                algo_type="iceberg",
                account=ACCOUNT,
                symbol="AAA",
                side="buy",
                qty=Decimal(300),
                params=f'{{"display_qty": "20", "limit_price": "{bid - 1}"}}',
                command_id="it-ice",
            )
        )
        wait_until(lambda: show(client, ice.algo_id).algo.working == 20, 30, "one child shown")
        assert client.send(PauseAlgo(algo_id=ice.algo_id, reason="check")).state == "paused"
        wait_until(lambda: show(client, ice.algo_id).algo.working == 0, 30, "children cancelled")
        assert client.send(ResumeAlgo(algo_id=ice.algo_id)).state == "running"
        modified = client.send(ModifyAlgo(algo_id=ice.algo_id, params='{"display_qty": "30"}'))
        assert '"display_qty":"30"' in modified.params
        wait_until(lambda: show(client, ice.algo_id).algo.working == 30, 30, "the new display")
        assert client.send(CancelAlgo(algo_id=ice.algo_id)).state == "cancelled"
        tca = ctl(sandbox, "algo", "tca", twap.algo_id)
        assert tca["final"] and Decimal(tca["filled"]) == 600
        started = ctl(
            sandbox, "algo", "start", "sniper", ACCOUNT, "AAA", "buy", "50",
            "--set", f"limit_price={bid - 3}", "--set", "expire_after_s=600",
        )  # fmt: skip
        assert started["state"] == "running" and started["algo_type"] == "sniper"
        assert ctl(sandbox, "algo", "cancel", started["algo_id"])["state"] == "cancelled"
        listed = ctl(sandbox, "algo", "list")["algos"]
        assert {a["algo_id"] for a in listed} >= {twap.algo_id, ice.algo_id, started["algo_id"]}
        wait_until(
            lambda: all(c.status != "accepted" for c in show(client, ice.algo_id).children),
            30,
            "the iceberg's children cancelled",
        )


def drain(sub: Subscriber, kind: type) -> list[Any]:
    seen, deadline = [], time.monotonic() + 5
    while time.monotonic() < deadline:
        message = sub.recv(timeout_ms=200)
        if message is None:
            break
        if isinstance(message[1], kind):
            seen.append(message[1])
    return seen


def ctl(sandbox: Sandbox, *args: str) -> Any:
    out = subprocess.run(
        sandbox.command("ctl", *args, "--json"),
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
    )
    assert out.returncode == 0, f"ctl {' '.join(args)}: {out.stderr}"
    return json.loads(out.stdout)
