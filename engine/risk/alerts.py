"""Open risk alerts: what the gate raised and nobody acknowledged yet, without floods.

An alert is keyed by ``(account, kind)`` (``kind`` = ``risk.<limit>``). The first
occurrence raises an ``AlertRaised`` event; repeats within ``interval_ns`` only count
(a burst of throttled orders is one alert, not thousands), and one more event goes out
per interval while it keeps happening, carrying the count. A more severe occurrence
raises at once. Acknowledging removes it; the next occurrence raises again. At most
``capacity`` alerts are kept open (the least recently seen is forgotten first), so
hostile input cannot grow memory without bound.
"""

from __future__ import annotations

import msgspec

from engine.bus.events import AlertRaised, AlertSeverity

_RANK = {"info": 0, "warning": 1, "critical": 2}


class OpenAlert(msgspec.Struct, kw_only=True):
    """An alert that was raised and not acknowledged."""

    kind: str
    severity: AlertSeverity
    message: str
    """The latest occurrence's message."""
    account: str = ""
    symbol: str = ""
    algo_id: str = ""
    count: int = 1
    """Occurrences since it was opened."""
    first_ns: int
    last_ns: int
    raised_ns: int
    """When an event last went out for it."""


class AlertBook:
    def __init__(self, interval_ns: int, capacity: int = 1_000) -> None:
        self.interval_ns = interval_ns
        self.capacity = capacity
        self._open: dict[tuple[str, str], OpenAlert] = {}

    def raise_(
        self,
        now_ns: int,
        severity: AlertSeverity,
        kind: str,
        message: str,
        *,
        account: str = "",
        symbol: str = "",
        algo_id: str = "",
    ) -> AlertRaised | None:
        """Record one occurrence; the event to publish, or None while suppressed."""
        key = (account, kind)
        alert = self._open.get(key)
        if alert is None:
            if len(self._open) >= self.capacity:
                oldest = min(self._open, key=lambda k: self._open[k].last_ns)
                del self._open[oldest]
            alert = self._open[key] = OpenAlert(
                kind=kind,
                severity=severity,
                message=message,
                account=account,
                symbol=symbol,
                algo_id=algo_id,
                first_ns=now_ns,
                last_ns=now_ns,
                raised_ns=now_ns,
            )
            return self._event(alert, now_ns)
        alert.count += 1
        alert.last_ns = now_ns
        alert.message = message
        alert.symbol, alert.algo_id = symbol or alert.symbol, algo_id or alert.algo_id
        if _RANK[severity] > _RANK[alert.severity]:
            alert.severity = severity
        elif now_ns - alert.raised_ns < self.interval_ns:
            return None
        alert.raised_ns = now_ns
        return self._event(alert, now_ns)

    def acknowledge(self, account: str, kind: str | None = None) -> int:
        """Close the account's alert of ``kind`` (all of them for None); how many."""
        keys = [k for k in self._open if k[0] == account and (kind is None or k[1] == kind)]
        for key in keys:
            del self._open[key]
        return len(keys)

    def open_alerts(self, account: str | None = None) -> list[OpenAlert]:
        """Open alerts (of ``account``), oldest first."""
        alerts = [a for (acc, _), a in self._open.items() if account is None or acc == account]
        return sorted(alerts, key=lambda a: (a.first_ns, a.kind))

    def _event(self, alert: OpenAlert, now_ns: int) -> AlertRaised:
        details = {"count": str(alert.count)} if alert.count > 1 else {}
        return AlertRaised(
            ts_event=now_ns,
            severity=alert.severity,
            kind=alert.kind,
            message=alert.message,
            symbol=alert.symbol,
            account=alert.account,
            algo_id=alert.algo_id,
            details=details,
        )
