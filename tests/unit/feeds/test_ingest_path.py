"""The one ingest path: what is stored, logged, cached and published for a raw frame."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from app import database
from app.settings import load_settings
from engine.bus.events import BarClosed, Event, GapDetected
from engine.clock import FakeClock
from engine.persistence.bars import count_bars
from feeds.cache import PriceCache
from feeds.gaps import GapQueue
from feeds.ingest import Ingestor
from feeds.mdlog import MarketDataLog, read_all

MIN = 60 * 1_000_000_000
T0 = 1_700_000_040 * 1_000_000_000 // MIN * MIN


@pytest.fixture
def ingestor(tmp_path: Path) -> Iterator[Ingestor]:
    clock = FakeClock(T0 + 7 * MIN + 30 * 1_000_000_000)  # minute 7 is still forming
    engine = database.open_database(load_settings(environ={"QSUITE__APP__DATA_DIR": str(tmp_path)}))
    log = MarketDataLog(tmp_path / "mdlog", "test", clock=clock)
    cache = PriceCache(tmp_path / "cache", clock=clock)
    yield Ingestor(engine, log, cache=cache, gaps=GapQueue(tmp_path / "gaps"), clock=clock)
    log.close()
    cache.close()
    engine.dispose()


def frame(minutes: list[int]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ts": [T0 + m * MIN for m in minutes],
            "open": 10.0,
            "high": 11.0,
            "low": 9.0,
            "close": 10.5,
            "volume": 5.0,
        }
    )


def test_ingest_when_live_then_new_closed_bars_published_once_and_gaps_announced_once(
    ingestor: Ingestor, tmp_path: Path
) -> None:
    published: list[tuple[str, Event]] = []

    def publish(topic: str, event: Event) -> Event:
        published.append((topic, event))
        return event

    raw = frame([0, 1, 2, 5, 6, 7])  # minutes 3-4 missing; minute 7 is still forming
    report = ingestor.ingest(
        raw, symbol="AAA", interval="1m", origin="yahoo", publish=publish, continuous=True
    )
    again = ingestor.ingest(
        raw, symbol="AAA", interval="1m", origin="yahoo", publish=publish, continuous=True
    )

    bars = [e for _, e in published if isinstance(e, BarClosed)]
    assert [b.ts for b in bars] == [T0 + m * MIN for m in (0, 1, 2, 5, 6)]  # once, closed only
    gaps = [e for _, e in published if isinstance(e, GapDetected)]
    assert [(g.start, g.end, g.missing) for g in gaps] == [(T0 + 3 * MIN, T0 + 5 * MIN, 2)]
    assert (report.written, again.written, again.published) == (5, 0, 0)
    assert count_bars(ingestor.engine, "AAA", "1m") == 5
    assert len(ingestor.gaps or []) == 1
    latest = ingestor.cache.latest_bar("AAA", "1m") if ingestor.cache else None
    assert latest is not None and latest.ts == T0 + 6 * MIN
    ingestor.log.sync()
    assert sum(1 for e in read_all(tmp_path / "mdlog") if isinstance(e, BarClosed)) == 10
