"""Bounded view state of the Risk page and the status bar's trading state.

Fed by the bridge's bus subscription (``risk.state``, ``risk.denied.*``, ``alert.*``) and
completed by :meth:`RiskBoard.sync` from the control plane (the Clone pattern): a
``GetRiskStatus`` snapshot every few seconds, with the state changes seen since the
snapshot re-applied on top; the stored open alerts (``ListAlerts``), fetched again at once
when the bus raises one, since only a stored alert has the id it is acknowledged by; and
each account's ``warning_level`` (``GetRiskProfile``) to color its limit usage.

Unacknowledged critical alerts are never dropped for room: when ``ListAlerts`` answers
with a full window, the critical ones known from before and older than the window stay.
"""

from __future__ import annotations

import functools
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from engine.bus.commands.risk import (
    AlertList,
    AlertRow,
    GetRiskProfile,
    GetRiskStatus,
    ListAlerts,
    RiskProfileView,
    RiskStatus,
)
from engine.bus.events import AlertRaised, OrderDenied, RiskStateChanged
from engine.errors import CommandError, EngineUnreachable

MAX_DENIALS = 100
MAX_CHANGES = 50
"""State changes kept: shown, and re-applied over a snapshot older than them."""
MAX_ALERTS = 100
"""Open alerts asked of ``ListAlerts`` (newest first)."""
MAX_LIVE_ALERTS = 50
"""Alerts raised on the bus that ``ListAlerts`` did not return yet."""
MAX_PINNED = 50
"""Critical alerts kept beyond a full ``ListAlerts`` window."""
MAX_SCOPES = 1_000
"""Halted or reducing scopes (global, accounts, symbols, algorithms)."""
MAX_ACCOUNTS = 200
"""Accounts whose warning level is kept."""
STATUS_EVERY_S = 3.0
ALERTS_EVERY_S = 5.0
PROFILES_EVERY_S = 60.0
PROFILES_PER_SYNC = 5
DEFAULT_WARNING_LEVEL = 0.8
"""QSuite's default ``warning_level`` (used until an account's profile is known)."""
STATES = ("ACTIVE", "REDUCING", "HALTED")
_RANK = {state: rank for rank, state in enumerate(STATES)}


class ClientSource(Protocol):
    """What :meth:`RiskBoard.sync` needs of the bridge: its control client (the console's
    own, a viewer: these are reads)."""

    client: Any
    """``app.client.AsyncQSuiteClient`` (tests pass a fake)."""


@dataclass(frozen=True, slots=True)
class ScopeState:
    """A scope that is not ACTIVE: who or what put it there, why and since when."""

    scope: str
    key: str
    state: str
    reason: str
    """``kill_switch``, ``daily_loss``, ``runaway`` …"""
    actor: str = ""
    message: str = ""
    since_ns: int = 0


