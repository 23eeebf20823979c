"""Listing exchanges and how Yahoo spells their symbols.

Yahoo appends a suffix to every non-US symbol (``VOD`` on the LSE is ``VOD.L``, ``SHOP``
on the TSX is ``SHOP.TO``); US listings (NYSE, Nasdaq, NYSE American, NYSE Arca) have
none, so a bare symbol cannot tell them apart — :func:`exchange_for` answers
:data:`US_LISTING` for it (right country, timezone and currency); the listing venue
itself comes from the fundamentals (``Fundamentals.exchange``). Yahoo spells share
classes with ``-`` (``BRK-B``, ``RCI-B.TO``), Hong Kong codes with four digits
(``0700.HK``).

The table is data: :data:`EXCHANGES` seeds the ``exchanges`` table
(:meth:`ExchangeInfo.model_fields`); ``yahoo_codes`` are the codes Yahoo reports in
``info["exchange"]`` and the chart's ``meta.exchangeName``. ``minor_unit`` marks
exchanges whose prices Yahoo quotes in the currency's minor unit (``GBp`` pence on the
LSE, ``ZAc`` on the JSE, ``ILA`` agorot on the TASE) — the normalizer must divide
those prices by 100 before they meet prices in the major unit.
"""

from __future__ import annotations

from typing import Final

import msgspec


class UnknownExchange(ValueError):
    """An exchange code or Yahoo suffix that is not in the table."""


class ExchangeInfo(msgspec.Struct, frozen=True, kw_only=True):
    """One listing venue."""

    code: str
    """QSuite's short code (``LSE``, ``NASDAQ``, ``TSX``) — ``exchanges.code``."""
    name: str
    mic: str
    """ISO 10383 market identifier code."""
    suffix: str
    """Yahoo's symbol suffix with its dot (``.L``), empty for US listings."""
    country: str
    timezone: str
    """IANA zone of the trading calendar."""
    currency: str
    """ISO 4217 currency of the prices (see ``minor_unit``)."""
    yahoo_codes: tuple[str, ...] = ()
    minor_unit: bool = False
    """Yahoo quotes prices in hundredths of ``currency`` (pence, cents, agorot)."""

    def model_fields(self) -> dict[str, str]:
        """Column values of :class:`engine.persistence.models.Exchange` for this venue."""
        return {
            "code": self.code,
            "name": self.name,
            "yfinance_suffix": self.suffix,
            "country": self.country,
            "timezone": self.timezone,
            "currency": self.currency,
        }


#: ISO 3166 alpha-2 → (country, IANA timezone of its exchanges, ISO 4217 currency).
_COUNTRIES: Final = {
    "US": ("United States", "America/New_York", "USD"),
    "CA": ("Canada", "America/Toronto", "CAD"),
    "BR": ("Brazil", "America/Sao_Paulo", "BRL"),
    "MX": ("Mexico", "America/Mexico_City", "MXN"),
    "GB": ("United Kingdom", "Europe/London", "GBP"),
    "DE": ("Germany", "Europe/Berlin", "EUR"),
    "FR": ("France", "Europe/Paris", "EUR"),
    "NL": ("Netherlands", "Europe/Amsterdam", "EUR"),
    "BE": ("Belgium", "Europe/Brussels", "EUR"),
    "PT": ("Portugal", "Europe/Lisbon", "EUR"),
    "IE": ("Ireland", "Europe/Dublin", "EUR"),
    "IT": ("Italy", "Europe/Rome", "EUR"),
    "ES": ("Spain", "Europe/Madrid", "EUR"),
    "CH": ("Switzerland", "Europe/Zurich", "CHF"),
    "SE": ("Sweden", "Europe/Stockholm", "SEK"),
    "FI": ("Finland", "Europe/Helsinki", "EUR"),
    "DK": ("Denmark", "Europe/Copenhagen", "DKK"),
    "NO": ("Norway", "Europe/Oslo", "NOK"),
    "AT": ("Austria", "Europe/Vienna", "EUR"),
    "PL": ("Poland", "Europe/Warsaw", "PLN"),
    "TR": ("Turkey", "Europe/Istanbul", "TRY"),
    "GR": ("Greece", "Europe/Athens", "EUR"),
    "JP": ("Japan", "Asia/Tokyo", "JPY"),
    "HK": ("Hong Kong", "Asia/Hong_Kong", "HKD"),
    "CN": ("China", "Asia/Shanghai", "CNY"),
    "KR": ("South Korea", "Asia/Seoul", "KRW"),
    "TW": ("Taiwan", "Asia/Taipei", "TWD"),
    "SG": ("Singapore", "Asia/Singapore", "SGD"),
    "AU": ("Australia", "Australia/Sydney", "AUD"),
    "NZ": ("New Zealand", "Pacific/Auckland", "NZD"),
    "IN": ("India", "Asia/Kolkata", "INR"),
    "ID": ("Indonesia", "Asia/Jakarta", "IDR"),
    "MY": ("Malaysia", "Asia/Kuala_Lumpur", "MYR"),
    "TH": ("Thailand", "Asia/Bangkok", "THB"),
    "IL": ("Israel", "Asia/Jerusalem", "ILS"),
    "SA": ("Saudi Arabia", "Asia/Riyadh", "SAR"),
    "ZA": ("South Africa", "Africa/Johannesburg", "ZAR"),
}


