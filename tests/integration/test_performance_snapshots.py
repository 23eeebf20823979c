"""The ``analytics_snapshot`` job on a real SQLite file and a real PostgreSQL schema:
marks from a real price cache, snapshots written once per (account, time), read back
exactly, the account's performance over them, migration 0007 that holds them; and the
whole system: a trade, the job run from the CLI, ``qsuite ctl performance``."""

from __future__ import annotations

import json
import subprocess
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest_db import db_fixture, migrated_fixture  # noqa: F401  (fixtures)
from harness import Sandbox, clean_env, running, wait_until
from ledger_fills import T0, trade
from sqlalchemy import Engine, func, inspect, select

from app.database import current_revision, downgrade, head_revision, upgrade
from engine.analytics.snapshots import account_report, load_snapshots
from engine.bus.commands.analytics import GetPerformance
from engine.clock import FakeClock
from engine.orders.ledger import OrderLedger
from engine.persistence.models import PerformanceSnapshot
from engine.sync.performance import cache_marks, snapshot_performance
from feeds.cache import PriceCache
from feeds.schema import Quote

pytestmark = pytest.mark.integration

D = Decimal
MINUTE = 60 * 1_000_000_000


def quote(symbol: str, price: float, ts: int) -> Quote:
    return Quote(symbol=symbol, ts=ts, bid=price, ask=price, last=price, origin="yahoo")


def stored_rows(db: Engine) -> int:
    with db.connect() as conn:
        return conn.execute(select(func.count()).select_from(PerformanceSnapshot)).scalar_one()


def test_snapshot_job_when_run_over_time_then_exact_rows_and_performance(
    migrated: Engine, tmp_path: Path
) -> None:
    clock = FakeClock(T0)
    ledger = OrderLedger(migrated, fee_of=lambda f: D("0.25"))
    trade(ledger, "acme", "AAPL", "buy", "7", "100")
    trade(ledger, "acme", "MSFT", "sell", "3", "250.5")
    trade(ledger, "desk2", "AAPL", "buy", "1", "99")
    trade(ledger, "desk2", "AAPL", "sell", "1", "100")  # flat: realized only
    outcomes = []
    with PriceCache(tmp_path / "price-cache", clock=clock) as cache:
        marks = cache_marks(cache)
        for minute, (aapl, msft) in enumerate([(101.1234567891, 250.0), (99.0, 251.5)]):
            cache.put_quotes([quote("AAPL", aapl, clock.time_ns()), quote("MSFT", msft, T0)])
            outcomes.append(snapshot_performance(migrated, marks, clock=clock))
            if minute == 0:
                outcomes.append(snapshot_performance(migrated, marks, clock=clock))  # same tick
            clock.advance(60)

    assert [(o.status, o.rows, o.error) for o in outcomes] == [
        ("ok", 2, None),
        ("ok", 0, None),  # that (account, ts) is stored: nothing written again
        ("ok", 2, None),
    ]
    assert stored_rows(migrated) == 4
    acme = load_snapshots(migrated, "acme")
    # unrealized: AAPL 7 * (101.1234567891 - 100), MSFT -3 * (250 - 250.5); 2 fees
    assert [
        (s.ts, s.realized_pnl, s.unrealized_pnl, s.total_pnl, s.gross_exposure, s.net_exposure)
        for s in acme
    ] == [
        (T0, D("-0.5"), D("9.3641975237"), D("8.8641975237"), D("1457.8641975237"),
         D("-42.1358024763")),
        (T0 + MINUTE, D("-0.5"), D("-10"), D("-10.5"), D("1447.5"), D("-61.5")),
    ]  # fmt: skip
    assert {(s.positions, s.fills, s.marks_missing) for s in acme} == {(2, 2, 0)}
    (desk2, _) = load_snapshots(migrated, "desk2")
    assert (desk2.realized_pnl, desk2.total_pnl, desk2.positions, desk2.fills) == (
        D("0.5"),
        D("0.5"),
        0,
        2,
    )

    report = account_report(migrated, GetPerformance(account="acme", capital=D(100_000)))

    assert report.snapshots == acme and report.performance is not None
    assert report.performance.pnl == D("-19.3641975237")
    assert report.performance.final_equity == 100_000 - 10.5
    assert report.performance.max_drawdown == pytest.approx(
        1 - (100_000 - 10.5) / (100_000 + 8.8641975237), rel=1e-12
    )


def test_snapshot_job_when_price_cache_has_no_quote_then_partial_with_rows_stored(
    migrated: Engine, tmp_path: Path
) -> None:
    trade(OrderLedger(migrated), "acme", "AAPL", "buy", "5", "100")

    with PriceCache(tmp_path / "price-cache") as cache:
        outcome = snapshot_performance(migrated, cache_marks(cache), clock=FakeClock(T0))

    assert (outcome.status, outcome.rows) == ("partial", 1)
    assert outcome.error == "no mark for 1 open position(s) (AAPL); their P&L is left out"
    (snapshot,) = load_snapshots(migrated, "acme")
    assert (snapshot.unrealized_pnl, snapshot.gross_exposure, snapshot.marks_missing) == (
        D(0),
        D(0),
        1,
    )


def test_migration_0007_when_downgraded_then_table_gone_and_upgrade_restores_it(
    migrated: Engine,
) -> None:
    assert head_revision() == "0007" == current_revision(migrated)

    downgrade(migrated, "0006")
    assert "performance_snapshots" not in inspect(migrated).get_table_names()

    upgrade(migrated)
    assert current_revision(migrated) == "0007"
    indexes = inspect(migrated).get_indexes("performance_snapshots")
    assert [(i["name"], i["column_names"], bool(i["unique"])) for i in indexes] == [
        ("ix_performance_snapshots_account_ts", ["account", "ts"], True)
    ]


# --- the whole system -------------------------------------------------------------------


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


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_performance_when_system_trades_then_job_snapshots_and_ctl_shows_it(
    sandbox: Sandbox,
) -> None:
    with running(sandbox, "run", "--headless"):
        book = wait_until(lambda: ctl(sandbox, "book", "AAA"), 60, "a book that follows the feed")
        jobs = {job["id"]: job for job in ctl(sandbox, "jobs")["jobs"]}
        assert jobs["analytics_snapshot"]["trigger"] == "interval[0:05:00]"
        ask = Decimal(book["asks"][0][0])
        wait_until(
            lambda: ctl(sandbox, "order", "submit", "desk1", "AAA", "buy", "10", "--price",
                        str(ask + 1), "--id", "perf-take")["status"] == "pending_new",
            60,
            "the order manager to take the order",
        )  # fmt: skip
        wait_until(
            lambda: ctl(sandbox, "positions", "--account", "desk1")["positions"], 30, "a position"
        )

        def snapshots(n: int) -> list[dict[str, Any]]:
            ctl(sandbox, "jobs", "run", "analytics_snapshot")
            rows = wait_until(
                lambda: len(got := ctl(sandbox, "performance", "desk1")["snapshots"]) >= n and got,
                30,
                f"snapshot {n}",
            )
            return list(rows)

        snapshots(1)
        time.sleep(0.01)  # the next run is stamped later
        rows = snapshots(2)
        report = ctl(sandbox, "performance", "desk1", "--capital", "50000")

    assert {(r["positions"], r["fills"], r["marks_missing"]) for r in rows} == {(1, 1, 0)}
    assert all(Decimal(r["gross_exposure"]) > 0 for r in rows)  # marked from the price cache
    assert report["capital"] == "50000" and report["performance"]["points"] == len(rows)
