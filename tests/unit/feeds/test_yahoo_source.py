"""YahooSource through the real yfinance code, against Yahoo's recorded answers.

A fake transport plays Yahoo's hosts (the cookie and crumb dance, the v8 chart API,
quoteSummary, the v7 quote, fundamentals-timeseries) from tests/fixtures/yahoo; the
network itself is out of reach (see ``no_network``). yfinance's disk caches are its own
dummies here, so every call redoes the cookie fetch and the timezone probe (in
production the A3 cookie and each symbol's timezone are cached under the state dir).
"""

from __future__ import annotations

import json
import random
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import pytest
import requests
import yfinance as yf
import yfinance.base
import yfinance.cache
import yfinance.data
from curl_cffi import requests as curl_requests
from curl_cffi.requests.headers import Headers
from curl_cffi.requests.models import Response

import feeds.yahoo as yahoo_module
from engine.clock import FakeClock
from engine.stats import StatsRegistry
from feeds.ratelimit import RATE_LIMITED_METRIC, REQUESTS_METRIC, RequestGate
from feeds.schema import NS, IntervalError, Quote
from feeds.source import RateLimited, SourceDataError, SourceUnavailable, SymbolNotFound
from feeds.yahoo import RAW_COLUMNS, YahooSettings, YahooSource

# yfinance 1.7 still uses pandas' deprecated inplace=; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword:DeprecationWarning")

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "yahoo"
CHART = "query2.finance.yahoo.com/v8/finance/chart/"


def ns(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp()) * NS  # type: ignore[misc]


NOW = ns(2024, 6, 18, 20, 5)


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def respond(
    body: dict[str, Any] | str | bytes,
    status: int = 200,
    url: str = "",
    headers: dict[str, str] | None = None,
) -> Response:
    """A curl_cffi response, as the network would hand it to yfinance."""
    r = Response()
    r.status_code = status
    r.reason = {200: "OK", 404: "Not Found", 429: "Too Many Requests"}.get(status, "Error")
    r.ok = status < 400
    r.url = url
    kind = "application/json;charset=utf-8" if isinstance(body, dict) else "text/html"
    r.headers = Headers({"Content-Type": kind, **(headers or {})})
    raw = json.dumps(body) if isinstance(body, dict) else body
    r.content = raw.encode() if isinstance(raw, str) else raw
    return r


