"""The exchange table, Yahoo suffixes and symbol spelling."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo

import pytest

from engine.persistence.models import Exchange
from feeds.exchanges import (
    EXCHANGES,
    US_LISTING,
    ExchangeInfo,
    UnknownExchange,
    exchange,
    exchange_for,
    exchange_for_yahoo_code,
    yahoo_symbol,
)

REQUIRED = {
    "NYSE": "",
    "NASDAQ": "",
    "NYSEAMERICAN": "",
    "LSE": ".L",
    "TSX": ".TO",
    "TSXV": ".V",
    "XETRA": ".DE",
    "EPA": ".PA",
    "AMS": ".AS",
    "BIT": ".MI",
    "BME": ".MC",
    "SIX": ".SW",
    "TSE": ".T",
    "HKEX": ".HK",
    "ASX": ".AX",
    "NSE": ".NS",
    "BSE": ".BO",
    "SSE": ".SS",
    "SZSE": ".SZ",
    "KRX": ".KS",
}


@pytest.mark.parametrize(("code", "suffix"), sorted(REQUIRED.items()))
def test_table_has_the_exchange_with_its_yahoo_suffix(code: str, suffix: str) -> None:
    assert exchange(code).suffix == suffix


def test_table_keys_are_unique() -> None:
    for key in ("code", "mic", "name"):
        values = [getattr(x, key) for x in EXCHANGES]
        assert len(values) == len(set(values)), key
    suffixes = [x.suffix for x in EXCHANGES if x.suffix]
    assert len(suffixes) == len(set(suffixes))
    yahoo_codes = [c for x in EXCHANGES for c in x.yahoo_codes]
    assert len(yahoo_codes) == len(set(yahoo_codes))


@pytest.mark.parametrize("venue", EXCHANGES, ids=lambda x: x.code)
def test_every_row_is_well_formed(venue: ExchangeInfo) -> None:
    ZoneInfo(venue.timezone)
    assert re.fullmatch(r"[A-Z]{3}", venue.currency)
    assert re.fullmatch(r"[A-Z]{4}", venue.mic)
    assert venue.suffix == "" or re.fullmatch(r"\.[A-Z]{1,3}", venue.suffix)
    assert venue.yahoo_codes, "Yahoo's exchange code is how fundamentals find the venue"
    # Fits the exchanges table.
    fields = venue.model_fields()
    assert len(fields["code"]) <= 16 and len(fields["name"]) <= 128
    assert len(fields["yfinance_suffix"]) <= 8
    row = Exchange(**fields)
    assert (row.code, row.yfinance_suffix, row.timezone) == (
        venue.code,
        venue.suffix,
        venue.timezone,
    )


def test_minor_unit_marks_the_exchanges_yahoo_quotes_in_hundredths() -> None:
    assert {x.code for x in EXCHANGES if x.minor_unit} == {"LSE", "JSE", "TASE"}


@pytest.mark.parametrize(
    ("symbol", "code"),
    [
        ("VOD.L", "LSE"),
        ("vod.l", "LSE"),
        ("SHOP.TO", "TSX"),
        ("RCI-B.TO", "TSX"),
        ("SAP.DE", "XETRA"),
        ("MC.PA", "EPA"),
        ("ASML.AS", "AMS"),
        ("ENI.MI", "BIT"),
        ("SAN.MC", "BME"),
        ("NESN.SW", "SIX"),
        ("7203.T", "TSE"),
        ("0700.HK", "HKEX"),
        ("BHP.AX", "ASX"),
        ("RELIANCE.NS", "NSE"),
        ("RELIANCE.BO", "BSE"),
        ("600519.SS", "SSE"),
        ("000858.SZ", "SZSE"),
        ("005930.KS", "KRX"),
        ("2330.TW", "TWSE"),
        ("AAPL", "US"),
        ("BRK-B", "US"),
    ],
)
def test_exchange_for_reads_the_suffix(symbol: str, code: str) -> None:
    found = exchange_for(symbol)
    assert found is not None and found.code == code


def test_exchange_for_bare_symbol_then_us_listing_with_calendar() -> None:
    found = exchange_for("AAPL")

    assert found is US_LISTING
    assert (found.timezone, found.currency, found.country) == (
        "America/New_York",
        "USD",
        "United States",
    )
    assert US_LISTING not in EXCHANGES


@pytest.mark.parametrize("symbol", ["^GSPC", "EURUSD=X", "ES=F", ""])
def test_exchange_for_index_fx_future_then_none(symbol: str) -> None:
    assert exchange_for(symbol) is None


@pytest.mark.parametrize("symbol", ["BRK.B", "VOD.XX", ".L"])
def test_exchange_for_unknown_suffix_then_unknown_exchange(symbol: str) -> None:
    with pytest.raises(UnknownExchange, match="suffix"):
        exchange_for(symbol)


@pytest.mark.parametrize(
    ("yahoo_code", "code"),
    [
        *[("NMS", "NASDAQ"), ("NGM", "NASDAQ"), ("NYQ", "NYSE"), ("ASE", "NYSEAMERICAN")],
        *[("PCX", "NYSEARCA"), ("LSE", "LSE"), ("TOR", "TSX"), ("GER", "XETRA")],
        *[("JPX", "TSE"), ("HKG", "HKEX"), ("nsi", "NSE")],
    ],
)
def test_exchange_for_yahoo_code(yahoo_code: str, code: str) -> None:
    found = exchange_for_yahoo_code(yahoo_code)
    assert found is not None and found.code == code


def test_exchange_for_yahoo_code_when_unknown_then_none() -> None:
    assert exchange_for_yahoo_code("XYZ") is None


@pytest.mark.parametrize(
    ("symbol", "code", "expected"),
    [
        ("VOD", "LSE", "VOD.L"),
        ("VOD.L", "LSE", "VOD.L"),
        ("vod", "lse", "VOD.L"),
        ("SHOP", "TSX", "SHOP.TO"),
        ("RCI.B", "TSX", "RCI-B.TO"),
        ("BRK.B", "NYSE", "BRK-B"),
        ("AAPL", "NASDAQ", "AAPL"),
        ("AAPL", "US", "AAPL"),
        ("700", "HKEX", "0700.HK"),
        ("700.HK", "HKEX", "0700.HK"),
        ("7203", "TSE", "7203.T"),
        ("005930", "KRX", "005930.KS"),
    ],
)
def test_yahoo_symbol_spells_it_yahoos_way(symbol: str, code: str, expected: str) -> None:
    assert yahoo_symbol(symbol, code) == expected


def test_yahoo_symbol_when_symbol_names_another_exchange_then_refused() -> None:
    with pytest.raises(UnknownExchange, match="already names LSE"):
        yahoo_symbol("VOD.L", "TSX")


def test_yahoo_symbol_when_exchange_unknown_then_refused() -> None:
    with pytest.raises(UnknownExchange, match="unknown exchange code 'MARS'"):
        yahoo_symbol("VOD", "MARS")


@pytest.mark.parametrize("venue", [x for x in EXCHANGES if x.suffix], ids=lambda x: x.code)
def test_yahoo_symbol_and_exchange_for_round_trip(venue: ExchangeInfo) -> None:
    assert exchange_for(yahoo_symbol("ABC", venue.code)) == venue
