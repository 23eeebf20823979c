"""Indicator values on SQLite and PostgreSQL: idempotent upsert, NaN as NULL, latest N."""

from __future__ import annotations

import math

import pytest
from conftest_db import db_fixture, migrated_fixture  # noqa: F401  (fixtures, both databases)
from sqlalchemy import Engine

from engine.persistence.indicators import load_indicator_values, upsert_indicator_values

pytestmark = pytest.mark.integration


def test_upsert_indicator_values_when_repeated_then_updated_in_place(migrated: Engine) -> None:
    db_engine = migrated
    rows = [
        ("AAA", "1m", t, "macd_12_26_9", "12,26,9", out, float(t) if t > 1 else math.nan)
        for t in range(5)
        for out in ("macd", "signal")
    ]
    upsert_indicator_values(db_engine, rows)
    upsert_indicator_values(db_engine, [(*r[:6], 42.0) if r[2] == 4 else r for r in rows])

    got = load_indicator_values(db_engine, "AAA", "1m", "macd_12_26_9", limit=3)
    assert set(got) == {"macd", "signal"}
    assert [ts for ts, _ in got["macd"]] == [2, 3, 4]
    assert [v for _, v in got["macd"]] == [2.0, 3.0, 42.0]
    everything = load_indicator_values(db_engine, "AAA", "1m", "macd_12_26_9", limit=100)
    assert len(everything["signal"]) == 5 and math.isnan(everything["signal"][0][1])
    assert load_indicator_values(db_engine, "BBB", "1m", "macd_12_26_9") == {}