def _x(
    code: str, name: str, mic: str, suffix: str, iso: str, *yahoo: str, minor: bool = False
) -> ExchangeInfo:
    country, tz, currency = _COUNTRIES[iso]
    return ExchangeInfo(
        code=code,
        name=name,
        mic=mic,
        suffix=suffix,
        country=country,
        timezone=tz,
        currency=currency,
        yahoo_codes=yahoo,
        minor_unit=minor,
    )


EXCHANGES: Final[tuple[ExchangeInfo, ...]] = (
    # Americas
    _x("NYSE", "New York Stock Exchange", "XNYS", "", "US", "NYQ"),
    _x("NASDAQ", "Nasdaq", "XNAS", "", "US", "NMS", "NGM", "NCM", "NAS"),
    _x("NYSEAMERICAN", "NYSE American", "XASE", "", "US", "ASE"),
    _x("NYSEARCA", "NYSE Arca", "ARCX", "", "US", "PCX"),
    _x("TSX", "Toronto Stock Exchange", "XTSE", ".TO", "CA", "TOR"),
    _x("TSXV", "TSX Venture Exchange", "XTSX", ".V", "CA", "VAN"),
    _x("CSE", "Canadian Securities Exchange", "XCNQ", ".CN", "CA", "CNQ"),
    _x("NEO", "Cboe Canada", "NEOE", ".NE", "CA", "NEO"),
    _x("B3", "B3", "BVMF", ".SA", "BR", "SAO"),
    _x("BMV", "Bolsa Mexicana de Valores", "XMEX", ".MX", "MX", "MEX"),
    # Europe
    _x("LSE", "London Stock Exchange", "XLON", ".L", "GB", "LSE", minor=True),
    _x("XETRA", "Xetra", "XETR", ".DE", "DE", "GER"),
    _x("FRA", "Frankfurt Stock Exchange", "XFRA", ".F", "DE", "FRA"),
    _x("EPA", "Euronext Paris", "XPAR", ".PA", "FR", "PAR"),
    _x("AMS", "Euronext Amsterdam", "XAMS", ".AS", "NL", "AMS"),
    _x("EBR", "Euronext Brussels", "XBRU", ".BR", "BE", "BRU"),
    _x("ELI", "Euronext Lisbon", "XLIS", ".LS", "PT", "LIS"),
    _x("ISE", "Euronext Dublin", "XDUB", ".IR", "IE", "ISE"),
    _x("BIT", "Euronext Milan (Borsa Italiana)", "XMIL", ".MI", "IT", "MIL"),
    _x("BME", "Bolsa de Madrid", "XMAD", ".MC", "ES", "MCE"),
    _x("SIX", "SIX Swiss Exchange", "XSWX", ".SW", "CH", "EBS"),
    _x("STO", "Nasdaq Stockholm", "XSTO", ".ST", "SE", "STO"),
    _x("HEL", "Nasdaq Helsinki", "XHEL", ".HE", "FI", "HEL"),
    _x("CPH", "Nasdaq Copenhagen", "XCSE", ".CO", "DK", "CPH"),
    _x("OSL", "Euronext Oslo Børs", "XOSL", ".OL", "NO", "OSL"),
    _x("VIE", "Wiener Börse", "XWBO", ".VI", "AT", "VIE"),
    _x("WSE", "Warsaw Stock Exchange", "XWAR", ".WA", "PL", "WSE"),
    _x("BIST", "Borsa Istanbul", "XIST", ".IS", "TR", "IST"),
    _x("ATHEX", "Athens Stock Exchange", "XATH", ".AT", "GR", "ATH"),
    # Asia-Pacific
    _x("TSE", "Tokyo Stock Exchange", "XTKS", ".T", "JP", "JPX"),
    _x("HKEX", "Hong Kong Exchange", "XHKG", ".HK", "HK", "HKG"),
    _x("SSE", "Shanghai Stock Exchange", "XSHG", ".SS", "CN", "SHH"),
    _x("SZSE", "Shenzhen Stock Exchange", "XSHE", ".SZ", "CN", "SHZ"),
    _x("KRX", "Korea Exchange (KOSPI)", "XKRX", ".KS", "KR", "KSC"),
    _x("KOSDAQ", "KOSDAQ", "XKOS", ".KQ", "KR", "KOE"),
    _x("TWSE", "Taiwan Stock Exchange", "XTAI", ".TW", "TW", "TAI"),
    _x("TPEX", "Taipei Exchange", "ROCO", ".TWO", "TW", "TWO"),
    _x("SGX", "Singapore Exchange", "XSES", ".SI", "SG", "SES"),
    _x("ASX", "Australian Securities Exchange", "XASX", ".AX", "AU", "ASX"),
    _x("NZX", "New Zealand Exchange", "XNZE", ".NZ", "NZ", "NZE"),
    _x("NSE", "National Stock Exchange of India", "XNSE", ".NS", "IN", "NSI"),
    _x("BSE", "BSE (Bombay Stock Exchange)", "XBOM", ".BO", "IN", "BSE"),
    _x("IDX", "Indonesia Stock Exchange", "XIDX", ".JK", "ID", "JKT"),
    _x("BURSA", "Bursa Malaysia", "XKLS", ".KL", "MY", "KLS"),
    _x("SET", "Stock Exchange of Thailand", "XBKK", ".BK", "TH", "SET"),
    # Middle East and Africa
    _x("TASE", "Tel Aviv Stock Exchange", "XTAE", ".TA", "IL", "TLV", minor=True),
    _x("TADAWUL", "Saudi Exchange (Tadawul)", "XSAU", ".SR", "SA", "SAU"),
    _x("JSE", "Johannesburg Stock Exchange", "XJSE", ".JO", "ZA", "JNB", minor=True),
)

