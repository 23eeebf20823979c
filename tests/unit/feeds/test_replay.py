"""ReplaySource: CSV and Parquet files, header spellings, garbage rows, and paced replay
on a fake clock."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from engine.clock import FakeClock
from engine.persistence.bars import BarRow
from engine.persistence.models.market import BarFlag
from engine.stats import StatsRegistry
from feeds.replay import ReplaySource
from feeds.schema import NS
from feeds.source import MarketSource, SourceDataError, SymbolNotFound

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "replay"
MIN = 60 * NS
T1430 = pd.Timestamp("2024-01-02 14:30", tz="UTC").value
ALL = (0, 2**62)


def source(name: str, **kwargs: object) -> ReplaySource:
    kwargs.setdefault("interval", "1m")
    kwargs.setdefault("stats", StatsRegistry())
    return ReplaySource(FIXTURES / name, **kwargs)  # type: ignore[arg-type]


def write_csv(tmp_path: Path, text: str, name: str = "x.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


class Sleeper:
    """A ``sleep`` that moves the fake clock and remembers every wait."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.clock.advance(seconds)


# -- reading ---------------------------------------------------------------------------


def test_csv_when_yahoo_download_header_then_daily_bars_at_midnight_utc() -> None:
    replay = source("aapl.csv", interval="1d")

    bars = replay.history("AAPL", "1d", *ALL)

    assert replay.symbols == ["AAPL"] and len(bars) == 7
    assert list(bars.columns) == ["ts", "open", "high", "low", "close", "volume", "flags"]
    assert bars["ts"].iloc[0] == pd.Timestamp("2024-01-02", tz="UTC").value
    assert bars.iloc[0][["open", "high", "low", "close", "volume"]].tolist() == [
        187.15, 188.44, 183.89, 185.64, 82488700.0,
    ]  # fmt: skip
    assert replay.results["AAPL"].gaps == []  # the weekend is not a gap


def test_csv_when_adjust_then_prices_scaled_by_adj_close() -> None:
    bars = source("aapl.csv", interval="1d", adjust="adjust").history("AAPL", "1d", *ALL)
    assert bars["close"].iloc[0] == pytest.approx(184.29)
    assert bars["open"].iloc[0] == pytest.approx(187.15 * 184.29 / 185.64)
    assert (bars["flags"] == int(BarFlag.ADJUSTED)).all()


def test_csv_when_multi_symbol_with_garbage_then_counted_never_raised() -> None:
    stats = StatsRegistry()

    replay = source("multi_1m.csv", stats=stats)

    assert replay.symbols == ["AAA", "BBB"]
    aaa, bbb = replay.results["AAA"], replay.results["BBB"]
    assert aaa.rejected == {"bad_ts": 1, "non_finite_price": 1, "negative_volume": 1}
    assert aaa.repaired == {"nan_volume": 1, "out_of_order": 1, "duplicate": 1}
    assert aaa.bars["ts"].tolist() == [T1430, T1430 + MIN, T1430 + 5 * MIN, T1430 + 6 * MIN]
    assert aaa.bars["close"].tolist() == [10.05, 10.11, 10.30, 10.35]  # the later 14:31 row won
    assert aaa.bars["volume"].tolist() == [1200.0, 810.0, 700.0, 0.0]
    assert aaa.gaps == [(T1430 + 2 * MIN, T1430 + 5 * MIN, 3)]
    assert bbb.rejected == {"high_below_low": 1} and len(bbb.bars) == 3
    assert replay.dropped == {"malformed_line": 1, "no_symbol": 1}
    counted = stats.snapshot()
    assert counted["qsuite_feed_rows_rejected_total{reason=malformed_line}"] == 1
    assert counted["qsuite_feed_rows_rejected_total{reason=no_symbol}"] == 1
    assert counted["qsuite_feed_rows_rejected_total{reason=bad_ts}"] == 1


def test_csv_when_symbol_given_then_only_that_symbol_loaded() -> None:
    replay = source("multi_1m.csv", symbol="BBB")
    assert replay.symbols == ["BBB"]
    with pytest.raises(SymbolNotFound, match="AAA"):
        replay.history("AAA", "1m", *ALL)


def test_parquet_when_datetime_index_and_dividends_then_utc_and_flagged() -> None:
    replay = source("msft_5m.parquet", interval="5m")

    bars = replay.history("MSFT", "5m", *ALL)

    first = pd.Timestamp("2024-01-02 14:30", tz="UTC").value
    assert bars["ts"].tolist() == [first + i * 5 * MIN for i in range(6)]
    assert bars["flags"].tolist() == [0, 0, 0, int(BarFlag.CORPORATE_ACTION), 0, 0]
    assert replay.results["MSFT"].rejected == {}


