"""Market data through real processes: offline degradation, queries, scenario, jobs, backfill."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
import zmq
from harness import REPO, Sandbox, clean_env, running, wait_until

from app.client import QSuiteClient
from app.database import make_engine
from engine.bus import topics
from engine.bus.commands.market import GetFeedStatus, GetQuotes
from engine.bus.events import QuoteUpdated
from engine.bus.subscriber import Subscriber
from engine.persistence.bars import count_bars
from feeds.cache import PriceCache
from feeds.replay import ReplaySource

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]
FIXTURES = REPO / "tests" / "fixtures"


def _ctl(sandbox: Sandbox, *args: str) -> dict:
    out = subprocess.run(
        sandbox.command("ctl", *args, "--json"),
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.fixture
def offline(tmp_path: Path):
    box = Sandbox(
        tmp_path / "qsuite",
        extra={
            "feed": {
                "source": "yahoo",
                "poll_interval_s": 1.0,
                "breaker_failure_threshold": 2,
                "breaker_cool_down_s": 2.0,
                "request_timeout_s": 2.0,
            }
        },
    )
    yield box
    box.cleanup()


def test_feed_when_yahoo_unreachable_then_simulated_market_flagged_and_breaker_open(
    offline: Sandbox,
) -> None:
    with running(offline, "run", "--headless"), QSuiteClient(offline.settings) as client:

        def feed_state() -> tuple[str, str]:
            feed = {p.process: p for p in client.health().processes}["feed"]
            return feed.state, feed.detail

        _, detail = wait_until(
            lambda: (s := feed_state())[0] == "degraded" and "unreachable" in s[1] and s,
            60,
            "feed degraded because Yahoo is unreachable",
        )
        assert detail.startswith("SIMULATED:") and "simulated market" in detail
        check = subprocess.run(
            offline.command("health"), capture_output=True, text=True, env=clean_env(), timeout=30
        )
        assert (check.returncode, check.stdout.strip()) == (0, "DEGRADED")  # degraded still serves

        status = wait_until(
            lambda: (s := client.send(GetFeedStatus())).breaker == "open" and s,
            30,
            "Yahoo breaker open",
        )
        assert status.mode == "simulated" and "yahoo" in status.reason.lower()

        # another process on the bus sees moving, flagged prices
        ctx = zmq.Context()
        try:
            with Subscriber(ctx, offline.settings.bus.xpub, [topics.QUOTES], hwm=1000) as sub:
                # a quote comes with each synthetic trade: ~12 a minute a symbol, Poisson
                deadline = time.monotonic() + 45
                seen: list[QuoteUpdated] = []
                while time.monotonic() < deadline and len(seen) < 3:
                    message = sub.recv(timeout_ms=500)
                    if message is not None and isinstance(message[1], QuoteUpdated):
                        seen.append(message[1])
        finally:
            ctx.term()
        assert len(seen) >= 3 and all(q.simulated and q.origin == "synthetic" for q in seen)

        # the price cache is shared: this process reads what the feed wrote
        cache = PriceCache(offline.settings.price_cache_path, size_limit=None)
        try:
            quote = wait_until(lambda: cache.latest_quote("AAA"), 30, "AAA in the shared cache")
            assert quote.simulated
        finally:
            cache.close()
        snapshot = client.send(GetQuotes(symbols=["AAA", "NOPE"]))
        assert [q.symbol for q in snapshot.quotes] == ["AAA"] and snapshot.missing == ["NOPE"]
        assert snapshot.quotes[0].mode == "simulated"


def test_ctl_market_verbs_when_synthetic_market_runs_then_answer(sandbox: Sandbox) -> None:
    with running(sandbox, "run", "--headless"), QSuiteClient(sandbox.settings) as client:
        wait_until(lambda: client.ping("feed"), 60, "feed up")
        bars = wait_until(
            lambda: (
                (b := _ctl(sandbox, "bars", "AAA", "--interval", "1m", "--limit", "20"))["ts"] and b
            ),
            30,
            "simulated history",
        )
        assert len(bars["ts"]) == 20 and bars["ts"] == sorted(bars["ts"])
        assert all(s == "synthetic" for s in bars["source"])

        feed = _ctl(sandbox, "feed")
        assert feed["mode"] == "simulated" and feed["watchlist"] == ["AAA", "BBB.L"]

        switched = _ctl(sandbox, "scenario", "volatile")
        assert (switched["previous"], switched["current"]) == ("calm", "volatile")
        assert _ctl(sandbox, "feed")["scenario"] == "volatile"

        jobs = {j["id"]: j for j in _ctl(sandbox, "jobs")["jobs"]}
        assert {"backfill", "fundamentals", "gap_repair"} <= set(jobs)
        started = _ctl(sandbox, "jobs", "run", "backfill")
        assert started["job"] == "backfill"
        wait_until(
            lambda: any(
                r["job"] == "backfill" and r["status"] == "ok"
                for r in _ctl(sandbox, "ingestion")["runs"]
            ),
            60,
            "the backfill job logged ok",
        )

        refused = subprocess.run(
            sandbox.command("ctl", "bars", "AAA", "--limit", "0"),
            capture_output=True,
            text=True,
            env=clean_env(),
        )
        assert refused.returncode == 4
        assert "(invalid)" in refused.stderr and "limit" in refused.stderr


def test_backfill_cli_when_csv_run_three_times_then_no_duplicates(sandbox: Sandbox) -> None:
    def backfill() -> dict:
        out = subprocess.run(
            sandbox.command(
                "backfill",
                "AAPL",
                "--source",
                "replay",
                "--file",
                str(FIXTURES / "replay" / "aapl.csv"),
                "--interval",
                "1d",
                "--start",
                "2024-01-01",
                "--end",
                "2024-02-01",
                "--json",
            ),
            capture_output=True,
            text=True,
            env=clean_env(),
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    first = backfill()
    assert first["status"] == "ok" and first["rows"] == 7
    engine = make_engine(sandbox.settings)
    try:
        assert count_bars(engine, "AAPL", "1d") == 7
        for _ in range(2):
            again = backfill()
            assert again["status"] == "ok" and again["rows"] == 0
        assert count_bars(engine, "AAPL", "1d") == 7
    finally:
        engine.dispose()

    wrong = subprocess.run(
        sandbox.command(
            "backfill",
            "AAPL",
            "--source",
            "replay",
            "--file",
            "/nonexistent.csv",
            "--start",
            "2024-01-01",
        ),
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
    )
    assert wrong.returncode != 0 and "does not exist" in wrong.stderr


def test_feed_when_replaying_a_file_then_bars_reach_the_bus_and_the_store(tmp_path: Path) -> None:
    box = Sandbox(
        tmp_path / "qsuite",
        extra={
            "feed": {
                "source": "replay",
                "replay_file": str(FIXTURES / "replay" / "multi_1m.csv"),
                "replay_speed": 30.0,  # a recorded minute every two seconds
                "watchlist": ["AAA", "BBB"],
            }
        },
    )
    try:
        ctx = zmq.Context()
        sub = Subscriber(ctx, box.settings.bus.xpub, [topics.BARS], hwm=1000)
        try:
            with running(box, "run", "--headless"), QSuiteClient(box.settings) as client:
                status = wait_until(lambda: client.send(GetFeedStatus()), 60, "feed up")
                assert status.mode in ("delayed", "cached")
                seen = []
                deadline = time.monotonic() + 40
                while time.monotonic() < deadline and len(seen) < 3:
                    message = sub.recv(timeout_ms=500)
                    if message is not None:
                        seen.append(message[1])
                assert len(seen) >= 3 and all(
                    b.origin == "replay" and not b.simulated for b in seen
                )
                assert [b.ts for b in seen if b.symbol == "AAA"] == sorted(
                    b.ts for b in seen if b.symbol == "AAA"
                )
                done = wait_until(
                    lambda: (s := client.send(GetFeedStatus())).mode == "cached" and s,
                    60,
                    "replay finished",
                )
                assert "replay finished" in done.reason
                bars = _ctl(box, "bars", "AAA", "--interval", "1m", "--limit", "100")
                expected = ReplaySource(FIXTURES / "replay" / "multi_1m.csv", interval="1m")
                assert (
                    bars["ts"] == expected.results["AAA"].bars["ts"].tolist()
                )  # garbage rows dropped
                assert set(bars["source"]) == {"replay"}
        finally:
            sub.close()
            ctx.term()
    finally:
        box.cleanup()
