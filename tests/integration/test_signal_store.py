"""The signal store on a real SQLite file and a real PostgreSQL schema: idempotent
inserts on the unique key, the read side, and a restarted signal engine that consults it."""

from __future__ import annotations

import math

import pytest
from conftest_db import db_fixture, migrated_fixture  # noqa: F401  (fixtures)
from sqlalchemy import Engine, func, select

from engine.bus.events import BarClosed, SignalRaised
from engine.persistence.models import Signal
from engine.signals import SignalEngine, SignalKey, create
from engine.signals.store import load_signals, save_signals, seen_in, signal_exists

pytestmark = pytest.mark.integration

T0 = 1_700_006_400 * 1_000_000_000
DAY = 86_400 * 1_000_000_000


def signal(ts: int, kind: str = "oversold_entry", *, symbol: str = "AAPL", **kw) -> SignalRaised:
    fields = {"rule": "rsi_cross", "indicator": "rsi_14", "strength": 0.25, "details": {}} | kw
    return SignalRaised(ts_event=ts + DAY, symbol=symbol, interval="1d", ts=ts, kind=kind, **fields)


def count(db: Engine) -> int:
    with db.connect() as conn:
        return conn.execute(select(func.count()).select_from(Signal)).scalar_one()


def test_save_signals_when_saved_again_then_nothing_new(migrated: Engine) -> None:
    batch = [signal(T0), signal(T0, "oversold_exit"), signal(T0 + DAY)]

    assert save_signals(migrated, batch) == 3
    assert save_signals(migrated, batch) == 0
    assert save_signals(migrated, [*batch, signal(T0 + 2 * DAY)]) == 1
    assert count(migrated) == 4


def test_save_signals_when_key_repeats_in_one_call_then_first_wins(migrated: Engine) -> None:
    first, second = signal(T0, strength=0.1), signal(T0, strength=0.9)
    assert save_signals(migrated, [first, second]) == 1
    assert [s.strength for s in load_signals(migrated)] == [0.1]


def test_save_signals_when_stored_key_comes_again_then_row_left_as_it_was(
    migrated: Engine,
) -> None:
    save_signals(migrated, [signal(T0, strength=0.1, details={"rsi": 29.0})])
    save_signals(migrated, [signal(T0, strength=0.9, details={"rsi": 1.0})])
    (row,) = load_signals(migrated)
    assert (row.strength, row.details) == (0.1, {"rsi": 29.0})


def test_save_signals_when_many_then_all_stored_once(migrated: Engine) -> None:
    batch = [signal(T0 + i * DAY) for i in range(1_007)]
    assert save_signals(migrated, batch) == len(batch)
    assert save_signals(migrated, batch) == 0
    assert save_signals(migrated, []) == 0


def test_save_signals_when_joining_a_transaction_then_rolls_back_with_it(migrated: Engine) -> None:
    with migrated.connect() as conn:
        with conn.begin() as tx:
            assert save_signals(conn, [signal(T0)]) == 1
            tx.rollback()
        assert count(migrated) == 0


def test_load_signals_when_filtered_then_newest_first(migrated: Engine) -> None:
    save_signals(
        migrated,
        [
            signal(T0, details={"rsi": 29.5, "note": "x", "gap": math.nan}),
            signal(T0 + DAY, "oversold_exit"),
            signal(T0 + 2 * DAY, symbol="MSFT"),
            signal(T0 + 3 * DAY, rule="ma_cross", kind="golden_cross", indicator="sma_50_200"),
        ],
    )

    rows = load_signals(migrated, symbol="AAPL")
    assert [(r.ts, r.kind) for r in rows] == [
        (T0 + 3 * DAY, "golden_cross"),
        (T0 + DAY, "oversold_exit"),
        (T0, "oversold_entry"),
    ]
    oldest = rows[-1]
    assert oldest.details == {"rsi": 29.5, "note": "x", "gap": "nan"}  # JSON has no NaN
    assert oldest.created_at.tzinfo is not None
    assert oldest.key == SignalKey("AAPL", "1d", T0, "rsi_cross", "oversold_entry")
    assert [r.symbol for r in load_signals(migrated, since=T0 + 2 * DAY)] == ["AAPL", "MSFT"]
    assert len(load_signals(migrated, limit=2)) == 2
    assert len(load_signals(migrated, limit=None)) == 4
    assert [r.rule for r in load_signals(migrated, rule="ma_cross")] == ["ma_cross"]
    assert load_signals(migrated, interval="1m") == []


def test_signal_exists_when_stored_then_true_only_for_that_key(migrated: Engine) -> None:
    save_signals(migrated, [signal(T0)])
    assert signal_exists(migrated, "AAPL", "1d", T0, "rsi_cross", "oversold_entry")
    assert not signal_exists(migrated, "AAPL", "1d", T0, "rsi_cross", "oversold_exit")
    assert not signal_exists(migrated, "AAPL", "1d", T0 + DAY, "rsi_cross", "oversold_entry")
    seen = seen_in(migrated)
    assert seen(SignalKey("AAPL", "1d", T0, "rsi_cross", "oversold_entry"))


def test_engine_when_restarted_on_the_store_then_replay_raises_nothing_new(
    migrated: Engine,
) -> None:
    # RSI values by hand: entry at bar 2, exit at bar 4, entry at bar 6.
    rsi = [50.0, 35.0, 25.0, 28.0, 40.0, 45.0, 20.0]
    rule = create("rsi_cross")
    (spec,) = rule.required.values()
    bars = [
        BarClosed(
            ts_event=T0 + (i + 1) * DAY, symbol="AAPL", interval="1d", ts=T0 + i * DAY,
            open=100.0, high=101.0, low=99.0, close=100.0, volume=1.0, origin="replay",
        )
        for i in range(len(rsi))
    ]  # fmt: skip

    def run(engine: SignalEngine, upto: int) -> list[SignalRaised]:
        out: list[SignalRaised] = []
        for bar, value in zip(bars[:upto], rsi[:upto], strict=True):
            out.extend(engine.on_bar(bar, {spec: value}))
        return out

    first = run(SignalEngine("AAPL", "1d", [rule], seen=seen_in(migrated)), 5)
    assert [(s.ts, s.kind) for s in first] == [
        (T0 + 2 * DAY, "oversold_entry"),
        (T0 + 4 * DAY, "oversold_exit"),
    ]
    assert save_signals(migrated, first) == 2

    # the process restarts without a snapshot and re-evaluates the whole history
    restarted = SignalEngine("AAPL", "1d", [create("rsi_cross")], seen=seen_in(migrated))
    again = run(restarted, len(bars))
    assert [(s.ts, s.kind) for s in again] == [(T0 + 6 * DAY, "oversold_entry")]
    assert save_signals(migrated, again) == 1
    assert save_signals(migrated, first + again) == 0
    assert count(migrated) == 3
