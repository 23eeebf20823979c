"""upsert_bars input handling, on an SQLite file (the cross-database behaviour is in
tests/integration/test_storage.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine

from app.database import make_engine, upgrade
from engine.persistence import BAR_COLUMNS, BarRow, count_bars, load_bars, upsert_bars

T0 = 1_700_000_000 * 1_000_000_000
ROW = ("AAPL", "1d", T0, 10.0, 11.0, 9.0, 10.5, 1e6, "yahoo", 0)


@pytest.fixture(name="engine")
def engine_fixture(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'bars.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


def frame_of(*rows: tuple) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=list(BAR_COLUMNS))


def test_upsert_bars_when_no_rows_then_writes_nothing(engine: Engine) -> None:
    assert upsert_bars(engine, []) == 0
    assert upsert_bars(engine, frame_of()) == 0


def test_upsert_bars_when_row_too_short_then_value_error_before_writing(engine: Engine) -> None:
    with pytest.raises(ValueError, match=r"bar row 1 has 9 values; expected 10: symbol, interval"):
        upsert_bars(engine, [ROW, ROW[:-1]])

    assert count_bars(engine) == 0


def test_upsert_bars_when_generator_given_then_consumed_once(engine: Engine) -> None:
    rows = ((*ROW[:2], T0 + i, *ROW[3:]) for i in range(3))

    assert upsert_bars(engine, rows) == 3


def test_upsert_bars_when_frame_lacks_columns_then_value_error(engine: Engine) -> None:
    with pytest.raises(ValueError, match="lacks column"):
        upsert_bars(engine, frame_of(ROW).drop(columns=["source", "flags"]))


def test_upsert_bars_when_frame_ts_naive_datetime_then_value_error(engine: Engine) -> None:
    frame = frame_of(ROW)
    frame["ts"] = pd.to_datetime(frame["ts"], unit="ns")

    with pytest.raises(ValueError, match="naive datetime"):
        upsert_bars(engine, frame)


def test_upsert_bars_when_frame_ts_in_another_zone_then_stored_as_utc_ns(engine: Engine) -> None:
    frame = frame_of(ROW)
    frame["ts"] = pd.to_datetime(frame["ts"], unit="ns", utc=True).dt.tz_convert("America/New_York")
    frame["ts"] = frame["ts"].dt.as_unit("s")  # any resolution

    assert upsert_bars(engine, frame) == 1

    assert load_bars(engine, "AAPL", "1d") == [BarRow(*ROW)]


def test_upsert_bars_when_frame_has_numpy_columns_and_extras_then_python_values_stored(
    engine: Engine,
) -> None:
    frame = frame_of(ROW).astype({"flags": "int16", "volume": "float32"})
    frame["ignored"] = "x"

    assert upsert_bars(engine, frame) == 1

    (bar,) = load_bars(engine, "AAPL", "1d")
    assert (type(bar.ts), type(bar.flags), bar.volume) == (int, int, 1e6)