def test_parquet_when_written_with_epoch_millis_then_read(tmp_path: Path) -> None:
    path = tmp_path / "epoch.parquet"
    pd.DataFrame(
        {
            "timestamp": [T1430 // 10**6, (T1430 + MIN) // 10**6],
            "Open": [1.0, 2.0],
            "High": [1.5, 2.5],
            "Low": [0.5, 1.5],
            "Close": [1.2, 2.2],
            "Volume": [10, 20],
        }
    ).to_parquet(path)

    bars = ReplaySource(path, symbol="EPO", interval="1m", stats=StatsRegistry()).history(
        "EPO", "1m", *ALL
    )

    assert bars["ts"].tolist() == [T1430, T1430 + MIN]


@pytest.mark.parametrize(
    "header",
    [
        "Date,Open,High,Low,Close,Adj Close,Volume",
        "Datetime,open,high,low,close,adj_close,volume",
        "timestamp,OPEN,HIGH,LOW,CLOSE,AdjClose,Vol",
        " ts , Open , High , Low , Close , Adjusted Close , Volume ",
        "TIME,Open,High,Low,Close,adj-close,VOLUME",
    ],
)
def test_header_when_common_spelling_then_mapped(tmp_path: Path, header: str) -> None:
    path = write_csv(tmp_path, f"{header}\n2024-01-02 14:30:00,10,11,9,10.5,10.4,100\n")
    replay = ReplaySource(path, symbol="X", interval="1m", stats=StatsRegistry())
    bars = replay.history("X", "1m", *ALL)
    assert bars.iloc[0][["ts", "open", "close", "volume"]].tolist() == [T1430, 10, 10.5, 100]


def test_header_when_volume_missing_then_zero(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "date,open,high,low,close\n2024-01-02 14:30,10,11,9,10.5\n")
    replay = ReplaySource(path, symbol="X", interval="1m", stats=StatsRegistry())
    assert replay.history("X", "1m", *ALL)["volume"].tolist() == [0.0]
    assert replay.results["X"].repaired == {}


def test_header_when_wrong_then_error_names_missing_and_accepted(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "when,o,h,low,close\n2024-01-02,1,2,1,1\n")
    with pytest.raises(SourceDataError) as caught:
        ReplaySource(path, interval="1d", stats=StatsRegistry())
    message = str(caught.value)
    assert "no column for ts, open, high" in message
    assert "Found when, o, h, low, close" in message
    assert "ts: ts, timestamp, datetime, date" in message and "open: open" in message


def test_timestamps_when_naive_then_in_declared_tz(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "Date,Open,High,Low,Close,Volume\n2024-01-02 09:30,1,2,1,1,5\n")
    replay = ReplaySource(path, symbol="X", interval="1m", tz="America/New_York")
    assert replay.history("X", "1m", *ALL)["ts"].tolist() == [T1430]


@pytest.mark.parametrize("scale", [1, 10**3, 10**6, 10**9])
def test_timestamps_when_epoch_numbers_then_unit_by_magnitude(tmp_path: Path, scale: int) -> None:
    text = "ts,open,high,low,close,volume\n" + "".join(
        f"{(T1430 + i * MIN) // scale},1,2,1,1,5\n" for i in range(2)
    ) + "garbage,1,2,1,1,5\n"  # fmt: skip
    replay = ReplaySource(write_csv(tmp_path, text), symbol="X", interval="1m")
    assert replay.history("X", "1m", *ALL)["ts"].tolist() == [T1430, T1430 + MIN]
    assert replay.results["X"].rejected == {"bad_ts": 1}


def test_file_when_unsupported_or_missing_then_source_data_error(tmp_path: Path) -> None:
    with pytest.raises(SourceDataError, match="unsupported file type"):
        ReplaySource(write_csv(tmp_path, "x", "bars.xlsx"), interval="1d")
    with pytest.raises(SourceDataError, match="Cannot read replay file"):
        ReplaySource(tmp_path / "missing.csv", interval="1d")


# -- MarketSource ----------------------------------------------------------------------


def test_history_when_range_given_then_half_open_slice() -> None:
    replay: MarketSource = source("multi_1m.csv")
    assert replay.name == "replay"
    bars = replay.history("AAA", "1m", T1430 + MIN, T1430 + 6 * MIN)
    assert bars["ts"].tolist() == [T1430 + MIN, T1430 + 5 * MIN]


def test_history_when_other_interval_or_symbol_then_symbol_not_found() -> None:
    replay = source("multi_1m.csv")
    with pytest.raises(SymbolNotFound, match="holds 1m bars, not 5m"):
        replay.history("AAA", "5m", *ALL)
    with pytest.raises(SymbolNotFound):
        replay.fundamentals("ZZZ")
    assert replay.quotes(["AAA"]) == []
    assert replay.fundamentals("AAA").as_of == T1430 + 6 * MIN


# -- replay ----------------------------------------------------------------------------


def paced(speed: float | None) -> tuple[list[BarRow], Sleeper]:
    clock = FakeClock()
    sleeper = Sleeper(clock)
    replay = source("multi_1m.csv", clock=clock, sleep=sleeper)
    return list(replay.replay(speed)), sleeper


def test_replay_when_as_fast_as_possible_then_all_bars_in_order_no_sleep() -> None:
    bars, sleeper = paced(None)
    assert [(b.ts, b.symbol) for b in bars] == sorted((b.ts, b.symbol) for b in bars)
    assert len(bars) == 7 and sleeper.waits == []
    assert all(isinstance(b, BarRow) and b.source == "replay" for b in bars)


@pytest.mark.parametrize("speed", [1.0, 60.0])
def test_replay_when_speed_given_then_recorded_pace_scaled(speed: float) -> None:
    bars, sleeper = paced(speed)
    span_s = (bars[-1].ts - bars[0].ts) / NS
    assert sum(sleeper.waits) == pytest.approx(span_s / speed)
    assert len(sleeper.waits) == 4  # one per distinct later ts: 14:31, 14:33, 14:35, 14:36


def test_replay_when_consumer_is_slow_then_waits_only_the_rest() -> None:
    clock = FakeClock()
    sleeper = Sleeper(clock)
    replay = source("multi_1m.csv", clock=clock, sleep=sleeper)
    for _ in replay.replay(1.0):
        clock.advance(20)  # the consumer takes 20 s per bar
    assert sum(sleeper.waits) == pytest.approx(6 * 60 - 6 * 20)


def test_replay_when_speed_not_positive_then_value_error() -> None:
    with pytest.raises(ValueError, match="positive"):
        next(source("multi_1m.csv").replay(0))
