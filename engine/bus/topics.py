"""Topics are ``<domain>.<kind>[.<key>...]``; built and parsed only here.

Examples: ``md.bar.AAPL.1m``, ``md.quote.BP~L`` (``BP.L``: see :func:`symbol_key`),
``sig.rsi_cross.AAPL``, ``exec.algo.<id>``, ``risk.alert``, ``sys.heartbeat.feed``.

On the wire a topic frame is the topic followed by one ``.`` (``b"md.bar.AAPL.1m."``).
Subscriptions are encoded the same way, so ZeroMQ's prefix match always cuts at a
``.`` boundary: subscribing to ``md.bar.AA`` does not receive ``md.bar.AAPL.1m``.
The empty subscription receives everything.
"""

from __future__ import annotations

import re

DOMAINS = frozenset({"md", "ind", "sig", "exec", "venue", "risk", "alert", "sys"})
_PART = re.compile(r"^[A-Za-z0-9_\-=^~]+$")  # symbols like BRK-B, ^GSPC, EURUSD=X


class TopicError(ValueError):
    """A topic that does not follow ``<domain>.<kind>[.<key>]``."""


def _check_part(part: str) -> str:
    if not _PART.match(part):
        raise TopicError(f"topic part {part!r} must match {_PART.pattern} (no dots or spaces)")
    return part


def build(domain: str, kind: str, *keys: str) -> str:
    """Build a topic, validating every part."""
    if domain not in DOMAINS:
        raise TopicError(f"unknown topic domain {domain!r}; known: {', '.join(sorted(DOMAINS))}")
    return ".".join([domain, _check_part(kind), *(_check_part(k) for k in keys)])


def parse(topic: str) -> tuple[str, str, tuple[str, ...]]:
    """Split a topic into (domain, kind, keys)."""
    parts = topic.split(".")
    if len(parts) < 2 or parts[0] not in DOMAINS:
        raise TopicError(f"not a topic: {topic!r}")
    for part in parts[1:]:
        _check_part(part)
    return parts[0], parts[1], tuple(parts[2:])


def to_wire(topic: str) -> bytes:
    """The topic frame of a message (topic plus a terminating dot)."""
    return topic.encode() + b"."


def from_wire(frame: bytes) -> str:
    if not frame.endswith(b"."):
        raise TopicError(f"topic frame {frame[:60]!r} does not end with '.'")
    return frame[:-1].decode()


def subscription(prefix: str) -> bytes:
    """The ZeroMQ subscription for a topic prefix cut at ``.`` boundaries ("" = all)."""
    return b"" if not prefix else prefix.encode() + b"."


# Builders for the topics the platform uses; add new ones here.
def heartbeat(process: str) -> str:
    return build("sys", "heartbeat", process)


def process_state(process: str) -> str:
    return build("sys", "process", process)


def log_level(process: str) -> str:
    return build("sys", "loglevel", process)


def probe(token: str) -> str:
    """Topic of the :class:`~engine.bus.events.Probe` events of one subscription check."""
    return build("sys", "probe", token)


def symbol_key(symbol: str) -> str:
    """A symbol as a topic part: exchange suffixes keep their meaning, ``BP.L`` → ``BP~L``
    (a dot would split the topic). Events carry the symbol itself."""
    return symbol.replace(".", "~")


def bar(symbol: str, interval: str) -> str:
    return build("md", "bar", symbol_key(symbol), interval)


def quote(symbol: str) -> str:
    return build("md", "quote", symbol_key(symbol))


def trade(symbol: str) -> str:
    return build("md", "trade", symbol_key(symbol))


def feed_state(feed: str) -> str:
    return build("md", "feed", feed)


def backfill(symbol: str) -> str:
    return build("md", "backfill", symbol_key(symbol))


def gap(symbol: str) -> str:
    return build("md", "gap", symbol_key(symbol))


def indicator(name: str, symbol: str, interval: str) -> str:
    return build("ind", name, symbol_key(symbol), interval)


def signal(rule: str, symbol: str) -> str:
    return build("sig", rule, symbol_key(symbol))


def alert(severity: str) -> str:
    return build("alert", severity)


def order(account: str) -> str:
    """Execution reports of one account's orders."""
    return build("venue", "order", account)


def venue_trade(symbol: str) -> str:
    return build("venue", "trade", symbol_key(symbol))


def book(symbol: str) -> str:
    return build("venue", "book", symbol_key(symbol))


def position(account: str) -> str:
    return build("exec", "position", account)


def risk_denied(account: str) -> str:
    """Orders of one account the pre-trade risk gate denied (``OrderDenied``)."""
    return build("risk", "denied", account)


def risk_state() -> str:
    """Trading-state changes of the risk gate (``RiskStateChanged``)."""
    return build("risk", "state")


def algo(algo_id: str) -> str:
    """State and progress of one parent order (``AlgoStateChanged``, ``AlgoProgress``)."""
    return build("exec", "algo", algo_id)


def algo_trigger(strategy: str) -> str:
    """Algorithms a custom strategy started (``AlgorithmTriggered``)."""
    return build("exec", "trigger", strategy)


HEARTBEATS = "sys.heartbeat"
BARS = "md.bar"
QUOTES = "md.quote"
TRADES = "md.trade"
FEED_STATES = "md.feed"
MARKET_DATA = "md"
BACKFILLS = "md.backfill"
INDICATORS = "ind"
SIGNALS = "sig"
PROBES = "sys.probe"
SYSTEM = "sys"
ALERTS = "alert"
ORDERS = "venue.order"
VENUE_TRADES = "venue.trade"
BOOKS = "venue.book"
POSITIONS = "exec.position"
ALGOS = "exec.algo"
TRIGGERS = "exec.trigger"
RISK_DENIED = "risk.denied"
RISK_STATES = "risk.state"
