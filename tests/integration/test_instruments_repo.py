"""The instrument master on a real SQLite file and a real PostgreSQL schema: exchanges
seeded from the table, idempotent instrument upserts that never forget, fundamentals
per day, and the read side."""

from __future__ import annotations

from datetime import date

import pytest
from conftest_db import db_fixture, migrated_fixture  # noqa: F401  (fixtures)
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from engine.persistence.instruments import (
    InstrumentRecord,
    latest_fundamentals,
    list_instruments,
    save_fundamentals,
    seed_exchanges,
    upsert_instrument,
)
from engine.persistence.models import Exchange, Fundamental, Industry, Instrument
from feeds.exchanges import EXCHANGES, UnknownExchange
from feeds.schema import Fundamentals

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

NS = 1_000_000_000
DAY = 86_400 * NS
T0 = 1_700_000_000 * NS  # 2023-11-14 22:13:20 UTC


def count(engine: Engine, model: type) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(model)).scalar_one())


def instrument(engine: Engine, symbol: str) -> dict:
    with Session(engine) as session:
        row = session.execute(
            select(Instrument, Exchange.code, Industry.sector, Industry.industry)
            .outerjoin(Exchange, Instrument.exchange_id == Exchange.id)
            .outerjoin(Industry, Instrument.industry_id == Industry.id)
            .where(Instrument.symbol == symbol)
        ).one()
    inst = row[0]
    return {
        "name": inst.name,
        "exchange": row.code,
        "currency": inst.currency,
        "sector": row.sector,
        "industry": row.industry,
        "yahoo_symbol": inst.yahoo_symbol,
        "active": inst.active,
    }


def apple(as_of: int = T0, **changes: object) -> Fundamentals:
    values: dict = {
        "symbol": "AAPL",
        "as_of": as_of,
        "name": "Apple Inc.",
        "exchange": "NASDAQ",
        "currency": "USD",
        "sector": "Technology",
        "industry": "Consumer Electronics",
        "market_cap": 3.0e12,
        "pe_ratio": 30.5,
        "eps": 6.1,
        "dividend_yield": 0.005,
        "beta": 1.2,
        "week52_high": 199.6,
        "week52_low": 124.2,
    }
    values.update(changes)
    return Fundamentals(**values)


# -- exchanges -------------------------------------------------------------------------


def test_seed_exchanges_when_run_twice_then_same_rows_with_yahoo_suffixes(
    migrated: Engine,
) -> None:
    assert seed_exchanges(migrated) == len(EXCHANGES)
    assert seed_exchanges(migrated) == 0

    assert count(migrated, Exchange) == len(EXCHANGES)
    with Session(migrated) as session:
        rows = dict(session.execute(select(Exchange.code, Exchange.yfinance_suffix)).all())
        lse = session.execute(select(Exchange).where(Exchange.code == "LSE")).scalar_one()
    assert rows["LSE"] == ".L"
    assert rows["TSX"] == ".TO"
    assert rows["NASDAQ"] == ""
    assert rows["HKEX"] == ".HK"
    assert (lse.timezone, lse.currency, lse.country) == ("Europe/London", "GBP", "United Kingdom")


def test_seed_exchanges_when_a_row_drifted_then_restores_it(migrated: Engine) -> None:
    seed_exchanges(migrated)
    with migrated.begin() as conn:
        conn.execute(update(Exchange).where(Exchange.code == "TSX").values(yfinance_suffix=".X"))

    assert seed_exchanges(migrated) == 1

    with migrated.connect() as conn:
        suffix = conn.execute(
            select(Exchange.yfinance_suffix).where(Exchange.code == "TSX")
        ).scalar_one()
    assert suffix == ".TO"


# -- instruments -----------------------------------------------------------------------


def test_upsert_instrument_when_suffixed_symbol_then_exchange_and_currency_from_suffix(
    migrated: Engine,
) -> None:
    upsert_instrument(migrated, "VOD.L", name="Vodafone Group")

    assert instrument(migrated, "VOD.L") == {
        "name": "Vodafone Group",
        "exchange": "LSE",
        "currency": "GBP",
        "sector": None,
        "industry": None,
        "yahoo_symbol": None,
        "active": True,
    }