def slice_chart(body: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """What Yahoo answers for ``period1 <= t < period2`` out of a recorded chart."""
    body = json.loads(json.dumps(body))
    result = body["chart"]["result"][0]
    lo, hi = int(params["period1"]), int(params["period2"])
    stamps = result.pop("timestamp", [])
    keep = [lo <= t < hi for t in stamps]
    indicators = result["indicators"]
    quote = {
        k: [x for x, k_ in zip(v, keep, strict=True) if k_]
        for k, v in indicators["quote"][0].items()
    }
    if any(keep):
        result["timestamp"] = [t for t, k in zip(stamps, keep, strict=True) if k]
        indicators["quote"] = [quote]
        if "adjclose" in indicators:
            adj = indicators["adjclose"][0]["adjclose"]
            indicators["adjclose"] = [
                {"adjclose": [x for x, k in zip(adj, keep, strict=True) if k]}
            ]
    else:
        indicators["quote"] = [{}]
        if "adjclose" in indicators:
            indicators["adjclose"] = [{}]
    for kind, events in result.get("events", {}).items():
        result["events"][kind] = {k: e for k, e in events.items() if lo <= e["date"] < hi}
    return body


Handler = Callable[[dict[str, Any]], Response]


class FakeYahoo:
    """Yahoo's hosts, as far as yfinance talks to them."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = []
        self.charts: dict[str, Handler] = {}
        self.summaries: dict[str, dict[str, Any]] = {}
        self.v7: dict[str, dict[str, Any]] = {}
        self.timeseries: dict[str, dict[str, Any]] = {}
        self.fail: Callable[[str], None] | None = None

    def chart(self, symbol: str, history: str | Handler | None = None, range1d: str = "") -> None:
        """Serve ``symbol``'s range=1d probe from ``range1d`` and its history requests from
        ``history`` (a recorded chart, sliced to the requested period, or a handler)."""
        day = load(range1d) if range1d else None

        def handle(params: dict[str, Any]) -> Response:
            if "range" in params:
                return respond(day) if day else respond(load("chart_TWTR_not_found.json"), 404)
            if callable(history):
                return history(params)
            assert history is not None
            return respond(slice_chart(load(history), params))

        self.charts[symbol] = handle

    def calls_to(self, prefix: str) -> list[dict[str, Any]]:
        return [params for _, where, params, _ in self.calls if where.startswith(prefix)]

    def __call__(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        parts = urlsplit(url)
        where = f"{parts.hostname}{parts.path}"
        params = dict(kwargs.get("params") or {})
        self.calls.append((method, where, params, kwargs))
        if self.fail is not None:
            self.fail(where)
        r = self._route(parts.hostname or "", parts.path, params)
        r.url = url
        return r

    def _route(self, host: str, path: str, params: dict[str, Any]) -> Response:
        if host == "fc.yahoo.com":
            return respond("<html><body>404 Not Found</body></html>", 404)
        if path == "/v1/test/getcrumb":
            return respond("Cx5sM9kQ.9Fq")
        if host == "guce.yahoo.com":
            return respond("<html><body>Consent</body></html>")
        symbol = path.rsplit("/", 1)[-1]
        if path.startswith("/v8/finance/chart/"):
            handler = self.charts.get(symbol)
            return handler(params) if handler else respond(load("chart_TWTR_not_found.json"), 404)
        if path.startswith("/v10/finance/quoteSummary/"):
            found = self.summaries.get(symbol)
            if found is None:
                body = load("quoteSummary_TWTR_not_found.json")
                body["quoteSummary"]["error"]["description"] = (
                    f"Quote not found for symbol: {symbol}"
                )
                return respond(body, 404)
            return respond(found)
        if path == "/v7/finance/quote":
            found = self.v7.get(params.get("symbols", ""))
            return respond(found or {"quoteResponse": {"result": [], "error": None}})
        if path.startswith("/ws/fundamentals-timeseries/"):
            return respond(
                self.timeseries.get(symbol) or {"timeseries": {"result": [], "error": None}}
            )
        pytest.fail(f"unexpected request to {host}{path}")


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any path to a real socket fails the test (BaseException: nothing can swallow it)."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        pytest.fail("a test tried to reach the network", pytrace=False)

    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            refuse()
        return real_connect(self, address)

    monkeypatch.setattr(curl_requests.Session, "request", refuse)
    monkeypatch.setattr(requests.Session, "send", refuse)
    monkeypatch.setattr(socket.socket, "connect", connect)


@pytest.fixture(autouse=True)
def fresh_yfinance(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """yfinance's process-wide state (data singleton, response cache, disk caches, config)
    starts clean in every test and is put back afterwards."""
    monkeypatch.setattr(yfinance.data.SingletonMeta, "_instances", {})
    monkeypatch.setattr(yfinance.cache, "get_tz_cache", yfinance.cache._TzCacheDummy)
    monkeypatch.setattr(yfinance.cache, "get_cookie_cache", yfinance.cache._CookieCacheDummy)
    monkeypatch.setattr(yfinance.cache, "set_cache_location", lambda cache_dir: None)
    monkeypatch.setattr(yfinance.base, "_tz_info_fetch_ctr", 0)
    monkeypatch.setattr(yahoo_module, "_yf_configured", False)
    config = (yf.config.debug.hide_exceptions, yf.config.network.retries)
    yfinance.data.YfData.cache_get.cache_clear()
    yield
    yfinance.data.YfData.cache_get.cache_clear()
    yf.config.debug.hide_exceptions, yf.config.network.retries = config


class Env:
    def __init__(self, tmp_path: Path) -> None:
        self.clock = FakeClock(NOW)
        self.sleeps: list[float] = []
        self.stats = StatsRegistry()
        self.fake = FakeYahoo()
        self.gate = RequestGate(
            tmp_path / "state",
            min_interval_s=0.5,
            backoff_base_s=1.0,
            max_wait_s=10.0,
            clock=self.clock,
            sleep=self.sleep,
            rng=random.Random(7),
            stats=self.stats,
        )
        self.source = YahooSource(
            tmp_path, clock=self.clock, stats=self.stats, gate=self.gate, transport=self.fake
        )

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.clock.advance(seconds)

    def requests(self, outcome: str) -> float:
        return self.stats.snapshot().get(f"{REQUESTS_METRIC}{{outcome={outcome},source=yahoo}}", 0)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = Env(tmp_path)
    e.fake.chart("AAPL", "chart_AAPL_1d_2020-08.json", range1d="chart_AAPL_range1d.json")
    yield e
    e.source.close()


def fixture_bars(name: str) -> tuple[list[int], dict[str, list[float]], list[float] | None]:
    result = load(name)["chart"]["result"][0]
    adj = result["indicators"].get("adjclose", [{}])[0].get("adjclose")
    return result["timestamp"], result["indicators"]["quote"][0], adj


# --- history: daily ----------------------------------------------------------------------


def test_history_daily_when_range_recorded_then_frame_in_schema_with_fixture_values(
    env: Env,
) -> None:
    frame = env.source.history("AAPL", "1d", ns(2020, 8, 5), ns(2020, 9, 3))

    stamps, quote, adj = fixture_bars("chart_AAPL_1d_2020-08.json")
    assert list(frame.columns) == list(RAW_COLUMNS)
    assert frame["ts"].dtype == np.int64
    assert all(frame[c].dtype == np.float64 for c in RAW_COLUMNS[1:])
    # A daily bar is stamped at 00:00 UTC of its session's date.
    days = [datetime.fromtimestamp(t, tz=UTC).date() for t in stamps]
    assert frame["ts"].tolist() == [ns(d.year, d.month, d.day) for d in days]
    for column in ("open", "high", "low", "close", "volume"):
        assert frame[column].tolist() == [float(x) for x in quote[column]], column
    assert frame["adj_close"].tolist() == adj
    assert "clipped" not in frame.attrs


def test_history_daily_when_dividend_and_split_in_range_then_columns_carry_them(env: Env) -> None:
    frame = env.source.history("AAPL", "1d", ns(2020, 8, 5), ns(2020, 9, 3)).set_index("ts")

    assert frame.loc[ns(2020, 8, 7), "dividend"] == 0.205
    assert frame["dividend"].drop(ns(2020, 8, 7)).eq(0.0).all()
    assert frame.loc[ns(2020, 8, 31), "split"] == 4.0
    assert frame["split"].drop(ns(2020, 8, 31)).eq(0.0).all()
    # Raw prices are not dividend-adjusted: before the ex-date adj_close < close.
    before = frame.loc[: ns(2020, 8, 6)]
    assert (before["adj_close"] < before["close"]).all()


def test_history_daily_asks_the_v8_chart_api_for_exchange_midnights(env: Env) -> None:
    env.source.history("AAPL", "1d", ns(2020, 8, 5), ns(2020, 9, 3))

    (params,) = [p for p in env.fake.calls_to(CHART + "AAPL") if "period1" in p]
    assert params["period1"] == int(datetime(2020, 8, 5, 4, tzinfo=UTC).timestamp())  # 00:00 EDT
    assert params["period2"] == int(datetime(2020, 9, 3, 4, tzinfo=UTC).timestamp())
    assert params["interval"] == "1d"
    assert params["includePrePost"] is False
    assert params["events"] == "div,splits,capitalGains"
    assert params["crumb"] == "Cx5sM9kQ.9Fq"


def test_history_daily_when_range_ends_mid_day_then_bars_stay_in_half_open_range(env: Env) -> None:
    frame = env.source.history("AAPL", "1d", ns(2020, 8, 6) + 1, ns(2020, 8, 11) + 1)

    assert frame["ts"].tolist() == [ns(2020, 8, 7), ns(2020, 8, 10), ns(2020, 8, 11)]


def test_history_when_range_is_a_weekend_then_empty_frame(env: Env) -> None:
    env.fake.chart(
        "AAPL", lambda p: respond(load("chart_AAPL_1d_weekend.json")), "chart_AAPL_range1d.json"
    )

    frame = env.source.history("AAPL", "1d", ns(2020, 8, 8), ns(2020, 8, 10))

    assert frame.empty
    assert list(frame.columns) == list(RAW_COLUMNS)
    assert frame["ts"].dtype == np.int64 and frame["close"].dtype == np.float64


def test_history_when_interval_unknown_then_interval_error(env: Env) -> None:
    with pytest.raises(IntervalError):
        env.source.history("AAPL", "7m", ns(2024, 6, 17), ns(2024, 6, 18))
    assert env.fake.calls == []


# --- history: intraday -------------------------------------------------------------------


def test_history_1m_when_recorded_then_utc_open_times_and_exact_prices(env: Env) -> None:
    env.fake.chart("AAPL", "chart_AAPL_1m_2024-06-17.json", range1d="chart_AAPL_range1d.json")

    frame = env.source.history("AAPL", "1m", ns(2024, 6, 17, 13, 30), ns(2024, 6, 17, 14))

    stamps, quote, _ = fixture_bars("chart_AAPL_1m_2024-06-17.json")
    assert frame["ts"].tolist() == [t * NS for t in stamps]
    for column in ("open", "high", "low", "close", "volume"):
        assert frame[column].tolist() == [float(x) for x in quote[column]], column
    assert frame["adj_close"].tolist() == frame["close"].tolist()
    assert frame[["dividend", "split"]].eq(0.0).all().all()
    (params,) = [p for p in env.fake.calls_to(CHART + "AAPL") if "period1" in p]
    assert (params["period1"], params["period2"]) == (1718631000, 1718632800)
    assert params["interval"] == "1m"


def test_history_5m_when_whole_session_recorded_then_every_bar_inside_trading_period(
    env: Env,
) -> None:
    env.fake.chart("AAPL", "chart_AAPL_5m_2024-06-18.json", range1d="chart_AAPL_range1d.json")

    frame = env.source.history("AAPL", "5m", ns(2024, 6, 18), ns(2024, 6, 19))

    assert len(frame) == 78
    assert frame["ts"].iloc[0] == ns(2024, 6, 18, 13, 30)
    assert frame["ts"].iloc[-1] == ns(2024, 6, 18, 19, 55)
    assert frame["ts"].diff().dropna().eq(300 * NS).all()


def minute_bars(params: dict[str, Any]) -> Response:
    """A 1m chart with the first five minutes of every weekday session in the period."""
    template = load("chart_AAPL_1m_2024-06-17.json")
    result = template["chart"]["result"][0]
    lo, hi = int(params["period1"]), int(params["period2"])
    stamps, periods = [], []
    day = datetime.fromtimestamp(lo, tz=UTC).replace(hour=0, minute=0, second=0)
    while day.timestamp() < hi:
        if day.weekday() < 5:
            open_s = int(day.timestamp()) + 13 * 3600 + 1800
            periods.append(
                [{"timezone": "EDT", "start": open_s, "end": open_s + 23400, "gmtoffset": -14400}]
            )
            stamps += [t for t in range(open_s, open_s + 300, 60) if lo <= t < hi]
        day += pd.Timedelta(days=1)
    result["meta"]["tradingPeriods"] = periods
    result["timestamp"] = stamps
    n = len(stamps)
    result["indicators"]["quote"] = [
        {
            "open": [200.0] * n,
            "high": [201.0] * n,
            "low": [199.0] * n,
            "close": [200.5] * n,
            "volume": [1000] * n,
        }
    ]
    if not stamps:
        del result["timestamp"]
        result["indicators"]["quote"] = [{}]
    return respond(template)


def test_history_1m_when_range_over_7_days_then_fetched_in_7_day_chunks(env: Env) -> None:
    env.fake.chart("AAPL", minute_bars, range1d="chart_AAPL_range1d.json")

    frame = env.source.history("AAPL", "1m", ns(2024, 6, 3), ns(2024, 6, 15))

    periods = [(p["period1"], p["period2"]) for p in env.fake.calls_to(CHART) if "period1" in p]
    assert periods == [
        (ns(2024, 6, 3) // NS, ns(2024, 6, 10) // NS),
        (ns(2024, 6, 10) // NS, ns(2024, 6, 15) // NS),
    ]
    assert len(frame) == 10 * 5  # ten sessions, five minutes each
    assert frame["ts"].is_monotonic_increasing and frame["ts"].is_unique


def test_history_1m_when_start_older_than_30_days_then_clipped_and_told(env: Env) -> None:
    env.fake.chart("AAPL", minute_bars, range1d="chart_AAPL_range1d.json")

    frame = env.source.history("AAPL", "1m", ns(2024, 5, 1), ns(2024, 5, 22))

    assert (
        frame.attrs["clipped"]
        == "1m history only goes back 30 days; fetched from 2024-05-19 22:00 UTC"
    )
    periods = [(p["period1"], p["period2"]) for p in env.fake.calls_to(CHART) if "period1" in p]
    assert periods == [(ns(2024, 5, 19, 22) // NS, ns(2024, 5, 22) // NS)]
    assert frame["ts"].min() == ns(2024, 5, 20, 13, 30)


def test_history_1m_when_range_entirely_too_old_then_nothing_fetched_and_told(env: Env) -> None:
    frame = env.source.history("AAPL", "1m", ns(2024, 4, 1), ns(2024, 4, 8))

    assert frame.empty and list(frame.columns) == list(RAW_COLUMNS)
    assert frame.attrs["clipped"].startswith("1m history only goes back 30 days; nothing")
    assert env.fake.calls == []


def test_history_when_yahoo_says_range_outside_its_window_then_empty_frame(env: Env) -> None:
    # Our clock and Yahoo's disagree by more than the safety margin: Yahoo answers 422.
    refused = load("chart_AAPL_1m_out_of_window.json")
    env.fake.chart("AAPL", lambda p: respond(refused, 422), range1d="chart_AAPL_range1d.json")

    frame = env.source.history("AAPL", "1m", ns(2024, 5, 19, 22), ns(2024, 5, 22))

    assert frame.empty and list(frame.columns) == list(RAW_COLUMNS)
    assert env.requests("client_error") >= 1


# --- history: errors ---------------------------------------------------------------------


def test_history_when_symbol_delisted_then_symbol_not_found(env: Env) -> None:
    with pytest.raises(SymbolNotFound) as caught:
        env.source.history("TWTR", "1d", ns(2024, 6, 3), ns(2024, 6, 8))

    assert caught.value.symbol == "TWTR" and caught.value.source == "yahoo"
    assert env.requests("not_found") >= 1


def test_history_when_timezone_known_but_chart_says_delisted_then_symbol_not_found(
    env: Env,
) -> None:
    delisted = load("chart_TWTR_not_found.json")
    env.fake.chart("TWTR", lambda p: respond(delisted, 404), range1d="chart_AAPL_range1d.json")

    with pytest.raises(SymbolNotFound, match="No data found, symbol may be delisted"):
        env.source.history("TWTR", "1d", ns(2024, 6, 3), ns(2024, 6, 8))


def test_history_when_timezone_lookup_exhausted_then_symbol_not_found(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(yfinance.base, "_tz_info_fetch_ctr", 2)  # no info() fallback left

    with pytest.raises(SymbolNotFound, match="no timezone found"):
        env.source.history("TWTR", "1d", ns(2024, 6, 3), ns(2024, 6, 8))


def test_history_when_429_then_rate_limited_with_backoff_at_least_retry_after(env: Env) -> None:
    too_many = respond("Too Many Requests\r\n", 429, headers={"Retry-After": "7"})
    env.fake.chart("AAPL", lambda p: too_many, range1d="chart_AAPL_range1d.json")

    with pytest.raises(RateLimited) as caught:
        env.source.history("AAPL", "1d", ns(2020, 8, 5), ns(2020, 9, 3))

    assert caught.value.retry_after_s >= 7.0
    state = env.gate.state()
    assert state.strikes == 1
    assert state.not_before_ns >= env.clock.time_ns() + 7 * NS
    assert env.stats.total(RATE_LIMITED_METRIC) == 1
    assert env.requests("rate_limited") == 1


def test_history_after_429_then_next_request_waits_out_the_jittered_backoff(env: Env) -> None:
    answers = iter([respond("Too Many Requests", 429)])

    def chart(params: dict[str, Any]) -> Response:
        return next(answers, None) or respond(
            slice_chart(load("chart_AAPL_1d_2020-08.json"), params)
        )

    env.fake.chart("AAPL", chart, range1d="chart_AAPL_range1d.json")
    with pytest.raises(RateLimited) as caught:
        env.source.history("AAPL", "1d", ns(2020, 8, 5), ns(2020, 9, 3))
    backoff = caught.value.retry_after_s
    assert 0.5 <= backoff <= 1.0  # full jitter below the first cap (backoff_base_s = 1)
    env.sleeps.clear()

    frame = env.source.history("AAPL", "1d", ns(2020, 8, 5), ns(2020, 9, 3))

    assert len(frame) == 21
    assert env.sleeps[0] == pytest.approx(backoff)
    assert env.gate.state().strikes == 0


def test_history_when_backoff_longer_than_max_wait_then_rate_limited_without_request(
    env: Env,
) -> None:
    too_many = respond("Too Many Requests", 429, headers={"Retry-After": "120"})
    env.fake.chart("AAPL", lambda p: too_many, range1d="chart_AAPL_range1d.json")
    with pytest.raises(RateLimited):
        env.source.history("AAPL", "1d", ns(2020, 8, 5), ns(2020, 9, 3))
    sent = len(env.fake.calls)

    with pytest.raises(RateLimited) as caught:
        env.source.history("AAPL", "1d", ns(2020, 8, 5), ns(2020, 9, 3))

    assert len(env.fake.calls) == sent
    assert caught.value.retry_after_s == pytest.approx(120.0)


def test_history_when_yahoo_times_out_then_source_unavailable(env: Env) -> None:
    def chart(params: dict[str, Any]) -> Response:
        raise curl_requests.exceptions.Timeout("Operation timed out after 3001 milliseconds", 28)

    env.fake.chart("AAPL", chart, range1d="chart_AAPL_range1d.json")

    with pytest.raises(SourceUnavailable, match=r"no answer from query2\.finance\.yahoo\.com"):
        env.source.history("AAPL", "1d", ns(2020, 8, 5), ns(2020, 9, 3))
    assert env.requests("unavailable") == 1


def test_history_when_offline_then_source_unavailable_after_one_attempt(env: Env) -> None:
    def unreachable(where: str) -> None:
        raise curl_requests.exceptions.ConnectionError(
            "Failed to connect to fc.yahoo.com port 443", 7
        )

    env.fake.fail = unreachable

    with pytest.raises(SourceUnavailable, match="Cannot reach Yahoo"):
        env.source.history("AAPL", "1d", ns(2020, 8, 5), ns(2020, 9, 3))
    assert len(env.fake.calls) == 1


def test_history_when_dns_fails_then_source_unavailable_after_the_cookie_fallback(env: Env) -> None:
    def no_dns(where: str) -> None:
        host = where.split("/", 1)[0]
        raise curl_requests.exceptions.DNSError(f"Could not resolve host: {host}", 6)

    env.fake.fail = no_dns

    with pytest.raises(SourceUnavailable, match=r"cannot resolve guce\.yahoo\.com"):
        env.source.history("AAPL", "1d", ns(2020, 8, 5), ns(2020, 9, 3))
    # yfinance may skip fc.yahoo.com (blocklisted by some resolvers) and try its consent
    # strategy; that second failure ends the call.
    assert [where.split("/")[0] for _, where, _, _ in env.fake.calls] == [
        "fc.yahoo.com",
        "guce.yahoo.com",
    ]


def test_history_when_yahoo_answers_5xx_then_source_unavailable(env: Env) -> None:
    env.fake.chart(
        "AAPL", lambda p: respond("<html>Bad Gateway</html>", 502), "chart_AAPL_range1d.json"
    )

    with pytest.raises(SourceUnavailable, match="HTTP 502"):
        env.source.history("AAPL", "1d", ns(2020, 8, 5), ns(2020, 9, 3))


def test_history_when_json_malformed_then_source_data_error(env: Env) -> None:
    truncated = (FIXTURES / "chart_AAPL_1d_2020-08.json").read_bytes()[:700]
    env.fake.chart("AAPL", lambda p: respond(truncated), range1d="chart_AAPL_range1d.json")

    with pytest.raises(SourceDataError, match="Cannot read Yahoo's answer for AAPL"):
        env.source.history("AAPL", "1d", ns(2020, 8, 5), ns(2020, 9, 3))


def test_history_when_fields_missing_then_source_data_error(env: Env) -> None:
    body = load("chart_AAPL_1d_2020-08.json")
    del body["chart"]["result"][0]["meta"]["exchangeTimezoneName"]
    env.fake.chart("AAPL", lambda p: respond(body), range1d="chart_AAPL_range1d.json")

    with pytest.raises(SourceDataError):
        env.source.history("AAPL", "1d", ns(2020, 8, 5), ns(2020, 9, 3))


# --- the session ------------------------------------------------------------------------


def test_every_http_request_goes_through_the_gate_with_our_timeouts(env: Env) -> None:
    env.source.history("AAPL", "1d", ns(2020, 8, 5), ns(2020, 9, 3))

    assert env.stats.total(REQUESTS_METRIC) == len(env.fake.calls) >= 3
    settings = YahooSettings()
    assert {kw["timeout"] for *_, kw in env.fake.calls} == {
        (settings.connect_timeout_s, settings.read_timeout_s)
    }
    # Spaced: every request after the first waited out min_interval_s (fake sleep).
    assert env.sleeps == [pytest.approx(0.5)] * (len(env.fake.calls) - 1)


def test_source_makes_yfinance_raise_instead_of_logging(env: Env) -> None:
    assert yf.config.debug.hide_exceptions is False
    assert yf.config.network.retries == 0


def test_network_is_out_of_reach_in_these_tests(tmp_path: Path) -> None:
    source = YahooSource(tmp_path, YahooSettings(min_interval_s=0.0), stats=StatsRegistry())
    try:
        with pytest.raises(pytest.fail.Exception, match="tried to reach the network"):
            source.history("AAPL", "1d", ns(2020, 8, 5), ns(2020, 9, 3))
    finally:
        source.close()


# --- quotes -----------------------------------------------------------------------------


def test_quotes_when_chart_meta_recorded_then_last_price_for_bid_and_ask(env: Env) -> None:
    env.fake.chart("VOD.L", range1d="chart_VOD.L_range1d.json")

    quotes = env.source.quotes(["AAPL", "TWTR", "VOD.L"])

    assert quotes == [
        Quote(
            symbol="AAPL",
            ts=1718740801 * NS,
            bid=214.29,
            ask=214.29,
            last=214.29,
            volume=79943254.0,
            origin="yahoo",
        ),
        Quote(
            symbol="VOD.L",
            ts=1718724929 * NS,
            bid=71.06,
            ask=71.06,
            last=71.06,
            volume=46523615.0,
            origin="yahoo",
        ),
    ]
    assert quotes[0].bid_size == quotes[0].ask_size == 0.0


def test_quotes_when_one_answer_unreadable_then_left_out(env: Env) -> None:
    env.fake.chart("VOD.L", range1d="chart_VOD.L_range1d.json")
    garbled = respond(b'{"chart":{"result":[{"meta":{"currency":"GBp"')
    probe = env.fake.charts["VOD.L"]
    env.fake.charts["VOD.L"] = lambda p: garbled if "events" in p else probe(p)

    quotes = env.source.quotes(["VOD.L", "AAPL"])

    assert [q.symbol for q in quotes] == ["AAPL"]


def test_quotes_when_rate_limited_then_raises(env: Env) -> None:
    env.fake.charts["AAPL"] = lambda p: respond("Too Many Requests", 429)

    with pytest.raises(RateLimited):
        env.source.quotes(["AAPL"])


# --- fundamentals -----------------------------------------------------------------------


def test_fundamentals_when_info_recorded_then_instrument_master_facts(env: Env) -> None:
    env.fake.summaries["AAPL"] = load("quoteSummary_AAPL.json")
    env.fake.v7["AAPL"] = load("quote_AAPL.json")
    env.fake.timeseries["AAPL"] = load("timeseries_AAPL_trailingPegRatio.json")

    facts = env.source.fundamentals("AAPL")

    assert facts.symbol == "AAPL" and facts.as_of == env.clock.time_ns()
    assert facts.name == "Apple Inc."
    assert facts.exchange == "NASDAQ"  # Yahoo's NMS
    assert facts.currency == "USD"
    assert (facts.sector, facts.industry) == ("Technology", "Consumer Electronics")
    assert facts.market_cap == 3285969108992.0
    assert facts.pe_ratio == 33.223255
    assert facts.eps == 6.45
    assert facts.dividend_yield == pytest.approx(0.0046)  # yfinance says 0.46 (percent)
    assert facts.beta == 1.244
    assert (facts.week52_high, facts.week52_low) == (220.2, 164.08)
    paths = [where for _, where, _, _ in env.fake.calls]
    assert "query2.finance.yahoo.com/v10/finance/quoteSummary/AAPL" in paths
    assert "query1.finance.yahoo.com/v7/finance/quote" in paths


def test_fundamentals_when_symbol_unknown_then_symbol_not_found(env: Env) -> None:
    with pytest.raises(SymbolNotFound, match="TWTR"):
        env.source.fundamentals("TWTR")
