"""The market-data read side (CQRS query side): the feed's query commands.

:class:`MarketQueries` answers :class:`~engine.bus.commands.market.GetBars`,
``GetQuotes``, ``GetFundamentals``, ``ListInstruments`` and ``GetIngestionLog`` from the
read model — the database (bars, instrument master, ingestion log) and the price cache
(latest quotes) — never from a source, so a query does not wait on Yahoo or on
ingestion. It only reads: on PostgreSQL its connections are read-only transactions.

Refusals are :class:`~engine.errors.CommandError` with a message for the operator:
``invalid`` for arguments that cannot be answered (unknown interval, empty range, an
unknown exchange code), ``not_found`` for fundamentals never stored, ``unavailable``
when the database cannot be reached. A symbol without bars is an empty series.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC

import msgspec
from sqlalchemy import Engine
from sqlalchemy import exc as sa_exc

from engine.bus.commands.market import (
    BarSeries,
    FundamentalsResult,
    GetBars,
    GetFundamentals,
    GetIngestionLog,
    GetQuotes,
    IngestionLog,
    IngestionRow,
    InstrumentList,
    InstrumentRow,
    ListInstruments,
    QuoteRow,
    QuoteSnapshot,
)
from engine.clock import Clock
from engine.errors import CommandError, ErrorCode
from engine.intervals import INTERVAL_SECONDS
from engine.persistence.bars import load_bars
from engine.persistence.ingestion import recent_runs
from engine.persistence.instruments import latest_fundamentals, list_instruments
from engine.service import ServiceContext
from feeds.cache import CachedQuote, PriceCache
from feeds.exchanges import (
    EXCHANGES,
    US_LISTING,
    ExchangeInfo,
    UnknownExchange,
    exchange,
    exchange_for_yahoo_code,
)


class MarketQueries:
    """Handlers of the market-data query commands.

    :param engine: the database; the queries open their own (read-only) connections.
    :param cache: the shared price cache (quotes).
    :param clock: injected time (the age of cached quotes).
    """

    def __init__(self, engine: Engine, cache: PriceCache, *, clock: Clock) -> None:
        self._engine = (
            engine.execution_options(postgresql_readonly=True)
            if engine.dialect.name == "postgresql"
            else engine
        )
        self._cache = cache
        self._clock = clock

    def register(self, ctx: ServiceContext) -> None:
        """Serve every query command of this class in ``ctx``'s process."""
        ctx.register_command(GetBars, self.bars)
        ctx.register_command(GetQuotes, self.quotes)
        ctx.register_command(GetFundamentals, self.fundamentals)
        ctx.register_command(ListInstruments, self.instruments)
        ctx.register_command(GetIngestionLog, self.ingestion_log)

    def bars(self, cmd: GetBars) -> BarSeries:
        """Stored bars of ``[start, end)``, at most ``limit`` (the newest ones with
        ``newest``), oldest first; an empty series when none are stored."""
        if cmd.interval not in INTERVAL_SECONDS:
            raise CommandError(
                ErrorCode.INVALID,
                f"unknown interval {cmd.interval!r}; use one of {', '.join(INTERVAL_SECONDS)}",
            )
        if cmd.start is not None and cmd.end is not None and cmd.start >= cmd.end:
            raise CommandError(
                ErrorCode.INVALID,
                f"empty range: start {cmd.start} must be before end {cmd.end} (UTC ns)",
            )
        with self._database("read bars"):
            rows = load_bars(
                self._engine,
                cmd.symbol,
                cmd.interval,
                cmd.start,
                cmd.end,
                cmd.limit,
                newest=cmd.newest,
            )
        return BarSeries(
            symbol=cmd.symbol,
            interval=cmd.interval,
            ts=[r.ts for r in rows],
            open=[r.open for r in rows],
            high=[r.high for r in rows],
            low=[r.low for r in rows],
            close=[r.close for r in rows],
            volume=[r.volume for r in rows],
            flags=[r.flags for r in rows],
            source=[r.source for r in rows],
        )

    def quotes(self, cmd: GetQuotes) -> QuoteSnapshot:
        """Cached quotes of ``cmd.symbols`` in the order asked (every cached quote, by
        symbol, when none are named); ``missing`` lists the symbols without one."""
        if cmd.symbols:
            wanted = list(dict.fromkeys(cmd.symbols))
            entries = self._cache.quote_entries(wanted)
            missing = [symbol for symbol in wanted if symbol not in entries]
        else:
            entries = dict(sorted(self._cache.snapshot().items()))
            missing = []
        now = self._clock.time_ns()
        return QuoteSnapshot(
            quotes=[_quote_row(entry, now) for entry in entries.values()], missing=missing
        )

    def fundamentals(self, cmd: GetFundamentals) -> FundamentalsResult:
        """The newest stored fundamentals of ``cmd.symbol``."""
        with self._database("read fundamentals"):
            found = latest_fundamentals(self._engine, cmd.symbol)
        if found is None:
            raise CommandError(
                ErrorCode.NOT_FOUND,
                f"no fundamentals stored for {cmd.symbol}; run `qsuite ctl jobs run "
                f"fundamentals` or wait for the daily refresh",
            )
        return FundamentalsResult(
            fundamentals=found,
        )

    def instruments(self, cmd: ListInstruments) -> InstrumentList:
        """Instruments of the master, by symbol, filtered by exchange, sector, industry."""
        code = None if cmd.exchange is None else _exchange_code(cmd.exchange)
        with self._database("list instruments"):
            records = list_instruments(
                self._engine,
                exchange=code,
                sector=cmd.sector,
                industry=cmd.industry,
                limit=cmd.limit,
            )
        return InstrumentList(instruments=[InstrumentRow(**r._asdict()) for r in records])

    def ingestion_log(self, cmd: GetIngestionLog) -> IngestionLog:
        """The latest ingestion runs, newest first, optionally of one job."""
        with self._database("read the ingestion log"):
            runs = recent_runs(self._engine, cmd.job, cmd.limit)
        return IngestionLog(
            runs=[
                IngestionRow(
                    id=run.id,
                    job=run.job,
                    source=run.source,
                    symbols=list(run.symbols),
                    interval=run.interval,
                    rows=run.rows,
                    status=run.status,
                    started_at=run.started_at.astimezone(UTC).isoformat(),
                    duration_s=run.duration_s,
                    error=run.error,
                )
                for run in runs
            ]
        )

    @contextmanager
    def _database(self, action: str) -> Iterator[None]:
        try:
            yield
        except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
            reason = str(exc.orig or exc).strip().splitlines()[0]
            raise CommandError(
                ErrorCode.UNAVAILABLE, f"Cannot {action}: the database is unreachable ({reason})"
            ) from exc


def _quote_row(entry: CachedQuote, now_ns: int) -> QuoteRow:
    quote = msgspec.structs.asdict(entry.quote)
    return QuoteRow(**quote, mode=entry.mode, age_s=entry.age_s(now_ns))


def _exchange_code(code: str) -> str:
    """QSuite's code of the exchange an operator named (a QSuite or a Yahoo code)."""
    known = ", ".join(x.code for x in EXCHANGES)
    try:
        found: ExchangeInfo | None = exchange(code)
    except UnknownExchange:
        found = exchange_for_yahoo_code(code)
    if found is None:
        raise CommandError(ErrorCode.INVALID, f"unknown exchange {code!r}; use one of {known}")
    if found is US_LISTING:
        raise CommandError(
            ErrorCode.INVALID,
            f"{code!r} names no single exchange; use NYSE, NASDAQ, NYSEAMERICAN or NYSEARCA",
        )
    return found.code