def test_upsert_instrument_when_new_values_unknown_then_keeps_known_facts(
    migrated: Engine,
) -> None:
    first = upsert_instrument(
        migrated,
        "AAPL",
        name="Apple Inc.",
        exchange_code="NASDAQ",
        currency="USD",
        sector="Technology",
        industry="Consumer Electronics",
        yahoo_symbol="AAPL",
    )

    again = upsert_instrument(migrated, "AAPL")
    renamed = upsert_instrument(migrated, "AAPL", name="Apple", sector="Technology")

    assert first == again == renamed
    assert count(migrated, Instrument) == 1
    assert instrument(migrated, "AAPL") == {
        "name": "Apple",
        "exchange": "NASDAQ",
        "currency": "USD",
        "sector": "Technology",
        "industry": "Consumer Electronics",
        "yahoo_symbol": "AAPL",
        "active": True,
    }


def test_upsert_instrument_when_bare_symbol_then_us_currency_and_venue_unknown(
    migrated: Engine,
) -> None:
    upsert_instrument(migrated, "MSFT")

    facts = instrument(migrated, "MSFT")
    assert (facts["exchange"], facts["currency"], facts["name"]) == (None, "USD", "")


def test_upsert_instrument_when_deactivated_then_later_upserts_keep_it_inactive(
    migrated: Engine,
) -> None:
    upsert_instrument(migrated, "GE", active=False)
    upsert_instrument(migrated, "GE", name="GE Aerospace")
    assert instrument(migrated, "GE")["active"] is False

    upsert_instrument(migrated, "GE", active=True)
    assert instrument(migrated, "GE")["active"] is True


def test_upsert_instrument_when_industry_shared_then_one_industry_row(migrated: Engine) -> None:
    for symbol in ("AAPL", "SONY"):
        upsert_instrument(migrated, symbol, sector="Technology", industry="Consumer Electronics")

    assert count(migrated, Industry) == 1


def test_upsert_instrument_when_yahoo_exchange_code_then_maps_to_qsuite_code(
    migrated: Engine,
) -> None:
    upsert_instrument(migrated, "NVDA", exchange_code="NMS")

    assert instrument(migrated, "NVDA")["exchange"] == "NASDAQ"


def test_upsert_instrument_when_exchange_code_unknown_then_refuses(migrated: Engine) -> None:
    with pytest.raises(UnknownExchange, match="unknown exchange code 'MOON'"):
        upsert_instrument(migrated, "XYZ", exchange_code="MOON")

    assert count(migrated, Instrument) == 0


def test_upsert_instrument_when_yahoo_symbol_taken_then_value_error(migrated: Engine) -> None:
    upsert_instrument(migrated, "BP.L", yahoo_symbol="BP.L")

    with pytest.raises(ValueError, match="already belongs to another instrument"):
        upsert_instrument(migrated, "BP", yahoo_symbol="BP.L")

    assert [r.symbol for r in list_instruments(migrated)] == ["BP.L"]


# -- fundamentals ----------------------------------------------------------------------


def test_save_fundamentals_when_saved_then_instrument_master_filled(migrated: Engine) -> None:
    save_fundamentals(migrated, apple(), source="yahoo")

    assert instrument(migrated, "AAPL") == {
        "name": "Apple Inc.",
        "exchange": "NASDAQ",
        "currency": "USD",
        "sector": "Technology",
        "industry": "Consumer Electronics",
        "yahoo_symbol": "AAPL",
        "active": True,
    }


def test_save_fundamentals_when_same_day_saved_again_then_updates_in_place(
    migrated: Engine,
) -> None:
    save_fundamentals(migrated, apple(), source="yahoo")
    save_fundamentals(migrated, apple(), source="yahoo")
    save_fundamentals(migrated, apple(T0 + 3600 * NS, pe_ratio=31.0, beta=None), source="yahoo")

    assert count(migrated, Fundamental) == 1
    latest = latest_fundamentals(migrated, "AAPL")
    assert latest is not None
    assert latest.as_of == T0 + 3600 * NS
    assert latest.pe_ratio == 31.0
    assert latest.beta == 1.2  # an unknown never erases what the same day knew


def test_save_fundamentals_when_older_fetch_of_same_day_arrives_late_then_ignored(
    migrated: Engine,
) -> None:
    save_fundamentals(migrated, apple(T0 + 60 * NS, pe_ratio=31.0), source="yahoo")
    save_fundamentals(migrated, apple(T0, pe_ratio=29.0), source="yahoo")

    latest = latest_fundamentals(migrated, "AAPL")
    assert latest is not None
    assert (latest.as_of, latest.pe_ratio) == (T0 + 60 * NS, 31.0)


