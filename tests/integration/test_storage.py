"""The storage layer on a real SQLite file and a real PostgreSQL schema: migrations,
models, the bulk bar store and the errors an operator sees."""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pandas as pd
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from conftest_db import db_fixture, migrated_fixture  # noqa: F401  (fixtures)
from sqlalchemy import Engine, inspect, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm.exc import StaleDataError

from app.database import (
    check_connection,
    current_revision,
    downgrade,
    head_revision,
    session_factory,
    upgrade,
)
from engine.errors import OperationalError
from engine.persistence import BarRow, count_bars, latest_ts, load_bars, upsert_bars
from engine.persistence.models import (
    AlgoExecution,
    AlgoOrder,
    BarFlag,
    Base,
    CustomStrategy,
    Exchange,
    Fill,
    Fundamental,
    Industry,
    Instrument,
    Order,
    Position,
    RiskProfile,
    User,
)

pytestmark = pytest.mark.integration

T0 = 1_700_000_000 * 1_000_000_000
MINUTE = 60 * 1_000_000_000


def bars(n: int, *, symbols: int = 1, open_: float = 100.0) -> list[tuple]:
    """``n`` one-minute bars per symbol, in the input shape of ``upsert_bars``."""
    return [
        (
            f"SYM{s}",
            "1m",
            T0 + i * MINUTE,
            open_ + i,
            open_ + i + 1,
            open_ + i - 1,
            open_ + i + 0.5,
            1000.0 + i,
            "test",
            0,
        )
        for s in range(symbols)
        for i in range(n)
    ]


# -- migrations ----------------------------------------------------------------------


def test_upgrade_when_database_empty_then_creates_every_table_at_head(db: Engine) -> None:
    assert current_revision(db) is None

    assert upgrade(db) == head_revision()

    assert current_revision(db) == head_revision()
    assert set(inspect(db).get_table_names()) == set(Base.metadata.tables) | {"alembic_version"}


def test_upgrade_when_run_again_then_nothing_changes(migrated: Engine) -> None:
    upsert_bars(migrated, bars(3))

    assert upgrade(migrated) == head_revision()
    assert upgrade(migrated) == head_revision()

    assert count_bars(migrated) == 3
    assert current_revision(migrated) == head_revision()


def test_schema_when_migrated_then_matches_the_models(migrated: Engine) -> None:
    with migrated.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_downgrade_when_to_base_then_drops_everything_and_upgrade_restores(
    migrated: Engine,
) -> None:
    assert downgrade(migrated, "base") is None
    assert set(inspect(migrated).get_table_names()) <= {"alembic_version"}

    assert upgrade(migrated) == head_revision()
    assert set(inspect(migrated).get_table_names()) >= set(Base.metadata.tables)