US_LISTING: Final = _x("US", "US listing (NYSE, Nasdaq, NYSE American or NYSE Arca)", "", "", "US")
"""What a bare symbol (no suffix) tells: a US listing, venue unknown. Not a table row."""

_BY_CODE: Final = {x.code: x for x in EXCHANGES}
_BY_SUFFIX: Final = {x.suffix[1:]: x for x in EXCHANGES if x.suffix}
_BY_YAHOO_CODE: Final = {c: x for x in EXCHANGES for c in x.yahoo_codes}


def exchange(code: str) -> ExchangeInfo:
    """The exchange with QSuite code ``code`` (``US`` is :data:`US_LISTING`)."""
    found = US_LISTING if code.upper() == US_LISTING.code else _BY_CODE.get(code.upper())
    if found is None:
        raise UnknownExchange(f"unknown exchange code {code!r}; known: {', '.join(_BY_CODE)}")
    return found


def exchange_for(symbol: str) -> ExchangeInfo | None:
    """The exchange a Yahoo symbol is listed on, from its suffix.

    A bare symbol answers :data:`US_LISTING`; indices (``^GSPC``), currencies
    (``EURUSD=X``) and futures (``ES=F``) have no listing venue and answer ``None``.
    Raises :class:`UnknownExchange` for a suffix not in the table (``BRK.B`` — Yahoo
    spells share classes ``BRK-B``).
    """
    sym = symbol.strip().upper()
    if not sym or sym.startswith("^") or "=" in sym:
        return None
    base, dot, suffix = sym.rpartition(".")
    if not dot:
        return US_LISTING
    found = _BY_SUFFIX.get(suffix)
    if found is None or not base:
        raise UnknownExchange(
            f"unknown exchange suffix '.{suffix}' in {symbol!r}; Yahoo spells share classes "
            f"with '-' (BRK-B) and suffixes are one of: {', '.join(sorted(_BY_SUFFIX))}"
        )
    return found


def exchange_for_yahoo_code(code: str) -> ExchangeInfo | None:
    """The exchange behind a code Yahoo reports (``NMS`` → Nasdaq), None if unknown."""
    return _BY_YAHOO_CODE.get(code.strip().upper())


def yahoo_symbol(symbol: str, exchange_code: str) -> str:
    """Yahoo's spelling of ``symbol`` listed on ``exchange_code``.

    ``("VOD", "LSE")`` → ``VOD.L``, ``("BRK.B", "NYSE")`` → ``BRK-B``,
    ``("700", "HKEX")`` → ``0700.HK``; a symbol already carrying the exchange's suffix
    is returned as is, one carrying another exchange's suffix is refused.
    """
    venue = exchange(exchange_code)
    sym = symbol.strip().upper()
    if not sym:
        raise ValueError("empty symbol")
    if venue.suffix and sym.endswith(venue.suffix) and len(sym) > len(venue.suffix):
        sym = sym[: -len(venue.suffix)]
    else:
        suffix = sym.rpartition(".")[2]
        if "." in sym and suffix in _BY_SUFFIX:
            raise UnknownExchange(
                f"{symbol!r} already names {_BY_SUFFIX[suffix].code} ('.{suffix}'), "
                f"not {venue.code}"
            )
    base = sym.replace(".", "-")
    if venue.code == "HKEX" and base.isdigit():
        base = base.zfill(4)
    return base + venue.suffix
