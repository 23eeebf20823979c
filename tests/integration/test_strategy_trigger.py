"""A custom strategy end to end through the bus: defined over the control plane on the
running system, a ``SignalRaised`` published on the bus starts its algorithm in the
execution process (once, however often the same signal arrives) and an
``AlgorithmTriggered`` goes out on ``exec.trigger.<strategy>``."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import pytest
import zmq
from harness import Sandbox, running, wait_until

from app.client import QSuiteClient
from engine.bus import codec, topics
from engine.bus.commands.algos import AlgoView, ListAlgos, ListStrategies, SetStrategy
from engine.bus.commands.venue import GetBook
from engine.bus.events import AlgorithmTriggered, Event, SignalRaised
from engine.bus.subscriber import Subscriber, wait_for_subscription

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(240)]
SYMBOL = "AAA"
SIGNAL_ID = "analysis:itest:1"
RULE = "itest_cross"
"""A rule the analysis process does not have: only the test's signal can trigger."""


def by_strategy(client: QSuiteClient, name: str) -> list[AlgoView]:
    algos = client.send(ListAlgos(limit=100)).algos  # type: ignore[attr-defined]
    return [a for a in algos if a.strategy == name]


def test_signal_on_the_bus_starts_the_strategys_algorithm_once(sandbox: Sandbox) -> None:
    ctx: zmq.Context[Any] = zmq.Context()
    pub = ctx.socket(zmq.PUB)  # raw: the same signal (one event id) can be sent again
    pub.linger = 0
    subscriber = Subscriber(ctx, sandbox.settings.bus.xpub, ["exec.trigger"], hwm=10_000)

    def send(topic: str, event: Event) -> None:
        pub.send_multipart([topics.to_wire(topic), codec.encode(event)])

    try:
        pub.connect(sandbox.settings.bus.xsub)
        with running(sandbox, "run", "--headless"), QSuiteClient(sandbox.settings) as client:
            wait_until(
                lambda: client.send(GetBook(symbol=SYMBOL)).bids,  # type: ignore[attr-defined]
                60,
                "a book that follows the feed",
            )
            wait_until(
                lambda: (
                    "not connected"
                    not in {p.process: p for p in client.health().processes}["execution"].detail
                ),
                60,
                "the order manager logged on to the venue",
            )
            view = client.send(
                SetStrategy(
                    name="itest_dip",
                    signal_rule=RULE,
                    symbol=SYMBOL,
                    condition='{"kind": "oversold_entry", "min_strength": 0.5}',
                    algo_type="twap",
                    algo_params='{"duration_s": 30, "slices": 2}',
                    account="desk1",
                    side="buy",
                    qty=Decimal(4),
                    max_triggers_per_day=5,  # only the event id keeps it to one start
                    command_id="itest-set",
                )
            )
            assert view.name == "itest_dip"  # type: ignore[attr-defined]
            wait_for_subscription(send, subscriber, timeout_s=20)

            now = time.time_ns()
            signal = SignalRaised(
                event_id=SIGNAL_ID,
                source="analysis",
                ts_event=now,
                symbol=SYMBOL,
                interval="1m",
                ts=now - now % (60 * 10**9),
                rule=RULE,
                kind="oversold_entry",
                indicator="rsi_14",
                strength=0.8,
            )
            seen: list[AlgorithmTriggered] = []

            def started() -> list[AlgoView]:
                send(topics.signal(RULE, SYMBOL), signal)  # until it got through
                while (message := subscriber.recv(timeout_ms=50)) is not None:
                    if isinstance(message[1], AlgorithmTriggered):
                        seen.append(message[1])
                return by_strategy(client, "itest_dip")

            (algo,) = wait_until(started, 30, "the strategy's algorithm started", every_s=0.3)
            for _ in range(5):  # the same signal again: no second start
                send(topics.signal(RULE, SYMBOL), signal)
            deadline = time.monotonic() + 3
            while (left := deadline - time.monotonic()) > 0:
                message = subscriber.recv(timeout_ms=max(1, int(left * 1000)))
                if message is not None and isinstance(message[1], AlgorithmTriggered):
                    seen.append(message[1])

            assert (algo.algo_type, algo.account, algo.symbol, algo.qty) == (
                "twap",
                "desk1",
                SYMBOL,
                4,
            )
            assert len(by_strategy(client, "itest_dip")) == 1
            assert [(e.strategy, e.algo_id, e.signal_event_id) for e in seen] == [
                ("itest_dip", algo.algo_id, SIGNAL_ID)
            ]
            assert seen[0].source == "execution" and seen[0].signal_rule == RULE
            (listed,) = client.send(ListStrategies()).strategies  # type: ignore[attr-defined]
            assert listed.triggers_today == 1 and listed.last_triggered_ns is not None
    finally:
        subscriber.close()
        pub.close(linger=0)
        ctx.term()