@dataclass(slots=True)
class RiskBoard:
    """States, limit usage, alerts and denials, bounded; ``apply`` takes any bus event."""

    trading_state: str = "ACTIVE"
    """ACTIVE, REDUCING or HALTED: the worst of the global halt and the accounts."""
    version: int = 0
    """Bumped on every change (the parts below have their own versions)."""
    scopes: dict[tuple[str, str], ScopeState] = field(default_factory=dict)
    """(scope, key) → its state; a scope that is ACTIVE is not here."""
    scopes_version: int = 0
    status: RiskStatus | None = None
    """The latest ``GetRiskStatus`` snapshot (accounts, limit usage, counters)."""
    status_version: int = 0
    alerts: dict[int, AlertRow] = field(default_factory=dict)
    """Stored open alerts by id, newest first."""
    live_alerts: deque[tuple[int, AlertRaised]] = field(
        default_factory=lambda: deque(maxlen=MAX_LIVE_ALERTS)
    )
    """(arrival number, alert) raised on the bus and not returned by ``ListAlerts`` yet."""
    alerts_version: int = 0
    denials: deque[OrderDenied] = field(default_factory=lambda: deque(maxlen=MAX_DENIALS))
    denials_version: int = 0
    changes: deque[RiskStateChanged] = field(default_factory=lambda: deque(maxlen=MAX_CHANGES))
    warning_levels: dict[str, float] = field(default_factory=dict)
    error: str = ""
    """Why the last fetch failed ("" when it worked)."""
    clock: Callable[[], float] = time.monotonic
    _next: dict[str, float] = field(default_factory=dict)
    _errors: dict[str, str] = field(default_factory=dict)
    _arrivals: int = 0
    _asked: tuple[int, int] = (0, 0)
    """Arrival numbers when the last two ``ListAlerts`` were sent (older, newer)."""

    # --- the bus --------------------------------------------------------------------------

    def apply(self, event: object) -> None:
        """Take one bus event (others are ignored)."""
        if isinstance(event, RiskStateChanged):
            self.changes.append(event)
            if self.status is None or event.ts_event > self.status.ts:  # else in the snapshot
                self._set(_from_event(event))
                self._recompute()
        elif isinstance(event, OrderDenied):
            self.denials.append(event)
            self.denials_version += 1
        elif isinstance(event, AlertRaised):
            self._arrivals += 1
            self.live_alerts.append((self._arrivals, event))
            self._next["alerts"] = 0.0  # fetch its stored row (and id) at the next sync
            self.alerts_version += 1
        else:
            return
        self.version += 1

    # --- the control plane ----------------------------------------------------------------

    def load_status(self, status: RiskStatus) -> None:
        """Take a ``GetRiskStatus`` snapshot; state changes newer than it stay applied."""
        if self.status is not None and status.ts < self.status.ts:
            return  # an answer overtaken by a newer one
        self.status = status
        latest: dict[tuple[str, str], RiskStateChanged] = {
            (c.scope, c.key): c for c in self.changes if c.ts_event <= status.ts
        }
        scopes: dict[tuple[str, str], ScopeState] = {}
        for h in status.halts:
            scopes[(h.scope, h.key)] = ScopeState(
                h.scope, h.key, "HALTED", "kill_switch", h.actor, h.reason, h.since_ns
            )
        for h in status.disabled_algos:
            scopes.setdefault(
                ("algo", h.key),
                ScopeState("algo", h.key, "HALTED", "runaway", h.actor, h.reason, h.since_ns),
            )
        for a in status.accounts:
            key = ("account", a.account)
            # HALTED by the global halt only: the global row says so; the account's own
            # loss state shows again once it is resumed
            if a.state == "ACTIVE" or key in scopes or a.state_reason == "kill_switch":
                continue
            seen = latest.get(key)
            if seen is not None and seen.state == a.state:
                scopes[key] = _from_event(seen)
            else:
                scopes[key] = ScopeState("account", a.account, a.state, a.state_reason)
        before, self.scopes = self.scopes, dict(list(scopes.items())[:MAX_SCOPES])
        for change in self.changes:
            if change.ts_event > status.ts:
                self._set(_from_event(change))
        self._recompute()
        if self.scopes != before:
            self.scopes_version += 1
        self.status_version += 1
        self.version += 1

    def load_alerts(self, rows: list[AlertRow], asked: int | None = None) -> None:
        """Take a ``ListAlerts`` reply (open ones, newest first). ``asked``: the arrival
        number when it was sent (:meth:`asking_alerts`)."""
        fresh = {r.id: r for r in rows if r.acknowledged_ts is None}
        if len(rows) >= MAX_ALERTS:  # a full window: older critical ones may lie beyond it
            oldest = min(r.ts for r in rows)
            beyond = [
                a
                for a in self.alerts.values()
                if a.severity == "critical" and a.id not in fresh and a.ts <= oldest
            ]
            for a in sorted(beyond, key=lambda a: a.ts, reverse=True)[:MAX_PINNED]:
                fresh[a.id] = a
        older = self._asked[0] if asked is None else min(self._asked[0], asked)
        stored = {(r.kind, r.message, r.account, r.symbol, r.algo_id) for r in fresh.values()}
        # a live alert goes once its row is listed, or after two lists (stored or not)
        kept = [
            (n, a)
            for n, a in self.live_alerts
            if n > older and (a.kind, a.message, a.account, a.symbol, a.algo_id) not in stored
        ]
        if fresh == self.alerts and len(kept) == len(self.live_alerts):
            return  # nothing new: the page need not redraw
        self.alerts = fresh
        self.live_alerts.clear()
        self.live_alerts.extend(kept)
        self.alerts_version += 1
        self.version += 1

    def asking_alerts(self) -> int:
        """Note that a ``ListAlerts`` is being sent; returns the number for ``load_alerts``."""
        self._asked = (self._asked[1], self._arrivals)
        return self._arrivals

    def acknowledged(self, alert_id: int) -> None:
        """The alert was acknowledged (by this console or anyone)."""
        if self.alerts.pop(alert_id, None) is not None:
            self.alerts_version += 1
            self.version += 1

    def load_profile(self, profile: RiskProfileView) -> None:
        """Keep the account's ``warning_level`` (from ``GetRiskProfile`` or an edit)."""
        level = profile.limits.get("warning_level")
        if isinstance(level, int | float | str) and (
            profile.account in self.warning_levels or len(self.warning_levels) < MAX_ACCOUNTS
        ):
            try:
                self.warning_levels[profile.account] = float(level)
            except ValueError:
                return
            self.status_version += 1
            self.version += 1

    def warning_level(self, account: str) -> float:
        return self.warning_levels.get(account, DEFAULT_WARNING_LEVEL)

    def refresh_soon(self) -> None:
        """Fetch the status and the alerts at the next sync (after an action)."""
        self._next["status"] = self._next["alerts"] = 0.0

    async def sync(self, bridge: ClientSource) -> None:
        """Fetch what is due: the status, the open alerts, unknown accounts' profiles.
        A failure is kept in ``error`` and tried again later (never raises)."""
        now = self.clock()
        jobs: list[tuple[str, str, float, Callable[[], Awaitable[None]]]] = [
            ("status", "the risk status", STATUS_EVERY_S, lambda: self._fetch_status(bridge)),
            ("alerts", "the alerts", ALERTS_EVERY_S, lambda: self._fetch_alerts(bridge)),
        ]
        for a in self.status.accounts if self.status else []:
            jobs.append(
                (
                    f"profile:{a.account}",
                    f"the risk profile of {a.account}",
                    PROFILES_EVERY_S,
                    functools.partial(self._fetch_profile, bridge, a.account),
                )
            )
        due = [job for job in jobs if now >= self._next.get(job[0], 0.0)]
        for key, what, every, job in due[: 2 + PROFILES_PER_SYNC]:
            self._next[key] = now + every
            try:
                await job()
            except EngineUnreachable as exc:
                self._errors[what] = f"Cannot load {what}: {exc}"
            except CommandError as exc:
                self._errors[what] = f"Cannot load {what} ({exc.code}): {exc.message}"
            else:
                self._errors.pop(what, None)
        error = "; ".join(self._errors.values())
        if error != self.error:
            self.error = error
            self.version += 1

    async def _fetch_status(self, bridge: ClientSource) -> None:
        reply = await bridge.client.send(GetRiskStatus())
        self.load_status(bridge.client.expect(reply, RiskStatus))

    async def _fetch_alerts(self, bridge: ClientSource) -> None:
        asked = self.asking_alerts()
        reply = await bridge.client.send(ListAlerts(open_only=True, limit=MAX_ALERTS))
        self.load_alerts(bridge.client.expect(reply, AlertList).alerts, asked)

    async def _fetch_profile(self, bridge: ClientSource, account: str) -> None:
        reply = await bridge.client.send(GetRiskProfile(account=account))
        self.load_profile(bridge.client.expect(reply, RiskProfileView))

    # --- internals ------------------------------------------------------------------------

    def _set(self, s: ScopeState) -> None:
        key = (s.scope, s.key)
        if s.state == "ACTIVE":
            if self.scopes.pop(key, None) is None:
                return
        elif key in self.scopes or s.scope == "global" or len(self.scopes) < MAX_SCOPES:
            if self.scopes.get(key) == s:
                return
            self.scopes[key] = s
        else:
            return
        self.scopes_version += 1

    def _recompute(self) -> None:
        states = [s.state for s in self.scopes.values() if s.scope in ("global", "account")]
        self.trading_state = max(states, key=_RANK.__getitem__, default="ACTIVE")


def _from_event(e: RiskStateChanged) -> ScopeState:
    return ScopeState(e.scope, e.key, e.state, e.reason, e.actor, e.message, e.ts_event)