def test_save_fundamentals_when_new_day_then_adds_a_row_and_latest_is_newest(
    migrated: Engine,
) -> None:
    save_fundamentals(migrated, apple(T0, market_cap=3.0e12), source="yahoo")
    save_fundamentals(migrated, apple(T0 + DAY, market_cap=3.1e12), source="yahoo")

    assert count(migrated, Fundamental) == 2
    with migrated.connect() as conn:
        days = conn.execute(select(Fundamental.as_of).order_by(Fundamental.as_of)).scalars()
        assert list(days) == [date(2023, 11, 14), date(2023, 11, 15)]
    latest = latest_fundamentals(migrated, "AAPL")
    assert latest == apple(T0 + DAY, market_cap=3.1e12)


def test_save_fundamentals_when_minor_currency_unit_then_stores_the_iso_major_unit(
    migrated: Engine,
) -> None:
    vod = Fundamentals(symbol="VOD.L", as_of=T0, name="Vodafone", exchange="LSE", currency="GBp")

    save_fundamentals(migrated, vod, source="yahoo")

    latest = latest_fundamentals(migrated, "VOD.L")
    assert latest is not None
    assert (latest.currency, latest.exchange) == ("GBP", "LSE")


def test_save_fundamentals_when_exchange_not_in_table_then_exchange_unknown(
    migrated: Engine,
) -> None:
    sim = Fundamentals(
        symbol="SIMA", as_of=T0, name="SIMA (simulated)", exchange="SIM", currency="USD"
    )

    save_fundamentals(migrated, sim, source="synthetic")

    facts = instrument(migrated, "SIMA")
    assert (facts["exchange"], facts["yahoo_symbol"], facts["currency"]) == (None, None, "USD")


def test_latest_fundamentals_when_none_stored_then_none(migrated: Engine) -> None:
    upsert_instrument(migrated, "AAPL")

    assert latest_fundamentals(migrated, "AAPL") is None
    assert latest_fundamentals(migrated, "NOPE") is None


# -- listing ---------------------------------------------------------------------------


def seed_master(engine: Engine) -> None:
    seed_exchanges(engine)
    upsert_instrument(
        engine,
        "AAPL",
        name="Apple",
        exchange_code="NASDAQ",
        sector="Technology",
        industry="Consumer Electronics",
    )
    upsert_instrument(
        engine,
        "MSFT",
        name="Microsoft",
        exchange_code="NASDAQ",
        sector="Technology",
        industry="Software - Infrastructure",
    )
    upsert_instrument(engine, "BP.L", name="BP", sector="Energy", industry="Oil & Gas Integrated")
    upsert_instrument(
        engine,
        "SHOP.TO",
        name="Shopify",
        sector="Technology",
        industry="Software - Application",
        active=False,
    )


def test_list_instruments_when_unfiltered_then_all_by_symbol(migrated: Engine) -> None:
    seed_master(migrated)

    rows = list_instruments(migrated)

    assert [r.symbol for r in rows] == ["AAPL", "BP.L", "MSFT", "SHOP.TO"]
    assert rows[1] == InstrumentRecord(
        symbol="BP.L",
        name="BP",
        exchange="LSE",
        sector="Energy",
        industry="Oil & Gas Integrated",
        currency="GBP",
        active=True,
    )
    assert rows[3].active is False


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"exchange": "NASDAQ"}, ["AAPL", "MSFT"]),
        ({"exchange": "tsx"}, ["SHOP.TO"]),
        ({"sector": "Technology"}, ["AAPL", "MSFT", "SHOP.TO"]),
        ({"sector": "technology", "exchange": "NASDAQ"}, ["AAPL", "MSFT"]),
        ({"industry": "Software - Application"}, ["SHOP.TO"]),
        ({"sector": "Utilities"}, []),
        ({"limit": 2}, ["AAPL", "BP.L"]),
    ],
)
def test_list_instruments_when_filtered_then_only_matches(
    migrated: Engine, filters: dict, expected: list[str]
) -> None:
    seed_master(migrated)

    assert [r.symbol for r in list_instruments(migrated, **filters)] == expected
