"""The session layer of the order-entry channel (see :mod:`engine.venue.protocol`):
logons, the peer of each session, per-session sequence numbers, decoding, and the
refusals that need no book (malformed, not logged on, bad fields).

The venue service hands it a channel and two callbacks; it never touches a book.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from loguru import logger

from engine.bus.channel import Channel
from engine.bus.events import OrderRejected
from engine.clock import Clock
from engine.stats import Cell
from engine.venue.instrument import Reason
from engine.venue.liquidity import INTERNAL_ACCOUNTS
from engine.venue.protocol import (
    ENCODER,
    REQUEST_DECODER,
    CancelOrder,
    LoggedOn,
    Logon,
    Report,
    Request,
    SessionReport,
    StatusRequest,
)

ACCOUNT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,31}$")
"""Client accounts (``_`` starts the venue's own: market makers, flow)."""
_SYMBOL = re.compile(r"^[A-Za-z0-9.\-=^_]{1,32}$")
_ID = re.compile(r"^\S{1,64}$")


class Session:
    __slots__ = ("name", "peer", "seq")

    def __init__(self, name: str, peer: bytes) -> None:
        self.name = name
        self.peer = peer
        self.seq = 0


class OrderEntryGateway:
    """Sessions and requests of one venue run (``epoch``).

    ``on_request(session, request)`` gets every checked order request (new, cancel,
    replace) of a logged-on session; ``on_status(session, request)`` every
    ``StatusRequest``. ``known(account, client_order_id)`` says whether an id was used.
    """

    def __init__(
        self,
        venue: str,
        epoch: str,
        clock: Clock,
        rejected: Cell,
        known: Callable[[str, str], bool],
    ) -> None:
        self.venue = venue
        self.epoch = epoch
        self.clock = clock
        self.rejected = rejected
        self.known = known
        self.sessions: dict[str, Session] = {}
        self._peers: dict[bytes, Session] = {}
        self.channel: Channel | None = None
        self.on_request: Callable[[Session, Any], None] = lambda s, r: None
        self.on_status: Callable[[Session, StatusRequest], None] = lambda s, r: None
        self._log = logger.bind(component="venue")

    def on_message(self, peer: bytes, frames: list[bytes]) -> None:
        session = self._peers.get(peer)
        try:
            if len(frames) != 1:
                raise ValueError(f"{len(frames)} frames, expected 1")
            request = REQUEST_DECODER.decode(frames[0])
        except Exception as exc:
            self._log.warning("Cannot decode an order-entry request: {}", exc)
            if session is not None:
                self.send(session, self.refusal(None, "new", "malformed", str(exc)))
            else:
                self.rejected.inc()
            return
        if isinstance(request, Logon):
            self._logon(peer, request)
            return
        if session is None:
            body = self.refusal(
                request, "new", "not_logged_on", "Log on (Logon) before sending requests"
            )
            self.send(Session("", peer), body)
            return
        if isinstance(request, StatusRequest):
            self.on_status(session, request)
            return
        problem = self._problem(request)
        if problem:
            kind = "cancel" if isinstance(request, CancelOrder) else _kind(request)
            self.send(session, self.refusal(request, kind, *problem))
            return
        self.on_request(session, request)

    def send(self, session: Session, body: Report) -> None:
        """One report to a session, with the session's next ``seq`` (none for a peer
        that is not logged on)."""
        assert self.channel is not None
        if session.name:
            session.seq += 1
        report = SessionReport(
            session=session.name, venue_epoch=self.epoch, seq=session.seq, body=body
        )
        self.channel.send([ENCODER.encode(report)], session.peer)

    def refusal(
        self, request: Request | None, kind: str, reason: str, message: str
    ) -> OrderRejected:
        self.rejected.inc()
        return OrderRejected(
            ts_event=self.clock.time_ns(),
            venue=self.venue,
            account=getattr(request, "account", ""),
            client_order_id=getattr(request, "client_order_id", ""),
            symbol=getattr(request, "symbol", ""),
            request=kind,  # type: ignore[arg-type]
            orig_client_order_id=getattr(request, "orig_client_order_id", ""),
            reason=reason,
            message=message,
        )

    def _logon(self, peer: bytes, request: Logon) -> None:
        if not _ID.match(request.session):
            self.send(Session("", peer), self.refusal(None, "new", "bad_session", request.session))
            return
        session = self.sessions.get(request.session)
        if session is None:
            session = self.sessions[request.session] = Session(request.session, peer)
        elif session.peer != peer:
            self._peers.pop(session.peer, None)
            session.peer = peer
        self._peers[peer] = session
        self._log.info("Session {} logged on", request.session)
        self.send(session, LoggedOn(session=request.session, venue=self.venue))

    def _problem(self, request: Any) -> tuple[str, str] | None:
        account, cid = request.account, request.client_order_id
        if not ACCOUNT.match(account) or account in INTERNAL_ACCOUNTS:
            return "account_invalid", f"account {account!r}: letters, digits, - and _ (≤ 32)"
        if not _ID.match(cid):
            return "client_order_id_invalid", "client_order_id: 1 to 64 characters, no spaces"
        if not _SYMBOL.match(request.symbol):
            return Reason.UNKNOWN_SYMBOL, f"symbol {request.symbol!r} is not traded here"
        if not isinstance(request, CancelOrder) and self.known(account, cid):
            return Reason.DUPLICATE_CLIENT_ORDER_ID, f"{cid} was already used by {account}"
        return None


def _kind(request: Any) -> str:
    return "replace" if hasattr(request, "orig_client_order_id") else "new"
