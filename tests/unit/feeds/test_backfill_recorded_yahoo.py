"""A backfill from recorded Yahoo answers, through the real yfinance code and the whole
ingest path: run three times, stored once; the ingestion log tells each run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from test_yahoo_source import Env, fixture_bars, fresh_yfinance, no_network, ns  # noqa: F401

from app import database
from app.settings import load_settings
from engine.persistence.bars import count_bars, load_bars
from engine.persistence.ingestion import recent_runs
from feeds.backfill import run_backfill
from feeds.gaps import GapQueue
from feeds.ingest import Ingestor
from feeds.mdlog import MarketDataLog, read_all


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = Env(tmp_path / "yahoo")
    e.fake.chart("AAPL", "chart_AAPL_1d_2020-08.json", range1d="chart_AAPL_range1d.json")
    yield e
    e.source.close()


@pytest.fixture
def ingestor(tmp_path: Path, env: Env) -> Iterator[Ingestor]:
    settings = load_settings(environ={"QSUITE__APP__DATA_DIR": str(tmp_path / "data")})
    engine = database.open_database(settings)
    log = MarketDataLog(tmp_path / "mdlog", "test", clock=env.clock)
    yield Ingestor(engine, log, gaps=GapQueue(tmp_path / "gaps"), clock=env.clock)
    log.close()
    engine.dispose()


def test_backfill_when_recorded_yahoo_run_three_times_then_every_bar_stored_once(
    env: Env, ingestor: Ingestor, tmp_path: Path
) -> None:
    stamps, quote, _ = fixture_bars("chart_AAPL_1d_2020-08.json")
    start, end = ns(2020, 8, 1), ns(2020, 9, 5)

    summaries = [run_backfill(ingestor, env.source, ["AAPL"], "1d", start, end) for _ in range(3)]

    assert [s.status for s in summaries] == ["ok", "ok", "ok"]
    assert [s.rows for s in summaries] == [len(stamps), 0, 0]
    assert count_bars(ingestor.engine, "AAPL", "1d") == len(stamps)
    stored = load_bars(ingestor.engine, "AAPL", "1d")
    assert [b.close for b in stored] == [float(x) for x in quote["close"]]
    assert all(b.source == "yahoo" for b in stored)
    runs = recent_runs(ingestor.engine, job="backfill")
    assert [(r.status, r.rows, r.source) for r in runs] == [("ok", 0, "yahoo")] * 2 + [
        ("ok", len(stamps), "yahoo")
    ]
    assert all(r.duration_s is not None and r.finished_at is not None for r in runs)
    ingestor.log.sync()
    assert sum(1 for _ in read_all(tmp_path / "mdlog")) == 3 * len(stamps)  # every run is recorded


def test_backfill_when_symbol_unknown_then_logged_and_others_kept(
    env: Env, ingestor: Ingestor
) -> None:
    summary = run_backfill(
        ingestor, env.source, ["AAPL", "TWTR"], "1d", ns(2020, 8, 1), ns(2020, 9, 5)
    )

    assert summary.status == "partial"
    outcomes = {o.symbol: o for o in summary.outcomes}
    assert outcomes["AAPL"].error is None and outcomes["AAPL"].rows > 0
    assert outcomes["TWTR"].error is not None and "TWTR" in outcomes["TWTR"].error
    (run,) = recent_runs(ingestor.engine)
    assert run.status == "partial" and "TWTR" in (run.error or "")
    assert count_bars(ingestor.engine, "TWTR", "1d") == 0