def test_upgrade_when_processes_start_at_once_then_each_succeeds(db: Engine) -> None:
    start = threading.Barrier(4)
    results: list[object] = []

    def migrate() -> None:
        start.wait(timeout=10)
        try:
            results.append(upgrade(db))
        except Exception as exc:
            results.append(exc)

    threads = [threading.Thread(target=migrate) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert results == [head_revision()] * 4


def test_connection_when_server_unreachable_then_operational_error_names_the_setting() -> None:
    url = "postgresql+psycopg://qsuite:s3cret@127.0.0.1:1/qsuite"

    with pytest.raises(OperationalError) as caught:
        upgrade(url)

    message = str(caught.value)
    assert "`database.url`" in message
    assert "qsuite:***@127.0.0.1:1/qsuite" in message
    assert "s3cret" not in message


def test_check_connection_when_database_reachable_then_returns(db: Engine) -> None:
    check_connection(db)


# -- models --------------------------------------------------------------------------


def test_instrument_master_when_stored_then_relations_and_aware_times_round_trip(
    migrated: Engine,
) -> None:
    listed = datetime(2024, 3, 1, 9, 30, tzinfo=timezone(timedelta(hours=-5)))
    with session_factory(migrated).begin() as session:
        lse = Exchange(
            code="LSE",
            name="London",
            yfinance_suffix=".L",
            country="GB",
            timezone="Europe/London",
            currency="GBP",
        )
        telecom = Industry(sector="Communication Services", industry="Telecom Services")
        vod = Instrument(
            symbol="VOD",
            yahoo_symbol="VOD.L",
            name="Vodafone",
            exchange=lse,
            industry=telecom,
            currency="GBP",
            created_at=listed,
        )
        session.add(
            Fundamental(
                instrument=vod,
                as_of=date(2024, 3, 1),
                market_cap=2.1e10,
                pe_ratio=None,
                dividend_yield=0.08,
            )
        )

    with session_factory(migrated)() as session:
        vod = session.scalars(select(Instrument).where(Instrument.symbol == "VOD")).one()
        assert vod.exchange is not None and vod.exchange.yfinance_suffix == ".L"
        assert vod.industry is not None and vod.industry.industry == "Telecom Services"
        assert vod.active is True
        assert vod.created_at == listed and vod.created_at.tzinfo == UTC
        fundamental = session.scalars(select(Fundamental)).one()
        assert fundamental.market_cap == 2.1e10 and fundamental.pe_ratio is None


def test_ledger_when_stored_then_decimals_keep_every_digit(migrated: Engine) -> None:
    price = Decimal("123.4567890123")
    with session_factory(migrated).begin() as session:
        order = Order(
            client_order_id="c-1",
            account="acc",
            symbol="VOD",
            side="buy",
            order_type="limit",
            tif="day",
            qty=Decimal("1000"),
            price=price,
            status="filled",
            filled_qty=Decimal("1000"),
            avg_price=price,
            ts_created=T0,
            ts_updated=T0,
        )
        order.fills.append(
            Fill(
                fill_id="f-1",
                client_order_id="c-1",
                venue_exec_id="x-1",
                qty=Decimal("1000"),
                price=price,
                liquidity="maker",
                ts=T0,
            )
        )
        session.add(order)
        session.add(
            Position(
                account="acc",
                symbol="VOD",
                qty=Decimal("-0.0000000001"),
                avg_price=price,
                realized_pnl=Decimal("-98765.4321"),
                ts_updated=T0,
            )
        )

    with session_factory(migrated)() as session:
        order = session.scalars(select(Order)).one()
        assert (order.price, order.avg_price, order.fills[0].price) == (price, price, price)
        assert order.fills[0].fee == 0
        position = session.scalars(select(Position)).one()
        assert position.qty == Decimal("-0.0000000001")
        assert position.realized_pnl == Decimal("-98765.4321")


@pytest.mark.parametrize(
    "bad",
    [
        {"side": "hold"},  # CHECK
        {"qty": Decimal(0)},  # CHECK
        {"client_order_id": "dup"},  # UNIQUE (the first order has it)
        {"algo_id": "no-such-algo"},  # FOREIGN KEY (enforced on SQLite too)
    ],
    ids=["side", "qty", "client_order_id", "algo_id"],
)
def test_order_when_constraint_broken_then_integrity_error(
    migrated: Engine, bad: dict[str, object]
) -> None:
    fields: dict[str, object] = dict(
        account="acc",
        symbol="VOD",
        side="buy",
        order_type="market",
        tif="ioc",
        qty=Decimal(1),
        status="new",
        ts_created=T0,
        ts_updated=T0,
    )
    with session_factory(migrated).begin() as session:
        session.add(Order(client_order_id="dup", **fields))

    with pytest.raises(sa_exc.IntegrityError), session_factory(migrated).begin() as session:
        session.add(Order(**{**fields, "client_order_id": "other", **bad}))


def test_algo_order_when_updated_concurrently_then_stale_writer_loses(migrated: Engine) -> None:
    factory = session_factory(migrated)
    with factory.begin() as session:
        strategy = CustomStrategy(
            name="rsi-dip",
            signal_rule="rsi_cross",
            condition={"kind": "oversold"},
            algo_type="twap",
            algo_params={"slices": 10},
            cooldown_s=60,
        )
        algo = AlgoOrder(
            id="algo-1",
            command_id="cmd-1",
            algo_type="twap",
            account="acc",
            symbol="VOD",
            side="sell",
            qty=Decimal(500),
            params={"duration_s": 600},
            ts_created=T0,
            ts_updated=T0,
        )
        algo.executions.append(
            AlgoExecution(
                slice_index=0,
                client_order_id="algo-1-0-0",
                qty=Decimal(50),
                ts_created=T0,
                ts_updated=T0,
            )
        )
        session.add_all([strategy, algo])

    first, second = factory(), factory()
    try:
        # Both load the algo and end their read transactions (objects stay loaded) …
        mine, theirs = first.get_one(AlgoOrder, "algo-1"), second.get_one(AlgoOrder, "algo-1")
        first.commit()
        second.commit()
        # … then each writes in a new transaction: the second one is stale.
        mine.state = "running"
        first.commit()
        theirs.state = "cancelled"
        with pytest.raises(StaleDataError):
            second.commit()
    finally:
        first.close()
        second.close()

    with factory() as session:
        algo = session.get_one(AlgoOrder, "algo-1")
        assert (algo.state, algo.version, algo.params) == ("running", 2, {"duration_s": 600})
        assert [e.client_order_id for e in algo.executions] == ["algo-1-0-0"]
        assert algo.executions[0].intent_state == "intended"
        strategy = session.scalars(select(CustomStrategy)).one()
        assert strategy.condition == {"kind": "oversold"} and strategy.enabled is True


def test_users_and_risk_profiles_when_stored_then_defaults_apply(migrated: Engine) -> None:
    with session_factory(migrated).begin() as session:
        session.add(User(username="ops", password_hash="scrypt$...", role="operator"))
        session.add(RiskProfile(account="acc", max_order_notional=Decimal("250000.50")))

    with session_factory(migrated)() as session:
        user = session.scalars(select(User)).one()
        assert user.disabled is False and user.created_at.tzinfo == UTC
        profile = session.scalars(select(RiskProfile)).one()
        assert profile.max_order_notional == Decimal("250000.50")
        assert profile.max_order_qty is None and profile.version == 1


# -- bars ----------------------------------------------------------------------------


def test_upsert_bars_when_same_rows_written_three_times_then_no_duplicates(
    migrated: Engine,
) -> None:
    rows = bars(50, symbols=2)

    assert upsert_bars(migrated, rows) == 100
    assert upsert_bars(migrated, rows) == 0
    assert upsert_bars(migrated, rows) == 0

    assert count_bars(migrated) == 100
    assert count_bars(migrated, "SYM0", "1m") == 50


def test_upsert_bars_when_values_changed_then_updates_in_place(migrated: Engine) -> None:
    upsert_bars(migrated, bars(10))
    revised = [(*row[:6], 999.0, row[7], "yahoo", int(BarFlag.ADJUSTED)) for row in bars(10)[:4]]

    assert upsert_bars(migrated, revised) == 4

    stored = load_bars(migrated, "SYM0", "1m")
    assert len(stored) == 10
    assert [bar.close for bar in stored[:5]] == [999.0] * 4 + [104.5]
    assert stored[0].source == "yahoo" and BarFlag(stored[0].flags) == BarFlag.ADJUSTED


def test_upsert_bars_when_simulated_meets_real_then_real_always_wins(migrated: Engine) -> None:
    sim = int(BarFlag.SIMULATED)
    real = bars(4)
    upsert_bars(migrated, real)
    simulated = [(*row[:6], 1.0, row[7], "synthetic", sim) for row in bars(6)]

    assert upsert_bars(migrated, simulated) == 2  # only the two keys no real bar holds

    stored = load_bars(migrated, "SYM0", "1m")
    assert [b.source for b in stored] == ["test"] * 4 + ["synthetic"] * 2
    assert [b.close for b in stored[:4]] == [row[6] for row in real]
    assert upsert_bars(migrated, bars(6)) == 2  # real data replaces what was simulated
    assert {b.source for b in load_bars(migrated, "SYM0", "1m")} == {"test"}


def test_upsert_bars_when_key_repeats_in_one_call_then_last_row_wins(migrated: Engine) -> None:
    first, second = bars(1)[0], (*bars(1)[0][:6], 55.0, *bars(1)[0][7:])

    assert upsert_bars(migrated, [first, second]) == 1

    assert [bar.close for bar in load_bars(migrated, "SYM0", "1m")] == [55.0]


def test_upsert_bars_when_frame_given_then_stores_like_tuples(migrated: Engine) -> None:
    frame = pd.DataFrame(bars(5), columns=list(BarRow._fields))
    frame["ts"] = pd.to_datetime(frame["ts"], unit="ns", utc=True)

    assert upsert_bars(migrated, frame.set_index("ts")) == 5

    assert load_bars(migrated, "SYM0", "1m") == [BarRow(*row) for row in bars(5)]


def test_upsert_bars_when_caller_rolls_back_then_nothing_stored(migrated: Engine) -> None:
    with migrated.connect() as conn:
        assert upsert_bars(conn, bars(5)) == 5
        assert upsert_bars(conn, bars(7)) == 2  # a second load in the same transaction
        assert count_bars(conn) == 7
        conn.rollback()

    assert count_bars(migrated) == 0


@pytest.mark.slow
def test_upsert_bars_when_100k_rows_then_fast_and_idempotent(migrated: Engine) -> None:
    rows = bars(10_000, symbols=10)

    started = time.monotonic()
    assert upsert_bars(migrated, rows) == 100_000
    assert upsert_bars(migrated, rows) == 0
    elapsed = time.monotonic() - started

    assert count_bars(migrated) == 100_000
    assert elapsed < 30, f"two 100k-row upserts took {elapsed:.1f} s"


def test_load_bars_when_range_and_limit_then_half_open_ascending(migrated: Engine) -> None:
    upsert_bars(migrated, bars(20, symbols=2))
    ts = [T0 + i * MINUTE for i in range(20)]

    in_range = load_bars(migrated, "SYM1", "1m", ts[5], ts[10])
    assert [bar.ts for bar in in_range] == ts[5:10]
    assert {bar.symbol for bar in in_range} == {"SYM1"}
    assert [bar.ts for bar in load_bars(migrated, "SYM1", "1m", ts[5], limit=3)] == ts[5:8]
    assert [bar.ts for bar in load_bars(migrated, "SYM1", "1m", limit=3, newest=True)] == ts[17:]
    assert load_bars(migrated, "SYM1", "5m") == []
    assert latest_ts(migrated, "SYM1", "1m") == ts[-1]
    assert latest_ts(migrated, "SYM1", "1d") is None
